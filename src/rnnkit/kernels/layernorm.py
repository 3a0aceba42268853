"""Compiled training loops for :class:`~rnnkit.cells.LayerNormLSTMCell` and
:class:`~rnnkit.cells.LayerNormGRUCell` (equations: :mod:`rnnkit.cells.layernorm`).

Kernel contract: :mod:`rnnkit.kernels` (whole-sequence kernels of a non-projected cell,
``forward(cell, xs, ...)`` on the raw (T, B, F) input). One step for a batch row ``b``:

* the product ``X @ W`` is one BLAS call over all T*B rows before the loop, kept raw
  (T, B, G); its layer norm is taken row by row inside the loop (mean and 1/std kept,
  (T, B, 2)), where the row is in cache anyway;
* ``h_{t-1} @ U`` for the thread's rows is one direct OpenBLAS call per step
  (:func:`._blas.gemm`), normalised in place (the normalised product is kept, (T, B, G),
  with its 1/std);
* the gates, the cell update and (LSTM) the cell-state norm, ``tanh`` and zoneout are one
  pass over the row (branch-free sigmoid / tanh of :mod:`._math`).

Backward runs the steps in reverse: the element-wise derivatives and the two layer-norm
backwards of a row write dL/d(X @ W) over the kept ``X @ W`` and dL/d(h @ U) over the kept
normalised product (so backward consumes its cache: one backward per forward), gamma and
bias gradients accumulate per row, and ``dZ_t @ U^T`` is the only per-step product.
``dU``, ``dW`` and ``dX`` are products over all T*B rows after the loop. Rows are split
across rnnkit's threads (:func:`._loops.run`).

Zoneout in training draws its masks from the cell's generator before the loop, all T steps
in one call: ``random((T, B, H))`` is the same stream as the reference's T draws of
``random((B, H))``. Inference uses the expectation. Recurrent dropout (``rmask``) is not
an option of these cells; if one is passed anyway the generic loop runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _backend
from ..cells.layernorm import EPS, LayerNormGRUCell, LayerNormLSTMCell
from . import _blas, _scan, reference
from ._loops import DTYPES, JIT, recurrent_grad, run
from ._loops import add_row as _add_row
from ._loops import copy as _copy
from ._loops import fill as _fill
from ._math import FASTMATH
from ._math import consts_like as _consts_like
from ._math import sigmoid as _sigmoid
from ._math import tanh as _tanh
from ._math import wide_vectors as _wide_vectors
from .lstm import activate as _lstm_activate

# Row sums may also be reassociated (beyond FMA contraction): LLVM then vectorizes them,
# which it never does for an ordered floating-point sum.
_SUM_JIT = dict(JIT, fastmath=dict(FASTMATH, reassoc=True))

#: the zoneout masks of one draw hold at most this many values (the stream is the same
#: whatever the chunking: the draws concatenate in order)
_DRAW_CHUNK = 1 << 20


def supports(cell, dtype) -> bool:
    """Exactly LayerNormLSTMCell / LayerNormGRUCell (any options), float32 or float64."""
    return type(cell) in (LayerNormLSTMCell, LayerNormGRUCell) and np.dtype(dtype) in DTYPES


# ---------------------------------------------------------------------------------------
# row helpers (1-D views of one batch row; short loops that LLVM vectorizes)

@njit(**_SUM_JIT)
def _stats(v, rn, eps):
    """``(mean, 1 / sqrt(var + eps))`` of the row ``v``; ``rn`` = 1 / len(v)."""
    K = _consts_like(v)
    s = K[0] - K[0]
    for j in range(v.shape[0]):
        s += v[j]
    mu = s * rn
    q = K[0] - K[0]
    for j in range(v.shape[0]):
        d = v[j] - mu
        q += d * d
    return mu, K[0] / np.sqrt(q * rn + eps)


@njit(**_SUM_JIT)
def _ln_sums(dout, gain, vh):
    """``(sum(dout * gain), sum(dout * gain * vh))`` over the row."""
    K = _consts_like(vh)
    a = K[0] - K[0]
    c = K[0] - K[0]
    for j in range(vh.shape[0]):
        e = dout[j] * gain[j]
        a += e
        c += e * vh[j]
    return a, c


@njit(**JIT)
def _ln_back(dout, gain, vh, inv, rn, dst, dgain):
    """Layer-norm backward of one row (``out = vh * gain``, ``vh = (v - mean) * inv``):
    ``dst = dL/dv`` (``dst`` may be ``vh`` itself) and ``dgain += dout * vh``."""
    _wide_vectors()
    a, c = _ln_sums(dout, gain, vh)
    a, c = a * rn, c * rn
    for j in range(vh.shape[0]):
        dgain[j] += dout[j] * vh[j]
    for j in range(vh.shape[0]):
        dst[j] = inv * ((dout[j] * gain[j] - a) - vh[j] * c)


@njit(**JIT)
def _normalize(v, mu, inv):
    """v = (v - mu) * inv in place."""
    _wide_vectors()
    for j in range(v.shape[0]):
        v[j] = (v[j] - mu) * inv


@njit(**JIT)
def _scaled(src, mu, inv, gain, dst):
    """dst = ((src - mu) * inv) * gain: a layer norm's output without shift."""
    _wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] = ((src[j] - mu) * inv) * gain[j]


