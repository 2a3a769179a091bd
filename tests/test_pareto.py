"""Accuracy data, Pareto fronts, cross-machine merge, `mobilebone pareto` and `mobilebone pick` on recorded rows."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from mobilebone.analysis.accuracy import (
    COLUMNS,
    SOURCE_KINDS,
    default_entries,
    load_accuracy,
    packaged_accuracy,
    parse_accuracy_csv,
    preferred,
)
from mobilebone.analysis.pareto import (
    Point,
    consensus,
    join_points,
    pareto_front,
    pick,
    read_bench_results,
)
from mobilebone.cli.main import main

# ---------------------------------------------------------------- accuracy data


def test_packaged_accuracy_schema() -> None:
    from importlib import resources

    text = (resources.files("mobilebone") / "data" / "accuracy.csv").read_text(encoding="utf-8")
    header = next(csv.reader(text.splitlines()))
    assert tuple(header) == COLUMNS
    entries = packaged_accuracy()
    assert len(entries) >= 30
    for e in entries:
        assert e.source_kind in SOURCE_KINDS and e.source_kind != "user"
        assert e.source, e  # every number names where it comes from
        assert 50 < e.top1 < 95, e
        assert e.top5 is None or e.top1 < e.top5 <= 100, e
        if e.source_kind == "timm-results":
            assert e.source.startswith("https://github.com/huggingface/pytorch-image-models/blob/")
            assert e.source.endswith("/results/results-imagenet.csv")
    keys = [(e.key, e.source_kind) for e in entries]
    assert len(keys) == len(set(keys)), "duplicate (model, tag, size, source) rows"


def test_every_zoo_model_with_weights_has_accuracy() -> None:
    from mobilebone.analysis.zoo import (
        NO_PUBLISHED_ACCURACY,
        TIMM_MODELS,
        TORCHVISION_MODELS,
        timm_available,
    )
    from mobilebone.checkpoints.tags import all_tags

    have = {e.key for e in packaged_accuracy()}
    for tag in all_tags().values():
        if tag.num_classes == 1000:  # ImageNet-12k heads have no ImageNet-1k top-1
            assert (tag.arch, tag.tag, tag.input_size) in have, tag.name
    import torchvision

    for name in TORCHVISION_MODELS:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        size = weights.transforms().crop_size[0]
        assert (f"torchvision/{name}", weights.name, size) in have, name
    if timm_available():
        import timm

        models = {e.model for e in packaged_accuracy()}
        assert set(NO_PUBLISHED_ACCURACY) <= set(TIMM_MODELS)
        for name in TIMM_MODELS:
            cfg = timm.models.get_pretrained_cfg(name)
            assert cfg.num_classes == 1000 and cfg.input_size[-1] in (224, 256), name  # an ImageNet-1k head
            if name in NO_PUBLISHED_ACCURACY:  # timed only; a row appearing means the exemption is stale
                assert f"timm/{name}" not in models, name
            else:
                assert (f"timm/{name}", cfg.tag, cfg.input_size[-1]) in have, name


def test_torchvision_numbers_match_installed_weights_metadata() -> None:
    import torchvision

    rows = [e for e in packaged_accuracy() if e.source_kind == "torchvision"]
    assert rows
    for e in rows:
        weights = torchvision.models.get_model_weights(e.model.split("/", 1)[1])[e.tag]
        metrics = weights.meta["_metrics"]["ImageNet-1K"]
        assert e.top1 == pytest.approx(metrics["acc@1"]) and e.top5 == pytest.approx(metrics["acc@5"])


def test_user_csv_overrides_and_bad_files_fail(tmp_path: Path) -> None:
    own = tmp_path / "mine.csv"
    own.write_text(
        "model,tag,input_size,top1\nmobileone_s0,apple_in1k,224,70.5\nmobileone_s0,mine,224,72.0\n"
    )
    entries = load_accuracy([own])
    best = preferred(entries)
    assert best[("mobileone_s0", "apple_in1k", 224)].top1 == 70.5
    assert best[("mobileone_s0", "apple_in1k", 224)].source_kind == "user"
    chosen = default_entries(entries)
    s0 = [e for e in chosen if e.model == "mobileone_s0"]
    assert [e.tag for e in s0] == ["apple_in1k", "mine"]  # the user's own tag joins the default one
    with pytest.raises(ValueError, match="missing column"):
        parse_accuracy_csv("model,tag,top1\na,b,70\n", origin="x.csv")
    with pytest.raises(ValueError, match=r"x.csv line 2: top1 must be in"):
        parse_accuracy_csv("model,tag,input_size,top1\na,b,224,170\n", origin="x.csv")
    with pytest.raises(ValueError, match="source_kind"):
        parse_accuracy_csv("model,tag,input_size,top1,source_kind\na,b,224,70,blog\n", origin="x.csv")


# ---------------------------------------------------------------- fronts


def test_pareto_front_by_hand() -> None:
    # (cost, acc): B dominates C (faster and more accurate); D ties A's cost with less accuracy.
    costs = [1.0, 2.0, 3.0, 1.0, 4.0]
    accs = [70.0, 75.0, 74.0, 69.0, 80.0]
    assert pareto_front(costs, accs) == [True, True, False, False, True]
    assert pareto_front([1.0, 1.0], [70.0, 70.0]) == [True, True]  # identical points: neither dominates


def _row(model: str, runtime: str, size: int, ms: float, **extra: object) -> dict[str, object]:
    return {
        "model": model,
        "source": "mobilebone" if "/" not in model else model.split("/")[0],
        "kind": "convnet",
        "runtime": runtime,
        "form": "deploy",
        "batch_size": 1,
        "input_size": size,
        "threads": 2,
        "params": 1e6,
        "macs": 1e8 * ms,
        "min_ms": ms,
        "median_ms": ms * 1.1,
        "status": "ok",
        "measured_at": "2026-01-01T00:00:00+00:00",
        **extra,
    }


# Recorded rows of two machines (deterministic): latencies chosen so that the fronts differ.
MACHINE_A = [
    _row("mobileone_s0", "onnxruntime", 224, 2.0),  # 71.40 / 71.398
    _row("mobileone_s1", "onnxruntime", 224, 3.0),  # 75.76
    _row("mobileone_s2", "onnxruntime", 224, 5.0),  # 77.50
    _row("mobilenetv4_conv_small", "onnxruntime", 224, 1.5),  # 73.756
    _row("torchvision/resnet18", "onnxruntime", 224, 4.0),  # 69.758: dominated
    _row("mobilenetv4_conv_medium", "onnxruntime", 224, 6.0),  # no in1k tag at 224 as default
    _row("mobileone_s0", "eager", 224, 3.0),
    _row("mobileone_s1", "onnxruntime", 224, 9.0, status="error", min_ms=None),  # failed rows are ignored
]
MACHINE_B = [
    _row("mobileone_s0", "onnxruntime", 224, 1.0),
    _row("mobileone_s1", "onnxruntime", 224, 6.0),
    _row("mobileone_s2", "onnxruntime", 224, 4.5),  # faster than s1 here: s1 drops off B's front
    _row("mobilenetv4_conv_small", "onnxruntime", 224, 1.2),
    _row("torchvision/resnet18", "onnxruntime", 224, 3.5),
]


def _write(folder: Path, rows: list[dict[str, object]], cpu: str) -> Path:
    folder.mkdir(parents=True)
    document = {
        "tool": "mobilebone bench",
        "invocations": [{"settings": {}, "environment": {"cpu": cpu, "usable_cores": 2}}],
        "rows": rows,
    }
    (folder / "results.json").write_text(json.dumps(document))
    return folder


@pytest.fixture
def machines(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "a", MACHINE_A, "CPU A"), _write(tmp_path / "b", MACHINE_B, "CPU B")


def _points(folder: Path) -> tuple[list[Point], list[str]]:
    return join_points(read_bench_results(folder), default_entries(packaged_accuracy()))


def test_join_matches_resolution_and_reports_misses(machines: tuple[Path, Path]) -> None:
    points, missing = _points(machines[0])
    labels = {(p.label, p.runtime) for p in points}
    assert ("mobileone_s0.apple_in1k@224", "onnxruntime") in labels
    assert ("mobileone_s0.apple_in1k@224", "eager") in labels
    assert missing == ["mobilenetv4_conv_medium@224"]  # its default weights are evaluated at 256
    s0 = next(p for p in points if p.model == "mobileone_s0" and p.runtime == "onnxruntime")
    assert s0.top1 == pytest.approx(71.398) and s0.accuracy_source == "timm-results"
    assert s0.machine == "a"


def test_consensus_across_machines(machines: tuple[Path, Path]) -> None:
    points = _points(machines[0])[0] + _points(machines[1])[0]
    verdicts = consensus(points)
    assert verdicts[("onnxruntime", "mobileone_s2.apple_in1k@224")] == "every"
    assert verdicts[("onnxruntime", "mobilenetv4_conv_small.e2400_r224_in1k@224")] == "every"
    assert verdicts[("onnxruntime", "mobileone_s1.apple_in1k@224")] == "some"  # A only
    assert verdicts[("onnxruntime", "resnet18.IMAGENET1K_V1@224")] == "none"
    assert verdicts[("onnxruntime", "mobileone_s0.apple_in1k@224")] == "some"  # B only (fastest there)


def test_consensus_most_needs_a_majority_of_machines(machines: tuple[Path, Path], tmp_path: Path) -> None:
    # A third machine like A (s1 fast again): s1 is on the front of 2 of 3 machines → "most"; s0 of 1 → "some".
    third = _write(tmp_path / "c", MACHINE_A, "CPU C")
    points = [p for folder in (*machines, third) for p in _points(folder)[0]]
    verdicts = consensus(points)
    assert verdicts[("onnxruntime", "mobileone_s1.apple_in1k@224")] == "most"
    assert verdicts[("onnxruntime", "mobileone_s0.apple_in1k@224")] == "some"
    assert verdicts[("onnxruntime", "mobileone_s2.apple_in1k@224")] == "every"
    assert verdicts[("onnxruntime", "resnet18.IMAGENET1K_V1@224")] == "none"


def test_pick_on_recorded_rows(machines: tuple[Path, Path]) -> None:
    a = _points(machines[0])[0]
    assert pick(a, 3.0).point.label == "mobileone_s1.apple_in1k@224"  # type: ignore[union-attr]
    assert pick(a, 2.9).point.label == "mobilenetv4_conv_small.e2400_r224_in1k@224"  # type: ignore[union-attr]
    assert pick(a, 3.0, ["eager"]).point.label == "mobileone_s0.apple_in1k@224"  # type: ignore[union-attr]
    assert pick(a, 1.0) is None
    both = a + _points(machines[1])[0]
    choice = pick(both, 5.0)  # s2 fits on both (5.0, 4.5); s1 does not fit on B (6.0)
    assert choice is not None and choice.point.model == "mobileone_s2" and choice.worst_ms == 5.0
    assert choice.export_command() == (
        "mobilebone export mobileone_s2 --weights mobileone_s2.apple_in1k --format onnx "
        "--input-size 224 --out mobileone_s2.onnx"
    )
    # The command matches the runtime the pick was timed in: export's int8 recipe, or deploy for the rest.
    int8 = dataclasses.replace(choice, point=dataclasses.replace(choice.point, runtime="onnxruntime-int8"))
    assert int8.export_command() == (
        "mobilebone export mobileone_s2 --weights mobileone_s2.apple_in1k --format onnx --int8 "
        "--input-size 224 --out mobileone_s2_int8.onnx"
    )
    ov = dataclasses.replace(choice, point=dataclasses.replace(choice.point, runtime="openvino-int8"))
    assert ov.export_command() == (
        "mobilebone deploy mobileone_s2 --weights mobileone_s2.apple_in1k --runtimes openvino-int8 "
        "--input-size 224 --out mobileone_s2-openvino-int8"
    )


def test_cli_pick(machines: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (str(m) for m in machines)
    assert main(["pick", "--budget-ms", "3", "--runtime", "auto", "--results", a]) == 0
    out = capsys.readouterr().out
    assert "mobileone_s1.apple_in1k at 224 px, onnxruntime" in out
    assert "export: mobilebone export mobileone_s1 --weights mobileone_s1.apple_in1k --format onnx" in out
    assert main(["pick", "--budget-ms", "0.5", "--results", a, b]) == 1
    assert "nothing fits 0.5 ms" in capsys.readouterr().err
    assert main(["pick", "--budget-ms", "-1", "--results", a]) == 2
    assert main(["pick", "--budget-ms", "5", "--results", str(Path(a).parent / "nowhere")]) == 2
    assert "no results.json or results.csv" in capsys.readouterr().err


def test_cli_pareto_merges_machines(machines: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["pareto", "--results", *map(str, machines), "--out", str(out)]) == 0
    with (out / "pareto.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["machine"] for r in rows} == {"a", "b"}
    s1 = {(r["machine"], r["runtime"]): r for r in rows if r["model"] == "mobileone_s1"}
    assert s1[("a", "onnxruntime")]["front_latency"] == "True"
    assert s1[("b", "onnxruntime")]["front_latency"] == "False"
    assert s1[("b", "onnxruntime")]["consensus"] == "some"
    assert s1[("b", "onnxruntime")]["fronts_of_machines"] == "1/2"
    report = (out / "pareto.md").read_text()
    assert "## Across machines" in report and "CPU A" in report and "mobilenetv4_conv_medium@224" in report
    assert "load average" not in report  # these rows did not record it
    loaded = [{**r, "environment": {"load_average": [3.0 + i, 1.0, 1.0]}} for i, r in enumerate(MACHINE_B)]
    assert main(["pareto", "--results", str(_write(tmp_path / "c", loaded, "CPU C")), "--out", str(out)]) == 0
    assert "1-min load average 3.0–7.0 while measuring (5 rows)" in (out / "pareto.md").read_text()
    assert (out / "pareto.png").stat().st_size > 10_000


def test_cli_pareto_models_restricts_the_report(machines: tuple[Path, Path], tmp_path: Path) -> None:
    """With --models the report is the selection's: other models' rows are neither placed nor listed as
    lacking an accuracy (as after `pareto --resume --models ...` on a folder holding a whole sweep)."""
    out = tmp_path / "out"
    assert main(["pareto", "--results", str(machines[0]), "--models", "mobileone_s0", "--out", str(out)]) == 0
    with (out / "pareto.csv").open() as handle:
        assert {r["model"] for r in csv.DictReader(handle)} == {"mobileone_s0"}
    assert "mobilenetv4_conv_medium@224" not in (out / "pareto.md").read_text()
    assert (
        main(["pareto", "--results", str(machines[0]), "--models", "mobilenetv4_*", "--out", str(out)]) == 0
    )
    assert "mobilenetv4_conv_medium@224" in (out / "pareto.md").read_text()  # a selected model's miss stays


def test_csv_results_are_read_too(machines: tuple[Path, Path], tmp_path: Path) -> None:
    from mobilebone.analysis.report import write_csv

    folder = tmp_path / "csv_only"
    folder.mkdir()
    write_csv(MACHINE_A, folder / "results.csv")
    points, missing = _points(folder)
    assert missing == ["mobilenetv4_conv_medium@224"]
    assert sorted(p.label for p in points) == sorted(p.label for p in _points(machines[0])[0])


# ---------------------------------------------------------------- labels


def test_labels_do_not_overlap() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mobilebone.analysis.pareto_plot import place_labels

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [1.0, 1.05, 1.1, 1.15, 2.0, 2.05, 3.0]
    ys = [70.0, 70.2, 70.1, 70.3, 75.0, 75.1, 78.0]
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    ax.set_xlim(0.5, 6)
    ax.set_ylim(68, 80)
    annotations = place_labels(ax, xs, ys, [f"model_number_{i}" for i in range(len(xs))], fontsize=7)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in annotations]
    for i, box in enumerate(boxes):
        for other in boxes[i + 1 :]:
            assert not box.overlaps(other)
    plt.close(fig)


def test_measure_rows_times_each_weights_at_its_resolution(tmp_path: Path) -> None:
    from mobilebone.analysis.accuracy import AccuracyEntry
    from mobilebone.analysis.pareto import measure_rows

    entries = [
        AccuracyEntry("mobileone_s0", "a", 64, 70.0, None, "user", "test"),
        AccuracyEntry("mobileone_s0", "b", 96, 72.0, None, "user", "test"),
    ]
    out = measure_rows(entries, ["eager"], tmp_path / "bench", threads=1, runs=3, warmup=1, max_seconds=0.5)
    results = read_bench_results(out)
    sizes = {(r["model"], r["input_size"], r["status"]) for r in results.rows}
    assert sizes == {("mobileone_s0", 64, "ok"), ("mobileone_s0", 96, "ok")}  # one sweep per resolution
    points, missing = join_points(results, entries)
    assert sorted(p.label for p in points) == ["mobileone_s0.a@64", "mobileone_s0.b@96"]
    assert missing == []


def test_registry_top1_agrees_with_the_accuracy_data() -> None:
    """A tag's published top-1 (registry) is the timm-results row of the packaged accuracy data."""
    from mobilebone.checkpoints.tags import all_tags

    timm_rows = {e.key: e.top1 for e in packaged_accuracy() if e.source_kind == "timm-results"}
    checked = 0
    for tag in all_tags().values():
        if tag.top1 is None:
            continue
        key = (tag.arch, tag.tag, tag.input_size)
        assert key in timm_rows, f"{tag.name}: top-1 {tag.top1} in the registry but no timm-results row"
        assert tag.top1 == pytest.approx(timm_rows[key], abs=0.01), tag.name
        checked += 1
    assert checked >= 5  # at least the five MobileOne tags carry a published top-1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pareto", "--threads", "1000"], "--threads 1000 is more than"),
        (["pareto", "--threads", "0"], "--threads must be >= 1"),
        (["roofline", "mobileone_s0", "--threads", "1000"], "--threads 1000 is more than"),
        (["roofline", "mobileone_s0", "--input-size", "100000"], "--input-size must be between 32 and 2048"),
        (["roofline", "mobileone_s0", "--input-size", "8"], "--input-size must be between 32 and 2048"),
    ],
)
def test_threads_and_sizes_are_bounded_like_every_command(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobilebone.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_docs_interleaved_table_is_the_committed_run() -> None:
    """docs/pareto.md's interleaved table is what benchmarks/zoo_interleaved.py prints from its JSON."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "zoo_interleaved", root / "benchmarks" / "zoo_interleaved.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    record = json.loads((root / "benchmarks/results/zoo_fresh/interleaved_eager.json").read_text())
    assert module.table(record) in (root / "docs" / "pareto.md").read_text()


def test_docs_pareto_g_and_f_rows_quote_their_reports() -> None:
    """The MNv4 rows of docs/pareto.md's G table (eager / torch.compile), H table (LiteRT) and the hybrids'
    F rows (ExecuTorch) give the recorded report's latency and front membership."""
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "pareto.md").read_text()

    def cell(folder: str, runtime: str, model: str) -> str:
        with (root / "benchmarks/results/pareto" / folder / "pareto.csv").open() as handle:
            (row,) = [r for r in csv.DictReader(handle) if r["runtime"] == runtime and r["model"] == model]
        ms = f"{float(row['latency_ms']):.2f} ms"
        return f"● {ms}" if row["front_latency"] == "True" else f"off ({ms}"

    g = {
        "MNv4-Conv-S** @224, 73.76 %": "mobilenetv4_conv_small",
        "MNv4-Conv-M** @256, 79.92 %": "mobilenetv4_conv_medium",
        "MNv4-Hybrid-L** @384, 84.00 %": "mobilenetv4_hybrid_large",
    }
    for label, model in g.items():
        line = f"| **{label} | {cell('eager_compile', 'eager', model)} | {cell('eager_compile', 'compile', model)}"
        assert line in doc, line
    for label, model in {**g, "MNv4-Hybrid-M** @256, 82.36 %": "mobilenetv4_hybrid_medium"}.items():
        assert f"| **{label} | {cell('litert', 'litert', model)}" in doc, (label, "litert")
    for label, model in {
        "Hybrid-M** @256, 82.36 %": "mobilenetv4_hybrid_medium",
        "Hybrid-L** @384, 84.00 %": "mobilenetv4_hybrid_large",
    }.items():
        line = f"| **MNv4-{label} | {cell('executorch_ov_int8', 'executorch-xnnpack', model)} |"
        assert line in doc, line
