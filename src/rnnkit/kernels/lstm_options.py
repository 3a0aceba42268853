"""Compiled loops for :class:`rnnkit.cells.LSTMCell` with options: peepholes, a projection
(``proj_size``) and zoneout, alone or combined (the plain cell keeps :mod:`.lstm`).

The cell's options take it off the projected path (:meth:`LSTMCell.projected_path`), so this
kernel implements the ``forward_steps`` contract of :mod:`rnnkit.kernels`: it receives the raw
input (T, B, F), computes ``X @ kernel + bias`` for all steps as one product, runs the time
loop compiled (rows split across rnnkit's threads, the per-step ``h @ U`` and, with a
projection, ``(o * tanh(c)) @ P`` as direct OpenBLAS calls), and after backward gets
``dkernel``, ``drecurrent_kernel``, ``dprojection_kernel`` and ``dX`` as products over all
T*B rows. Equations: :mod:`rnnkit.cells.lstm` (module docstring); activation tanh, recurrent
activation sigmoid, float32 and float64, with masks and recurrent dropout. Zoneout masks:
:mod:`._zoneout` (the generic loop's stream). tests/test_kernels_options.py holds every
path equal to the generic loop over the cell's step.

Shapes: H units, P = proj_size or H (the size of ``h`` and of the output), G = 4H.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..cells import LSTMCell
from . import _blas, _scan, _zoneout
from . import threads as _threads
from ._loops import DTYPES, JIT, opt, recurrent_grad, run
from ._loops import add_row as _add_row
from ._loops import copy as _copy
from ._loops import dropped as _dropped
from ._loops import fill as _fill
from ._math import consts_like as _consts_like
from ._math import sigmoid as _sigmoid
from ._math import tanh as _tanh
from ._math import wide_vectors as _wide_vectors


@njit(**JIT)
def _fwd(xw, hbuf, cbuf, U, Pk, peep, mask, rmask, zm, zr, gates, hn, hp, b0, b1):
    """One block of rows b0:b1 over all T steps. hbuf (T+1, B, P) and cbuf (T+1, B, H) hold
    h_0, c_0 at [0]; gates (T, B, 4H) receives the activated i, f, g, o; hn (T, B, H) the
    unprojected o * tanh(c) (projection only; else empty and it goes straight to hbuf)."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    P = hbuf.shape[2]
    n = b1 - b0
    H = G // 4
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    has_proj, has_peep = Pk.shape[0] > 0, peep.shape[0] > 0
    has_zone = zm is not None          # None: numba compiles no zoneout code
    zero = K[0] - K[0]
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _blas.gemm(0, 0, n, G, P, K[0], hp, b0 * P, P, U, 0, G, zero, gates,
                       t * B * G + b0 * G, G)
        else:
            _blas.gemm(0, 0, n, G, P, K[0], hbuf, t * B * P + b0 * P, P, U, 0, G, zero, gates,
                       t * B * G + b0 * G, G)
        for b in range(b0, b1):
            cp, cn = cbuf[t, b], cbuf[t + 1, b]
            hv = hn[t, b] if has_proj else hbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(cp, cn)
                if has_proj:
                    _fill(hv, zero)            # keeps the row finite for dP = hn^T dh
                else:
                    _copy(hbuf[t, b], hv)
                continue
            x, g = xw[t, b], gates[t, b]                  # g: z, then activated gates
            if has_peep:
                pi, pf = peep[0], peep[1]
                for j in range(H):                                          # i reads c_{t-1}
                    g[j] = _sigmoid(x[j] + g[j] + pi[j] * cp[j], K)
                for j in range(H):                                          # f reads c_{t-1}
                    g[H + j] = _sigmoid(x[H + j] + g[H + j] + pf[j] * cp[j], K)
            else:
                for j in range(2 * H):
                    g[j] = _sigmoid(x[j] + g[j], K)                         # i, f
            for j in range(H):
                g[2 * H + j] = _tanh(x[2 * H + j] + g[2 * H + j], K)       # candidate
            for j in range(H):
                cn[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j]             # c = f*c' + i*g
            if has_peep:
                po = peep[2]
                for j in range(H):                                          # o reads c_t
                    g[3 * H + j] = _sigmoid(x[3 * H + j] + g[3 * H + j] + po[j] * cn[j], K)
            else:
                for j in range(H):
                    g[3 * H + j] = _sigmoid(x[3 * H + j] + g[3 * H + j], K)
            for j in range(H):
                hv[j] = g[3 * H + j] * _tanh(cn[j], K)
            if has_zone and not has_proj:
                _zoneout.apply(hv, hbuf[t, b], zm, t, b, zr)
        if has_proj:                                                        # h = hn @ P
            _blas.gemm(0, 0, n, P, H, K[0], hn, t * B * H + b0 * H, H, Pk, 0, P, zero, hbuf,
                       (t + 1) * B * P + b0 * P, P)
            for b in range(b0, b1):
                if has_mask and not mask[t, b]:
                    _copy(hbuf[t, b], hbuf[t + 1, b])
                elif has_zone:
                    _zoneout.apply(hbuf[t + 1, b], hbuf[t, b], zm, t, b, zr)


