"""``rnnkit experiment adding``: SimpleRNN vs LSTM vs GRU on the adding problem.
``rnnkit experiment long-memory``: every recurrent cell on the long-memory tasks.

``adding`` reproduces the tutorial's claim (gated cells carry a signal across long sequences,
a plain RNN does not) with test MSE against the 0.167 baseline and the gradient-flow curves
that explain it (:func:`rnnkit.diagnostics.run_adding_experiment`). ``long-memory`` trains
each cell of :data:`rnnkit.diagnostics._longmemory.CELLS` on the adding problem (T = 100, 500,
1000), copy memory (delay 100, 500), selective copying, sequential digits and MNIST-1D and
writes a results table (:func:`rnnkit.diagnostics.run_long_memory`).
"""

from __future__ import annotations

import sys

from ._common import number_arg

QUICK = dict(T=[20], units=8, epochs=2, steps=10, n_test=100, probe_samples=64)
FULL = dict(T=[50, 100, 200], units=32, epochs=30, steps=100, n_test=1000, probe_samples=256)


def register(subparsers):
    """Add the ``experiment`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "experiment", help="run a built-in experiment (adding: SimpleRNN vs LSTM vs GRU)",
        description="Run a built-in experiment. 'adding' trains SimpleRNN, LSTM and GRU on the "
                    "adding problem for several sequence lengths and reports the test MSE "
                    "against the 0.167 baseline with the gradient-flow curves.")
    from rnnkit.diagnostics._longmemory import CELLS, TASKS
    p.add_argument("name", choices=["adding", "long-memory"], help="the experiment to run")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=None, metavar="TASK",
                   help="long-memory: tasks to run (default all: " + " ".join(TASKS) + ")")
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=None, metavar="CELL",
                   help="long-memory: cells to compare (default all: " + " ".join(CELLS) + ")")
    p.add_argument("--train-samples", type=number_arg("train_samples"), default=None,
                   help="long-memory: training sequences per task (default 512; 64 with "
                        "--quick)")
    p.add_argument("--T", type=number_arg("T"), nargs="+", default=None,
                   help=f"sequence lengths (default {' '.join(map(str, FULL['T']))}; "
                        f"{QUICK['T'][0]} with --quick)")
    p.add_argument("--epochs", type=number_arg("epochs"), default=None,
                   help=f"training epochs per model (default {FULL['epochs']}; "
                        f"{QUICK['epochs']} with --quick)")
    p.add_argument("--steps", type=number_arg("steps"), default=None,
                   help=f"gradient updates per epoch (default {FULL['steps']}; "
                        f"{QUICK['steps']} with --quick); the training set holds "
                        "steps * batch-size sequences")
    p.add_argument("--units", type=number_arg("units"), default=None,
                   help=f"hidden units (default {FULL['units']}; {QUICK['units']} with --quick)")
    p.add_argument("--batch-size", type=number_arg("batch_size"), default=64, help="batch size (default 64)")
    p.add_argument("--lr", type=number_arg("lr"), default=1e-2, help="Adam learning rate (default 1e-2)")
    p.add_argument("--clipnorm", type=number_arg("clipnorm"), default=1.0,
                   help="per-weight gradient clipping norm (default 1.0)")
    p.add_argument("--test-samples", type=number_arg("test_samples"), default=None,
                   help=f"test sequences (default {FULL['n_test']}; {QUICK['n_test']} with "
                        "--quick)")
    p.add_argument("--seed", type=number_arg("seed"), default=0, help="seed for data and weights (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny run for smoke tests (a few seconds)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="adding: folder for adding_results.{json,md}, adding_gradient_flow.png "
                        "and adding_training.png (default ./adding_experiment); long-memory: "
                        "folder for long_memory.{json,md} (default ./long_memory)")
    p.set_defaults(func=run)
    return p


def _run_long_memory(args) -> int:
    from rnnkit.diagnostics import run_long_memory
    from rnnkit.diagnostics._longmemory import CELLS, TASKS
    q = args.quick
    settings = dict(units=args.units or (8 if q else 32), epochs=args.epochs or (1 if q else 4),
                    train_samples=args.train_samples or (64 if q else 512),
                    test_samples=args.test_samples or (32 if q else 256))
    for k, v in settings.items():
        if v < 1:
            print(f"rnnkit experiment: error: --{k.replace('_', '-')} must be a positive "
                  f"integer, got {v}.", file=sys.stderr)
            return 2
    if not (args.lr > 0 and args.clipnorm > 0):
        print(f"rnnkit experiment: error: --lr and --clipnorm must be positive, got "
              f"{args.lr} and {args.clipnorm}.", file=sys.stderr)
        return 2
    tasks = args.tasks or (["adding100", "digits"] if q else list(TASKS))
    cells = args.cells or (["LSTM", "MinGRU"] if q else list(CELLS))
    res = run_long_memory(tasks=tasks, cells=cells, units=settings["units"],
                          epochs=settings["epochs"], n_train=settings["train_samples"],
                          n_test=settings["test_samples"], batch_size=args.batch_size,
                          learning_rate=args.lr, clipnorm=args.clipnorm, seed=args.seed,
                          out_dir=args.out or "long_memory", verbose=1)
    print()
    print(res.table())
    return 0


def run(args) -> int:
    """Run ``rnnkit experiment``; returns the exit code (0 ok, 2 bad arguments)."""
    from rnnkit.diagnostics import run_adding_experiment

    if args.name == "long-memory":
        return _run_long_memory(args)
    if args.out is None:
        args.out = "adding_experiment"

    base = QUICK if args.quick else FULL

    def pick(value, key):
        return base[key] if value is None else value

    T = pick(args.T, "T")
    settings = dict(epochs=pick(args.epochs, "epochs"), steps=pick(args.steps, "steps"),
                    units=pick(args.units, "units"), batch_size=args.batch_size,
                    test_samples=pick(args.test_samples, "n_test"))
    for k, v in settings.items():
        if v < 1:
            print(f"rnnkit experiment: error: --{k.replace('_', '-')} must be a positive "
                  f"integer, got {v}.", file=sys.stderr)
            return 2
    if any(t < 2 for t in T):
        print(f"rnnkit experiment: error: --T values must be >= 2, got {T}.", file=sys.stderr)
        return 2
    if not (args.lr > 0 and args.clipnorm > 0):
        print(f"rnnkit experiment: error: --lr and --clipnorm must be positive, got "
              f"{args.lr} and {args.clipnorm}.", file=sys.stderr)
        return 2
    exp = run_adding_experiment(
        T_values=T, units=settings["units"], epochs=settings["epochs"],
        steps_per_epoch=settings["steps"], batch_size=settings["batch_size"],
        learning_rate=args.lr, clipnorm=args.clipnorm, n_test=settings["test_samples"],
        probe_samples=min(base["probe_samples"], settings["test_samples"]), seed=args.seed,
        out_dir=args.out, verbose=1)
    print()
    print(exp.table())
    print(f"\nTotal time {exp.config['total_seconds']:.0f} s. Wrote " + ", ".join(exp.files))
    return 0
