"""What a forecaster must beat: the seasonal-naive forecast, and the season it repeats."""

from __future__ import annotations

import numpy as np

__all__ = ["seasonal_naive", "detect_period"]


def seasonal_naive(history, horizon, period=None):
    """Repeat the last season: ``f[h] = history[T - m + (h mod m)]`` for ``h = 0..horizon-1``.

    Args:
        history: (T,) series.
        horizon: number of steps to forecast.
        period: season length ``m``; None or 1 gives the naive forecast (the last value).

    Returns:
        (horizon,) float64 forecast.

    Example:
        >>> seasonal_naive([1, 2, 3, 4], 3, period=2)
        array([3., 4., 3.])
    """
    h = np.asarray(history, dtype=np.float64).reshape(-1)
    m = 1 if not period else int(period)
    if m > len(h):
        raise ValueError(f"seasonal_naive needs at least one season ({m} values) of history, "
                         f"got {len(h)}.")
    last = h[len(h) - m:]
    return last[np.arange(int(horizon)) % m].copy()


def detect_period(series, max_period=None, threshold=0.3):
    """Guess the seasonal period of a series from its autocorrelation.

    The series is log-transformed when positive and first-differenced (to remove the trend);
    the lag ``2 <= m <= max_period`` with the largest autocorrelation is returned when that
    autocorrelation exceeds ``threshold``, else None.

    Args:
        series: (T,) values.
        max_period: largest lag considered (default ``T // 3``).
        threshold: minimum autocorrelation for a season to count.

    Returns:
        int or None.
    """
    z = np.asarray(series, dtype=np.float64).reshape(-1)
    z = z[np.isfinite(z)]
    if len(z) < 8:
        return None
    if np.all(z > 0):
        z = np.log(z)
    d = np.diff(z)
    d = d - d.mean()
    var = float(np.dot(d, d))
    if var == 0:
        return None
    top = min(len(d) // 2, max_period or len(z) // 3)
    if top < 2:
        return None
    acf = np.array([np.dot(d[:-k], d[k:]) / var for k in range(2, top + 1)])
    best = int(np.argmax(acf))
    return best + 2 if acf[best] > threshold else None