@njit(**JIT)
def _add(dst, src):
    _wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] += src[j]


@njit(**JIT)
def _add_prod(dst, a, w):
    """dst += a * w."""
    _wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] += a[j] * w[j]


@njit(**JIT)
def _zone(hn, hp, zm, t, b, has_zm, zrate, use_rate):
    """Zoneout of the new state in place: ``h = h~ + m (h_prev - h~)``."""
    _wide_vectors()
    if has_zm:
        m = zm[t, b]
        for j in range(hn.shape[0]):
            hn[j] = hn[j] + m[j] * (hp[j] - hn[j])
    elif use_rate:
        for j in range(hn.shape[0]):
            hn[j] = hn[j] + zrate * (hp[j] - hn[j])


@njit(**JIT)
def _zone_back(d, e, zm, t, b, has_zm, zrate, use_rate):
    """Split ``d`` = dL/dh_t into ``e`` = dL/dh~_t and ``d`` := the part that zoneout passes
    straight to h_{t-1} (zero without zoneout)."""
    _wide_vectors()
    K = _consts_like(d)
    if has_zm:
        m = zm[t, b]
        for j in range(d.shape[0]):
            e[j] = d[j] * (K[0] - m[j])
        for j in range(d.shape[0]):
            d[j] = d[j] * m[j]
    elif use_rate:
        for j in range(d.shape[0]):
            e[j] = d[j] * (K[0] - zrate)
        for j in range(d.shape[0]):
            d[j] = d[j] * zrate
    else:
        _copy(d, e)
        _fill(d, K[0] - K[0])


@njit(**JIT)
def _rec_back(zh, UT, dtmp, dh, mask, t, has_mask, b0, b1):
    """dh[b] += (dL/d(h @ U))_t[b] @ U^T on the rows b0:b1 not masked at step t."""
    _wide_vectors()
    K = _consts_like(zh)
    T, B, G = zh.shape
    H = UT.shape[1]
    _blas.gemm(0, 0, b1 - b0, H, G, K[0], zh, t * B * G + b0 * G, G, UT, 0, H, K[0] - K[0],
               dtmp, b0 * H, H)
    for b in range(b0, b1):
        if not (has_mask and not mask[t, b]):
            _add(dh[b], dtmp[b])


# ---------------------------------------------------------------------------------------
# LayerNormLSTM