@njit(**JIT)
def _bwd(gates, cbuf, UT, PT, peep, mask, rmask, zm, zr, dhs, dh, dc, dz, dht, dhn, dzone,
         dtmp, pacc, b0, b1):
    """BPTT of :func:`_fwd` on rows b0:b1. dh (B, P), dc (B, H): in dL/d(final states), out
    dL/d(initial states). dz (T, B, 4H) receives dL/d(pre-activations); dht (T, B, P) with a
    projection (else (1, B, P) scratch) dL/d(h~_t) (before zoneout); pacc (B, 3H) the
    peephole gradients per row (peepholes only)."""
    _wide_vectors()
    K = _consts_like(gates)
    T, B, G = dz.shape
    P = dh.shape[1]
    n = b1 - b0
    H = G // 4
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    has_proj, has_peep = PT.shape[0] > 0, peep.shape[0] > 0
    has_zone = zm is not None          # None: numba compiles no zoneout code
    zero = K[0] - K[0]
    for t in range(T - 1, -1, -1):
        tt = t if has_proj else 0
        for b in range(b0, b1):
            d, dt_ = dh[b], dht[tt, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dt_, zero)
                continue
            if has_zone:                             # h = h~ + m (h' - h~)
                _zoneout.split(d, dt_, dzone[b], zm, t, b, zr)
            else:
                _copy(d, dt_)
        if has_proj:                                 # h~ = hn @ P: dhn = dh~ @ P^T
            _blas.gemm(0, 0, n, H, P, K[0], dht, t * B * P + b0 * P, P, PT, 0, H, zero, dhn,
                       b0 * H, H)
        for b in range(b0, b1):
            dzr = dz[t, b]
            if has_mask and not mask[t, b]:
                _fill(dzr, zero)
                continue
            dv = dhn[b] if has_proj else dht[0, b]
            g, cp, cn, dcr = gates[t, b], cbuf[t, b], cbuf[t + 1, b], dc[b]
            for j in range(H):                       # tanh(c_t), kept in dz's c-slot for now
                dzr[2 * H + j] = _tanh(cn[j], K)
            for j in range(H):                                   # hn = o * tanh(c)
                o = g[3 * H + j]
                dzr[3 * H + j] = (dv[j] * dzr[2 * H + j]) * (o * (K[0] - o))
            for j in range(H):
                ac = dzr[2 * H + j]
                dcr[j] = dcr[j] + (dv[j] * g[3 * H + j]) * (K[0] - ac * ac)
            if has_peep:                                         # o reads c_t
                po = peep[2]
                for j in range(H):
                    dcr[j] = dcr[j] + dzr[3 * H + j] * po[j]
            for j in range(H):                                   # c = f*c_prev + i*g
                i = g[j]
                dzr[j] = (dcr[j] * g[2 * H + j]) * (i * (K[0] - i))
            for j in range(H):
                f = g[H + j]
                dzr[H + j] = (dcr[j] * cp[j]) * (f * (K[0] - f))
            for j in range(H):
                gg = g[2 * H + j]
                dzr[2 * H + j] = (dcr[j] * g[j]) * (K[0] - gg * gg)
            if has_peep:                                         # i, f read c_{t-1}
                pi, pf, acc = peep[0], peep[1], pacc[b]
                for j in range(H):
                    dcr[j] = dcr[j] * g[H + j] + dzr[j] * pi[j] + dzr[H + j] * pf[j]
                for j in range(H):
                    acc[j] += dzr[j] * cp[j]
                for j in range(H):
                    acc[H + j] += dzr[H + j] * cp[j]
                for j in range(H):
                    acc[2 * H + j] += dzr[3 * H + j] * cn[j]
            else:
                for j in range(H):
                    dcr[j] = dcr[j] * g[H + j]
        _blas.gemm(0, 0, n, P, G, K[0], dz, t * B * G + b0 * G, G, UT, 0, P, zero, dtmp,
                   b0 * P, P)
        for b in range(b0, b1):
            if has_mask and not mask[t, b]:
                continue                                         # dh carried unchanged
            src, d = dtmp[b], dh[b]
            if has_r:                                            # z = ... + (h' * r) U
                r = rmask[b]
                for j in range(P):
                    d[j] = src[j] * r[j]
            else:
                for j in range(P):
                    d[j] = src[j]
            if has_zone:
                zb = dzone[b]
                for j in range(P):
                    d[j] = d[j] + zb[j]


