"""``mobilebone train``: train a model with the papers' recipes (any flag overrides), resumable, torchrun-ready.

The flags are generated from ``TrainConfig``'s fields (name, type, help in the field's metadata; a
``Literal`` type gives ``choices``), so every setting has a flag and none can drift from the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Literal, get_args, get_origin, get_type_hints

# errno values that only a write produces: the message says so.
_WRITE_ERRORS = {28, 30, 122}  # ENOSPC, EROFS, EDQUOT (Linux numbering; elsewhere the plain form is used)
# Run options, not settings of the run: they are not saved in config.json.
_RUN_OPTIONS = ("resume", "overwrite")
# --task without --model trains these (both train on the embedded shapes set in minutes on a CPU).
DEFAULT_TASK_MODELS = {
    "detection": "ssdlite_mobilenetv4_conv_small",
    "segmentation": "lraspp_mobilenetv4_conv_small",
}


def _none_or(kind: type) -> Any:
    """An argparse type accepting ``kind`` or the word ``none`` (the setting's 'off' value)."""

    def parse(text: str) -> Any:
        if text.lower() == "none":
            return None
        return kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def config_flags() -> list[tuple[str, dict[str, Any]]]:
    """``(field name, add_argument keywords)`` for every ``TrainConfig`` setting (its flag is ``--field-name``)."""
    from mobilebone.training.config import TrainConfig

    hints = get_type_hints(TrainConfig)
    flags = []
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("flag", True) is False:
            continue
        # argparse %-formats help texts: a literal % must be doubled.
        text = f.metadata["help"].replace("%", "%%")
        # SUPPRESS: a flag left out is absent from the namespace, so "--weight-decay-end none" (None) differs
        # from not giving it (the recipe's value).
        hint, kwargs = hints[f.name], {"help": text, "default": argparse.SUPPRESS, "dest": f.name}
        if "metavar" in f.metadata:
            kwargs["metavar"] = f.metadata["metavar"]
        args = [a for a in get_args(hint) if a is not type(None)]
        if get_origin(hint) is Literal:
            kwargs["choices"] = list(get_args(hint))
        elif hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(hint) is tuple:
            kwargs.update(nargs=len(args), type=args[0])
        elif len(args) == 1 and type(None) in get_args(hint):  # Optional[X]: "none" turns it off
            kwargs["type"] = _none_or(args[0]) if args[0] is not str else str
        else:
            kwargs["type"] = hint
        flags.append((f.name, kwargs))
    return flags


def flag_name(field: str) -> str:
    """``batch_size`` → ``--batch-size``."""
    return "--" + field.replace("_", "-")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a classifier, detector or segmenter (--task; real data or the embedded shapes set); "
        "resumable, works under torchrun",
        description=(
            "Train --model on --data (an ImageFolder root with train/ and val/ folders) or, without --data, "
            "on the embedded generated shapes set. Recipes: mobileone (the MobileOne paper's), mobilenetv4 "
            "(timm-style AdamW), embedded (minutes on a CPU); every setting can be overridden. Multi-GPU or "
            "multi-process: torchrun --nproc_per_node=N -m mobilebone train ... . Writes config.json, "
            "metrics.csv, tensorboard/, checkpoint_last.pt (resume), model_best/last.safetensors and "
            "model_deploy.safetensors (reparameterized; the run fails if it scores differently) to --out. "
            "--task detection / segmentation trains a task model (e.g. ssdlite_mobileone_s0, "
            "deeplabv3_mobilenetv4_conv_small) with its head's recipe (--recipe head) on --data in a "
            "--data-layout, or on the embedded shapes set (--recipe embedded); "
            "its weights files are task-model files that detect, segment and eval --task read."
        ),
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="continue the run in --out (or in DIR) from its last checkpoint, with its saved settings; "
        "other flags may be repeated but not changed",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in a non-empty --out, deleting the previous run's files there",
    )
    for name, kwargs in config_flags():
        if name == "data_layout":
            kwargs = {**kwargs, **layout_flag()}
        parser.add_argument(flag_name(name), **kwargs)
    from mobilebone.cli import train_qat

    train_qat.add_flags(parser)
    parser.set_defaults(func=run)


