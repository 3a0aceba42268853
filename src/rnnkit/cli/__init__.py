"""The ``rnnkit`` command: ``rnnkit <command> [options]``.

Each subcommand lives in its own module ``rnnkit.cli.<name>`` exposing
``register(subparsers)`` (adds its parser, with help for every option, and
``set_defaults(func=run)``) and ``run(args) -> int`` (the exit status).
:func:`main` builds the parser from :data:`SUBCOMMANDS` and runs the chosen command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``rnnkit --help`` lists them.
SUBCOMMANDS = ["train", "evaluate", "predict", "generate", "info", "diagnose", "experiment",
               "sweep"]


def build_parser():
    """The ``rnnkit`` argument parser with every subcommand registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="rnnkit: recurrent neural networks (SimpleRNN, LSTM, GRU) written by hand "
        "in NumPy. Train on built-in data or your own .ts / .csv / .txt files, evaluate, "
        "predict, generate text and inspect saved models.",
        epilog="Run `rnnkit COMMAND --help` for the options of a command. Start with "
        "`rnnkit train` (Japanese Vowels speaker classification with the tutorial's LSTM "
        "model).",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``rnnkit`` command; returns the exit status.

    Args:
        argv: argument list without the program name (None: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when a file or value is invalid, 2 on a usage error, 130 when
        interrupted.
    """
    from ..saving import RnnkitFileError
    from ._common import CLIError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    prog = f"rnnkit {args.command}"
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, RnnkitFileError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "SUBCOMMANDS"]
