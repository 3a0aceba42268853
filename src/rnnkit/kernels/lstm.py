"""Compiled LSTM kernels (registered for exactly :class:`rnnkit.cells.LSTMCell`).

Serves activation tanh and recurrent activation sigmoid, float32 and float64: training
(forward + BPTT), cache-free inference, and one compiled streaming step. The equations are
the cell's (:mod:`rnnkit.cells.lstm`); tests/test_kernels.py holds every path equal to the
generic loop over that cell. Contract: :mod:`rnnkit.kernels` (module docstring).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..cells import LSTMCell
from . import _blas, _packed
from . import threads as _threads
from ._loops import (
    _SMALL_M,
    DTYPES,
    HELPER_JIT,
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
from ._loops import mm_acc as _mm_acc
from ._loops import project as _project
from ._loops import rec_grad as _rec_grad
from ._math import consts_like as _consts_like
from ._math import sigmoid as _sigmoid
from ._math import tanh as _tanh
from ._math import wide_vectors as _wide_vectors
from ._packed import product as _product


@njit(**JIT)
def _lstm_fwd(xw, hbuf, cbuf, U, P, mask, rmask, gates, hp, b0, b1):
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    n = b1 - b0
    H = G // 4
    has_mask, has_r = mask.shape[0] > 0, rmask.shape[0] > 0
    tile = np.empty((n, _packed.NR), np.float32)
    for t in range(T):
        if has_r:
            _dropped(hbuf, t, rmask, hp, b0, b1)
            _product(n, G, H, hp, b0 * H, H, U, 0, G, P, gates, t * B * G + b0 * G, G, False, tile)
        else:
            _product(n, G, H, hbuf, t * B * H + b0 * H, H, U, 0, G, P, gates, t * B * G + b0 * G,
                     G, False, tile)
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


@njit(**JIT)
def _lstm_bwd(gates, cbuf, UT, PT, mask, rmask, dhs, dh, dc, dxw, dtmp, b0, b1):
    _wide_vectors()
    K = _consts_like(gates)
    T, B, G = dxw.shape
    n = b1 - b0
    H = G // 4
    has_mask, has_r, has_dhs = mask.shape[0] > 0, rmask.shape[0] > 0, dhs.shape[0] > 0
    zero = K[0] - K[0]
    tile = np.empty((n, _packed.NR), np.float32)
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
        _product(n, H, G, dxw, t * B * G + b0 * G, G, UT, 0, H, PT, dtmp, b0 * H, H, False, tile)
        _rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, False, b0, b1)

@njit(**HELPER_JIT)
def activate(g, cp, cn, H):
    """The LSTM gates of one row, in place: ``g`` (4H,) pre-activations i, f, c, o become
    sigmoid / sigmoid / tanh / sigmoid of themselves, then ``cn = f * cp + i * g`` (``cn``
    may be ``cp``). Shared by the inference loop here and :mod:`.layernorm`."""
    _wide_vectors()
    K = _consts_like(g)
    for j in range(2 * H):
        g[j] = _sigmoid(g[j], K)                                     # i, f
    for j in range(H):
        g[2 * H + j] = _tanh(g[2 * H + j], K)                       # candidate
    for j in range(H):
        g[3 * H + j] = _sigmoid(g[3 * H + j], K)                    # o
    for j in range(H):
        cn[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j]              # c = f c' + i g


@njit(**JIT)
def _lstm_infer(x, W, PW, U, P, bias, h, c, z, mask, out, backwards, b0, b1):
    _wide_vectors()
    K = _consts_like(x)
    B, T, F = x.shape
    H = h.shape[1]
    has_mask, has_b, has_out = mask.shape[0] > 0, bias.shape[0] > 0, out.shape[0] > 0
    tile = np.empty((b1 - b0, _packed.NR), np.float32)
    for s in range(T):
        t = T - 1 - s if backwards else s
        _project(x, W, PW, U, P, h, z, t, tile, b0, b1)
        for b in range(b0, b1):
            if not (has_mask and not mask[t, b]):
                g, hr, cr = z[b], h[b], c[b]
                if has_b:
                    for j in range(4 * H):
                        g[j] += bias[j]
                activate(g, cr, cr, H)
                for j in range(H):
                    hr[j] = g[3 * H + j] * _tanh(cr[j], K)
            _emit(h, out, s, b, has_out)


@njit(**JIT)
def _lstm_stream_step(x, W, U, b, h, c, z):
    _wide_vectors()
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
    _lstm_stream_step(np.ascontiguousarray(x, dt), W, U, opt(b, dt, 1), h, c, z)
    return h, c


class LSTMStream:
    """Streaming LSTM inference: one time step per :meth:`step` call, state kept inside.

    The whole step (``x @ kernel``, ``h @ recurrent_kernel``, bias and gates) is one
    compiled call that allocates nothing. Equations: :class:`rnnkit.cells.LSTMCell`
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
        >>> from rnnkit.kernels.lstm import LSTMStream
        >>> s = LSTMStream(np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32), None)
        >>> s.step(np.ones((1, 3), np.float32)).shape
        (1, 2)
    """

    def __init__(self, kernel, recurrent_kernel, bias=None, batch=1, states=None):
        dt = np.asarray(recurrent_kernel).dtype
        if dt not in DTYPES:
            raise ValueError(f"LSTMStream needs float32 or float64 weights, got {dt}; cast "
                             "the weights with .astype('float32').")
        self.W = np.ascontiguousarray(kernel, dt)
        self.U = np.ascontiguousarray(recurrent_kernel, dt)
        H = self.U.shape[0]
        if self.U.shape != (H, 4 * H) or self.W.ndim != 2 or self.W.shape[1] != 4 * H:
            raise ValueError(f"LSTMStream expects kernel (F, 4H) and recurrent_kernel (H, 4H), "
                             f"got {self.W.shape} and {self.U.shape}.")
        self.b = opt(bias, dt, 1)
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


def supports(cell, dtype) -> bool:
    """Exactly an LSTMCell with tanh / sigmoid and no options (peepholes, projection,
    zoneout), in float32 / float64."""
    return type(cell) is LSTMCell and cell.activation.name == "tanh" and \
        cell.recurrent_activation.name == "sigmoid" and np.dtype(dtype) in DTYPES and \
        cell.projected_path()


def forward(cell, xw, states0, mask=None, rmask=None, ws=None):
    """Compiled :func:`rnnkit.kernels.reference.forward` for this cell."""
    xw, U, m, rm, hp, hbuf = prepare_forward(xw, states0, cell.params["recurrent_kernel"],
                                             mask, rmask, ws)
    T, B, G = xw.shape
    H = U.shape[0]
    cbuf = _threads.buffer(ws, "cbuf", (T + 1, B, H), xw.dtype)
    cbuf[0] = states0[1]
    gates = _threads.buffer(ws, "gates", (T, B, G), xw.dtype)
    run(_lstm_fwd, B, H * G, T, xw, hbuf, cbuf, U, _packed.for_call(U, xw.dtype), m, rm,
        gates, hp)
    return hbuf[1:], [hbuf[T].copy(), cbuf[T].copy()], (hbuf, cbuf, gates)


def backward(cell, cache, dhs, dstates, mask=None, rmask=None, ws=None):
    """Compiled :func:`rnnkit.kernels.reference.backward` for this cell (``tanh(c_t)`` is
    the one value recomputed rather than kept)."""
    hbuf, cbuf, gates = cache
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    UT, m, rm, d, dst, dxw, dtmp = prepare_backward(hbuf, cell.params["recurrent_kernel"],
                                                    dhs, dstates, mask, rmask, ws)
    run(_lstm_bwd, B, H * 4 * H, T, gates, cbuf, UT, _packed.for_call(UT, UT.dtype), m, rm,
        d, dst[0], dst[1], dxw, dtmp)
    return dxw, dst, recurrent_grad(hbuf, rmask, dxw), None


def infer(cell, x, states0, mask=None, go_backwards=False, return_sequences=True):
    """Cache-free inference: x (B, T, F) -> ``(out (B, T, H) or None, final states)``."""
    x, W, U, bias, _, states, m = prepare_infer(cell, x, states0, mask)
    B, T, F = x.shape
    H, G = U.shape
    out = np.empty((B, T, H) if return_sequences else (0, 0, 0), x.dtype)
    z = np.empty((B, G), x.dtype)
    rows = B if T > 1 else 0
    PW, P = _packed.for_call(W, x.dtype, rows), _packed.for_call(U, x.dtype, rows)
    run(_lstm_infer, B, H * G + G * F, T, x, W, PW, U, P, bias, states[0], states[1],
        z, m, out, go_backwards)
    return (out if return_sequences else None), states


def stream_step(cell, x, states):
    """One compiled step for streaming: x (B, F) and ``[h, c]`` -> new ``[h, c]`` (the given
    states are not modified)."""
    b_in, _ = cell.split_bias()
    return list(lstm_step(x, cell.params["kernel"], cell.params["recurrent_kernel"], b_in,
                          states))
