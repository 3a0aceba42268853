"""``rnnkit sweep FILE``: a hyper-parameter search of ``rnnkit train`` settings on Ray Tune.

The file format is documented in :mod:`rnnkit.distributed.spec` and docs/distributed.md
(example: examples/sweep.toml). Needs the tune extra (``pip install "rnnkit[tune]"``).
"""

from __future__ import annotations

import argparse

from ._common import CLIError, Output, fmt


def register(subparsers):
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep", help="search train settings on Ray Tune (random / Optuna TPE, ASHA)",
        description="Run a hyper-parameter sweep described by a TOML file on Ray Tune: each "
        "trial is an `rnnkit train` run reporting every epoch; ASHA stops poor trials early. "
        "Prints a live table, writes results.csv / results.json and the best model "
        "(best.rnnkit) to <storage>/<name>/. Running it again resumes an interrupted sweep.",
        epilog="examples:\n"
        "  rnnkit sweep examples/sweep.toml\n"
        "  rnnkit sweep sweep.toml --num-cpus 8\n"
        "  rnnkit sweep sweep.toml --address auto      # on a running Ray cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="sweep TOML file ([sweep], [train], [space])")
    p.add_argument("--address", metavar="ADDR", default=None,
                   help="join this Ray cluster ('auto', 'HOST:PORT' or 'ray://HOST:10001') "
                   "instead of starting a local Ray")
    p.add_argument("--num-cpus", type=int, default=None, metavar="N",
                   help="CPUs of the local Ray (default: this machine's cores)")
    p.add_argument("--object-store-mb", type=int, default=200, metavar="MB",
                   help="object store of the local Ray in MiB (default: 200)")
    p.add_argument("--no-resume", action="store_true",
                   help="refuse to continue an existing sweep folder (default: resume it)")
    p.add_argument("--json", action=argparse.BooleanOptionalAction, default=False,
                   help="print one final machine-readable JSON line on stdout (the table "
                   "goes to stderr)")
    p.add_argument("--quiet", action=argparse.BooleanOptionalAction, default=False,
                   help="no live table and no summary")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``rnnkit sweep``; returns the exit status (0 done, 1 no trial completed, 130
    interrupted: run it again to resume)."""
    from ..distributed import load_sweep_spec, sweep

    try:
        spec = load_sweep_spec(args.file)
    except ValueError as e:   # a usage error: the file is missing or wrong
        raise CLIError(str(e)) from None
    for name in ("num_cpus", "object_store_mb"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive integer, got {v}.")
    out = Output(json_mode=args.json, quiet=args.quiet)
    res = sweep(spec, address=args.address, num_cpus=args.num_cpus,
                object_store_memory=args.object_store_mb * 2**20, resume=not args.no_resume,
                print_fn=None if args.quiet else (lambda text: out.say(text + "\n")))
    out.say(res.table)
    if res.best is None:
        out.say(f"no trial completed; see {res.path}/results.csv for the errors")
    else:
        out.say(f"best trial {res.best['trial']}: "
                + ", ".join(f"{k}={fmt(res.best.get(k))}" for k in res.trials[0]
                            if k not in ("trial", "status", "epochs", "model_file", "error")))
        out.say(f"best model: {res.best_model}")
    out.say(f"results: {res.path}/results.csv and results.json")
    if res.interrupted:
        out.say(f"the sweep was interrupted: run `rnnkit sweep {args.file}` again to resume it")
    out.result({"path": res.path, "best": res.best, "best_model": res.best_model,
                "resumed": res.resumed, "interrupted": res.interrupted, "trials": res.trials})
    if res.interrupted:
        return 130
    return 0 if res.best is not None else 1
