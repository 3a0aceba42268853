"""Compiled scan for :class:`~rnnkit.cells.LRUCell`.

A training step: one product ``K = X @ [Re B | Im B | D]`` for all T*B rows; the complex
diagonal recurrence ``h_t = lambda h_{t-1} + gamma u_t`` scanned over time per batch row (rows
split across rnnkit's threads); one product for the outputs ``Re(h C) + x D``. Backward: the
output gradient through ``C`` as one product, the reverse scan ``G_t = dL/dh_t +
conj(lambda) G_{t+1}`` accumulating ``dL/dlambda = sum G_t conj(h_{t-1})`` per row, then the
products for ``dkernel``, ``doutput_kernel`` and ``dX``. No per-step matrix product.

A masked step carries the state and repeats the previous output (the LRU's output is not its
state), exactly as the generic loop does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..cells.lru import LRUCell, lambda_grads
from . import _scan
from . import threads as _threads
from ._math import FASTMATH
from ._math import wide_vectors as _wide_vectors

_JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)


def supports(cell, dtype) -> bool:
    """Exactly LRUCell, float32 or float64."""
    return type(cell) is LRUCell and _scan.float_dtype(dtype)


@njit(**_JIT)
def _fwd(K, lr, li, gam, h0r, h0i, mask, Hr, Hi, r0, r1):
    _wide_vectors()
    T, B, N = Hr.shape
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            pr = h0r[b] if t == 0 else Hr[t - 1, b]
            pi = h0i[b] if t == 0 else Hi[t - 1, b]
            orr, oi = Hr[t, b], Hi[t, b]
            if domask and not mask[t, b]:
                orr[:] = pr
                oi[:] = pi
                continue
            ur, ui = K[t, b, :N], K[t, b, N:2 * N]
            for j in range(N):
                orr[j] = lr[j] * pr[j] - li[j] * pi[j] + gam[j] * ur[j]
                oi[j] = li[j] * pr[j] + lr[j] * pi[j] + gam[j] * ui[j]


@njit(**_JIT)
def _bwd(GR, GI, Hr, Hi, h0r, h0i, lr, li, mask, gr, gi, dlr, dli, r0, r1):
    """GR/GI (T, B, N): in dL/dh_t from the outputs, out the total dL/dh_t (0 at masked
    steps). gr/gi (B, N): in dL/dh_T, out dL/dh_0. dlr/dli (B, N): per-row dL/dlambda."""
    _wide_vectors()
    T, B, N = Hr.shape
    domask = mask.size > 0
    for b in range(r0, r1):
        ar, ai = gr[b], gi[b]
        dr, di = dlr[b], dli[b]
        for t in range(T - 1, -1, -1):
            Gr, Gi = GR[t, b], GI[t, b]
            if domask and not mask[t, b]:
                for j in range(N):
                    ar[j] += Gr[j]
                    ai[j] += Gi[j]
                    Gr[j] = 0
                    Gi[j] = 0
                continue
            pr = h0r[b] if t == 0 else Hr[t - 1, b]
            pi = h0i[b] if t == 0 else Hi[t - 1, b]
            for j in range(N):
                x = ar[j] + Gr[j]
                y = ai[j] + Gi[j]
                Gr[j] = x
                Gi[j] = y
                dr[j] += x * pr[j] + y * pi[j]
                di[j] += y * pr[j] - x * pi[j]
                ar[j] = lr[j] * x + li[j] * y
                ai[j] = lr[j] * y - li[j] * x


@njit(**_PAR_JIT)
def _fwd_par(K, lr, li, gam, h0r, h0i, mask, Hr, Hi, edges):
    for i in prange(edges.shape[0] - 1):
        _fwd(K, lr, li, gam, h0r, h0i, mask, Hr, Hi, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _bwd_par(GR, GI, Hr, Hi, h0r, h0i, lr, li, mask, gr, gi, dlr, dli, edges):
    for i in prange(edges.shape[0] - 1):
        _bwd(GR, GI, Hr, Hi, h0r, h0i, lr, li, mask, gr, gi, dlr, dli, edges[i], edges[i + 1])


def _hold_masked(ys, mask):
    """Masked steps repeat the previous output (zeros before the first step), in place."""
    prev = np.zeros_like(ys[0])
    for t in range(ys.shape[0]):
        m = mask[t]
        if not m.all():
            ys[t][~m] = prev[~m]
        prev = ys[t]


def _hold_masked_backward(dY, mask):
    """Gradient of :func:`_hold_masked`, in place: a masked step's output gradient flows to
    the output it repeated."""
    carry = np.zeros_like(dY[0])
    for t in range(dY.shape[0] - 1, -1, -1):
        m = mask[t][:, None]
        d = dY[t] + carry
        dY[t] = np.where(m, d, 0)
        carry = np.where(m, 0, d)


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Run the cell over xs (T, B, F); returns ``(ys (T, B, units), [Re h_T, Im h_T], cache)``."""
    T, B, F = xs.shape
    N, dt = cell.n, xs.dtype
    lr, li, gam = (np.ascontiguousarray(a, dt) for a in cell.eigenvalues())
    K = _scan.project(xs, cell.params["kernel"])                # (T, B, 2N + units)
    h0r, h0i = (np.ascontiguousarray(s, dt) for s in states0)
    m = _scan.mask_arg(mask)
    Hr, Hi = np.empty((T, B, N), dt), np.empty((T, B, N), dt)
    _scan.run(_fwd, _fwd_par, B, K, lr, li, gam, h0r, h0i, m, Hr, Hi)
    C = cell.params["output_kernel"]
    ys = K[:, :, 2 * N:].copy()                                 # x D
    y2 = ys.reshape(T * B, -1)
    y2 += _threads.matmul(Hr.reshape(T * B, N), C[:N])          # + Re(h) Re(C)
    y2 -= _threads.matmul(Hi.reshape(T * B, N), C[N:])          # - Im(h) Im(C)
    if mask is not None:
        _hold_masked(ys, m)
    return ys, [Hr[-1].copy(), Hi[-1].copy()], (xs, K, Hr, Hi, h0r, h0i, lr, li, gam, m)


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`; returns ``(dxs or None, [dRe h_0, dIm h_0], dparams)`` with
    dparams in declaration order (nu_log, theta_log, gamma_log, kernel, output_kernel).

    The output gradient goes through ``C`` only on the rows where it is not zero: with
    ``return_sequences=False`` that is the last step alone, not T * B rows.
    """
    xs, K, Hr, Hi, h0r, h0i, lr, li, gam, m = cache
    T, B, N = Hr.shape
    dt = K.dtype
    C = cell.params["output_kernel"]
    U = C.shape[1]
    dY = np.zeros((T, B, U), dt) if dys is None else np.array(dys, dt, order="C")
    if m.size:
        _hold_masked_backward(dY, m)
    dY2 = dY.reshape(T * B, U)
    rows = np.flatnonzero(dY2.any(axis=1))
    part = len(rows) < T * B // 2
    dYr = dY2[rows] if part else dY2
    Hr2, Hi2 = Hr.reshape(T * B, N), Hi.reshape(T * B, N)
    GR, GI = np.zeros((T * B, N), dt), np.zeros((T * B, N), dt)
    gr_rows = _threads.matmul(dYr, np.ascontiguousarray(C[:N].T))      # Re(h) Re(C)
    gi_rows = _threads.matmul(dYr, np.ascontiguousarray(-C[N:].T))     # - Im(h) Im(C)
    if part:
        GR[rows], GI[rows] = gr_rows, gi_rows
        dC = np.concatenate([Hr2[rows].T @ dYr, -(Hi2[rows].T @ dYr)])
    else:
        GR, GI = gr_rows, gi_rows
        dC = np.concatenate([_threads.matmul(Hr2.T, dY2), -_threads.matmul(Hi2.T, dY2)])
    GR, GI = GR.reshape(T, B, N), GI.reshape(T, B, N)
    gr, gi = _scan.state_grad(dstates[0], h0r), _scan.state_grad(dstates[1], h0i)
    dlr, dli = np.zeros((B, N), dt), np.zeros((B, N), dt)
    _scan.run(_bwd, _bwd_par, B, GR, GI, Hr, Hi, h0r, h0i, lr, li, m, gr, gi, dlr, dli)
    dK = np.empty_like(K)
    dK[:, :, :N] = GR * gam
    dK[:, :, N:2 * N] = GI * gam
    dK[:, :, 2 * N:] = dY
    dgam = np.einsum("tbn,tbn->n", GR, K[:, :, :N]) + np.einsum("tbn,tbn->n", GI, K[:, :, N:2 * N])
    dxs, (dW,) = _scan.project_backward(xs, dK, cell.params["kernel"], False, input_grad)
    dlam = lambda_grads(cell.params, lr, li, gam, dlr.sum(0), dli.sum(0), dgam)
    return dxs, [gr, gi], dlam + [dW, dC]