@njit(**JIT)
def _lstm_fwd(xw, hbuf, cbuf, U, g0, g1, bias, gh, bh, mask, zm, sc, stx, zh, sth, gates,
              stc, b0, b1):
    """Forward over rows b0:b1.

    In: xw (T, B, 4H) = X @ W, hbuf[0] and cbuf[0] the initial states, zm (T, B, H) zoneout
    masks or empty, sc = (1/4H, 1/H, eps, inference zoneout rate). Out: hbuf[1:],
    cbuf[1:] (T, B, H); stx (T, B, 2) mean and 1/std of the xw rows; zh (T, B, 4H) the
    normalised h_{t-1} @ U and sth (T, B) its 1/std; gates (T, B, 4H) activated i, f, g,
    o; stc (T, B, 2) mean and 1/std of c_t."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    H = G // 4
    zero = K[0] - K[0]
    has_mask, has_b, has_zm = mask.shape[0] > 0, bias.shape[0] > 0, zm.shape[0] > 0
    rg, rh, eps, zrate = sc[0], sc[1], sc[2], sc[3]
    use_rate = zrate != zero
    for t in range(T):
        _blas.gemm(0, 0, b1 - b0, G, H, K[0], hbuf, t * B * H + b0 * H, H, U, 0, G, zero,
                   zh, t * B * G + b0 * G, G)                                  # h_{t-1} @ U
        for b in range(b0, b1):
            hp, cp, hn, cn = hbuf[t, b], cbuf[t, b], hbuf[t + 1, b], cbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(hp, hn)
                _copy(cp, cn)
                continue
            x, z, g = xw[t, b], zh[t, b], gates[t, b]
            mx, ix = _stats(x, rg, eps)
            stx[t, b, 0], stx[t, b, 1] = mx, ix
            mz, iz = _stats(z, rg, eps)
            sth[t, b] = iz
            _normalize(z, mz, iz)
            _scaled(x, mx, ix, g0, g)                   # v = LN(x W) + LN(h U) + bias
            _add_prod(g, z, g1)
            if has_b:
                _add(g, bias)
            _lstm_activate(g, cp, cn, H)                # i, f, c, o; c = f c' + i g
            mc, ic = _stats(cn, rh, eps)
            stc[t, b, 0], stc[t, b, 1] = mc, ic
            for j in range(H):                                          # h = o tanh(LN(c))
                hn[j] = g[3 * H + j] * _tanh(((cn[j] - mc) * ic) * gh[j] + bh[j], K)
            _zone(hn, hp, zm, t, b, has_zm, zrate, use_rate)


@njit(**JIT)
def _lstm_bwd(xw, cbuf, zh, sth, gates, stx, stc, UT, g0, g1, gh, bh, mask, zm, sc, dhs,
              dh, dc, dtmp, dv, dn, vc, acc_g0, acc_g1, acc_b, acc_gh, acc_bh, b0, b1):
    """Reverse pass over rows b0:b1 (arrays as in :func:`_lstm_fwd`).

    dh, dc (B, H): in dL/d(final states), out dL/d(initial states); dhs (T, B, H) or empty.
    Out: xw := dL/d(X @ W), zh := dL/d(h_{t-1} @ U) (zero rows at masked steps), and per-row
    sums acc_g0, acc_g1 (B, 4H) (the two gamma rows), acc_b (B, 4H) (bias), acc_gh, acc_bh
    (B, H) (gamma_h, beta_h). dv (B, 4H), dn, vc (B, H) and dtmp (B, H) are scratch."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    H = G // 4
    one, zero = K[0], K[0] - K[0]
    has_mask, has_zm, has_dhs = mask.shape[0] > 0, zm.shape[0] > 0, dhs.shape[0] > 0
    rg, rh, zrate = sc[0], sc[1], sc[3]
    use_rate = zrate != zero
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d, dcr = dh[b], dc[b]
            _add_row(d, dhs, t, b, has_dhs)
            x, z = xw[t, b], zh[t, b]
            if has_mask and not mask[t, b]:
                _fill(x, zero)
                _fill(z, zero)
                continue                                     # dh, dc carried unchanged
            g, cp, cn = gates[t, b], cbuf[t, b], cbuf[t + 1, b]
            s, e, v = dv[b], dn[b], vc[b]
            _zone_back(d, e, zm, t, b, has_zm, zrate, use_rate)     # e = dL/dh~
            _normalize_into(cn, stc[t, b, 0], stc[t, b, 1], v)      # v = LN(c) before gain
            for j in range(H):
                s[3 * H + j] = _tanh(v[j] * gh[j] + bh[j], K)      # tanh(LN(c)), for now
            for j in range(H):                                       # h~ = o tanh(LN(c))
                tc, o = s[3 * H + j], g[3 * H + j]
                s[3 * H + j] = (e[j] * tc) * (o * (one - o))
                e[j] = (e[j] * o) * (one - tc * tc)                  # e := dL/dLN(c)
            _add(acc_bh[b], e)
            _ln_back(e, gh, v, stc[t, b, 1], rh, v, acc_gh[b])      # v := dL/dc via LN
            _add(dcr, v)
            for j in range(H):                                       # c = f c' + i g
                i = g[j]
                s[j] = (dcr[j] * g[2 * H + j]) * (i * (one - i))
            for j in range(H):
                f = g[H + j]
                s[H + j] = (dcr[j] * cp[j]) * (f * (one - f))
            for j in range(H):
                gg = g[2 * H + j]
                s[2 * H + j] = (dcr[j] * g[j]) * (one - gg * gg)
            for j in range(H):
                dcr[j] = dcr[j] * g[H + j]
            _add(acc_b[b], s)
            _normalize(x, stx[t, b, 0], stx[t, b, 1])               # x := LN(x W) before gain
            _ln_back(s, g0, x, stx[t, b, 1], rg, x, acc_g0[b])       # x := dL/d(x W)
            _ln_back(s, g1, z, sth[t, b], rg, z, acc_g1[b])          # z := dL/d(h U)
        _rec_back(zh, UT, dtmp, dh, mask, t, has_mask, b0, b1)


