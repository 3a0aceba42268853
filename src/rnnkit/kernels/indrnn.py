"""Compiled loop for :class:`~rnnkit.cells.IndRNNCell` with ReLU.

``h_t = relu(k_t + u * h_{t-1})`` is element-wise in the state: no per-step matrix product.
One product ``K = X @ kernel + bias`` for all steps, a pass over time per batch row (rows
split across rnnkit's threads), a reverse pass (``dz_t = (g_t) * 1[h_t > 0]``, ``g_{t-1} =
u * dz_t + dL/dh_{t-1}``), then two products for ``dX`` and ``dkernel``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..cells.indrnn import IndRNNCell
from . import _scan
from ._math import FASTMATH
from ._math import wide_vectors as _wide_vectors

_JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)


def supports(cell, dtype) -> bool:
    """Exactly IndRNNCell with the ReLU activation, float32 or float64."""
    return type(cell) is IndRNNCell and cell.activation.name == "relu" and \
        _scan.float_dtype(dtype)


@njit(**_JIT)
def _fwd(K, bias, u, h0, mask, Hs, r0, r1):
    _wide_vectors()
    T, B, H = Hs.shape
    has_b = bias.size > 0
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                continue
            k = K[t, b]
            if has_b:
                for j in range(H):
                    k[j] += bias[j]
            for j in range(H):
                z = k[j] + u[j] * hp[j]
                ho[j] = z if z > 0 else z - z         # relu (z - z keeps the dtype)


@njit(**_JIT)
def _bwd(Hs, u, h0, dY, mask, dK, g, du, r0, r1):
    """g (B, H): in dL/dh_T, out dL/dh_0; du (B, H): per-row dL/du."""
    _wide_vectors()
    T, B, H = Hs.shape
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        dub = du[b]
        for t in range(T - 1, -1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            dk = dK[t, b]
            if domask and not mask[t, b]:
                dk[:] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            h = Hs[t, b]
            for j in range(H):
                dz = gb[j] if h[j] > 0 else gb[j] - gb[j]
                dk[j] = dz
                dub[j] += dz * hp[j]
                gb[j] = dz * u[j]


@njit(**_PAR_JIT)
def _fwd_par(K, bias, u, h0, mask, Hs, edges):
    for i in prange(edges.shape[0] - 1):
        _fwd(K, bias, u, h0, mask, Hs, edges[i], edges[i + 1])


@njit(**_PAR_JIT)
def _bwd_par(Hs, u, h0, dY, mask, dK, g, du, edges):
    for i in prange(edges.shape[0] - 1):
        _bwd(Hs, u, h0, dY, mask, dK, g, du, edges[i], edges[i + 1])


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Run the cell over xs (T, B, F); returns ``(hs (T, B, H), [h_T], cache)``."""
    T, B, _ = xs.shape
    dt = xs.dtype
    K = _scan.project(xs, cell.params["kernel"])
    bias = _scan.bias_arg(cell.params.get("bias"), K.shape[2], dt)
    u = np.ascontiguousarray(cell.params["recurrent_kernel"], dt)
    h0 = np.ascontiguousarray(states0[0], dt)
    m = _scan.mask_arg(mask)
    Hs = np.empty((T, B, cell.units), dt)
    _scan.run(_fwd, _fwd_par, B, K, bias, u, h0, m, Hs)
    return Hs, [Hs[-1].copy()], (xs, Hs, u, h0, m)


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`; returns ``(dxs or None, [dh_0], [dkernel, (dbias), du])``."""
    xs, Hs, u, h0, m = cache
    dt = Hs.dtype
    g = _scan.state_grad(dstates[0], h0)
    du = np.zeros_like(h0)
    dK = np.empty(Hs.shape, dt)
    _scan.run(_bwd, _bwd_par, h0.shape[0], Hs, u, h0, _scan.seq_grad(dys, dt), m, dK, g, du)
    dxs, dparams = _scan.project_backward(xs, dK, cell.params["kernel"], cell.use_bias,
                                          input_grad)
    return dxs, [g], dparams + [du.sum(axis=0)]
