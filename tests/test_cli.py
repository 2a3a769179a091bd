"""The command line, run in-process through its entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mobilebone.cli.main import main


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "mobileone_*"]) == 0
    assert capsys.readouterr().out.split() == [f"mobileone_s{i}" for i in range(5)]


def test_info_prints_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "mobileone_s0", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "5,293,272" in out and "2,078,504" in out and "275.1" in out
    assert "stages.2" in out


def test_info_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    from mobilebone import create_model
    from mobilebone.analysis import count_macs

    assert main(["info", "mobileone_s0", "--input-size", "160"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "mobileone_s0" in line)
    cells = [cell.strip() for cell in row.strip("│| ").split("│")]
    assert cells[:2] == ["mobileone_s0", "160x160"]
    train_macs = count_macs(create_model("mobileone_s0"), 160).total
    deploy_macs = count_macs(create_model("mobileone_s0", deploy=True), 160).total
    assert cells[-2:] == [f"{train_macs / 1e6:,.1f}", f"{deploy_macs / 1e6:,.1f}"]
    default = count_macs(create_model("mobileone_s0", deploy=True), 224).total
    assert f"{default / 1e6:,.1f}" != cells[-1]  # the option changed the count, not just the label


def test_info_of_a_weight_tag_uses_the_tag_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    name = "mobilenetv4_conv_small.e3600_r256_in1k"  # trained and evaluated at 256, the arch default is 224
    assert main(["info", name]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if name in line)
    assert "256x256" in row and "224x224" not in row


def test_unknown_model_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "mobileone_s9"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'mobileone_s9'" in err and "Traceback" not in err


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mobilebone", "list", "mobileone_s0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mobileone_s0"


HEAVY = ("torch", "torchvision", "numpy", "onnx", "onnxruntime", "PIL", "safetensors", "timm", "rich")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["list"], ["list", "--pretrained"], ["list", "mnv4*"], ["list", "--task", "detection"]],
)
def test_help_and_list_import_no_heavy_library(argv: list[str]) -> None:
    # Start-up time of a command-line tool: parsing, --help and listing must not import torch & co.
    code = (
        "import sys\n"
        "from mobilebone.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "LOADED []"


def test_list_task_models(capsys: pytest.CaptureFixture[str]) -> None:
    """``list --task`` names every head on every backbone, and only that task's heads."""
    from mobilebone import list_models

    assert main(["list", "--task", "detection"]) == 0
    detection = capsys.readouterr().out.split()
    assert sorted(detection) == sorted(f"{h}_{b}" for h in ("ssdlite", "retinanet") for b in list_models())
    assert main(["list", "--task", "segmentation", "lraspp_*"]) == 0
    assert capsys.readouterr().out.split() == [f"lraspp_{b}" for b in sorted(list_models())]
    assert main(["list", "--task", "detection", "nothing*"]) == 2
    assert "no detection model matches" in capsys.readouterr().err


def test_a_missing_optional_package_is_one_line_naming_the_extra(monkeypatch, capsys) -> None:
    import mobilebone.cli.list as list_cli

    def needs_executorch(args: object) -> int:
        raise ModuleNotFoundError("No module named 'executorch'", name="executorch")

    monkeypatch.setattr(list_cli, "run", needs_executorch)
    assert main(["list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'executorch'" in err and "mobilebone[deploy]" in err
