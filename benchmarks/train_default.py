"""The default ``mobilebone train`` run, measured: accuracy (train-time and deploy form), wall time, images/s.

Runs the training exactly as ``mobilebone train [--model M]`` does (the embedded recipe unless flags say
otherwise) in this process, then writes one JSON with the final scores, the per-epoch rows of the run's
``metrics.csv``, the wall-clock time, the machine (CPU, cores, load average) and library versions. The
committed results are under benchmarks/results/training/ and docs/training.md quotes them.

    python benchmarks/train_default.py [--model mobilenetv4_conv_small] [--json PATH] [-- extra train flags]
    python benchmarks/train_default.py --task detection      # the default `mobilebone train --task detection`
    python benchmarks/train_default.py --render results/training/default_mobileone_s0.json   # docs table
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from mobilebone.cli.train import DEFAULT_TASK_MODELS  # torch-free: --task without --model

RESULTS = Path(__file__).resolve().parent / "results" / "training"


def render(record: dict) -> str:
    """The markdown summary docs/training.md quotes: one line of context, then one row per epoch."""
    env, metric = record["environment"], record["metric"]
    rates = record["train_images_per_s"]
    lines = [
        f"**`{record['equivalent_cli'].strip()}`** ({record['recipe']} recipe), measured "
        f"{env['measured_at']} on {env['cpu']}, {env['usable_cores']} usable cores, torch "
        f"{env.get('torch_version')}, {env['threads']} threads; load average before/after "
        f"{record['load_average_before'][0]:.1f} / {record['load_average_after'][0]:.1f} (a shared machine). "
        f"**{record['wall_s'] / 60:.1f} min** wall clock, {rates['min']:.0f}–{rates['max']:.0f} train images/s.",
        "",
        f"| epoch | train loss | val {metric} | val {metric} (raw weights) | epoch s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in record["epochs"]:
        raw = row.get(f"model_{metric}") or "–"
        lines.append(
            f"| {row['epoch']} | {row['train_loss']} | {row[f'val_{metric}']} | {raw} | {float(row['epoch_time_s']):.1f} |"
        )
    lines += [
        "",
        f"Best weights: train-time form {metric} {record['train_form'][metric]:.2f}, deploy form "
        f"{record['deploy_form'][metric]:.2f} (max |logit difference| "
        f"{record['deploy_form'].get('max_logit_diff', 0.0):.1e}).",
    ]
    return "\n".join(lines)


def main() -> None:
    """Train, then write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="classification", choices=("classification", *DEFAULT_TASK_MODELS))
    parser.add_argument("--model", help="default: mobileone_s0, or --task's default model")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="default: results/training/ (results/tasks/ for --task) default_<model>.json",
    )
    parser.add_argument(
        "--render", metavar="JSON", help="print the docs/training.md summary of a result file"
    )
    parser.add_argument("flags", nargs="*", help="extra `mobilebone train` flags (after --)")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return

    import torch

    from mobilebone.analysis.environment import capture_environment
    from mobilebone.atomic import atomic_open
    from mobilebone.cli.train import config_flags, flag_name
    from mobilebone.tasks.training import make_task, resolve_task_config
    from mobilebone.training import resolve_config, train

    sub = argparse.ArgumentParser()
    for name, kwargs in config_flags():
        sub.add_argument(flag_name(name), **kwargs)
    overrides = vars(sub.parse_args(args.flags))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out, data = str(Path(tmp) / "run"), overrides.pop("data", None)
        if args.task == "classification":
            cfg = resolve_config(args.model or "mobileone_s0", data, out=out, **overrides)
        else:
            model = args.model or DEFAULT_TASK_MODELS[args.task]
            cfg = resolve_task_config(args.task, model, data, out=out, **overrides)
        started = time.perf_counter()
        result = train(cfg, task=make_task(cfg))
        wall = time.perf_counter() - started
        with (result.out / "metrics.csv").open(newline="", encoding="utf-8") as file:
            epochs = list(csv.DictReader(file))
    rates = [float(r["train_images_per_s"]) for r in epochs]
    record = {
        "command": "python benchmarks/train_default.py " + " ".join(sys.argv[1:]),
        "equivalent_cli": " ".join(
            [
                "mobilebone train",
                *([f"--task {args.task}"] if args.task != "classification" else []),
                *([f"--model {args.model}"] if args.model else []),
                *args.flags,
            ]
        ),
        "task": args.task,
        "model": cfg.model,
        "recipe": cfg.recipe,
        "config": json.loads(cfg.to_json()),
        "metric": result.metric,
        "best_score": result.best_score,
        "train_form": result.train_form,
        "deploy_form": result.deploy_form,
        "wall_s": wall,
        "train_images_per_s": {"min": min(rates), "max": max(rates), "per_epoch": rates},
        "epochs": epochs,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "environment": capture_environment(torch.get_num_threads(), runtime="eager-cpu", deploy=False),
    }
    folder = RESULTS if args.task == "classification" else RESULTS.parent / "tasks"
    path = Path(args.json) if args.json else folder / f"default_{cfg.model}.json"
    with atomic_open(path) as handle:
        handle.write((json.dumps(record, indent=2) + "\n").encode("utf-8"))
    print(
        f"{cfg.model}: {result.metric} {result.deploy_form[result.metric]:.2f} (deploy form), {wall:.0f} s → {path}"
    )


if __name__ == "__main__":
    main()
