"""Compiled (numba) sequence kernels: the whole time loop in one native call.

Same contract as :mod:`rnnkit.kernels.reference` (read it for shapes and semantics); the
cache returned by :func:`forward_sequence` is private to this module.

Where the speed comes from (see docs/performance.md):

* The input projection ``X @ kernel + bias`` for all steps is done by the layer before the
  loop, as one matrix product.
* The time loop runs inside compiled code. The per-step recurrent product ``h_{t-1} @ U``
  is a direct call into the OpenBLAS that ships with NumPy (:mod:`._blas`), so there is
  no Python overhead per step at any batch size, and no SciPy dependency.
* The element-wise gate math of a step (sigmoids, tanh, cell update; in backward their
  derivatives) is one fused pass that LLVM vectorizes (branch-free sigmoid/tanh from
  :mod:`._math`).
* In backward only ``dZ_t @ U^T`` stays in the loop (with ``U^T`` stored contiguously,
  which OpenBLAS runs faster); ``dU = H_prev^T @ dZ`` is one product over all ``T * B``
  rows after it.
* Threads: the loop is split by batch rows; each thread runs it on its rows with one-thread
  BLAS calls, in one numba parallel region per loop (:func:`_run`, :mod:`.threads`). Large
  products outside the loop are split by :func:`_gemm_split`. Unsplit loops (small batches)
  run their per-step products on one BLAS thread unless they are large
  (:data:`._blas.SMALL_GEMM_MACS`).
* Inference (:func:`infer_sequence`): no caches, ``x_t @ W`` per step into a scratch that
  stays in cache, input read as (B, T, F) and output written as (B, T, H).
* Memory: forward keeps only what backward needs: ``h`` for every step (which is also the
  output), the activated gates, and ``c`` for LSTM (GRU: the recurrent term of the
  candidate). Nothing is recomputed except ``tanh(c_t)`` in LSTM backward.

Supported: float32 and float64; SimpleRNN with tanh or relu; LSTM and GRU (both
``reset_after`` variants) with tanh / sigmoid; masks, recurrent dropout masks and the GRU
recurrent bias. Other cells go to the reference path (:func:`supports`), other dtypes are
delegated to it inside :func:`forward_sequence`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import cells as _cells
from . import _blas
from . import reference as _reference
from . import threads as _threads
from ._math import consts_like as _consts_like
from ._math import sigmoid as _sigmoid
from ._math import tanh as _tanh

_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SIMPLE_ACT = {"tanh": 0, "relu": 1}

if not _blas.AVAILABLE:  # pragma: no cover - depends on how NumPy was built
    raise ImportError("rnnkit.kernels.fast needs the OpenBLAS bundled in the NumPy wheel; "
                      "none was found, so the reference kernels are used.")


def supports(cell) -> bool:
    """True when the compiled kernels implement ``cell`` (default activations).

    SimpleRNN with tanh or relu; LSTM and GRU with activation tanh and recurrent activation
    sigmoid. Everything else is served by :mod:`rnnkit.kernels.reference`.
    """
    if isinstance(cell, _cells.SimpleRNNMath):
        return cell.act.name in _SIMPLE_ACT
    if isinstance(cell, (_cells.LSTMMath, _cells.GRUMath)):
        return cell.act.name == "tanh" and cell.ract.name == "sigmoid"
    return False


# =========================================================================================
# compiled kernels. Arrays are C-contiguous; an empty (size-0) mask / rmask / dhs / b_rec
# means "none". hbuf is (T+1, B, H) with hbuf[0] = h0, so hbuf[1:] is the output and
# hbuf[:-1] the previous states that multiply U.
#
# The element-wise work is written as short loops over one row (1-D views), each touching
# few arrays and always counting from 0 (``range(H)`` plus an offset, never
# ``range(2 * H, 3 * H)``): LLVM only vectorizes a loop when it can check at run time that
# its arrays do not overlap, and gives up when a loop touches too many of them. Measured:
# the same gate math is 4-15x slower when written as one big loop.
# =========================================================================================

@njit(**_JIT)
def _copy(src, dst):
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(**_JIT)
def _fill(dst, v):
    for j in range(dst.shape[0]):
        dst[j] = v


@njit(**_JIT)
def _dropped(hbuf, t, rmask, hp, b0, b1):
    """hp[b0:b1] = hbuf[t, b0:b1] * rmask[b0:b1]."""
    H = hp.shape[1]
    for b in range(b0, b1):
        src, r, dst = hbuf[t, b], rmask[b], hp[b]
        for j in range(H):
            dst[j] = src[j] * r[j]


@njit(**_JIT)
def _add_row(d, dhs, t, b, has_dhs):
    """d += dhs[t, b] when dL/dh_t comes from the outputs."""
    if has_dhs:
        s = dhs[t, b]
        for j in range(d.shape[0]):
            d[j] += s[j]


@njit(**_JIT)
def _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, accumulate, b0, b1):
    """dh (+)= dtmp * rmask on the rows b0:b1 that were not masked at step t."""
    H = dh.shape[1]
    for b in range(b0, b1):
        if has_mask and not mask[t, b]:
            continue                                     # masked: dh carried unchanged
        src, dst = dtmp[b], dh[b]
        if has_r:
            r = rmask[b]
            if accumulate:
                for j in range(H):
                    dst[j] += src[j] * r[j]
            else:
                for j in range(H):
                    dst[j] = src[j] * r[j]
        elif accumulate:
            for j in range(H):
                dst[j] += src[j]
        else:
            for j in range(H):
                dst[j] = src[j]


@njit(**_JIT)
def _simple_fwd(xw, hbuf, U, mask, rmask, hp, act, b0, b1):
    K = _consts_like(xw)
    T, B, H = xw.shape
    n = b1 - b0
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _blas.gemm(0, 0, n, H, H, K[0], hp, b0 * H, H, U, 0, H, zero, hbuf, (t + 1) * B * H + b0 * H, H)
        else:
            _blas.gemm(0, 0, n, H, H, K[0], hbuf, t * B * H + b0 * H, H, U, 0, H, zero, hbuf, (t + 1) * B * H + b0 * H, H)
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


@njit(**_JIT)
def _simple_bwd(hbuf, UT, mask, rmask, dhs, dh, dxw, dtmp, act, b0, b1):
    K = _consts_like(hbuf)
    T, B, H = dxw.shape
    n = b1 - b0
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
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
        _blas.gemm(0, 0, n, H, H, K[0], dxw, t * B * H + b0 * H, H, UT, 0, H, zero, dtmp, b0 * H, H)
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, False, b0, b1)


@njit(**_JIT)
def _lstm_fwd(xw, hbuf, cbuf, U, mask, rmask, gates, hp, b0, b1):
    K = _consts_like(xw)
    T, B, G = xw.shape
    n = b1 - b0
    H = G // 4
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _blas.gemm(0, 0, n, G, H, K[0], hp, b0 * H, H, U, 0, G, zero, gates, t * B * G + b0 * G, G)
        else:
            _blas.gemm(0, 0, n, G, H, K[0], hbuf, t * B * H + b0 * H, H, U, 0, G, zero, gates, t * B * G + b0 * G, G)
        for b in range(b0, b1):
            cp, cn, hn = cbuf[t, b], cbuf[t + 1, b], hbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(hbuf[t, b], hn)
                _copy(cp, cn)
                continue
            x, g = xw[t, b], gates[t, b]                        # g: z, then activated gates
            for j in range(2 * H):
                g[j] = _sigmoid(x[j] + g[j], K)                  # i, f
            for j in range(H):
                g[2 * H + j] = _tanh(x[2 * H + j] + g[2 * H + j], K)    # candidate
            for j in range(H):
                g[3 * H + j] = _sigmoid(x[3 * H + j] + g[3 * H + j], K)  # o
            for j in range(H):
                cn[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j]   # c = f*c_prev + i*g
            for j in range(H):
                hn[j] = g[3 * H + j] * _tanh(cn[j], K)


@njit(**_JIT)
def _lstm_bwd(gates, cbuf, UT, mask, rmask, dhs, dh, dc, dxw, dtmp, b0, b1):
    K = _consts_like(gates)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 4
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dcr, dz = dh[b], dc[b], dxw[t, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dz, zero)
                continue
            g, cp, cn = gates[t, b], cbuf[t, b], cbuf[t + 1, b]
            for j in range(H):                       # tanh(c_t), kept in dz's c-slot for now
                dz[2 * H + j] = _tanh(cn[j], K)
            for j in range(H):                                   # h = o * tanh(c)
                o = g[3 * H + j]
                dz[3 * H + j] = (d[j] * dz[2 * H + j]) * (o * (K[0] - o))
            for j in range(H):
                ac = dz[2 * H + j]
                dcr[j] = dcr[j] + (d[j] * g[3 * H + j]) * (K[0] - ac * ac)
            for j in range(H):                                   # c = f*c_prev + i*g
                i = g[j]
                dz[j] = (dcr[j] * g[2 * H + j]) * (i * (K[0] - i))
            for j in range(H):
                f = g[H + j]
                dz[H + j] = (dcr[j] * cp[j]) * (f * (K[0] - f))
            for j in range(H):
                gg = g[2 * H + j]
                dz[2 * H + j] = (dcr[j] * g[j]) * (K[0] - gg * gg)
            for j in range(H):
                dcr[j] = dcr[j] * g[H + j]
        _blas.gemm(0, 0, n, H, G, K[0], dxw, t * B * G + b0 * G, G, UT, 0, H, zero, dtmp, b0 * H, H)
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, False, b0, b1)


@njit(**_JIT)
def _gru_after_fwd(xw, hbuf, U, b_rec, mask, rmask, gates, rec, hu, hp, b0, b1):
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
            _blas.gemm(0, 0, n, G, H, K[0], hbuf, t * B * H + b0 * H, H, U, 0, G, zero, hu, b0 * G, G)
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


@njit(**_JIT)
def _gru_after_bwd(hbuf, gates, rec, UT, mask, rmask, dhs, dh, dxw, dzrec, dtmp, b0, b1):
    K = _consts_like(hbuf)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 3
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dx, dr = dh[b], dxw[t, b], dzrec[t, b]
            _add_row(d, dhs, t, b, has_dhs)
            if has_mask and not mask[t, b]:
                _fill(dx, zero)
                _fill(dr, zero)
                continue
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
        _blas.gemm(0, 0, n, H, G, K[0], dzrec, t * B * G + b0 * G, G, UT, 0, H, zero, dtmp, b0 * H, H)
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, True, b0, b1)


@njit(**_JIT)
def _gru_before_fwd(xw, hbuf, U, mask, rmask, gates, rec, hu, hp, b0, b1):
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
        _blas.gemm(0, 0, n, H, H, K[0], rec, t * B * H + b0 * H, H, U, 2 * H, G, zero, hu, 2 * H + b0 * G, G)
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


@njit(**_JIT)
def _gru_before_bwd(hbuf, gates, UT, mask, rmask, dhs, dh, dxw, drec, dtmp, b0, b1):
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
        _blas.gemm(0, 0, n, H, H, K[0], dxw, t * B * G + 2 * H + b0 * G, G, UT, 2 * H * H, H, zero,
                   drec, b0 * H, H)
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
        _blas.gemm(0, 0, n, H, 2 * H, K[0], dxw, t * B * G + b0 * G, G, UT, 0, H, zero, dtmp, b0 * H, H)
        for b in range(b0, b1):
            if has_mask and not mask[t, b]:
                continue
            g, dr, dt_ = gates[t, b], drec[b], dtmp[b]
            for j in range(H):
                dt_[j] = dt_[j] + dr[j] * g[H + j]
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, True, b0, b1)

# =========================================================================================
# inference: no gradient caches. Per step ``z = x_t @ W + h @ U`` (two BLAS calls into one
# (rows, G) scratch that stays in cache), the gates, and ``h`` written straight into the
# (B, T, H) output. x is read in the user's (B, T, F) layout (rows of step t are T*F apart),
# so nothing is transposed and no (T, B, G) array exists.
# =========================================================================================

@njit(**_JIT)
def _project(x, W, U, h, z, t, b0, b1):
    """z[b0:b1] = x[b0:b1, t] @ W + h[b0:b1] @ U."""
    K = _consts_like(x)
    B, T, F = x.shape
    H, G = U.shape
    n = b1 - b0
    _blas.gemm(0, 0, n, G, F, K[0], x, b0 * T * F + t * F, T * F, W, 0, G, K[0] - K[0],
               z, b0 * G, G)
    _blas.gemm(0, 0, n, G, H, K[0], h, b0 * H, H, U, 0, G, K[0], z, b0 * G, G)


@njit(**_JIT)
def _emit(h, out, s, b, has_out):
    if has_out:
        _copy(h[b], out[b, s])


@njit(**_JIT)
def _simple_infer(x, W, U, bias, h, z, mask, out, act, backwards, b0, b1):
    K = _consts_like(x)
    B, T, F = x.shape
    H = h.shape[1]
    has_mask, has_b, has_out = mask.shape[0] > 0, bias.shape[0] > 0, out.shape[0] > 0
    zero = K[0] - K[0]
    for s in range(T):
        t = T - 1 - s if backwards else s
        _project(x, W, U, h, z, t, b0, b1)
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


@njit(**_JIT)
def _lstm_infer(x, W, U, bias, h, c, z, mask, out, backwards, b0, b1):
    K = _consts_like(x)
    B, T, F = x.shape
    H = h.shape[1]
    has_mask, has_b, has_out = mask.shape[0] > 0, bias.shape[0] > 0, out.shape[0] > 0
    for s in range(T):
        t = T - 1 - s if backwards else s
        _project(x, W, U, h, z, t, b0, b1)
        for b in range(b0, b1):
            if not (has_mask and not mask[t, b]):
                g, hr, cr = z[b], h[b], c[b]
                if has_b:
                    for j in range(4 * H):
                        g[j] += bias[j]
                for j in range(2 * H):
                    g[j] = _sigmoid(g[j], K)                             # i, f
                for j in range(H):
                    g[2 * H + j] = _tanh(g[2 * H + j], K)               # candidate
                for j in range(H):
                    g[3 * H + j] = _sigmoid(g[3 * H + j], K)            # o
                for j in range(H):
                    cr[j] = g[H + j] * cr[j] + g[j] * g[2 * H + j]
                for j in range(H):
                    hr[j] = g[3 * H + j] * _tanh(cr[j], K)
            _emit(h, out, s, b, has_out)


@njit(**_JIT)
def _gru_after_infer(x, W, U, bias, b_rec, h, z, hu, mask, out, backwards, b0, b1):
    """reset_after GRU; ``z`` (B, G) takes x_t @ W + b, ``hu`` (B, G) h @ U + b_rec."""
    K = _consts_like(x)
    B, T, F = x.shape
    H, G = U.shape
    n = b1 - b0
    has_mask, has_b, has_rb = mask.shape[0] > 0, bias.shape[0] > 0, b_rec.shape[0] > 0
    has_out = out.shape[0] > 0
    zero = K[0] - K[0]
    for s in range(T):
        t = T - 1 - s if backwards else s
        _blas.gemm(0, 0, n, G, F, K[0], x, b0 * T * F + t * F, T * F, W, 0, G, zero,
                   z, b0 * G, G)
        _blas.gemm(0, 0, n, G, H, K[0], h, b0 * H, H, U, 0, G, zero, hu, b0 * G, G)
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


def infer_supported(cell) -> bool:
    """True when :func:`infer_sequence` serves ``cell`` (the GRU with ``reset_after=False``
    goes through :func:`forward_sequence`)."""
    return supports(cell) and _kind(cell) != "gru_before"


def _check_infer_shapes(cell, x, W, U, b_in, b_rec, states0, mask):
    """The kernels index raw memory: refuse shapes that do not fit together."""
    def bad(name, want, got):
        raise ValueError(f"infer_sequence: {name} must have shape {want}, got {got}; build "
                         "the arrays from one layer's weights and its (batch, time, features) "
                         "input.")
    if x.ndim != 3:
        bad("x", "(batch, time, features)", x.shape)
    B, T, F = x.shape
    H = U.shape[0] if U.ndim == 2 else -1
    G = cell.n_gates * H
    if U.shape != (H, G):
        bad("recurrent_kernel U", f"(units, {cell.n_gates} * units)", U.shape)
    if W.shape != (F, G):
        bad("kernel W", (F, G), W.shape)
    for name, b in (("b_in", b_in), ("b_rec", b_rec)):
        if b is not None and np.shape(b) != (G,):
            bad(name, (G,), np.shape(b))
    if len(states0) != cell.n_states:
        raise ValueError(f"infer_sequence: states0 must hold {cell.n_states} state array(s), "
                         f"got {len(states0)}.")
    for k, s0 in enumerate(states0):
        if np.shape(s0) != (B, H):
            bad(f"states0[{k}]", (B, H), np.shape(s0))
    if mask is not None and np.shape(mask) != (T, B):
        bad("mask", f"(time, batch) = {(T, B)}", np.shape(mask))


def infer_sequence(cell, x, W, U, b_in, b_rec, states0, mask=None, go_backwards=False,
                   return_sequences=True):
    """Inference over a whole sequence, without gradient caches.

    Args:
        cell: the cell math (see :func:`infer_supported`).
        x: (B, T, F) input in the layer's dtype (float32 or float64).
        W: (F, G) kernel; U: (H, G) recurrent kernel; b_in: (G,) input bias or None;
            b_rec: (G,) GRU recurrent bias or None.
        states0: tuple of (B, H) initial states (not modified).
        mask: (T, B) bool or None; a masked step carries state and output unchanged.
        go_backwards: process the steps from last to first (outputs in processing order).
        return_sequences: also return every step's ``h``.

    Returns:
        ``(out, states)``: out (B, T, H) or None, states the final (B, H) states.
    """
    if not infer_supported(cell):
        raise ValueError(f"infer_sequence does not serve {cell!r} (see infer_supported); use "
                         "forward_sequence.")
    dt = U.dtype
    x = np.ascontiguousarray(x, dt)
    W = np.ascontiguousarray(W, dt)
    U = np.ascontiguousarray(U, dt)
    _check_infer_shapes(cell, x, W, U, b_in, b_rec, states0, mask)
    B, T, _ = x.shape
    H, G = U.shape
    kind = _kind(cell)
    states = [np.array(s, dtype=dt, order="C") for s in states0]
    h = states[0]
    m = _opt(mask, np.bool_, 2)
    bias = _opt(b_in, dt, 1)
    out = np.empty((B, T, H) if return_sequences else (0, 0, 0), dt)
    z = np.empty((B, G), dt)
    work = H * G + G * x.shape[2]
    if kind == "simple":
        _run(_simple_infer, B, work, T, x, W, U, bias, h, z, m, out,
             _SIMPLE_ACT[cell.act.name], go_backwards)
    elif kind == "lstm":
        _run(_lstm_infer, B, work, T, x, W, U, bias, h, states[1], z, m, out, go_backwards)
    else:                                                     # gru_after
        _run(_gru_after_infer, B, work, T, x, W, U, bias, _opt(b_rec, dt, 1), h, z,
             np.empty((B, G), dt), m, out, go_backwards)
    return (out if return_sequences else None), tuple(states)


# =========================================================================================
# launchers: one parallel region per loop, each thread running the loop on its row block.
# numba's threading layer (OpenMP or TBB where installed) starts a region in ~1 us; a Python
# thread hand-off costs ~75 us here (futex wake-ups), which is a quarter of a small model's
# training step.
# They are written out one by one on purpose: a launcher made by a factory closing over the
# kernel works, but numba cannot cache closures, so every process would recompile them
# (measured: a cache miss on every start).
# =========================================================================================


@njit(**_PAR_JIT)
def _simple_fwd_par(xw, hbuf, U, mask, rmask, hp, act, edges):
    for i in prange(edges.shape[0] - 1):
        _simple_fwd(xw, hbuf, U, mask, rmask, hp, act, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _simple_bwd_par(hbuf, UT, mask, rmask, dhs, dh, dxw, dtmp, act, edges):
    for i in prange(edges.shape[0] - 1):
        _simple_bwd(hbuf, UT, mask, rmask, dhs, dh, dxw, dtmp, act, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _lstm_fwd_par(xw, hbuf, cbuf, U, mask, rmask, gates, hp, edges):
    for i in prange(edges.shape[0] - 1):
        _lstm_fwd(xw, hbuf, cbuf, U, mask, rmask, gates, hp, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _lstm_bwd_par(gates, cbuf, UT, mask, rmask, dhs, dh, dc, dxw, dtmp, edges):
    for i in prange(edges.shape[0] - 1):
        _lstm_bwd(gates, cbuf, UT, mask, rmask, dhs, dh, dc, dxw, dtmp, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _gru_after_fwd_par(xw, hbuf, U, b_rec, mask, rmask, gates, rec, hu, hp, edges):
    for i in prange(edges.shape[0] - 1):
        _gru_after_fwd(xw, hbuf, U, b_rec, mask, rmask, gates, rec, hu, hp, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _gru_after_bwd_par(hbuf, gates, rec, UT, mask, rmask, dhs, dh, dxw, dzrec, dtmp, edges):
    for i in prange(edges.shape[0] - 1):
        _gru_after_bwd(hbuf, gates, rec, UT, mask, rmask, dhs, dh, dxw, dzrec, dtmp, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _gru_before_fwd_par(xw, hbuf, U, mask, rmask, gates, rec, hu, hp, edges):
    for i in prange(edges.shape[0] - 1):
        _gru_before_fwd(xw, hbuf, U, mask, rmask, gates, rec, hu, hp, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _gru_before_bwd_par(hbuf, gates, UT, mask, rmask, dhs, dh, dxw, drec, dtmp, edges):
    for i in prange(edges.shape[0] - 1):
        _gru_before_bwd(hbuf, gates, UT, mask, rmask, dhs, dh, dxw, drec, dtmp, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _simple_infer_par(x, W, U, bias, h, z, mask, out, act, backwards, edges):
    for i in prange(edges.shape[0] - 1):
        _simple_infer(x, W, U, bias, h, z, mask, out, act, backwards, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _lstm_infer_par(x, W, U, bias, h, c, z, mask, out, backwards, edges):
    for i in prange(edges.shape[0] - 1):
        _lstm_infer(x, W, U, bias, h, c, z, mask, out, backwards, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _gru_after_infer_par(x, W, U, bias, b_rec, h, z, hu, mask, out, backwards, edges):
    for i in prange(edges.shape[0] - 1):
        _gru_after_infer(x, W, U, bias, b_rec, h, z, hu, mask, out, backwards, edges[i], edges[i + 1])


_PAR = {_simple_fwd: _simple_fwd_par, _simple_bwd: _simple_bwd_par, _lstm_fwd: _lstm_fwd_par,
        _lstm_bwd: _lstm_bwd_par, _gru_after_fwd: _gru_after_fwd_par,
        _gru_after_bwd: _gru_after_bwd_par, _gru_before_fwd: _gru_before_fwd_par,
        _gru_before_bwd: _gru_before_bwd_par, _simple_infer: _simple_infer_par,
        _lstm_infer: _lstm_infer_par, _gru_after_infer: _gru_after_infer_par}


@njit(**_JIT)
def _gemm_block(ta, tb, M, N, K, A, offa, lda, Bm, offb, ldb, C, offc, ldc, by_rows, e0, e1):
    """Rows (or columns) e0:e1 of C = op(A) @ op(B) (row-major, beta 0)."""
    KK = _consts_like(C)
    one, zero = KK[0], KK[0] - KK[0]
    if by_rows:
        _blas.gemm(ta, tb, e1 - e0, N, K, one, A, offa + (e0 if ta else e0 * lda), lda,
                   Bm, offb, ldb, zero, C, offc + e0 * ldc, ldc)
    else:
        _blas.gemm(ta, tb, M, e1 - e0, K, one, A, offa, lda,
                   Bm, offb + (e0 * ldb if tb else e0), ldb, zero, C, offc + e0, ldc)


@njit(**_PAR_JIT)
def _gemm_par(ta, tb, M, N, K, A, offa, lda, Bm, offb, ldb, C, offc, ldc, by_rows, edges):
    """C = op(A) @ op(B) with the rows (or columns) of C cut at ``edges``, one block a thread."""
    for i in prange(edges.shape[0] - 1):
        _gemm_block(ta, tb, M, N, K, A, offa, lda, Bm, offb, ldb, C, offc, ldc, by_rows,
                    edges[i], edges[i + 1])


def _operand(a):
    """(transposed flag, C-ordered 2-D array whose memory holds ``a``, leading dimension)."""
    item = a.itemsize
    if a.strides[1] == item and a.strides[0] >= a.shape[1] * item:
        return 0, a, a.strides[0] // item
    if a.strides[0] == item and a.strides[1] >= a.shape[0] * item:
        return 1, a.T, a.strides[1] // item
    a = np.ascontiguousarray(a)
    return 0, a, a.shape[1]


def _gemm_split(a, b, out, n):
    """``out[...] = a @ b`` (2-D, one float dtype, ``out`` rows contiguous) over ``n`` threads:
    rows of the result split when it has more rows than columns, else columns. Returns
    ``out``; used by :func:`.threads.matmul`."""
    M, K = a.shape
    N = b.shape[1]
    ta, A, lda = _operand(a)
    tb, Bm, ldb = _operand(b)
    ldc = out.strides[0] // out.itemsize          # rows contiguous: threads.matmul checks
    by_rows = M >= N
    blocks = _threads.blocks(M if by_rows else N, n)
    with _threads.launch(len(blocks)):
        _gemm_par(ta, tb, M, N, K, A, 0, lda, Bm, 0, ldb, out, 0, ldc, by_rows, _edges(blocks))
    return out


# =========================================================================================
# Python entry points (same contract as reference.py)
# =========================================================================================

# Batch rows are independent through the whole recurrence, so the time loop is split by
# rows across threads (:mod:`.threads`): each thread runs the complete compiled loop on its
# own block of rows with one-thread BLAS calls, and the threads meet only at the end of the
# sequence (no synchronisation per step).
_MIN_ROWS = 8          # rows per thread; fewer and the loop stays on one thread
_MIN_WORK = 1 << 20    # B*H*G*T multiply-adds below which threads cost more than they save


def _split(B, work, T):
    """Row blocks ``[(b0, b1), ...]`` for the threads that run one loop (one block = no split)."""
    n = min(_threads.count(), B // _MIN_ROWS) if B * work * T >= _MIN_WORK else 1
    return _threads.blocks(B, max(n, 1))


def _run(fn, B, work, T, *args):
    """Call compiled loop ``fn(*args, b0, b1)`` over all B rows, split across threads.

    ``work`` is the multiply-adds of one row's recurrent product per step (H*G), ``T`` the
    number of steps. Unsplit outside :func:`.threads.parallel`, the per-step products of a
    small loop run on one BLAS thread (:func:`._blas.threads_for`).
    """
    blocks = _split(B, work, T)
    if _threads.active():
        token = None                      # inside parallel(): BLAS is single-threaded already
    elif len(blocks) == 1:
        token = _blas.threads_for(B * work)
    else:
        token = _blas.set_threads(1)      # every thread's per-step products on one core
    try:
        if len(blocks) == 1:
            fn(*args, 0, B)
        else:
            with _threads.launch(len(blocks)):
                _PAR[fn](*args, _edges(blocks))
    finally:
        _blas.restore(token)


def _edges(blocks):
    """``[(b0, b1), ...]`` as the int64 array ``[b0, ..., last b1]`` the launchers take."""
    return np.array([b0 for b0, _ in blocks] + [blocks[-1][1]], np.int64)


def _kind(cell):
    if isinstance(cell, _cells.LSTMMath):
        return "lstm"
    if isinstance(cell, _cells.GRUMath):
        return "gru_after" if cell.reset_after else "gru_before"
    return "simple"


def _opt(a, dt, ndim):
    """C-contiguous array of dtype ``dt``, or an empty placeholder meaning "absent"."""
    if a is None:
        return np.empty((0,) * ndim, dt)
    return np.ascontiguousarray(a, dt)


def forward_sequence(cell, xw, states0, U, b_rec=None, mask=None, rmask=None, ws=None):
    """Run ``cell`` over all time steps in compiled code.

    Args and Returns: as :func:`rnnkit.kernels.reference.forward_sequence` — ``xw`` (T, B, G),
    ``states0`` tuple of (B, H), ``U`` (H, G), ``b_rec`` (G,) or None, ``mask`` (T, B) bool
    or None, ``rmask`` (B, H) or None; returns ``hs`` (T, B, H), the final states and an
    opaque cache for :func:`backward_sequence`. ``ws``: optional buffer dict
    (:func:`.threads.workspace`) the large arrays are taken from.
    """
    dt = np.asarray(xw).dtype
    if dt not in _DTYPES or not supports(cell):
        hs, states, inner = _reference.forward_sequence(cell, xw, states0, U, b_rec, mask, rmask)
        return hs, states, ("reference", inner)
    xw = np.ascontiguousarray(xw)
    U = np.ascontiguousarray(U, dt)
    T, B, G = xw.shape
    H = U.shape[0]
    m = _opt(mask, np.bool_, 2)
    rm = _opt(rmask, dt, 2)
    hp = np.empty((B, H) if rmask is not None else (0, 0), dt)
    hbuf = _threads.buffer(ws, "hbuf", (T + 1, B, H), dt)
    hbuf[0] = states0[0]
    return _forward(cell, _kind(cell), xw, states0, U, b_rec, m, rm, hp, hbuf, ws)


def _forward(cell, kind, xw, states0, U, b_rec, m, rm, hp, hbuf, ws):
    """Run the compiled forward loop; returns (hs, final states, cache)."""
    T, B, G = xw.shape
    H = U.shape[0]
    dt = xw.dtype
    if kind == "simple":
        _run(_simple_fwd, B, H * G, T, xw, hbuf, U, m, rm, hp, _SIMPLE_ACT[cell.act.name])
        cache = (kind, hbuf)
        states = (hbuf[T].copy(),)
    elif kind == "lstm":
        cbuf = _threads.buffer(ws, "cbuf", (T + 1, B, H), dt)
        cbuf[0] = states0[1]
        gates = _threads.buffer(ws, "gates", (T, B, G), dt)
        _run(_lstm_fwd, B, H * G, T, xw, hbuf, cbuf, U, m, rm, gates, hp)
        cache = (kind, hbuf, cbuf, gates)
        states = (hbuf[T].copy(), cbuf[T].copy())
    else:
        gates = _threads.buffer(ws, "gates", (T, B, G), dt)
        rec = _threads.buffer(ws, "rec", (T, B, H), dt)
        hu = np.empty((B, G), dt)
        if kind == "gru_after":
            _run(_gru_after_fwd, B, H * G, T, xw, hbuf, U, _opt(b_rec, dt, 1), m, rm, gates,
                 rec, hu, hp)
        else:
            hp = np.empty((B, H), dt)
            _run(_gru_before_fwd, B, H * G, T, xw, hbuf, U, m, rm, gates, rec, hu, hp)
        cache = (kind, hbuf, gates, rec)
        states = (hbuf[T].copy(),)
    return hbuf[1:], states, cache


def backward_sequence(cell, cache, dhs, dstates, U, b_rec=None, mask=None, rmask=None,
                      ws=None):
    """Backpropagation through time in compiled code.

    Args and Returns: as :func:`rnnkit.kernels.reference.backward_sequence` — ``dhs``
    (T, B, H) or None, ``dstates`` tuple of (B, H) or None entries; returns ``dxw`` (T, B, G),
    ``dstates0`` tuple of (B, H), ``dU`` (H, G) and ``db_rec`` (G,) or None. ``ws``: as in
    :func:`forward_sequence`.
    """
    kind = cache[0]
    if kind == "reference":
        return _reference.backward_sequence(cell, cache[1], dhs, dstates, U, b_rec, mask, rmask)
    hbuf = cache[1]
    dt = hbuf.dtype
    U = np.ascontiguousarray(U, dt)
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    G = U.shape[1]
    m = _opt(mask, np.bool_, 2)
    rm = _opt(rmask, dt, 2)
    d = _opt(dhs, dt, 3)
    dst = [np.zeros((B, H), dt) if s is None else np.array(s, dtype=dt) for s in dstates]
    dxw = _threads.buffer(ws, "tbg", (T, B, G), dt)      # the layer's X @ W buffer, now free
    dtmp = np.empty((B, H), dt)
    dzrec = _backward(cell, cache, kind, hbuf, U, m, rm, d, dst, dxw, dtmp, ws)
    # dU: one product over all T*B rows of the inputs to the recurrent product.
    hprev = hbuf[:-1] if rmask is None else hbuf[:-1] * rm              # (T, B, H)
    hprev = hprev.reshape(T * B, H)
    dz2 = dzrec.reshape(T * B, G)
    if kind == "gru_before":
        dU = np.empty((H, G), dt)
        _threads.matmul(hprev.T, dz2[:, :2 * H], out=dU[:, :2 * H])
        _threads.matmul(cache[3].reshape(T * B, H).T, dz2[:, 2 * H:], out=dU[:, 2 * H:])
    else:
        dU = _threads.matmul(hprev.T, dz2)
    db_rec = None if b_rec is None else dz2.sum(axis=0)
    return dxw, tuple(dst), dU, db_rec


def _backward(cell, cache, kind, hbuf, U, m, rm, d, dst, dxw, dtmp, ws):
    """Run the compiled BPTT loop; returns the gradient reaching the recurrent product."""
    T, B, G = dxw.shape
    H = U.shape[0]
    dt = dxw.dtype
    dzrec = dxw
    work = H * G
    # dZ_t @ U^T with U^T stored contiguously: OpenBLAS is 1.2-2.3x faster per step for
    # small row blocks than with the transposed view (measured 32 rows, H=128: 146 vs 97
    # GFLOP/s)
    U = np.ascontiguousarray(U.T)                                       # (G, H)
    if kind == "simple":
        _run(_simple_bwd, B, work, T, hbuf, U, m, rm, d, dst[0], dxw, dtmp,
             _SIMPLE_ACT[cell.act.name])
    elif kind == "lstm":
        _run(_lstm_bwd, B, work, T, cache[3], cache[2], U, m, rm, d, dst[0], dst[1], dxw, dtmp)
    elif kind == "gru_after":
        dzrec = _threads.buffer(ws, "dzrec", (T, B, G), dt)
        _run(_gru_after_bwd, B, work, T, hbuf, cache[2], cache[3], U, m, rm, d, dst[0], dxw,
             dzrec, dtmp)
    else:
        _run(_gru_before_bwd, B, work, T, hbuf, cache[2], U, m, rm, d, dst[0], dxw,
             np.empty((B, H), dt), dtmp)
    return dzrec


# =========================================================================================
# streaming: one step per call, the whole step (both products and the gates) compiled
# =========================================================================================

_SMALL_M = 4   # up to this many rows, a plain loop beats BLAS gemm (which packs U per call)


@njit(**_JIT)
def _mm_acc(A, Bm, C, beta):
    """C = A @ Bm + beta * C for a few rows of A (vectorized over the columns of Bm)."""
    M, Kd = A.shape
    N = Bm.shape[1]
    for r in range(M):
        for j in range(N):
            C[r, j] *= beta
        for k in range(Kd):
            a = A[r, k]
            for j in range(N):
                C[r, j] += a * Bm[k, j]


@njit(**_JIT)
def _lstm_stream_step(x, W, U, b, h, c, z):
    K = _consts_like(x)
    B, F = x.shape
    H = h.shape[1]
    G = 4 * H
    zero = K[0] - K[0]
    if B <= _SMALL_M:
        for bb in range(B):
            for j in range(G):
                z[bb, j] = zero
        _mm_acc(x, W, z, K[0])
        _mm_acc(h, U, z, K[0])
    else:
        _blas.gemm(0, 0, B, G, F, K[0], x, 0, F, W, 0, G, zero, z, 0, G)       # x @ W
        _blas.gemm(0, 0, B, G, H, K[0], h, 0, H, U, 0, G, K[0], z, 0, G)       # + h @ U
    has_b = b.shape[0] > 0
    for bb in range(B):
        for j in range(H):
            zi, zf = z[bb, j], z[bb, H + j]
            zg, zo = z[bb, 2 * H + j], z[bb, 3 * H + j]
            if has_b:
                zi, zf, zg, zo = zi + b[j], zf + b[H + j], zg + b[2 * H + j], zo + b[3 * H + j]
            cc = _sigmoid(zf, K) * c[bb, j] + _sigmoid(zi, K) * _tanh(zg, K)
            c[bb, j] = cc
            h[bb, j] = _sigmoid(zo, K) * _tanh(cc, K)


def lstm_step(x, W, U, b, states):
    """One LSTM step for streaming, compiled end to end; the given states are not modified.

    Args:
        x: (B, F) one time step; W: (F, 4H); U: (H, 4H); b: (4H,) or None (all C-contiguous,
            one float dtype).
        states: ``(h, c)``, each (B, H).

    Returns:
        ``(h, c)``: new (B, H) arrays.
    """
    dt = U.dtype
    h = np.array(states[0], dtype=dt, order="C")
    c = np.array(states[1], dtype=dt, order="C")
    z = np.empty((h.shape[0], U.shape[1]), dt)
    _lstm_stream_step(np.ascontiguousarray(x, dt), W, U, _opt(b, dt, 1), h, c, z)
    return h, c


class LSTMStream:
    """Streaming LSTM inference: one time step per :meth:`step` call, state kept inside.

    The whole step (``x @ kernel``, ``h @ recurrent_kernel``, bias and gates) is one
    compiled call that allocates nothing. Equations: :class:`rnnkit.cells.LSTMMath`
    (tanh / sigmoid); weights in Keras layout, e.g. taken from a built
    :class:`rnnkit.layers.LSTM` layer's ``params``.

    Args:
        kernel: (F, 4H) input kernel.
        recurrent_kernel: (H, 4H).
        bias: (4H,) or None.
        batch: number of independent streams B.
        states: optional initial ``(h, c)``, each (B, H); zeros otherwise.

    Example:
        >>> import numpy as np
        >>> from rnnkit.kernels.fast import LSTMStream
        >>> s = LSTMStream(np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32), None)
        >>> s.step(np.ones((1, 3), np.float32)).shape
        (1, 2)
    """

    def __init__(self, kernel, recurrent_kernel, bias=None, batch=1, states=None):
        dt = np.asarray(recurrent_kernel).dtype
        if dt not in _DTYPES:
            raise ValueError(f"LSTMStream needs float32 or float64 weights, got {dt}; cast "
                             "the weights with .astype('float32').")
        self.W = np.ascontiguousarray(kernel, dt)
        self.U = np.ascontiguousarray(recurrent_kernel, dt)
        H = self.U.shape[0]
        if self.U.shape != (H, 4 * H) or self.W.ndim != 2 or self.W.shape[1] != 4 * H:
            raise ValueError(f"LSTMStream expects kernel (F, 4H) and recurrent_kernel (H, 4H), "
                             f"got {self.W.shape} and {self.U.shape}.")
        self.b = _opt(bias, dt, 1)
        self.h = np.zeros((batch, H), dt)
        self.c = np.zeros((batch, H), dt)
        if states is not None:
            self.h[...], self.c[...] = states
        self._z = np.empty((batch, 4 * H), dt)

    def step(self, x):
        """Advance one step. ``x``: (B, F). Returns ``h`` (B, H) — the internal state
        array, overwritten by the next step (copy it to keep it)."""
        if x.dtype != self.W.dtype or not x.flags.c_contiguous or x.shape != (
                self.h.shape[0], self.W.shape[0]):
            x = np.ascontiguousarray(x, self.W.dtype)
            if x.shape != (self.h.shape[0], self.W.shape[0]):
                raise ValueError(f"LSTMStream.step expects x of shape (batch, features) = "
                                 f"{(self.h.shape[0], self.W.shape[0])}, got {x.shape}.")
        _lstm_stream_step(x, self.W, self.U, self.b, self.h, self.c, self._z)
        return self.h

    @property
    def states(self):
        """The carried ``(h, c)``, each (B, H)."""
        return self.h, self.c
