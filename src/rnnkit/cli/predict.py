"""``rnnkit predict MODEL --data PATH [--out FILE]``: predictions as CSV or JSON."""

from __future__ import annotations

import argparse

import numpy as np

from ._common import (
    Output,
    load_pipeline,
    load_sequences,
    load_series_for,
    load_text,
    write_table,
)


def register(subparsers):
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser(
        "predict", help="predict with a saved model; write CSV or JSON",
        description="Predictions of a model saved by `rnnkit train`. classify: the label "
        "(your own labels) and class probabilities of every sequence in a .ts file; regress: "
        "the predicted values; forecast: the next --horizon values after the end of a .csv "
        "series; lm: the most likely next characters after a .txt file's text. Without --out "
        "the table is printed as CSV.",
        epilog="examples:\n  rnnkit predict clf.rnnkit --data new.ts --out preds.csv\n"
        "  rnnkit predict air.rnnkit --data builtin:airline --out forecast.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file written by `rnnkit train`")
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="input data: a .ts / .csv / .txt file or builtin:NAME")
    p.add_argument("--out", metavar="FILE", help="write predictions to FILE.csv or FILE.json "
                   "(default: CSV on stdout)")
    p.add_argument("--top", type=int, default=10, metavar="K",
                   help="lm: how many next-character candidates to list (default: 10)")
    p.add_argument("--json", action="store_true",
                   help="print one machine-readable JSON line on stdout: task, model, data "
                   "and the predictions as a list of objects (the CSV table's rows)")
    p.set_defaults(func=run)
    return p


def future_dates(dates, horizon):
    """Dates of the ``horizon`` steps after ``dates`` when they are evenly spaced.

    Understands ``YYYY-MM`` (monthly) and ISO dates ``YYYY-MM-DD`` spaced by a constant number
    of days; returns None for anything else.
    """
    import datetime as dt

    if not dates or len(dates) < 2:
        return None
    a, b = dates[-2], dates[-1]
    try:
        if len(b) == 7 and b[4] == "-":
            ya, ma = int(a[:4]), int(a[5:7])
            yb, mb = int(b[:4]), int(b[5:7])
            step = (yb * 12 + mb) - (ya * 12 + ma)
            if step <= 0:
                return None
            out = []
            for h in range(1, horizon + 1):
                n = yb * 12 + (mb - 1) + step * h
                out.append(f"{n // 12:04d}-{n % 12 + 1:02d}")
            return out
        da, db = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
    except (ValueError, IndexError):
        return None
    step = db - da
    if step.days <= 0:
        return None
    return [(db + step * h).isoformat() for h in range(1, horizon + 1)]


def prediction_table(pipe, spec, top=10):
    """``(header, rows)`` of predictions of ``pipe`` on ``spec``."""
    task = pipe.task
    if task in ("classify", "regress"):
        loaded = load_sequences(spec, task, csv_options=pipe.info.get("csv"),
                                unlabelled_ok=True)
        x = loaded[2] if len(loaded) == 4 else loaded[0]
        if task == "classify":
            proba = pipe.predict_proba(x)
            labels = np.asarray(pipe.classes_, dtype=object)[proba.argmax(-1)]
            header = ["index", "label"] + [f"p_{c}" for c in pipe.classes_]
            rows = [[i, labels[i]] + [round(float(p), 6) for p in proba[i]]
                    for i in range(len(x))]
        else:
            pred = pipe.predict(x)
            header = ["index"] + [f"prediction_{k}" for k in range(pred.shape[1])]
            rows = [[i] + [float(v) for v in pred[i]] for i in range(len(x))]
        return header, rows
    if task == "forecast":
        values, _, dates = load_series_for(pipe, spec)
        fc = pipe.forecast(values)
        future = future_dates(dates, len(fc))
        header = ["step", "forecast"] + (["date"] if future else [])
        rows = [[h + 1, float(fc[h])] + ([future[h]] if future else []) for h in range(len(fc))]
        return header, rows
    text = load_text(spec)
    probs = pipe.next_char_probs(text)
    best = sorted(probs.items(), key=lambda kv: -kv[1])[:max(1, top)]
    return ["rank", "char", "probability"], [[i + 1, c, round(p, 6)]
                                            for i, (c, p) in enumerate(best)]


def _quiet_stdout():
    """The reader of our stdout went away (``rnnkit predict ... | head``): send whatever is
    still buffered to /dev/null so that Python's exit flush does not complain."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(args) -> int:
    """Run ``rnnkit predict``; returns the exit status."""
    import sys

    pipe = load_pipeline(args.model)
    header, rows = prediction_table(pipe, args.data, args.top)
    try:
        if args.json and not args.out:
            Output(json_mode=True).result({
                "task": pipe.task, "model": args.model, "data": args.data,
                "predictions": [dict(zip(header, r)) for r in rows]})
        else:
            write_table(args.out, header, rows)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    if args.out:
        print(f"wrote {len(rows)} prediction row(s) to {args.out}", file=sys.stderr)
        if args.json:
            Output(json_mode=True).result({"task": pipe.task, "model": args.model,
                                           "data": args.data, "out": args.out,
                                           "rows": len(rows)})
    return 0
