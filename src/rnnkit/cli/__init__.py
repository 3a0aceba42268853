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
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


#: Exit statuses (docs/cli.md): success, invalid data/model file or value, usage error,
#: unexpected internal error, interrupted.
EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Longest error message printed (a huge label or path in a file cannot flood the terminal).
MAX_MESSAGE = 1000


def _short(text):
    """One line (line breaks from a file's content become spaces), at most MAX_MESSAGE."""
    text = " ".join(str(text).splitlines())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 40] + \
        f" ... ({len(text)} characters in all)"


def main(argv=None) -> int:
    """Entry point of the ``rnnkit`` command; returns the exit status.

    Every error is one line ``rnnkit COMMAND: error: MESSAGE`` on stderr, never a traceback
    (``--debug`` shows it). rnnkit's own errors map to documented statuses: usage errors
    (bad option, missing file) 2; invalid data or model files, values rnnkit refuses,
    diverged training, not enough memory 1; any other exception is reported as an
    unexpected internal error, status 3.

    Args:
        argv: argument list without the program name (None: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when a file or value is invalid, 2 on a usage error, 3 on an
        unexpected internal error, 130 when interrupted.
    """
    from ..callbacks import TrainingDivergedError
    from ..saving import RnnkitFileError
    from ._common import CLIError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"rnnkit {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if debug:
            raise
        if isinstance(e, CLIError):
            code, msg = EXIT_USAGE, str(e)
        elif isinstance(e, (RnnkitFileError, TrainingDivergedError, ValueError, TypeError,
                            OSError)):
            code, msg = EXIT_DATA, str(e)
        elif isinstance(e, MemoryError):
            code, msg = EXIT_DATA, (f"out of memory ({e or 'allocation failed'}); use "
                                    "smaller --units, --batch-size or data.")
        else:
            code, msg = EXIT_INTERNAL, (f"unexpected internal error {type(e).__name__}: {e}. "
                                        "This is a bug in rnnkit; rerun with --debug to see "
                                        "the traceback and report it.")
        print(f"{prog}: error: {_short(msg)}", file=sys.stderr)
        return code


__all__ = ["main", "build_parser", "SUBCOMMANDS", "EXIT_OK", "EXIT_DATA", "EXIT_USAGE",
           "EXIT_INTERNAL", "EXIT_INTERRUPTED"]
