"""Series transforms of the forecaster: missing-value filling and (seasonal) differencing
with its exact inverse."""

from __future__ import annotations

import numpy as np


def _fill_missing(values):
    """Linear interpolation of NaN per channel; the nearest value at the ends."""
    out = values.astype(np.float64).copy()
    for c in range(out.shape[1]):
        col = out[:, c]
        bad = ~np.isfinite(col)
        if bad.all():
            raise ValueError(f"channel {c} has no finite value; cannot forecast it.")
        if bad.any():
            idx = np.arange(len(col))
            col[bad] = np.interp(idx[bad], idx[~bad], col[~bad])
    return out


def _difference(z, lags):
    """Apply each lag difference in turn; returns the differenced (T - sum(lags), C) array."""
    for lag in lags:
        z = z[lag:] - z[:-lag]
    return z


def _undifference(history, diffs, lags):
    """Integrate ``diffs`` (H, C), the continuation of ``_difference(history, lags)``.

    Args:
        history: (T, C) series before differencing (the context the diffs continue).
        diffs: (H, C) predicted values of the fully differenced series after ``history``.
        lags: the lags used by :func:`_difference`.

    Returns:
        (H, C) continuation of ``history``.
    """
    levels = [history]
    for lag in lags[:-1]:
        levels.append(levels[-1][lag:] - levels[-1][:-lag])
    cur = diffs
    for lag, base in zip(reversed(lags), reversed(levels)):
        ext = np.concatenate([base, np.zeros_like(cur)])
        n = len(base)
        for h in range(len(cur)):
            ext[n + h] = cur[h] + ext[n + h - lag]
        cur = ext[n:]
    return cur
