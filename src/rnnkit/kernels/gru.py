"""Compiled GRU kernels (registered for exactly :class:`rnnkit.cells.GRUCell`).

Serves activation tanh and recurrent activation sigmoid, both ``reset_after`` variants,
float32 and float64 (cache-free inference: ``reset_after=True`` only). The equations are the
cell's (:mod:`rnnkit.cells.gru`); tests/test_kernels.py holds every path equal to the
generic loop over that cell. Contract: :mod:`rnnkit.kernels` (module docstring).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..cells import GRUCell
from . import _packed, _zoneout
from . import threads as _threads
from ._loops import (
    DTYPES,
    JIT,
    opt,
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
from ._loops import rec_grad as _rec_grad
from ._math import consts_like as _consts_like
from ._math import sigmoid as _sigmoid
from ._math import tanh as _tanh
from ._math import wide_vectors as _wide_vectors
from ._packed import product as _product


@njit(**JIT)
def _gru_after_fwd(xw, hbuf, U, P, b_rec, mask, rmask, zm, zr, gates, rec, hu, hp, b0, b1):
    """reset_after; ``zm``, ``zr``: zoneout (:mod:`._zoneout`; both None: no zoneout, and
    numba compiles none of it)."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_b = mask.shape[0] > 0, rmask.shape[0] > 0, b_rec.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _product(n, G, H, hp, b0 * H, H, U, 0, G, P, hu, b0 * G, G, False, tile)
        else:
            _product(n, G, H, hbuf, t * B * H + b0 * H, H, U, 0, G, P, hu, b0 * G, G, False,
                     tile)
        for b in range(b0, b1):
            hprev, hn, rc = hbuf[t, b], hbuf[t + 1, b], rec[t, b]
            if has_mask and not mask[t, b]:
                _copy(hprev, hn)
                _fill(rc, zero)
                continue
            x, u, g = xw[t, b], hu[b], gates[t, b]
            if has_b:
                for j in range(G):
                    u[j] += b_rec[j]                               # h'U + b'
            for j in range(2 * H):
                g[j] = _sigmoid(x[j] + u[j], K)                    # z, r
            for j in range(H):
                rc[j] = u[2 * H + j]
            for j in range(H):
                g[2 * H + j] = _tanh(x[2 * H + j] + g[H + j] * rc[j], K)
            for j in range(H):
                z = g[j]
                hn[j] = z * hprev[j] + (K[0] - z) * g[2 * H + j]
            if zm is not None:                  # pruned at compile time without zoneout
                _zoneout.apply(hn, hprev, zm, t, b, zr)


@njit(**JIT)
def _gru_after_bwd(hbuf, gates, rec, UT, PT, mask, rmask, zm, zr, dhs, dh, dxw, dzrec, dzone,
                   dtmp, b0, b1):
    """BPTT of :func:`_gru_after_fwd`; dzone (B, H) scratch for zoneout's carried part."""
    _wide_vectors()
    K = _consts_like(hbuf)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dx, dr = dh[b], dxw[t, b], dzrec[t, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dx, zero)
                _fill(dr, zero)
                continue
            if zm is not None:                           # d <- dL/dh~ (zoneout only)
                _zoneout.split(d, d, dzone[b], zm, t, b, zr)
            g, hprev, rc = gates[t, b], hbuf[t, b], rec[t, b]
            for j in range(H):                                   # h = z*h_prev + (1-z)*hh
                z, hh = g[j], g[2 * H + j]
                dx[2 * H + j] = (d[j] * (K[0] - z)) * (K[0] - hh * hh)
            for j in range(H):
                z, hh = g[j], g[2 * H + j]
                dx[j] = (d[j] * (hprev[j] - hh)) * (z * (K[0] - z))
            for j in range(H):                                   # zh = xw_h + r*(h'U_h + b'_h)
                r = g[H + j]
                dx[H + j] = (dx[2 * H + j] * rc[j]) * (r * (K[0] - r))
            for j in range(2 * H):
                dr[j] = dx[j]
            for j in range(H):
                dr[2 * H + j] = dx[2 * H + j] * g[H + j]
            for j in range(H):
                d[j] = d[j] * g[j]
        _product(n, H, G, dzrec, t * B * G + b0 * G, G, UT, 0, H, PT, dtmp, b0 * H, H, False,
                 tile)
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, True, b0, b1)
        if zm is not None:
            _zoneout.add_carry(dh, dzone, mask, t, zm, zr, b0, b1)


