"""The sweep's trials table and report keys, shared by :mod:`.tune` and the live table."""

from __future__ import annotations

import math

FINAL = "rnnkit_final"      # key of a trial's last report (after its model was saved)


def _plain(v):
    """Ray and Optuna may hand numpy scalars; the train options want Python values."""
    return v.item() if hasattr(v, "item") else v


def format_table(rows, metric, mode, params):
    """Trials as a text table: trial, status, the searched settings, reports, metric.

    Args:
        rows: dicts with ``trial``, ``status``, ``epochs``, the metric and each param.
        metric, mode: the sweep's metric and 'min'/'max' (the best row is marked ``*``).
        params: names of the searched settings (columns).

    Returns:
        str, one line per trial under a header.
    """
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    finite = [r for r in rows if isinstance(r.get(metric), float) and math.isfinite(r[metric])
              and r.get("status") == "COMPLETED"]
    best = (min if mode == "min" else max)(finite, key=lambda r: r[metric]) if finite else None
    cols = ["trial", "status", *params, "epochs", metric]
    body = [[cell(r.get(c)) for c in cols] + (["*"] if r is best else [""]) for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cols)] + [line(b[:-1]) + (" " + b[-1] if b[-1] else "")
                                     for b in body])
