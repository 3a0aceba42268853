"""Compiled loops for :class:`rnnkit.cells.GRUCell` with zoneout (the cell without it keeps
:mod:`.gru`).

Zoneout needs ``training`` in the step, which takes the cell off the projected path
(:meth:`GRUCell.projected_path`), so this kernel implements the ``forward_steps`` contract of
:mod:`rnnkit.kernels`: the raw input (T, B, F) in, ``X @ kernel + b_in`` for all steps as one
product, the time loop compiled (rows split across rnnkit's threads, per-step products as
direct OpenBLAS calls), then ``dkernel``, ``drecurrent_kernel`` and ``dX`` as products over
all T*B rows. Both ``reset_after`` variants, activation tanh, recurrent activation sigmoid,
float32 and float64, masks and recurrent dropout. Equations: :mod:`rnnkit.cells.gru` and
:mod:`rnnkit.cells._zoneout`; masks: :mod:`._zoneout`. tests/test_kernels_options.py holds
every path equal to the generic loop over the cell's step.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..cells import GRUCell
from . import _blas, _zoneout
from . import threads as _threads
from ._loops import DTYPES, JIT, opt, recurrent_grad, run
from ._loops import add_row as _add_row
from ._loops import copy as _copy
from ._loops import dropped as _dropped
from ._loops import fill as _fill
from ._math import consts_like as _consts_like
from ._math import sigmoid as _sigmoid
from ._math import tanh as _tanh


@njit(**JIT)
def _after_fwd(xw, hbuf, U, b_rec, mask, rmask, zm, zr, gates, rec, hu, hp, b0, b1):
    """reset_after: hbuf (T+1, B, H) with h_0 at [0]; gates (T, B, 3H) the activated z, r,
    hh; rec (T, B, H) the recurrent term h' U_h + b'_h of the candidate."""
    K = _consts_like(xw)
    T, B, G = xw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_b = mask.shape[0] > 0, rmask.shape[0] > 0, b_rec.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _blas.gemm(0, 0, n, G, H, K[0], hp, b0 * H, H, U, 0, G, zero, hu, b0 * G, G)
        else:
            _blas.gemm(0, 0, n, G, H, K[0], hbuf, t * B * H + b0 * H, H, U, 0, G, zero, hu,
                       b0 * G, G)
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
            _zoneout.apply(hn, hprev, zm, t, b, zr)


@njit(**JIT)
def _after_bwd(hbuf, gates, rec, UT, mask, rmask, zm, zr, dhs, dh, dxw, dzrec, dzone, dtmp,
               b0, b1):
    """BPTT of :func:`_after_fwd`; dh (B, H): in dL/dh_T, out dL/dh_0; dxw (T, B, 3H)
    dL/d(x W + b); dzrec (T, B, 3H) dL/d(h' U + b')."""
    K = _consts_like(hbuf)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dx, dr, dzb = dh[b], dxw[t, b], dzrec[t, b], dzone[b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dx, zero)
                _fill(dr, zero)
                continue
            _zoneout.split(d, d, dzb, zm, t, b, zr)   # d <- dL/dh~ (d read before written)
            g, hprev, rc = gates[t, b], hbuf[t, b], rec[t, b]
            for j in range(H):                                   # h~ = z*h_prev + (1-z)*hh
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
        _blas.gemm(0, 0, n, H, G, K[0], dzrec, t * B * G + b0 * G, G, UT, 0, H, zero, dtmp,
                   b0 * H, H)
        _finish_step(dtmp, dh, dzone, mask, t, rmask, has_mask, has_r, b0, b1)


@njit(**JIT)
def _finish_step(dtmp, dh, dzone, mask, t, rmask, has_mask, has_r, b0, b1):
    """dh = (dh + dtmp * rmask) + dzone on the rows b0:b1 not masked at step t (the order of
    the reference's ``dh * z + drop(dhp, rmask) + dh_zone``)."""
    H = dh.shape[1]
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            continue                                     # masked: dh carried unchanged
        src, dst, zb = dtmp[b], dh[b], dzone[b]
        if has_r:
            r = rmask[b]
            for j in range(H):
                dst[j] = dst[j] + src[j] * r[j]
        else:
            for j in range(H):
                dst[j] = dst[j] + src[j]
        for j in range(H):
            dst[j] = dst[j] + zb[j]


@njit(**JIT)
def _before_fwd(xw, hbuf, U, mask, rmask, zm, zr, gates, rec, hu, hp, b0, b1):
    """reset_after=False: rec (T, B, H) keeps r * h' (it multiplies U_h)."""
    K = _consts_like(xw)
    T, B, G = xw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
        else:
            for b in range(b0, b1):
                _copy(hbuf[t, b], hp[b])
        _blas.gemm(0, 0, n, 2 * H, H, K[0], hp, b0 * H, H, U, 0, G, zero, hu, b0 * G, G)
        for b in range(b0, b1):
            x, u, g, rc, h1 = xw[t, b], hu[b], gates[t, b], rec[t, b], hp[b]
            for j in range(2 * H):
                g[j] = _sigmoid(x[j] + u[j], K)                    # z, r
            for j in range(H):
                rc[j] = g[H + j] * h1[j]                           # (r * h') multiplies U_h
        _blas.gemm(0, 0, n, H, H, K[0], rec, t * B * H + b0 * H, H, U, 2 * H, G, zero, hu,
                   2 * H + b0 * G, G)
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
            _zoneout.apply(hn, hprev, zm, t, b, zr)


@njit(**JIT)
def _before_bwd(hbuf, gates, UT, mask, rmask, zm, zr, dhs, dh, dxw, drec, dzone, dtmp, b0, b1):
    """BPTT of :func:`_before_fwd`; dxw (T, B, 3H) dL/d(x W + b)."""
    K = _consts_like(hbuf)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dx = dh[b], dxw[t, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dx, zero)
                continue
            _zoneout.split(d, d, dzone[b], zm, t, b, zr)
            g, hprev = gates[t, b], hbuf[t, b]
            for j in range(H):                                   # h~ = z*h_prev + (1-z)*hh
                z, hh = g[j], g[2 * H + j]
                dx[2 * H + j] = (d[j] * (K[0] - z)) * (K[0] - hh * hh)
            for j in range(H):
                z, hh = g[j], g[2 * H + j]
                dx[j] = (d[j] * (hprev[j] - hh)) * (z * (K[0] - z))
            for j in range(H):
                d[j] = d[j] * g[j]
        # drec = dzh @ U_h^T: the gradient reaching (r * h')
        _blas.gemm(0, 0, n, H, H, K[0], dxw, t * B * G + 2 * H + b0 * G, G, UT, 2 * H * H, H,
                   zero, drec, b0 * H, H)
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
        _blas.gemm(0, 0, n, H, 2 * H, K[0], dxw, t * B * G + b0 * G, G, UT, 0, H, zero, dtmp,
                   b0 * H, H)
        for b in range(b0, b1):
            if has_mask and not mask[t, b]:
                continue
            g, dr, dt_ = gates[t, b], drec[b], dtmp[b]
            for j in range(H):
                dt_[j] = dt_[j] + dr[j] * g[H + j]
        _finish_step(dtmp, dh, dzone, mask, t, rmask, has_mask, has_r, b0, b1)


def supports(cell, dtype) -> bool:
    """Exactly a GRUCell with tanh / sigmoid and zoneout on, in float32 / float64."""
    return type(cell) is GRUCell and cell.activation.name == "tanh" and \
        cell.recurrent_activation.name == "sigmoid" and np.dtype(dtype) in DTYPES and \
        bool(cell.zoneout)


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Compiled :func:`rnnkit.kernels.reference.forward_steps` for this cell.

    Args:
        cell: a built GRUCell (:func:`supports`).
        xs: (T, B, F) inputs in processing order.
        states0: ``[h_0 (B, H)]``.
        mask: (T, B) bool or None (a masked step carries h).
        rmask: (B, H) scaled recurrent-dropout mask or None.
        ws: unused (the buffers are this call's own).
        training: zoneout draws fresh masks when True, else uses its expectation.

    Returns:
        ys (T, B, H) (a view of the state buffer), ``[h_T]``, cache for :func:`backward`.
    """
    dt = xs.dtype
    T, B, F = xs.shape
    H = cell.units
    G = 3 * H
    W = np.ascontiguousarray(cell.params["kernel"], dt)
    U = np.ascontiguousarray(cell.params["recurrent_kernel"], dt)
    xs = np.ascontiguousarray(xs)
    xw = _threads.matmul(xs.reshape(T * B, F), W).reshape(T, B, G)       # (T, B, 3H)
    b_in, b_rec = cell.split_bias()
    if b_in is not None:
        xw += np.asarray(b_in, dt)
    hbuf = np.empty((T + 1, B, H), dt)
    hbuf[0] = states0[0]
    gates = np.empty((T, B, G), dt)
    rec = np.empty((T, B, H), dt)
    zm, zr = _zoneout.masks(cell, (T, B, H), dt, training)
    m, rm = opt(mask, np.bool_, 2), opt(rmask, dt, 2)
    hu = np.empty((B, G), dt)
    if cell.reset_after:
        hp = np.empty((B, H) if rmask is not None else (0, 0), dt)
        run(_after_fwd, B, H * G, T, xw, hbuf, U, opt(b_rec, dt, 1), m, rm, zm, zr, gates,
            rec, hu, hp)
    else:
        run(_before_fwd, B, H * G, T, xw, hbuf, U, m, rm, zm, zr, gates, rec, hu,
            np.empty((B, H), dt))
    cache = (xs, xw, hbuf, gates, rec, zm, zr, m, rm)
    return hbuf[1:], [hbuf[T].copy()], cache


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`.

    Args:
        cache: from :func:`forward` (its own mask and recurrent-dropout mask are used).
        dys: (T, B, H) dL/dy_t or None; dstates: ``[dL/dh_T]`` (entry may be None).
        mask, rmask, ws: as in the forward call (accepted for the contract).
        input_grad: False skips dL/dx (returned as None).

    Returns:
        dxs (T, B, F) or None; ``[dh_0 (B, H)]``; dparams in ``cell.param_names`` order.
    """
    xs, dxw, hbuf, gates, rec, zm, zr, m, rm = cache      # dxw reuses the X @ W buffer
    dt = hbuf.dtype
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    G = 3 * H
    U = np.ascontiguousarray(cell.params["recurrent_kernel"], dt)
    UT = np.ascontiguousarray(U.T)                                            # (3H, H)
    d = np.zeros((B, H), dt) if dstates[0] is None else np.array(dstates[0], dt, order="C")
    dzone = np.empty((B, H), dt)
    dtmp = np.empty((B, H), dt)
    dys_ = opt(dys, dt, 3)
    rmask_ = rm if rm.shape[0] > 0 else None
    dz2 = dxw.reshape(T * B, G)
    if cell.reset_after:
        dzrec = np.empty((T, B, G), dt)
        run(_after_bwd, B, H * G, T, hbuf, gates, rec, UT, m, rm, zm, zr, dys_, d, dxw,
            dzrec, dzone, dtmp)
        dU = recurrent_grad(hbuf, rmask_, dzrec)
        db_rec = None if cell.split_bias()[1] is None else dzrec.reshape(T * B, G).sum(axis=0)
    else:
        run(_before_bwd, B, H * G, T, hbuf, gates, UT, m, rm, zm, zr, dys_, d, dxw,
            np.empty((B, H), dt), dzone, dtmp)
        # U_z, U_r multiply h'; U_h multiplies (r * h'), kept in ``rec``
        hprev = hbuf[:-1] if rmask_ is None else hbuf[:-1] * rm
        dU = np.empty((H, G), dt)
        _threads.matmul(hprev.reshape(T * B, H).T, dz2[:, :2 * H], out=dU[:, :2 * H])
        _threads.matmul(rec.reshape(T * B, H).T, dz2[:, 2 * H:], out=dU[:, 2 * H:])
        db_rec = None
    dW = _threads.matmul(xs.reshape(T * B, -1).T, dz2)
    db_in = None if cell.split_bias()[0] is None else dz2.sum(axis=0)
    dparams = cell.collect_grads(dW, db_in, dU, db_rec)
    if not input_grad:
        return None, [d], dparams
    WT = np.ascontiguousarray(np.asarray(cell.params["kernel"], dt).T)          # (3H, F)
    return _threads.matmul(dz2, WT).reshape(T, B, -1), [d], dparams
