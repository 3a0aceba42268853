"""``rnnkit evaluate MODEL --data PATH``: score a saved model on data and print the metrics."""

from __future__ import annotations

import argparse

import numpy as np

from ._common import (
    CLIError,
    Output,
    fmt,
    load_pipeline,
    load_sequences,
    load_series_for,
    load_text,
    parse_data_spec,
)


def register(subparsers):
    """Add the ``evaluate`` subcommand."""
    p = subparsers.add_parser(
        "evaluate", help="score a saved model on data (the built-in test split or a file)",
        description="Load a model saved by `rnnkit train` and report its metrics on data of "
        "its task: classify/regress read a labelled .ts file (or the built-in test split); "
        "forecast reads a .csv series, forecasts its last --horizon points from the points "
        "before them and compares with a seasonal-naive forecast; lm reads a .txt file and "
        "reports nats/char beside the unigram baseline.",
        epilog="examples:\n  rnnkit evaluate rnnkit_model.rnnkit\n"
        "  rnnkit evaluate clf.rnnkit --data test.ts --json\n"
        "  rnnkit evaluate air.rnnkit --data builtin:airline",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file written by `rnnkit train`")
    p.add_argument("--data", metavar="SPEC", help="data to score: a file or builtin:NAME "
                   "(default: the test split recorded in the model at train time — the "
                   "--test file, the built-in test split or the held-out share; the output "
                   "says which)")
    p.add_argument("--json", action="store_true",
                   help="print one machine-readable JSON line with the metrics under 'test'")
    p.set_defaults(func=run)
    return p


def _recorded_split(pipe):
    """The test split recorded by ``rnnkit train`` (``info["test_split"]``), or None."""
    split = pipe.info.get("test_split")
    return split if isinstance(split, dict) and split.get("data") else None


def evaluate_pipeline(pipe, spec, split=None):
    """Metrics of ``pipe`` on the data ``spec``: (metrics dict, description of the data).

    Args:
        pipe: a task pipeline.
        spec: data spec (builtin:NAME or a path) given by the user; None to score the test
            split the model recorded at train time (``split``).
        split: ``pipe.info["test_split"]`` when ``spec`` is None.
    """
    task = pipe.task
    if spec is None:
        spec = split["data"]
    kind, _ = parse_data_spec(spec)
    csv_opts = (split or {}).get("csv") or pipe.info.get("csv")
    if task in ("classify", "regress"):
        loaded = load_sequences(spec, task, csv_options=csv_opts)
        if len(loaded) == 4:
            x, y = loaded[2], loaded[3]
            where = f"{spec} (test split)"
        else:
            x, y = loaded
            where = spec
            if split is not None and split.get("kind") == "holdout":
                from ..tasks._sequence import stratified_split

                groups = np.unique(y, return_inverse=True)[1] if task == "classify" else \
                    np.zeros(len(y), dtype=np.int64)
                _, te = stratified_split(groups, split["fraction"], split["seed"])
                x, y = [x[i] for i in te], np.asarray(y)[te]
                where = (f"the test split recorded at training: {split['fraction']:.0%} "
                         f"stratified hold-out (seed {split['seed']}) of {spec}")
            elif split is not None:
                where = f"the test file recorded at training: {spec}"
        if y is None:
            raise CLIError(f"--data {spec}: the file has no labels to score against; use "
                           "`rnnkit predict` for unlabelled data.")
        if task == "regress":
            y = np.asarray(y, dtype=np.float64)
        return pipe.evaluate(x, y), where
    if task == "forecast":
        values, _, _ = load_series_for(pipe, spec)
        H = pipe.horizon
        if split is not None and split.get("kind") == "file":
            # the recorded test file continues the training series: forecast from its end
            res = pipe.evaluate(values[:, pipe.target_column])
            return res, (f"the test file recorded at training: {spec}, forecast from the end "
                         "of the training series")
        if len(values) < pipe.context_length + H:
            raise CLIError(f"--data {spec}: {len(values)} steps; scoring needs the model's "
                           f"context of {pipe.context_length} steps plus {H} to forecast.")
        res = pipe.evaluate(values[-H:, pipe.target_column], history=values[:-H])
        return res, f"last {H} steps of {spec}, forecast from the steps before them"
    text = load_text(spec)
    if kind == "builtin" or (split is not None and split.get("kind") == "tail_fraction"):
        frac = (split or {}).get("fraction", 0.1)
        text = text[int(len(text) * (1 - frac)):]
        where = f"last {frac:.0%} of {spec}"
    else:
        where = spec
    return pipe.evaluate(text), where


def run(args) -> int:
    """Run ``rnnkit evaluate``; returns the exit status."""
    out = Output(json_mode=args.json)
    pipe = load_pipeline(args.model)
    split = None
    if args.data is None:
        split = _recorded_split(pipe)
        if split is None:
            if not pipe.info.get("data"):
                raise CLIError("the model records neither its test split nor its training "
                               "data; pass --data PATH.")
            if not str(pipe.info["data"]).startswith("builtin:"):   # built-ins: test split
                out.say(f"note: {args.model} records no test split (it was saved by an older "
                        f"rnnkit or outside `rnnkit train`); scoring its training data "
                        f"{pipe.info['data']} — pass --data to choose.")
            split = {"data": pipe.info["data"]}
    metrics, where = evaluate_pipeline(pipe, args.data, split)
    record = {"task": pipe.task, "model": args.model, "data": where}
    if pipe.task == "forecast":
        record["baseline"] = metrics.pop("baseline")
        metrics.pop("steps", None)
    if pipe.task == "lm":
        record["baseline"] = {"unigram_loss": metrics.pop("baseline_unigram")}
    record["test"] = metrics
    out.say(f"{args.model} ({pipe.task}) on {where}:")
    rows = list(metrics.items()) + [(f"baseline {k}", val)
                                    for k, val in (record.get("baseline") or {}).items()]
    width = max(len(k) for k, _ in rows) + 2
    for k, val in rows:
        out.say(f"  {k:<{width}}{fmt(val)}")
    out.result(record)
    return 0