@njit(**JIT)
def _gru_before_fwd(xw, hbuf, U, Pzr, Ph, mask, rmask, zm, zr, gates, rec, hu, hp, b0, b1):
    """reset_after=False: rec (T, B, H) keeps r * h' (it multiplies U_h); zoneout as in
    :func:`_gru_after_fwd`."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
        else:
            for b in range(b0, b1):
                _copy(hbuf[t, b], hp[b])
        _product(n, 2 * H, H, hp, b0 * H, H, U, 0, G, Pzr, hu, b0 * G, G, False, tile)
        for b in range(b0, b1):
            x, u, g, rc, h1 = xw[t, b], hu[b], gates[t, b], rec[t, b], hp[b]
            for j in range(2 * H):
                g[j] = _sigmoid(x[j] + u[j], K)                    # z, r
            for j in range(H):
                rc[j] = g[H + j] * h1[j]                           # (r * h') multiplies U_h
        _product(n, H, H, rec, t * B * H + b0 * H, H, U, 2 * H, G, Ph, hu, 2 * H + b0 * G, G,
                 False, tile)
        for b in range(b0, b1):
            hprev, hn = hbuf[t, b], hbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(hprev, hn)
                continue
            x, u, g = xw[t, b], hu[b], gates[t, b]
            for j in range(H):
                g[2 * H + j] = _tanh(x[2 * H + j] + u[2 * H + j], K)
            for j in range(H):
                z = g[j]
                hn[j] = z * hprev[j] + (K[0] - z) * g[2 * H + j]
            if zm is not None:                  # pruned at compile time without zoneout
                _zoneout.apply(hn, hprev, zm, t, b, zr)


@njit(**JIT)
def _gru_before_bwd(hbuf, gates, UT, PTzr, PTh, mask, rmask, zm, zr, dhs, dh, dxw, drec, dzone,
                    dtmp, b0, b1):
    """BPTT of :func:`_gru_before_fwd`."""
    _wide_vectors()
    K = _consts_like(hbuf)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dx = dh[b], dxw[t, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dx, zero)
                continue
            if zm is not None:                           # d <- dL/dh~ (zoneout only)
                _zoneout.split(d, d, dzone[b], zm, t, b, zr)
            g, hprev = gates[t, b], hbuf[t, b]
            for j in range(H):                                   # h = z*h_prev + (1-z)*hh
                z, hh = g[j], g[2 * H + j]
                dx[2 * H + j] = (d[j] * (K[0] - z)) * (K[0] - hh * hh)
            for j in range(H):
                z, hh = g[j], g[2 * H + j]
                dx[j] = (d[j] * (hprev[j] - hh)) * (z * (K[0] - z))
            for j in range(H):
                d[j] = d[j] * g[j]
        # drec = dzh @ U_h^T: the gradient reaching (r * h')
        _product(n, H, H, dxw, t * B * G + 2 * H + b0 * G, G, UT, 2 * H * H, H, PTh, drec,
                 b0 * H, H, False, tile)
        for b in range(b0, b1):
            dx = dxw[t, b]
            if has_mask and not mask[t, b]:
                continue
            g, hprev, dr = gates[t, b], hbuf[t, b], drec[b]
            if has_r:
                rm = rmask[b]
                for j in range(H):
                    r = g[H + j]
                    dx[H + j] = (dr[j] * (hprev[j] * rm[j])) * (r * (K[0] - r))
            else:
                for j in range(H):
                    r = g[H + j]
                    dx[H + j] = (dr[j] * hprev[j]) * (r * (K[0] - r))
        # dh' = [dzz, dzr] @ U_zr^T + drec * r
        _product(n, H, 2 * H, dxw, t * B * G + b0 * G, G, UT, 0, H, PTzr, dtmp, b0 * H, H, False,
                 tile)
        for b in range(b0, b1):
            if has_mask and not mask[t, b]:
                continue
            g, dr, dt_ = gates[t, b], drec[b], dtmp[b]
            for j in range(H):
                dt_[j] = dt_[j] + dr[j] * g[H + j]
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, True, b0, b1)
        if zm is not None:
            _zoneout.add_carry(dh, dzone, mask, t, zm, zr, b0, b1)


@njit(**JIT)
def _gru_after_infer(x, W, PW, U, P, bias, b_rec, h, z, hu, mask, out, backwards, b0, b1):
    """reset_after GRU; ``z`` (B, G) takes x_t @ W + b, ``hu`` (B, G) h @ U + b_rec."""
    _wide_vectors()
    K = _consts_like(x)
    B, T, F = x.shape
    H, G = U.shape
    n = b1 - b0
    has_mask, has_b, has_rb = mask.shape[0] > 0, bias.shape[0] > 0, b_rec.shape[0] > 0
    has_out = out.shape[0] > 0
    tile = np.empty((n, _packed.NR), np.float32)
    for s in range(T):
        t = T - 1 - s if backwards else s
        _product(n, G, F, x, b0 * T * F + t * F, T * F, W, 0, G, PW, z, b0 * G, G, False, tile)
        _product(n, G, H, h, b0 * H, H, U, 0, G, P, hu, b0 * G, G, False, tile)
        for b in range(b0, b1):
            if not (has_mask and not mask[t, b]):
                g, u, hr = z[b], hu[b], h[b]
                if has_b:
                    for j in range(G):
                        g[j] += bias[j]
                if has_rb:
                    for j in range(G):
                        u[j] += b_rec[j]
                for j in range(2 * H):
                    g[j] = _sigmoid(g[j] + u[j], K)                     # z, r
                for j in range(H):
                    g[2 * H + j] = _tanh(g[2 * H + j] + g[H + j] * u[2 * H + j], K)
                for j in range(H):
                    zz = g[j]
                    hr[j] = zz * hr[j] + (K[0] - zz) * g[2 * H + j]
            _emit(h, out, s, b, has_out)


def supports(cell, dtype) -> bool:
    """Exactly a GRUCell with tanh / sigmoid and no zoneout, in float32 / float64."""
    return type(cell) is GRUCell and cell.activation.name == "tanh" and \
        cell.recurrent_activation.name == "sigmoid" and np.dtype(dtype) in DTYPES and \
        cell.projected_path()


def forward(cell, xw, states0, mask=None, rmask=None, ws=None):
    """Compiled :func:`rnnkit.kernels.reference.forward` for this cell."""
    xw, U, m, rm, hp, hbuf = prepare_forward(xw, states0, cell.params["recurrent_kernel"],
                                             mask, rmask, ws)
    T, B, G = xw.shape
    H = U.shape[0]
    dt = xw.dtype
    gates = _threads.buffer(ws, "gates", (T, B, G), dt)
    rec = _threads.buffer(ws, "rec", (T, B, H), dt)
    run_loops(cell, xw, hbuf, U, m, rm, *_zoneout.none(), gates, rec, hp)
    return hbuf[1:], [hbuf[T].copy()], (hbuf, gates, rec)


def run_loops(cell, xw, hbuf, U, m, rm, zm, zr, gates, rec, hp):
    """The forward loop of either variant over ``xw`` (T, B, 3H), h_0 in ``hbuf[0]``;
    shared by :func:`forward` and the zoneout kernel (:mod:`.gru_zoneout`; ``zm``, ``zr``
    from :func:`._zoneout.masks`, or :func:`._zoneout.none`)."""
    T, B, G = xw.shape
    H = G // 3
    dt = xw.dtype
    hu = np.empty((B, G), dt)
    if cell.reset_after:
        run(_gru_after_fwd, B, H * G, T, xw, hbuf, U, _packed.for_call(U, dt),
            opt(cell.split_bias()[1], dt, 1), m, rm, zm, zr, gates, rec, hu, hp)
    else:
        run(_gru_before_fwd, B, H * G, T, xw, hbuf, U, _packed.for_call(U[:, :2 * H], dt),
            _packed.for_call(U[:, 2 * H:], dt), m, rm, zm, zr, gates, rec, hu,
            np.empty((B, H), dt))


def backward(cell, cache, dhs, dstates, mask=None, rmask=None, ws=None):
    """Compiled :func:`rnnkit.kernels.reference.backward` for this cell."""
    hbuf, gates, rec = cache
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    G = 3 * H
    dt = hbuf.dtype
    UT, m, rm, d, dst, dxw, dtmp = prepare_backward(hbuf, cell.params["recurrent_kernel"],
                                                    dhs, dstates, mask, rmask, ws)
    dzrec = _threads.buffer(ws, "dzrec", (T, B, G), dt) if cell.reset_after else None
    dU, db_rec = run_backward_loops(cell, hbuf, gates, rec, UT, m, rm, *_zoneout.none(),
                                    d, dst[0], dxw, dzrec, dtmp)
    return dxw, dst, dU, db_rec


def run_backward_loops(cell, hbuf, gates, rec, UT, m, rm, zm, zr, dhs, dh, dxw, dzrec, dtmp):
    """BPTT loop of either variant (see :func:`run_loops`): dh (B, H) in dL/dh_T, out
    dL/dh_0; dxw (T, B, 3H) receives dL/d(x W + b); dzrec (T, B, 3H) scratch (reset_after;
    else None). Returns ``(dU, db_rec or None)``."""
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    G = 3 * H
    dt = hbuf.dtype
    dzone = np.empty((B, H), dt)
    rmask = rm if rm.shape[0] > 0 else None
    if cell.reset_after:
        run(_gru_after_bwd, B, H * G, T, hbuf, gates, rec, UT, _packed.for_call(UT, dt), m, rm,
            zm, zr, dhs, dh, dxw, dzrec, dzone, dtmp)
        dU = recurrent_grad(hbuf, rmask, dzrec)
        db_rec = None if cell.split_bias()[1] is None else dzrec.reshape(T * B, G).sum(axis=0)
        return dU, db_rec
    run(_gru_before_bwd, B, H * G, T, hbuf, gates, UT, _packed.for_call(UT[:2 * H], dt),
        _packed.for_call(UT[2 * H:], dt), m, rm, zm, zr, dhs, dh, dxw, np.empty((B, H), dt),
        dzone, dtmp)
    # U_z, U_r multiply h'; U_h multiplies (r * h'), kept in ``rec``
    hprev = hbuf[:-1] if rmask is None else hbuf[:-1] * rm
    dz2 = dxw.reshape(T * B, G)
    dU = np.empty((H, G), dt)
    _threads.matmul(hprev.reshape(T * B, H).T, dz2[:, :2 * H], out=dU[:, :2 * H])
    _threads.matmul(rec.reshape(T * B, H).T, dz2[:, 2 * H:], out=dU[:, 2 * H:])
    return dU, None


def infer(cell, x, states0, mask=None, go_backwards=False, return_sequences=True):
    """Cache-free inference (``reset_after=True``; None for the other variant, which then
    runs :func:`forward`): x (B, T, F) -> ``(out (B, T, H) or None, final states)``."""
    if not cell.reset_after:
        return None
    x, W, U, bias, b_rec, states, m = prepare_infer(cell, x, states0, mask)
    B, T, F = x.shape
    H, G = U.shape
    out = np.empty((B, T, H) if return_sequences else (0, 0, 0), x.dtype)
    z = np.empty((B, G), x.dtype)
    rows = B if T > 1 else 0
    PW, P = _packed.for_call(W, x.dtype, rows), _packed.for_call(U, x.dtype, rows)
    run(_gru_after_infer, B, H * G + G * F, T, x, W, PW, U, P, bias, b_rec,
        states[0], z, np.empty((B, G), x.dtype), m, out, go_backwards)
    return (out if return_sequences else None), states
