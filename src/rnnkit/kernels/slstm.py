"""Compiled training loop for :class:`~rnnkit.cells.sLSTMCell` (xLSTM's scalar-memory cell).

The equations are the cell's (:mod:`rnnkit.cells.slstm`, exponential input and forget gates
with the stabiliser ``m`` and normaliser ``n``, block-diagonal multi-head recurrence); the
backward pass is the cell's ``step_backward`` over time, gradient through ``m`` included.
tests/test_kernels_slstm.py holds every output and gradient equal to the generic loop.

Layout. The cell's pre-activation is gate-major (column ``g * H + k * d + j``). Here the
columns of ``kernel`` and ``bias`` are permuted once per call to head-major (``k * 4d + g *
d + j``), so the input product ``X @ kernel`` for all steps lands where head k's recurrent
product ``h_k @ R_k`` (a (rows, d) x (d, 4d) gemm, ``beta = 1``) accumulates into it: one
small BLAS call per head and step, no scatter. The gradients are permuted back at the end.

Per step and row the gate math runs in short loops over one head's ``d`` units. Forward
overwrites the pre-activations with what backward needs: slot i holds ``+e`` when ``m_t =
a_t`` (then ``f_t = 1`` and ``i_t = e``) and ``-e`` when ``m_t = i~_t`` (then ``i_t = 1``,
``f_t = e``), with ``e = exp(-|a_t - i~_t|)`` and ``a_t = log sigma(f~_t) + m_{t-1}``; slot f
holds ``sigma(-f~_t)`` (the derivative of ``log sigma``), slots z and o the activated gates.
``h``, ``c`` and ``n`` are kept for every step, ``m`` only as the running state.

Threads: batch rows are independent, so the time loop is split by rows (:func:`._loops.run`).
Recurrent dropout is not an option of this cell; an ``rmask`` passed anyway runs the
generic loop (and its backward).
Kernel contract: :mod:`rnnkit.kernels` (whole-sequence kernels of a non-projected cell).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..cells.slstm import sLSTMCell
from . import _blas, _scan, reference
from ._loops import JIT, run
from ._loops import add_row as _add_row
from ._loops import copy as _copy
from ._loops import fill as _fill
from ._loops import rec_grad as _rec_grad
from ._math import FASTMATH
from ._math import consts_like as _consts_like
from ._math import exp_neg as _exp_neg
from ._math import sigmoid as _sigmoid
from ._math import softplus as _softplus
from ._math import tanh as _tanh
from ._math import wide_vectors as _wide_vectors


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _log_sigmoid(x, K):
    """``log sigma(x) = -softplus(-x)``, as the cell's ``-logaddexp(0, -x)`` (vectorizes)."""
    return -_softplus(-x, K)


def supports(cell, dtype) -> bool:
    """Exactly :class:`~rnnkit.cells.sLSTMCell` (any ``num_heads``, with or without bias),
    float32 or float64."""
    return type(cell) is sLSTMCell and _scan.float_dtype(dtype)


def head_major(H, num_heads):
    """Column permutation ``idx`` (4H,) with ``W[:, idx]`` the head-major layout of a
    gate-major (F, 4H) ``W``: position ``k * 4d + g * d + j`` holds column ``g * H + k * d + j``."""
    d = H // num_heads
    return np.arange(4 * H).reshape(4, num_heads, d).transpose(1, 0, 2).reshape(-1)