def layout_flag() -> dict[str, Any]:
    """``--data-layout``'s choices and help, generated from the layout table (``tasks.data.layouts``)."""
    from mobilebone.tasks.data.layouts import DEFAULT_LAYOUT, LAYOUTS

    defaults = ", ".join(f"{name} for {task}" for task, name in DEFAULT_LAYOUT.items())
    listed = "; ".join(f"{name} ({layout.task}): {layout.expects}" for name, layout in LAYOUTS.items())
    text = f"--task only: the layout of --data (default: {defaults}). {listed}"
    return {"choices": list(LAYOUTS), "help": text.replace("%", "%%")}


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (flags left out keep the recipe's values)."""
    return {name: getattr(args, name) for name, _ in config_flags() if hasattr(args, name)}


def _same(given: Any, saved: Any) -> bool:
    if isinstance(given, (list, tuple)) and isinstance(saved, (list, tuple)):
        return len(given) == len(saved) and all(_same(a, b) for a, b in zip(given, saved, strict=True))
    if isinstance(given, float) or isinstance(saved, float):
        try:
            return math.isclose(float(given), float(saved), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return bool(given == saved)


def _canonical_model(name: str, task: str) -> str:
    """The registry's spelling of ``name`` (a task model for detection / segmentation)."""
    if task == "classification":
        from mobilebone.registry import get_entry

        return get_entry(name).name
    from mobilebone.tasks.registry import get_task_entry

    return get_task_entry(name, task).name  # type: ignore[arg-type]


def changed_flags(given: dict[str, Any], saved: Any) -> list[str]:
    """The flags whose value differs from the saved run's config (``out`` names the folder: never compared)."""
    changed = []
    for name, value in given.items():
        if name == "out":
            continue
        if name == "model":
            value = _canonical_model(value, given.get("task", saved.task))
        if not _same(value, getattr(saved, name)):
            changed.append(f"{flag_name(name)} (saved: {getattr(saved, name)!r}, given: {value!r})")
    return changed


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, report."""
    from mobilebone.cli.main import CliError
    from mobilebone.training.config import TrainConfig, resolve_config
    from mobilebone.training.rundir import describe_os_error

    given = overrides_from(args)
    if args.qat or args.weights:
        from mobilebone.cli import train_qat

        return train_qat.run(args, given)
    try:
        if args.resume:
            from mobilebone.training import checkpointing as ckpt
            from mobilebone.training.loop import resume_target, train

            if args.overwrite:
                raise CliError("--resume continues a run and --overwrite replaces it; pass one of them")
            folder = resume_target(TrainConfig(out=given.get("out", "")), args.resume)
            saved = TrainConfig.from_json(ckpt.load_state(folder)["config"])
            changed = changed_flags(given, saved)
            if changed:
                raise CliError(
                    f"--resume continues a run with the settings saved in its config.json; these flags "
                    f"differ from them: {'; '.join(changed)} (drop them, or start a new run with another --out)"
                )
            from mobilebone.tasks.training import make_task

            train(TrainConfig(out=str(folder)), resume=True, task=make_task(saved))
            return 0
        model, data = given.pop("model", None), given.pop("data", None)
        task = given.pop("task", "classification")
        if task != "classification":
            from mobilebone.tasks.training import make_task, resolve_task_config
            from mobilebone.training.loop import train

            cfg = resolve_task_config(task, model or DEFAULT_TASK_MODELS[task], data, **given)
            train(cfg, overwrite=args.overwrite, task=make_task(cfg))
            return 0
        if data is not None:
            from mobilebone.training.data import check_image_folder

            check_image_folder(data)  # a wrong path fails in a second, before models or data are built
        from mobilebone.training.loop import train

        train(resolve_config(model, data, **given), overwrite=args.overwrite)
    except OSError as err:
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)) and not err.filename:
            raise
        raise CliError(
            f"cannot write {describe_os_error(err, '')}"
            if err.errno in _WRITE_ERRORS
            else describe_os_error(err, "")
        ) from None
    return 0