@njit(**JIT)
def _normalize_into(src, mu, inv, dst):
    """dst = (src - mu) * inv."""
    _wide_vectors()
    for j in range(dst.shape[0]):
        dst[j] = (src[j] - mu) * inv


# ---------------------------------------------------------------------------------------
# LayerNormGRU

@njit(**JIT)
def _gru_fwd(xw, hbuf, U, g0, g1, b0v, b1v, mask, zm, sc, stx, zh, sth, gates, w,
             b0, b1):
    """Forward over rows b0:b1.

    In: xw (T, B, 3H) = X @ W, hbuf[0], b0v / b1v the input / recurrent bias rows (3H,) or
    empty, zm, sc as in :func:`_lstm_fwd`. Out: hbuf[1:], stx, zh, sth as in
    :func:`_lstm_fwd`, gates (T, B, 3H) z, r and the candidate; w (B, 3H) scratch."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    H = G // 3
    zero = K[0] - K[0]
    has_mask, has_b, has_zm = mask.shape[0] > 0, b0v.shape[0] > 0, zm.shape[0] > 0
    rg, eps, zrate = sc[0], sc[2], sc[3]
    use_rate = zrate != zero
    for t in range(T):
        _blas.gemm(0, 0, b1 - b0, G, H, K[0], hbuf, t * B * H + b0 * H, H, U, 0, G, zero,
                   zh, t * B * G + b0 * G, G)                                  # h_{t-1} @ U
        for b in range(b0, b1):
            hp, hn = hbuf[t, b], hbuf[t + 1, b]
            if has_mask and not mask[t, b]:
                _copy(hp, hn)
                continue
            x, z, g, a = xw[t, b], zh[t, b], gates[t, b], w[b]
            mx, ix = _stats(x, rg, eps)
            stx[t, b, 0], stx[t, b, 1] = mx, ix
            mz, iz = _stats(z, rg, eps)
            sth[t, b] = iz
            _normalize(z, mz, iz)
            _scaled(x, mx, ix, g0, g)                          # a = LN(x W) + bias[0]
            for j in range(G):
                a[j] = z[j] * g1[j]                            # bh = LN(h U) + bias[1]
            if has_b:
                _add(g, b0v)
                _add(a, b1v)
            for j in range(2 * H):
                g[j] = _sigmoid(g[j] + a[j], K)                                  # z, r
            for j in range(H):
                g[2 * H + j] = _tanh(g[2 * H + j] + g[H + j] * a[2 * H + j], K)  # candidate
            for j in range(H):
                hh = g[2 * H + j]
                hn[j] = hh + g[j] * (hp[j] - hh)                  # h = z h' + (1 - z) hh
            _zone(hn, hp, zm, t, b, has_zm, zrate, use_rate)


@njit(**JIT)
def _gru_bwd(xw, hbuf, zh, sth, gates, stx, UT, g0, g1, b1v, mask, zm, sc, dhs, dh, dtmp,
             dv, dn, acc_g0, acc_g1, acc_b0, acc_b1, b0, b1):
    """Reverse pass over rows b0:b1 (arrays as in :func:`_gru_fwd`).

    dh (B, H): in dL/d(final state), out dL/d(initial state). Out: xw := dL/d(X @ W),
    zh := dL/d(h_{t-1} @ U), per-row sums acc_g0, acc_g1 (gamma rows), acc_b0, acc_b1
    (bias rows), all (B, 3H). dv (B, 3H), dn and dtmp (B, H) are scratch."""
    _wide_vectors()
    K = _consts_like(xw)
    T, B, G = xw.shape
    H = G // 3
    one, zero = K[0], K[0] - K[0]
    has_mask, has_zm, has_dhs = mask.shape[0] > 0, zm.shape[0] > 0, dhs.shape[0] > 0
    has_b = b1v.shape[0] > 0
    rg, zrate = sc[0], sc[3]
    use_rate = zrate != zero
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            d = dh[b]
            _add_row(d, dhs, t, b, has_dhs)
            x, z = xw[t, b], zh[t, b]
            if has_mask and not mask[t, b]:
                _fill(x, zero)
                _fill(z, zero)
                continue
            g, hp = gates[t, b], hbuf[t, b]
            s, e = dv[b], dn[b]
            _zone_back(d, e, zm, t, b, has_zm, zrate, use_rate)     # e = dL/dh~
            for j in range(H):                                  # h~ = z h' + (1 - z) hh
                zz, hh = g[j], g[2 * H + j]
                s[2 * H + j] = (e[j] * (one - zz)) * (one - hh * hh)
            for j in range(H):
                zz, hh = g[j], g[2 * H + j]
                s[j] = ((e[j] * (hp[j] - hh)) * zz) * (one - zz)
            for j in range(H):
                d[j] += e[j] * g[j]
            for j in range(H):                                      # hh = tanh(a + r bh)
                s[H + j] = z[2 * H + j] * g1[2 * H + j]              # bh, the candidate slot
            if has_b:
                for j in range(H):
                    s[H + j] += b1v[2 * H + j]
            for j in range(H):
                r = g[H + j]
                s[H + j] = ((s[2 * H + j] * s[H + j]) * r) * (one - r)
            _add(acc_b0[b], s)
            _normalize(x, stx[t, b, 0], stx[t, b, 1])               # x := LN(x W) before gain
            _ln_back(s, g0, x, stx[t, b, 1], rg, x, acc_g0[b])       # x := dL/d(x W)
            for j in range(H):
                s[2 * H + j] = s[2 * H + j] * g[H + j]               # dL/dbh = r dL/d(cand)
            _add(acc_b1[b], s)
            _ln_back(s, g1, z, sth[t, b], rg, z, acc_g1[b])          # z := dL/d(h U)
        _rec_back(zh, UT, dtmp, dh, mask, t, has_mask, b0, b1)


# ---------------------------------------------------------------------------------------
# Python side

def _zoneout_masks(cell, T, B, H, dt):
    """(T, B, H) 0/1 masks drawn as the cell's step draws them (one (B, H) per step)."""
    rng = cell.zoneout_rng or _backend.rng()
    zm = np.empty((T, B, H), dt)
    k = max(1, _DRAW_CHUNK // max(1, B * H))
    for t0 in range(0, T, k):
        t1 = min(T, t0 + k)
        zm[t0:t1] = rng.random((t1 - t0, B, H)) < cell.zoneout
    return zm


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Run the cell over xs (T, B, F) (``training`` draws zoneout masks, else zoneout's
    expectation). Returns ``(hs (T, B, H), final states [h] or [h, c], cache)``."""
    if rmask is not None:          # not an option of these cells: the cell's own step decides
        ys, states, cache = reference.forward_steps(cell, xs, states0, mask, rmask, training)
        return ys, states, {"reference": cache}
    lstm = type(cell) is LayerNormLSTMCell
    T, B, _ = xs.shape
    dt = xs.dtype
    p = cell.params
    H = cell.units
    G = cell.n_gates * H

    def arr(name):
        return np.ascontiguousarray(p[name], dt)

    xw = _scan.project(xs, arr("kernel"))                                  # (T, B, G)
    U, gamma = arr("recurrent_kernel"), arr("gamma")
    g0, g1 = np.ascontiguousarray(gamma[0]), np.ascontiguousarray(gamma[1])
    m = _scan.mask_arg(mask)
    zoned = training and cell.zoneout > 0
    zm = _zoneout_masks(cell, T, B, H, dt) if zoned else np.empty((0, 0, 0), dt)
    sc = np.array([1.0 / G, 1.0 / H, EPS, 0.0 if training else cell.zoneout], dt)
    hbuf = np.empty((T + 1, B, H), dt)
    hbuf[0] = states0[0]
    stx = np.empty((T, B, 2), dt)
    zh = np.empty((T, B, G), dt)
    sth = np.empty((T, B), dt)
    gates = np.empty((T, B, G), dt)
    cache = {"xs": xs, "xw": xw, "hbuf": hbuf, "stx": stx, "zh": zh, "sth": sth,
             "gates": gates, "zm": zm, "sc": sc, "mask": m, "U": U, "g0": g0, "g1": g1}
    if lstm:
        bias = _scan.bias_arg(p.get("bias"), G, dt)
        gh, bh = arr("gamma_h"), arr("beta_h")
        cbuf = np.empty((T + 1, B, H), dt)
        cbuf[0] = states0[1]
        stc = np.empty((T, B, 2), dt)
        run(_lstm_fwd, B, H * G, T, xw, hbuf, cbuf, U, g0, g1, bias, gh, bh, m, zm, sc,
            stx, zh, sth, gates, stc)
        cache.update(cbuf=cbuf, stc=stc, gh=gh, bh=bh)
        return hbuf[1:], [hbuf[T].copy(), cbuf[T].copy()], cache
    if cell.use_bias:
        bias = arr("bias")
        bx, bhv = np.ascontiguousarray(bias[0]), np.ascontiguousarray(bias[1])
    else:
        bx = bhv = np.zeros(0, dt)
    run(_gru_fwd, B, H * G, T, xw, hbuf, U, g0, g1, bx, bhv, m, zm, sc, stx, zh, sth,
        gates, np.empty((B, G), dt))
    cache.update(bhv=bhv)
    return hbuf[1:], [hbuf[T].copy()], cache


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`; returns ``(dxs (T, B, F) or None when not input_grad,
    dstates0 ([dh0] or [dh0, dc0]), dparams in the order of cell.param_names)``.

    The cache is consumed (its buffers are reused for the gradients): one backward per
    forward."""
    if "reference" in cache:
        return reference.backward_steps(cell, cache["reference"], dys, dstates, mask)
    if cache.get("consumed"):
        raise RuntimeError("backward: this forward's cache was already used by a backward "
                           "call (its buffers now hold gradients); run forward again.")
    cache["consumed"] = True
    xw, hbuf, zh = cache["xw"], cache["hbuf"], cache["zh"]
    T, B, G = xw.shape
    H = hbuf.shape[2]
    dt = xw.dtype
    h0 = hbuf[0]
    dh = _scan.state_grad(dstates[0], h0)
    dY = _scan.seq_grad(dys, dt)
    UT = np.ascontiguousarray(cache["U"].T)
    dtmp, dn, dv = np.empty((B, H), dt), np.empty((B, H), dt), np.empty((B, G), dt)
    acc = [np.zeros((B, G), dt) for _ in range(4)]          # gamma rows, bias (rows)
    common = (cache["sc"],)
    if type(cell) is LayerNormLSTMCell:
        dc = _scan.state_grad(dstates[1], h0)
        acc_h = [np.zeros((B, H), dt) for _ in range(2)]
        run(_lstm_bwd, B, H * G, T, xw, cache["cbuf"], zh, cache["sth"], cache["gates"],
            cache["stx"], cache["stc"], UT, cache["g0"], cache["g1"], cache["gh"],
            cache["bh"], cache["mask"], cache["zm"], *common, dY, dh, dc, dtmp, dv, dn,
            np.empty((B, H), dt), acc[0], acc[1], acc[2], acc_h[0], acc_h[1])
        d0 = [dh, dc]
        grads = {"bias": acc[2].sum(axis=0), "gamma_h": acc_h[0].sum(axis=0),
                 "beta_h": acc_h[1].sum(axis=0)}
    else:
        run(_gru_bwd, B, H * G, T, xw, hbuf, zh, cache["sth"], cache["gates"], cache["stx"],
            UT, cache["g0"], cache["g1"], cache["bhv"], cache["mask"], cache["zm"], *common,
            dY, dh, dtmp, dv, dn, acc[0], acc[1], acc[2], acc[3])
        d0 = [dh]
        grads = {"bias": np.stack([acc[2].sum(axis=0), acc[3].sum(axis=0)])}
    dxs, (dW,) = _scan.project_backward(cache["xs"], xw, cell.params["kernel"], False,
                                        input_grad)
    grads.update(kernel=dW, recurrent_kernel=recurrent_grad(hbuf, None, zh),
                 gamma=np.stack([acc[0].sum(axis=0), acc[1].sum(axis=0)]))
    return dxs, d0, [grads[name] for name in cell.param_names]
