"""Compiled scans for :class:`~rnnkit.cells.MinGRUCell` and :class:`~rnnkit.cells.MinLSTMCell`.

Both cells are ``h_t = a_t * h_{t-1} + b_t`` with ``a_t, b_t`` functions of ``x_t`` alone, so a
training step is: one product ``K = X @ kernel + bias`` for all T*B rows, one pass of the
scan over time (each row of the batch independent: the rows are split across rnnkit's threads,
and each thread's loop over units vectorizes), one reverse pass for the gradients (another
linear scan, ``g_{t-1} = a_t * g_t + dL/dh_{t-1}``), and two products for ``dX`` and
``dkernel``. No per-step matrix product at all, which is what makes these cells several times
faster than an LSTM of the same width.

Forward stores only ``h_t`` (the output); backward recomputes the gates from ``K`` (storing
them instead, written into ``K`` by the forward loop, measured slower: the extra store
keeps that loop from vectorizing).
Kernel contract: :mod:`rnnkit.kernels` (whole-sequence kernels of a non-projected cell).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..cells.minrnn import MinGRUCell, MinLSTMCell
from . import _scan
from ._math import consts_like
from ._math import sigmoid as _sigK

_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)


def supports(cell, dtype) -> bool:
    """Exactly MinGRUCell / MinLSTMCell, float32 or float64."""
    return type(cell) in (MinGRUCell, MinLSTMCell) and _scan.float_dtype(dtype)


@njit(**_JIT)
def _mingru_fwd(K, h0, mask, Hs, r0, r1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                continue
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            for j in range(H):
                z = _sigK(kz[j], KK)
                s = _sigK(kh[j], KK)
                ht = kh[j] + half if kh[j] >= 0 else s
                ho[j] = hp[j] + z * (ht - hp[j])


@njit(**_JIT)
def _mingru_bwd(K, Hs, h0, dY, mask, dK, g, r0, r1):
    """g (B, H): in dL/dh_T, out dL/dh_0. dY empty = no per-step output gradient."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        for t in range(T - 1, -1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            if domask and not mask[t, b]:
                dK[t, b, :] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            dz = dK[t, b, :H]
            dh = dK[t, b, H:]
            for j in range(H):
                z = _sigK(kz[j], KK)
                s = _sigK(kh[j], KK)
                pos = kh[j] >= 0
                ht = kh[j] + half if pos else s
                gd = one if pos else s * (one - s)
                gj = gb[j]
                dz[j] = gj * (ht - hp[j]) * z * (one - z)
                dh[j] = gj * z * gd
                gb[j] = gj * (one - z)


@njit(**_JIT)
def _minlstm_fwd(K, h0, mask, Hs, r0, r1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                continue
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            for j in range(H):
                si = _sigK(ki[j], KK)
                sf = _sigK(kf[j], KK)
                fp = sf / (sf + si)
                s = _sigK(kh[j], KK)
                ht = kh[j] + half if kh[j] >= 0 else s
                ho[j] = ht + fp * (hp[j] - ht)


@njit(**_JIT)
def _minlstm_bwd(K, Hs, h0, dY, mask, dK, g, r0, r1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        for t in range(T - 1, -1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            if domask and not mask[t, b]:
                dK[t, b, :] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            di = dK[t, b, :H]
            df = dK[t, b, H:2 * H]
            dh = dK[t, b, 2 * H:]
            for j in range(H):
                si = _sigK(ki[j], KK)
                sf = _sigK(kf[j], KK)
                s = sf + si
                fp = sf / s
                q = _sigK(kh[j], KK)
                pos = kh[j] >= 0
                ht = kh[j] + half if pos else q
                gd = one if pos else q * (one - q)
                gj = gb[j]
                w = gj * (hp[j] - ht) / (s * s)
                di[j] = -w * sf * si * (one - si)
                df[j] = w * si * sf * (one - sf)
                dh[j] = gj * (one - fp) * gd
                gb[j] = gj * fp



@njit(**_PAR_JIT)
def _mingru_fwd_par(K, h0, mask, Hs, edges):
    for i in prange(edges.shape[0] - 1):
        _mingru_fwd(K, h0, mask, Hs, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _mingru_bwd_par(K, Hs, h0, dY, mask, dK, g, edges):
    for i in prange(edges.shape[0] - 1):
        _mingru_bwd(K, Hs, h0, dY, mask, dK, g, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _minlstm_fwd_par(K, h0, mask, Hs, edges):
    for i in prange(edges.shape[0] - 1):
        _minlstm_fwd(K, h0, mask, Hs, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _minlstm_bwd_par(K, Hs, h0, dY, mask, dK, g, edges):
    for i in prange(edges.shape[0] - 1):
        _minlstm_bwd(K, Hs, h0, dY, mask, dK, g, edges[i], edges[i + 1])


_LOOPS = {MinGRUCell: (_mingru_fwd, _mingru_fwd_par, _mingru_bwd, _mingru_bwd_par),
          MinLSTMCell: (_minlstm_fwd, _minlstm_fwd_par, _minlstm_bwd, _minlstm_bwd_par)}


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Run the cell over xs (T, B, F); returns ``(hs (T, B, H), [h_T], cache)``."""
    fwd, fwd_par = _LOOPS[type(cell)][:2]
    T, B, _ = xs.shape
    dt = xs.dtype
    K = _scan.project(xs, cell.params["kernel"])                # (T, B, G): x W
    if cell.use_bias:
        K += cell.params["bias"]
    h0 = np.ascontiguousarray(states0[0], dt)
    m = _scan.mask_arg(mask)
    Hs = np.empty((T, B, cell.units), dt)
    _scan.run(fwd, fwd_par, B, K, h0, m, Hs)
    return Hs, [Hs[-1].copy()], (xs, K, Hs, h0, m)


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`; returns ``(dxs (T, B, F) or None when not input_grad,
    [dh_0], [dkernel, dbias])``."""
    bwd, bwd_par = _LOOPS[type(cell)][2:]
    xs, K, Hs, h0, m = cache
    dt = K.dtype
    g = _scan.state_grad(dstates[0], h0)
    dY = _scan.seq_grad(dys, dt)
    dK = np.empty_like(K)
    _scan.run(bwd, bwd_par, h0.shape[0], K, Hs, h0, dY, m, dK, g)
    dxs, dparams = _scan.project_backward(xs, dK, cell.params["kernel"], cell.use_bias,
                                          input_grad)
    return dxs, [g], dparams

