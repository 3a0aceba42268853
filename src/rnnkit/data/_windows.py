"""Turning one long time series into supervised (window -> horizon) examples."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from ._validation import check_int

__all__ = ["make_windows", "train_test_split_last"]


def _as_series(series: ArrayLike) -> np.ndarray:
    """Return ``series`` as a numeric ``(T, C)`` array (1-D input gets ``C = 1``)."""
    arr = np.asarray(series)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"`series` must have shape (T,) or (T, C), got an array of shape {arr.shape}; "
            "pass a single series (use one call per series for a batch)."
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(
            f"`series` must be numeric, got dtype {arr.dtype}; convert it with "
            "np.asarray(series, dtype=np.float32)."
        )
    return arr.reshape(len(arr), 1) if arr.ndim == 1 else arr


def make_windows(
    series: ArrayLike,
    window: int,
    horizon: int,
    stride: int = 1,
    target_column: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into input windows and the values that follow them.

    Example ``i`` starts at ``s = i * stride``: its input is
    ``series[s : s + window]`` (all channels) and its target is the next
    ``horizon`` values of the target channel,
    ``series[s + window : s + window + horizon, target_column]``.

    Parameters
    ----------
    series : array-like, shape (T,) or (T, C)
        One time series, time first. A 1-D series is treated as ``C = 1``.
    window : int
        Number of input time steps per example (>= 1).
    horizon : int
        Number of future values to predict per example (>= 1).
    stride : int, default 1
        Step between the start of consecutive windows (>= 1).
    target_column : int, default 0
        Channel whose future values form the target; negative values count
        from the end as in Python indexing.

    Returns
    -------
    X : numpy.ndarray, shape (N, window, C)
        Input windows, ``N = (T - window - horizon) // stride + 1``.
    Y : numpy.ndarray, shape (N, horizon)
        Targets. Both outputs are new arrays (not views of ``series``) with
        the series' dtype, so integer token ids stay integers.

    Raises
    ------
    ValueError
        If ``series`` is not 1-D or 2-D, is shorter than ``window + horizon``,
        or ``target_column`` is out of range.

    Examples
    --------
    >>> X, Y = make_windows(np.arange(6.0), window=3, horizon=1)
    >>> X[:, :, 0]
    array([[0., 1., 2.],
           [1., 2., 3.],
           [2., 3., 4.]])
    >>> Y
    array([[3.],
           [4.],
           [5.]])
    """
    data = _as_series(series)
    window = check_int(window, "window", minimum=1)
    horizon = check_int(horizon, "horizon", minimum=1)
    stride = check_int(stride, "stride", minimum=1)
    T, C = data.shape
    if isinstance(target_column, bool) or not isinstance(target_column, numbers.Integral):
        raise TypeError(f"`target_column` must be an integer channel index, got {target_column!r}.")
    if not -C <= target_column < C:
        raise ValueError(
            f"`target_column` {target_column} is out of range for a series with {C} "
            f"channel(s); use an index in [{-C}, {C - 1}]."
        )
    span = window + horizon
    if T < span:
        raise ValueError(
            f"the series has {T} time steps, but window={window} + horizon={horizon} needs "
            f"at least {span}; use a longer series or a smaller window/horizon."
        )

    n = (T - span) // stride + 1
    starts = np.arange(n) * stride
    x_index = starts[:, None] + np.arange(window)
    y_index = starts[:, None] + window + np.arange(horizon)
    return data[x_index], data[y_index, target_column]


def train_test_split_last(series: ArrayLike, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a series chronologically: the last ``horizon`` steps are the test set.

    Parameters
    ----------
    series : array-like, shape (T, ...)
        A time series with time on the first axis, e.g. ``(T,)`` or ``(T, C)``.
    horizon : int
        Number of final time steps to hold out (1 <= horizon < T).

    Returns
    -------
    train : numpy.ndarray, shape (T - horizon, ...)
        ``series[:-horizon]`` (a copy).
    test : numpy.ndarray, shape (horizon, ...)
        ``series[-horizon:]`` (a copy).

    Raises
    ------
    ValueError
        If ``series`` is 0-d or ``horizon`` leaves no training data.

    Examples
    --------
    >>> train, test = train_test_split_last(np.arange(10), horizon=3)
    >>> train, test
    (array([0, 1, 2, 3, 4, 5, 6]), array([7, 8, 9]))
    """
    arr = np.asarray(series)
    if arr.ndim == 0:
        raise ValueError(
            f"`series` must have a time axis, got the scalar {arr!r}; pass an array of shape "
            "(T,) or (T, C)."
        )
    horizon = check_int(horizon, "horizon", minimum=1)
    if horizon >= len(arr):
        raise ValueError(
            f"horizon={horizon} leaves no training data in a series of {len(arr)} time steps; "
            f"use a horizon below {len(arr)}."
        )
    return arr[:-horizon].copy(), arr[-horizon:].copy()