def supports(cell, dtype) -> bool:
    """Exactly an LSTMCell with tanh / sigmoid and at least one option (peepholes, projection,
    zoneout), in float32 / float64."""
    return type(cell) is LSTMCell and cell.activation.name == "tanh" and \
        cell.recurrent_activation.name == "sigmoid" and np.dtype(dtype) in DTYPES and \
        not cell.projected_path()


def _weights(cell, dt):
    p = cell.params
    W = np.ascontiguousarray(p["kernel"], dt)
    U = np.ascontiguousarray(p["recurrent_kernel"], dt)
    Pk = opt(p["projection_kernel"] if cell.proj_size else None, dt, 2)
    peep = (np.ascontiguousarray(np.stack([p["input_peephole"], p["forget_peephole"],
                                           p["output_peephole"]]), dt)
            if cell.use_peepholes else np.empty((0, 0), dt))
    return W, U, Pk, peep


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Compiled :func:`rnnkit.kernels.reference.forward_steps` for this cell.

    Args:
        cell: a built LSTMCell (:func:`supports`).
        xs: (T, B, F) inputs in processing order.
        states0: ``[h_0 (B, P), c_0 (B, H)]``.
        mask: (T, B) bool or None (a masked step carries h and c).
        rmask: (B, P) scaled recurrent-dropout mask or None.
        ws: unused (the buffers are this call's own).
        training: zoneout draws fresh masks when True, else uses its expectation.

    Returns:
        ys (T, B, P) (a view of the state buffer), ``[h_T, c_T]``, cache for :func:`backward`.
    """
    dt = xs.dtype
    T, B, F = xs.shape
    H, G = cell.units, 4 * cell.units
    P = cell.proj_size or H
    W, U, Pk, peep = _weights(cell, dt)
    xs = np.ascontiguousarray(xs)
    xw = _scan.project(xs, W, ws)                                          # (T, B, 4H)
    b_in = cell.split_bias()[0]
    if b_in is not None:
        xw += np.asarray(b_in, dt)
    hbuf = np.empty((T + 1, B, P), dt)
    cbuf = np.empty((T + 1, B, H), dt)
    hbuf[0], cbuf[0] = states0[0], states0[1]
    gates = np.empty((T, B, G), dt)
    hn = np.empty((T, B, H) if cell.proj_size else (0, 0, 0), dt)
    if cell.zoneout:
        zm, zr = _zoneout.masks(cell, (T, B, P), dt, training)
    else:
        zm, zr = _zoneout.none()
    m, rm = opt(mask, np.bool_, 2), opt(rmask, dt, 2)
    hp = np.empty((B, P) if rmask is not None else (0, 0), dt)
    run(_fwd, B, P * G + H * (P if cell.proj_size else 0), T, xw, hbuf, cbuf, U, Pk, peep,
        m, rm, zm, zr, gates, hn, hp)
    cache = (xs, xw, hbuf, cbuf, gates, hn, zm, zr, m, rm)
    return hbuf[1:], [hbuf[T].copy(), cbuf[T].copy()], cache


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`.

    Args:
        cache: from :func:`forward` (its own mask and recurrent-dropout mask are used).
        dys: (T, B, P) dL/dy_t or None; dstates: ``[dL/dh_T, dL/dc_T]``, entries may be None.
        mask, rmask, ws: as in the forward call (accepted for the contract).
        input_grad: False skips dL/dx (returned as None).

    Returns:
        dxs (T, B, F) or None; ``[dh_0 (B, P), dc_0 (B, H)]``; dparams in
        ``cell.param_names`` order.
    """
    xs, dz, hbuf, cbuf, gates, hn, zm, zr, m, rm = cache     # dz reuses the X @ W buffer
    dt = hbuf.dtype
    T, B, P = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    H, G = cell.units, 4 * cell.units
    W, U, Pk, peep = _weights(cell, dt)
    UT = np.ascontiguousarray(U.T)                                            # (4H, P)
    PT = np.ascontiguousarray(Pk.T) if cell.proj_size else np.empty((0, 0), dt)
    d = [np.zeros(s, dt) if g is None else np.array(g, dtype=dt, order="C")
         for s, g in zip(((B, P), (B, H)), dstates)]
    proj, peeps, zone = bool(cell.proj_size), cell.use_peepholes, bool(cell.zoneout)
    dht = np.empty((T if proj else 1, B, P), dt)
    dhn = np.empty((B, H) if proj else (0, 0), dt)
    dzone = np.empty((B, P) if zone else (0, 0), dt)
    pacc = np.zeros((B, 3 * H) if peeps else (0, 0), dt)
    run(_bwd, B, P * G + H * (P if proj else 0), T, gates, cbuf, UT, PT, peep, m, rm, zm, zr,
        opt(dys, dt, 3), d[0], d[1], dz, dht, dhn, dzone, np.empty((B, P), dt), pacc)
    rmask_ = rm if rm.shape[0] > 0 else None
    dU = recurrent_grad(hbuf, rmask_, dz)                                     # (P, 4H)
    dz2 = dz.reshape(T * B, G)
    xs2 = xs.reshape(T * B, -1)
    dW = _threads.matmul(xs2.T, dz2)
    db = None if cell.split_bias()[0] is None else dz2.sum(axis=0)
    extra = {}
    if proj:                                                                  # h~ = hn P
        extra["projection_kernel"] = _threads.matmul(hn.reshape(T * B, H).T,
                                                     dht.reshape(T * B, P))
    if peeps:
        s = pacc.sum(axis=0)
        extra.update(input_peephole=s[:H], forget_peephole=s[H:2 * H],
                     output_peephole=s[2 * H:])
    dparams = cell.collect_grads(dW, db, dU, None, extra)
    dxs = _threads.matmul(dz2, np.ascontiguousarray(W.T)).reshape(T, B, -1) if input_grad \
        else None
    return dxs, d, dparams
