"""Our own weights on the Hugging Face Hub, in timm's repository layout, and ``create_model("hf-hub:…")``.

A repository holds ``model.safetensors`` (timm's key names), ``config.json`` (timm's: ``architecture``,
``num_classes``, ``num_features``, ``pretrained_cfg``; timm ``_hub.py`` ``save_config_for_hf``) and a
``README.md`` model card with the run's metrics and recipe. So ``timm.create_model("hf-hub:owner/name")``
and ``mobilebone.create_model("hf-hub:owner/name")`` both build the model and load the weights.
timm builds MobileOne and MobileNetV4 in their train-time form, so that is the form published; users fuse
after loading (``mobilebone.reparameterize_model`` or ``timm.utils.reparameterize_model``).
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by the functions that need it: the CLI starts without it
    from torch import Tensor, nn

from mobilebone.checkpoints.hub import HUB_CONFIG_FILE as CONFIG_FILE
from mobilebone.checkpoints.tags import HUB_FILENAME as WEIGHTS_FILE

CARD_FILE = "README.md"
# pretrained_cfg keys that describe where weights came from, not what they need (timm drops them too).
_SOURCE_KEYS = ("hf_hub_id", "hf_hub_filename", "file", "url", "source", "architecture", "tag")

_MNV4_TO_TIMM: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^stem\.conv\.weight$", "conv_stem.weight"),
        (r"^stem\.bn\.", "bn1."),
        (r"^conv_head\.conv\.weight$", "conv_head.weight"),
        (r"^conv_head\.bn\.", "norm_head."),
        (r"^(blocks\.\d+\.\d+)\.bn\.", r"\1.bn1."),  # ConvBnAct block
        (r"^(blocks\.\d+\.\d+)\.conv_exp\.conv\.weight$", r"\1.conv_exp.weight"),  # FusedIB
        (r"^(blocks\.\d+\.\d+)\.conv_exp\.bn\.", r"\1.bn1."),
        (r"^(blocks\.\d+\.\d+)\.conv_pwl\.conv\.weight$", r"\1.conv_pwl.weight"),
        (r"^(blocks\.\d+\.\d+)\.conv_pwl\.bn\.", r"\1.bn2."),
    )
)
_TIMM_FIRST_CONV = {"mobilenetv4": "conv_stem"}  # timm's module name where it differs from ours


def _family(arch: str) -> str:
    from mobilebone.registry import get_entry

    return get_entry(arch).family


def _rename(key: str, rules: Sequence[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        new, count = pattern.subn(replacement, key)
        if count:
            return new
    return key


def to_timm_state_dict(state: Mapping[str, Tensor], arch: str) -> dict[str, Tensor]:
    """Rename a mobilebone train-time state dict to timm's keys (the inverse of the timm reader)."""
    if _family(arch) == "mobilenetv4":
        return {_rename(k, _MNV4_TO_TIMM): v for k, v in state.items()}
    # MobileOne: only the S4 Squeeze-Excite differs (timm ``attn.fc1/fc2``).
    return {
        k.replace(".se.fc1.", ".attn.fc1.").replace(".se.fc2.", ".attn.fc2."): v for k, v in state.items()
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def hub_config(model: nn.Module, arch: str) -> dict[str, Any]:
    """timm's ``config.json`` for ``model``: architecture, num_classes, num_features, pretrained_cfg."""
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    pretrained_cfg = {k: v for k, v in cfg.items() if k not in _SOURCE_KEYS and v is not None}
    family = _family(arch)
    if family in _TIMM_FIRST_CONV:
        pretrained_cfg["first_conv"] = _TIMM_FIRST_CONV[family]
    return {
        "architecture": arch,
        "num_classes": int(getattr(model, "num_classes", 0)),
        "num_features": int(getattr(model, "num_features", 0)),
        "pretrained_cfg": _jsonable(pretrained_cfg),
    }


def _read_metrics(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_recipe(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    return recipe if isinstance(recipe, dict) else {}


def model_card(repo_id: str, arch: str, config: Mapping[str, Any], run_dir: Path | None = None) -> str:
    """The ``README.md`` of the repository: usage in mobilebone and timm, the run's metrics and recipe."""
    cfg = config["pretrained_cfg"]
    lines = [
        "---",
        "library_name: timm",
        "tags: [image-classification, timm, mobilebone]",
        f"license: {cfg.get('license') or 'other'}",
        "---",
        f"# {repo_id}",
        "",
        f"`{arch}` weights trained with mobilebone, in timm's layout ({config['num_classes']} classes, "
        f"input {tuple(cfg.get('input_size', ()))}, crop {cfg.get('crop_pct')}, "
        f"{cfg.get('interpolation')} interpolation).",
        "",
        "```python",
        "import mobilebone, timm",
        f'model = mobilebone.create_model("hf-hub:{repo_id}")   # or timm.create_model("hf-hub:{repo_id}")',
        "deploy = mobilebone.reparameterize_model(model)        # the deploy graph for inference",
        "```",
    ]
    metrics = _read_metrics(run_dir) if run_dir is not None else []
    if metrics:
        columns = list(metrics[0])
        lines += ["", "## Metrics (metrics.csv of the run)", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + "---|" * len(columns))
        lines += ["| " + " | ".join(row.get(c) or "" for c in columns) + " |" for row in metrics]
    recipe = _read_recipe(run_dir) if run_dir is not None else {}
    if recipe:
        lines += ["", "## Recipe (config.json of the run)", "", "| key | value |", "|---|---|"]
        lines += [f"| {k} | {json.dumps(v)} |" for k, v in recipe.items()]
    return "\n".join(lines) + "\n"


def _model_arch(model: nn.Module, model_name: str | None) -> str:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    arch = (model_name or cfg.get("architecture") or "").split(".", 1)[0]
    if not arch:
        raise ValueError(
            "the model does not say which architecture it is; pass model_name='mobileone_s0' etc."
        )
    return str(arch)


def save_for_hub(
    model: nn.Module,
    folder: str | Path,
    *,
    model_name: str | None = None,
    run_dir: str | Path | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` in timm's layout into ``folder``.

    ``run_dir`` (a training run's folder) adds its ``metrics.csv`` and ``config.json`` to the model card.
    """
    from safetensors.torch import save_file

    from mobilebone.atomic import atomic_path
    from mobilebone.checkpoints.detect import is_fused_state
    from mobilebone.checkpoints.native import unwrap_model

    backbone = unwrap_model(model)
    if backbone is not model:
        raise ValueError("push the classifier model, not a features_only model (it has lost its head)")
    arch = _model_arch(backbone, model_name)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in backbone.state_dict().items()}
    if is_fused_state(list(state)):
        raise ValueError(
            "the model is in its fused (reparameterized) form; timm builds these models train-time, so push "
            "the train-time model (users fuse after loading with mobilebone.reparameterize_model)"
        )
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    config = hub_config(backbone, arch)
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(to_timm_state_dict(state, arch), str(tmp), metadata={"format": "pt"})
    card = model_card(repo_id or folder.name, arch, config, Path(run_dir) if run_dir else None)
    for name, text in (
        (CONFIG_FILE, json.dumps(config, indent=2) + "\n"),
        (CARD_FILE, card),
    ):
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return folder


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    model_name: str | None = None,
    run_dir: str | Path | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Add mobilebone weights",
    api: Any = None,
) -> str:
    """Publish ``model`` to the Hub repository ``repo_id`` (created if needed) in timm's layout; returns its URL.

    ``huggingface_hub.HfApi`` does the upload (``create_repo``, ``upload_folder``); ``api`` replaces it
    (tests pass an offline stand-in).
    """
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id must be 'owner/name', got {repo_id!r}")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_for_hub(model, tmp, model_name=model_name, run_dir=run_dir, repo_id=repo_id)
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    return str(url)