@njit(**JIT)
def _fwd(Z, bias, R, hbuf, cbuf, nbuf, m, mask, b0, b1):
    """Z (T, B, 4H) head-major ``X @ kernel`` in, what backward needs out (module docstring);
    hbuf, cbuf, nbuf (T+1, B, H) with row 0 the initial states; m (B, H) the running
    stabiliser; R (K, d, 4d)."""
    _wide_vectors()
    KK = _consts_like(Z)
    T, B, G = Z.shape
    nh, d, d4 = R.shape
    H = G // 4
    n = b1 - b0
    has_mask = mask.shape[0] > 0
    one = KK[0]
    zero = one - one
    for t in range(T):
        for k in range(nh):       # Z[t, b0:b1, head k] += h_{t-1}[b0:b1, head k] @ R[k]
            _blas.gemm(0, 0, n, d4, d, one, hbuf, t * B * H + b0 * H + k * d, H,
                       R, k * d * d4, d4, one, Z, t * B * G + b0 * G + k * d4, G)
        for b in range(b0, b1):
            hp, hn = hbuf[t, b], hbuf[t + 1, b]
            cp, cn = cbuf[t, b], cbuf[t + 1, b]
            np_, nn = nbuf[t, b], nbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(hp, hn)
                _copy(cp, cn)
                _copy(np_, nn)
                continue
            zrow, mrow = Z[t, b], m[b]
            for k in range(nh):
                g = zrow[k * d4:(k + 1) * d4]          # [i | f | z | o] of head k
                bk = bias[k * d4:(k + 1) * d4]
                mk = mrow[k * d:(k + 1) * d]
                for j in range(d):
                    ir = g[j] + bk[j]
                    fr = g[d + j] + bk[d + j]
                    a = _log_sigmoid(fr, KK) + mk[j]
                    e = _exp_neg(-abs(a - ir), KK)
                    g[j] = e if a >= ir else -e
                    g[d + j] = _sigmoid(-fr, KK)
                    mk[j] = max(a, ir)
                for j in range(d):
                    g[2 * d + j] = _tanh(g[2 * d + j] + bk[2 * d + j], KK)
                for j in range(d):
                    g[3 * d + j] = _sigmoid(g[3 * d + j] + bk[3 * d + j], KK)
                cpk, cnk = cp[k * d:(k + 1) * d], cn[k * d:(k + 1) * d]
                for j in range(d):
                    s = g[j]
                    i = s if s > zero else one
                    f = one if s > zero else -s
                    cnk[j] = f * cpk[j] + i * g[2 * d + j]     # c = f c' + i z
                npk, nnk = np_[k * d:(k + 1) * d], nn[k * d:(k + 1) * d]
                for j in range(d):
                    s = g[j]
                    i = s if s > zero else one
                    f = one if s > zero else -s
                    nnk[j] = f * npk[j] + i                    # n = f n' + i
                hnk = hn[k * d:(k + 1) * d]
                for j in range(d):
                    hnk[j] = g[3 * d + j] * cnk[j] / nnk[j]      # h = o c / n


