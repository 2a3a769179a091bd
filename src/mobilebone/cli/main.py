"""``mobilebone`` command line: discovers one subcommand per module of this package.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed namespace and returning an exit code. Heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import mobilebone.cli as cli_package

_NOT_COMMANDS = {"main", "common"}


class CliError(Exception):
    """An error the CLI reports as one line on stderr, with exit code 2, instead of a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    from mobilebone import __version__

    parser = argparse.ArgumentParser(
        prog="mobilebone", description="Mobile vision backbones that are fast in practice."
    )
    parser.add_argument("--version", action="version", version=f"mobilebone {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"mobilebone.cli.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
    return parser


def _os_error(err: OSError) -> str:
    """``path: cause`` for an operating-system error (its message alone when it names no path)."""
    if err.filename is None or err.strerror is None:
        return str(err)
    return f"{err.filename}: {err.strerror.lower()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mobilebone`` console script and of ``python -m mobilebone``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (CliError, ValueError) as err:
        # Checkpoint errors carry command-line advice (--weights PATH) next to the Python one.
        print(f"mobilebone {args.command}: error: {getattr(err, 'cli_message', err)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:  # an optional runtime (the deploy extra) that is not installed
        print(
            f"mobilebone {args.command}: error: this needs the Python package {err.name!r}, which is not "
            "installed (the deploy runtimes come with: pip install 'mobilebone[deploy]')",
            file=sys.stderr,
        )
        return 2
    except OSError as err:  # missing file, permission, read-only or full disk, a path through a file, …
        print(f"mobilebone {args.command}: error: {_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mobilebone {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
