"""``mobilebone push-hub``: publish a training run's weights to the Hugging Face Hub in timm's layout."""

from __future__ import annotations

import argparse

WEIGHTS_IN_RUN = ("model_best.safetensors", "model_last.safetensors")  # train-time forms, best first


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push-hub`` subcommand."""
    parser = subparsers.add_parser(
        "push-hub",
        help="publish a run's weights to the Hugging Face Hub (timm's layout, model card)",
        description=(
            "Upload RUN_DIR's train-time weights (model_best.safetensors, else model_last.safetensors, or a "
            ".safetensors file given as RUN_DIR) to REPO_ID as model.safetensors + config.json in timm's "
            "layout + a README.md model card with the run's metrics.csv and config.json. Both "
            "mobilebone.create_model('hf-hub:REPO_ID') and timm.create_model('hf-hub:REPO_ID') load it."
        ),
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="training run folder (or a .safetensors checkpoint)"
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, owner/name (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token", help="Hugging Face token (default: the saved login / HF_TOKEN)")
    parser.add_argument(
        "--local-dir", metavar="DIR", help="write the repository's files to DIR instead of uploading"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the run's weights strictly, then write or upload the repository."""
    from pathlib import Path

    from mobilebone.checkpoints import model_for_checkpoint
    from mobilebone.checkpoints.load import read
    from mobilebone.cli.main import CliError
    from mobilebone.hub_publish import push_to_hub, save_for_hub

    source = Path(args.run_dir).expanduser()
    if source.is_dir():
        found = [source / name for name in WEIGHTS_IN_RUN if (source / name).is_file()]
        if not found:
            raise CliError(
                f"{source} holds none of {', '.join(WEIGHTS_IN_RUN)}; is it a training run folder?"
            )
        weights, run_dir = found[0], source
    elif source.is_file():
        weights, run_dir = source, source.parent
    else:
        raise CliError(f"RUN_DIR {args.run_dir!r} does not exist")
    model, name = model_for_checkpoint(read(weights))
    if args.local_dir:
        folder = save_for_hub(model, args.local_dir, model_name=name, run_dir=run_dir, repo_id=args.repo_id)
        print(f"{weights} ({name}) → {folder}")
        return 0
    url = push_to_hub(
        model, args.repo_id, model_name=name, run_dir=run_dir, private=args.private, token=args.token
    )
    print(f"{weights} ({name}) → {url}")
    return 0
