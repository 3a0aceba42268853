"""Zoneout inside the compiled loops (:mod:`.lstm_options`, :mod:`.gru_zoneout`).

The equations are :mod:`rnnkit.cells._zoneout`'s. In training the masks of all T steps are
drawn before the loop in ONE call, ``rng.random((T, B, n)) < rate``: NumPy's generators fill
an array from one stream in C order, so this is the very stream (and the very masks) of the
generic loop's T calls ``rng.random((B, n))``, one per step (tests/test_kernels_options.py
holds the two equal with a seeded cell). Inference uses the expectation ``rate``.

The masks stay bool (T, B, n): ``m * x`` with m in {0, 1} is ``x`` or ``0``, so a select
gives the bits of the reference's float product.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _backend
from ._loops import HELPER_JIT
from ._math import consts_like as _consts_like
from ._math import wide_vectors as _wide_vectors


def none():
    """``(zm, zr)`` meaning "no zoneout" for the loops that serve both: ``(None, None)``.

    A loop calls the helpers below only when ``zm is not None``, a branch numba removes
    when it compiles the loop for ``None``: without zoneout neither the helpers nor their
    calls are compiled (~1 s of a cold ``rnnkit train``)."""
    return None, None


@njit(**HELPER_JIT)
def add_carry(dh, dzone, mask, t, zm, zr, b0, b1):
    """``dh += dzone`` on the unmasked rows b0:b1 (the part of dL/dh_{t-1} that zoneout
    carried straight from h_t)."""
    _wide_vectors()
    has_mask = mask.shape[0] > 0
    n = dh.shape[1]
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            continue
        dst, zb = dh[b], dzone[b]
        for j in range(n):
            dst[j] = dst[j] + zb[j]


def masks(cell, shape, dtype, training):
    """``(zm, zr)`` for a loop over ``shape`` = (T, B, n) states of ``cell`` (zoneout on).

    Returns:
        zm: (T, B, n) bool keep-previous masks (training), else an empty (0, 0, 0) array;
        zr: (2,) ``[rate, 1 - rate]`` in ``dtype`` (inference), else an empty (0,) array.
        ``1 - rate`` is rounded from the Python float, as the reference's ``dh * (1 - m)``.
    """
    if training:
        rng = cell.zoneout_rng or _backend.rng()
        return rng.random(shape) < cell.zoneout, np.empty(0, dtype)
    rate = cell.zoneout
    return np.zeros((0, 0, 0), np.bool_), np.array([rate, 1 - rate], dtype)


@njit(**HELPER_JIT)
def apply(h, hprev, zm, t, b, zr):
    """``h += m * (hprev - h)`` in place on one row (h: (n,) the new state h~_t, becoming
    h_t); m is ``zm[t, b]`` (training) or ``zr[0]`` (inference)."""
    _wide_vectors()
    n = h.shape[0]
    if zm.shape[0] > 0:
        z = zm[t, b]
        for j in range(n):
            h[j] = h[j] + (hprev[j] - h[j]) if z[j] else h[j]
    else:
        m = zr[0]
        for j in range(n):
            h[j] = h[j] + m * (hprev[j] - h[j])


@njit(**HELPER_JIT)
def split(d, dnew, dprev, zm, t, b, zr):
    """The backward of :func:`apply` on one row: ``dnew = d * (1 - m)`` (to h~_t) and
    ``dprev = d * m`` (straight to h_{t-1}). ``dnew`` may be ``d`` itself (dprev is
    written first)."""
    _wide_vectors()
    n = d.shape[0]
    K = _consts_like(d)
    zero = K[0] - K[0]
    if zm.shape[0] > 0:
        z = zm[t, b]
        for j in range(n):
            dprev[j] = d[j] if z[j] else zero
        for j in range(n):
            dnew[j] = zero if z[j] else d[j]
    else:
        m, om = zr[0], zr[1]
        for j in range(n):
            dprev[j] = d[j] * m
        for j in range(n):
            dnew[j] = d[j] * om
