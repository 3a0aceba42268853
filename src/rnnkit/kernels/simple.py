"""Compiled SimpleRNN kernel (registered for exactly :class:`rnnkit.cells.SimpleRNNCell`).

Serves activation tanh or relu, float32 and float64; the equations are the cell's
(:mod:`rnnkit.cells.simple`), and tests/test_kernels.py holds this kernel equal to the
generic loop over that cell. Contract: :mod:`rnnkit.kernels` (module docstring).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..cells import SimpleRNNCell
from . import _packed
from ._loops import (
    DTYPES,
    JIT,
    prepare_backward,
    prepare_forward,
    prepare_infer,
    recurrent_grad,
    run,
)
from ._loops import add_row as _add_row
from ._loops import copy as _copy
from ._loops import dropped as _dropped
from ._loops import emit as _emit
from ._loops import fill as _fill
from ._loops import project as _project
from ._loops import rec_grad as _rec_grad
from ._math import consts_like as _consts_like
from ._math import tanh as _tanh
from ._math import wide_vectors as _wide_vectors
from ._packed import product as _product

_SIMPLE_ACT = {"tanh": 0, "relu": 1}


@njit(**JIT)
def _simple_fwd(xw, hbuf, U, P, mask, rmask, hp, act, b0, b1):
    _wide_vectors()
    K = _consts_like(xw)
    T, B, H = xw.shape
    n = b1 - b0
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _product(n, H, H, hp, b0 * H, H, U, 0, H, P, hbuf, (t + 1) * B * H + b0 * H, H,
                     False, tile)
        else:
            _product(n, H, H, hbuf, t * B * H + b0 * H, H, U, 0, H, P, hbuf,
                     (t + 1) * B * H + b0 * H, H, False, tile)
        for b in range(b0, b1):
            x, hn = xw[t, b], hbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(hbuf[t, b], hn)
            elif act == 0:
                for j in range(H):
                    hn[j] = _tanh(x[j] + hn[j], K)
            else:
                for j in range(H):
                    z = x[j] + hn[j]
                    hn[j] = z if z > zero else zero


@njit(**JIT)
def _simple_bwd(hbuf, UT, PT, mask, rmask, dhs, dh, dxw, dtmp, act, b0, b1):
    _wide_vectors()
    K = _consts_like(hbuf)
    T, B, H = dxw.shape
    n = b1 - b0
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dz, h = dh[b], dxw[t, b], hbuf[t + 1, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dz, zero)
            elif act == 0:
                for j in range(H):
                    dz[j] = d[j] * (K[0] - h[j] * h[j])                 # h = tanh(z)
            else:
                for j in range(H):
                    dz[j] = d[j] if h[j] > zero else zero              # h = relu(z)
        _product(n, H, H, dxw, t * B * H + b0 * H, H, UT, 0, H, PT, dtmp, b0 * H, H, False, tile)
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, False, b0, b1)

@njit(**JIT)
def _simple_infer(x, W, PW, U, P, bias, h, z, mask, out, act, backwards, b0, b1):
    _wide_vectors()
    K = _consts_like(x)
    B, T, F = x.shape
    H = h.shape[1]
    has_mask, has_b, has_out = mask.shape[0] > 0, bias.shape[0] > 0, out.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((b1 - b0, _packed.NR), np.float32)
    for s in range(T):
        t = T - 1 - s if backwards else s
        _project(x, W, PW, U, P, h, z, t, tile, b0, b1)
        for b in range(b0, b1):
            if not (has_mask and not mask[t, b]):
                g, hr = z[b], h[b]
                if has_b:
                    for j in range(H):
                        g[j] += bias[j]
                if act == 0:
                    for j in range(H):
                        hr[j] = _tanh(g[j], K)
                else:
                    for j in range(H):
                        hr[j] = g[j] if g[j] > zero else zero
            _emit(h, out, s, b, has_out)









def supports(cell, dtype) -> bool:
    """Exactly a SimpleRNNCell with activation tanh or relu, in float32 / float64."""
    return type(cell) is SimpleRNNCell and cell.activation.name in _SIMPLE_ACT and \
        np.dtype(dtype) in DTYPES


def forward(cell, xw, states0, mask=None, rmask=None, ws=None):
    """Compiled :func:`rnnkit.kernels.reference.forward` for this cell."""
    xw, U, m, rm, hp, hbuf = prepare_forward(xw, states0, cell.params["recurrent_kernel"],
                                             mask, rmask, ws)
    T, B, G = xw.shape
    H = U.shape[0]
    run(_simple_fwd, B, H * G, T, xw, hbuf, U, _packed.for_call(U, xw.dtype), m, rm, hp,
        _SIMPLE_ACT[cell.activation.name])
    return hbuf[1:], [hbuf[T].copy()], hbuf


def backward(cell, cache, dhs, dstates, mask=None, rmask=None, ws=None):
    """Compiled :func:`rnnkit.kernels.reference.backward` for this cell."""
    hbuf = cache
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    UT, m, rm, d, dst, dxw, dtmp = prepare_backward(hbuf, cell.params["recurrent_kernel"],
                                                    dhs, dstates, mask, rmask, ws)
    run(_simple_bwd, B, H * H, T, hbuf, UT, _packed.for_call(UT, UT.dtype), m, rm, d, dst[0],
        dxw, dtmp,
        _SIMPLE_ACT[cell.activation.name])
    return dxw, dst, recurrent_grad(hbuf, rmask, dxw), None


def infer(cell, x, states0, mask=None, go_backwards=False, return_sequences=True):
    """Cache-free inference: x (B, T, F) -> ``(out (B, T, H) or None, final states)``."""
    x, W, U, bias, _, states, m = prepare_infer(cell, x, states0, mask)
    B, T, F = x.shape
    H = U.shape[0]
    out = np.empty((B, T, H) if return_sequences else (0, 0, 0), x.dtype)
    z = np.empty((B, H), x.dtype)
    rows = B if T > 1 else 0
    PW, P = _packed.for_call(W, x.dtype, rows), _packed.for_call(U, x.dtype, rows)
    run(_simple_infer, B, H * H + H * F, T, x, W, PW, U, P, bias, states[0], z, m,
        out, _SIMPLE_ACT[cell.activation.name], go_backwards)
    return (out if return_sequences else None), states