@njit(**JIT)
def _bwd(Z, RT, hbuf, cbuf, nbuf, mask, dys, dh, dc, dn, dm, dZ, dtmp, b0, b1):
    """BPTT of :func:`_fwd`: Z the kept gates, RT (K, 4d, d) per-head transposes; dh, dc,
    dn, dm (B, H) in: dL/d(final states), out: dL/d(initial states); dZ (T, B, 4H) out:
    dL/d(pre-activations), head-major."""
    _wide_vectors()
    KK = _consts_like(Z)
    T, B, G = Z.shape
    nh, d4, d = RT.shape
    H = G // 4
    n = b1 - b0
    has_mask, has_dys = mask.shape[0] > 0, dys.shape[0] > 0
    one = KK[0]
    zero = one - one
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            dhr = dh[b]
            _add_row(dhr, dys, t, b, has_dys)
            dzr = dZ[t, b]
            if has_mask and not mask[t, b]:
                _fill(dzr, zero)                    # masked: every state carried unchanged
                continue
            zrow = Z[t, b]
            cp, cn = cbuf[t, b], cbuf[t + 1, b]
            np_, nn = nbuf[t, b], nbuf[t + 1, b]
            dcr, dnr, dmr = dc[b], dn[b], dm[b]
            for k in range(nh):
                g = zrow[k * d4:(k + 1) * d4]
                dz = dzr[k * d4:(k + 1) * d4]
                hk = dhr[k * d:(k + 1) * d]
                cnk, nnk = cn[k * d:(k + 1) * d], nn[k * d:(k + 1) * d]
                for j in range(d):                      # h = o c / n
                    o = g[3 * d + j]
                    dz[3 * d + j] = (hk[j] * cnk[j] / nnk[j]) * (o * (one - o))
                dck, dnk = dcr[k * d:(k + 1) * d], dnr[k * d:(k + 1) * d]
                for j in range(d):
                    q = hk[j] * g[3 * d + j] / nnk[j]
                    dck[j] += q
                    dnk[j] -= q * cnk[j] / nnk[j]
                cpk, npk = cp[k * d:(k + 1) * d], np_[k * d:(k + 1) * d]
                for j in range(d):                      # df, di of c = f c' + i z, n = f n' + i
                    s = g[j]
                    dz[j] = dck[j] * cpk[j] + dnk[j] * npk[j]          # df, for now
                    dz[d + j] = dck[j] * g[2 * d + j] + dnk[j]           # di, for now
                    dz[2 * d + j] = dck[j] * ((s if s > zero else one) *
                                              (one - g[2 * d + j] * g[2 * d + j]))  # dz~
                dmk = dmr[k * d:(k + 1) * d]
                for j in range(d):                      # i = exp(i~ - m), f = exp(a - m), m = max
                    s = g[j]
                    sel = s > zero
                    i = s if sel else one
                    f = one if sel else -s
                    dir_ = dz[d + j] * i
                    da = dz[j] * f
                    dmm = dmk[j] - dir_ - da
                    da = da + dmm if sel else da
                    dir_ = dir_ if sel else dir_ + dmm
                    dz[j] = dir_
                    dz[d + j] = da * g[d + j]           # d log sigma(f~) = sigma(-f~)
                    dmk[j] = da                         # a = log sigma(f~) + m_{t-1}
                for j in range(d):
                    s = g[j]
                    f = one if s > zero else -s
                    dck[j] = dck[j] * f
                    dnk[j] = dnk[j] * f
        for k in range(nh):       # dtmp[b0:b1, head k] = dZ[t, b0:b1, head k] @ R[k]^T
            _blas.gemm(0, 0, n, d, d4, one, dZ, t * B * G + b0 * G + k * d4, G,
                       RT, k * d4 * d, d, zero, dtmp, b0 * H + k * d, H)
        # dh_{t-1} = dtmp on the rows not masked at t (no recurrent dropout: rmask unused)
        _rec_grad(dtmp, dh, mask, t, dtmp, has_mask, False, False, b0, b1)


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Compiled :func:`rnnkit.kernels.reference.forward_steps` for this cell.

    Args:
        xs: (T, B, F) inputs; states0: ``[h, c, n, m]``, each (B, H); mask: (T, B) bool or
            None; rmask: must be None (with one, the generic loop runs); ws, training: unused.

    Returns:
        ``(hs (T, B, H), [h_T, c_T, n_T, m_T], cache)``.
    """
    if rmask is not None:
        ys, states, cache = reference.forward_steps(cell, xs, states0, mask, rmask, training)
        return ys, states, ("reference", cache)
    T, B, _ = xs.shape
    dt = xs.dtype
    H, nh = cell.units, cell.num_heads
    idx = head_major(H, nh)
    W = np.ascontiguousarray(cell.params["kernel"][:, idx], dt)
    bias = np.zeros(4 * H, dt) if not cell.use_bias else \
        np.ascontiguousarray(cell.params["bias"][idx], dt)
    R = np.ascontiguousarray(cell.params["recurrent_kernel"], dt)
    Z = _scan.project(xs, W)                                         # (T, B, 4H) head-major
    bufs = []
    for s0 in states0[:3]:
        buf = np.empty((T + 1, B, H), dt)
        buf[0] = s0
        bufs.append(buf)
    hbuf, cbuf, nbuf = bufs
    m = np.array(states0[3], dtype=dt, order="C")
    mk = _scan.mask_arg(mask)
    run(_fwd, B, H * 4 * cell.head_size, T, Z, bias, R, hbuf, cbuf, nbuf, m, mk)
    states = [hbuf[T].copy(), cbuf[T].copy(), nbuf[T].copy(), m]
    return hbuf[1:], states, (xs, W, idx, Z, hbuf, cbuf, nbuf, mk)


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward` (the cell's ``step_backward`` over time).

    Args:
        cache: from :func:`forward`; dys: (T, B, H) dL/dh_t or None; dstates: dL/d(final
            ``[h, c, n, m]``), entries (B, H) or None; mask: as in forward; input_grad:
            False when nobody reads dL/dx (then None is returned for it).

    Returns:
        ``(dxs (T, B, F) or None, [dh_0, dc_0, dn_0, dm_0], [dkernel, (dbias), drecurrent])``.
    """
    if isinstance(cache[0], str):                      # forward ran the generic loop
        return reference.backward_steps(cell, cache[1], dys, dstates, mask)
    xs, W, idx, Z, hbuf, cbuf, nbuf, mk = cache
    dt = Z.dtype
    T, B, G = Z.shape
    H, nh, d = cell.units, cell.num_heads, cell.head_size
    R = np.asarray(cell.params["recurrent_kernel"], dt)
    RT = np.ascontiguousarray(R.transpose(0, 2, 1))                  # (K, 4d, d)
    d0 = [_scan.state_grad(g, hbuf[0]) for g in dstates]
    dZ = np.empty_like(Z)
    dtmp = np.empty((B, H), dt)
    run(_bwd, B, H * 4 * d, T, Z, RT, hbuf, cbuf, nbuf, mk, _scan.seq_grad(dys, dt),
        *d0, dZ, dtmp)
    dxs, grads = _scan.project_backward(xs, dZ, W, cell.use_bias, input_grad)
    dparams = []
    for g in grads:                                     # head-major columns back to gate-major
        out = np.empty_like(g)
        out[..., idx] = g
        dparams.append(out)
    hp = hbuf[:-1].reshape(T * B, nh, d)
    dz = dZ.reshape(T * B, nh, 4 * d)
    dR = np.empty((nh, d, 4 * d), dt)
    for k in range(nh):                                 # dR_k = sum_t h_{t-1,k}^T dZ_{t,k}
        dR[k] = hp[:, k, :].T @ dz[:, k, :]
    return dxs, d0, dparams + [dR]
