"""Forecast accuracy: MAE, RMSE, MAPE and sMAPE (MAPE and sMAPE as fractions, not percent)."""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "rmse", "mape", "smape", "forecast_metrics"]


def _pair(actual, forecast):
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    f = np.asarray(forecast, dtype=np.float64).reshape(-1)
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast must have the same length, got {a.size} and "
                         f"{f.size}.")
    if a.size == 0:
        raise ValueError("actual and forecast are empty; nothing to score.")
    return a, f


def mae(actual, forecast):
    """Mean absolute error ``mean(|a - f|)``."""
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(a - f)))


def rmse(actual, forecast):
    """Root mean squared error ``sqrt(mean((a - f)^2))``."""
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2)))


def mape(actual, forecast):
    """Mean absolute percentage error as a fraction: ``mean(|a - f| / |a|)`` (0.05 = 5 %).

    Raises:
        ValueError: an actual value is 0 (MAPE is undefined there; use sMAPE or MAE).
    """
    a, f = _pair(actual, forecast)
    if np.any(a == 0):
        raise ValueError("MAPE is undefined when an actual value is 0; use smape or mae.")
    return float(np.mean(np.abs(a - f) / np.abs(a)))


def smape(actual, forecast):
    """Symmetric MAPE as a fraction in [0, 2]: ``mean(2 |a - f| / (|a| + |f|))`` (0/0 = 0)."""
    a, f = _pair(actual, forecast)
    den = np.abs(a) + np.abs(f)
    ratio = np.divide(2.0 * np.abs(a - f), den, out=np.zeros_like(den), where=den > 0)
    return float(np.mean(ratio))


def forecast_metrics(actual, forecast):
    """``{"mae", "rmse", "mape", "smape"}`` of a forecast (``mape`` None if undefined)."""
    out = {"mae": mae(actual, forecast), "rmse": rmse(actual, forecast)}
    try:
        out["mape"] = mape(actual, forecast)
    except ValueError:
        out["mape"] = None
    out["smape"] = smape(actual, forecast)
    return out
