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
from . import threads as _threads
from ._math import consts_like, exp_neg, log1p_pos
from ._math import sigmoid as _sigK

_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)


def supports(cell, dtype) -> bool:
    """Exactly MinGRUCell / MinLSTMCell, float32 or float64."""
    return type(cell) in (MinGRUCell, MinLSTMCell) and _scan.float_dtype(dtype)


@njit(**_JIT)
def _mingru_fwd_span(K, h0, mask, Hs, r0, r1, t0, t1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(t0, t1):
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
def _mingru_bwd_span(K, Hs, h0, dY, mask, dK, g, r0, r1, t0, t1):
    """Steps t1-1 .. t0 of rows [r0, r1). g (B, H): in dL/dh_{t1-1} from the later steps, out
    dL/dh_{t0-1}. dY empty = no per-step output gradient."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        for t in range(t1 - 1, t0 - 1, -1):
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
def _minlstm_fwd_span(K, h0, mask, Hs, r0, r1, t0, t1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(t0, t1):
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
def _minlstm_bwd_span(K, Hs, h0, dY, mask, dK, g, r0, r1, t0, t1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        for t in range(t1 - 1, t0 - 1, -1):
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


# Row split (wide batches): every thread runs whole sequences for its block of rows.

@njit(**_JIT)
def _mingru_fwd(K, h0, mask, Hs, r0, r1):
    _mingru_fwd_span(K, h0, mask, Hs, r0, r1, 0, Hs.shape[0])


@njit(**_JIT)
def _mingru_bwd(K, Hs, h0, dY, mask, dK, g, r0, r1):
    _mingru_bwd_span(K, Hs, h0, dY, mask, dK, g, r0, r1, 0, Hs.shape[0])


@njit(**_JIT)
def _minlstm_fwd(K, h0, mask, Hs, r0, r1):
    _minlstm_fwd_span(K, h0, mask, Hs, r0, r1, 0, Hs.shape[0])


@njit(**_JIT)
def _minlstm_bwd(K, Hs, h0, dY, mask, dK, g, r0, r1):
    _minlstm_bwd_span(K, Hs, h0, dY, mask, dK, g, r0, r1, 0, Hs.shape[0])


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


# Chunked time-parallel scan (long, narrow batches). Decays in log space:
#   minGRU  a = 1 - z = sigmoid(-k_z),  log a = -softplus(k_z)
#   minLSTM a = f' = f / (f + i),        log a = -log1p(i / f)
# (both finite for any input: the sigmoids never reach 0, see _math.sigmoid).

@njit(**_JIT)
def _mingru_fwd_local(K, mask, Hs, Lc, t0, t1):
    """Steps [t0, t1) of every row from h = 0: the local states into Hs, the cumulative
    log decay sum_{t0 <= s <= t} log a_s into Lc."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    zero = np.zeros(H, Hs.dtype)
    domask = mask.size > 0
    for b in range(B):
        for t in range(t0, t1):
            hp = zero if t == t0 else Hs[t - 1, b]
            lp = zero if t == t0 else Lc[t - 1, b]
            ho = Hs[t, b]
            lo = Lc[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                lo[:] = lp
                continue
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            for j in range(H):
                k = kz[j]
                e = exp_neg(-abs(k), KK)
                d = one + e
                z = one / d if k >= 0 else e / d
                s = _sigK(kh[j], KK)
                ht = kh[j] + half if kh[j] >= 0 else s
                ho[j] = hp[j] + z * (ht - hp[j])
                lo[j] = lp[j] - (max(k, one - one) + log1p_pos(e, KK))


@njit(**_JIT)
def _minlstm_fwd_local(K, mask, Hs, Lc, t0, t1):
    """As :func:`_mingru_fwd_local` for minLSTM."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    zero = np.zeros(H, Hs.dtype)
    domask = mask.size > 0
    for b in range(B):
        for t in range(t0, t1):
            hp = zero if t == t0 else Hs[t - 1, b]
            lp = zero if t == t0 else Lc[t - 1, b]
            ho = Hs[t, b]
            lo = Lc[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                lo[:] = lp
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
                lo[j] = lp[j] - log1p_pos(si / sf, KK)


@njit(**_JIT)
def _mingru_bwd_local(K, dY, mask, dK, g, dec, t0, t1):
    """Steps t1-1 .. t0 of every row, reversed, from g = 0 (g (B, H) zeros on entry): the
    local dL/dh_t into dK[t, :, :H], the log decay sum_{t < s < t1} log a_s into
    dK[t, :, H:2H]; on exit g holds the local gradient leaving the chunk (into h_{t0-1}) and
    dec (B, H) the chunk's total log decay."""
    T, B, G = K.shape
    H = g.shape[1]
    KK = consts_like(g)
    one = KK[0]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(B):
        gb = g[b]
        rb = dec[b]
        rb[:] = 0
        for t in range(t1 - 1, t0 - 1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            dK[t, b, :H] = gb
            dK[t, b, H:2 * H] = rb
            if domask and not mask[t, b]:
                continue
            kz = K[t, b, :H]
            for j in range(H):
                k = kz[j]
                e = exp_neg(-abs(k), KK)
                d = one + e
                gb[j] *= e / d if k >= 0 else one / d
                rb[j] -= max(k, one - one) + log1p_pos(e, KK)


@njit(**_JIT)
def _minlstm_bwd_local(K, dY, mask, dK, g, dec, t0, t1):
    """As :func:`_mingru_bwd_local` for minLSTM."""
    T, B, G = K.shape
    H = g.shape[1]
    KK = consts_like(g)
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(B):
        gb = g[b]
        rb = dec[b]
        rb[:] = 0
        for t in range(t1 - 1, t0 - 1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            dK[t, b, :H] = gb
            dK[t, b, H:2 * H] = rb
            if domask and not mask[t, b]:
                continue
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            for j in range(H):
                si = _sigK(ki[j], KK)
                sf = _sigK(kf[j], KK)
                gb[j] *= sf / (sf + si)
                rb[j] -= log1p_pos(si / sf, KK)


@njit(**_JIT)
def _mingru_bwd_fix(K, Hs, h0, mask, dK, gin, cedges, t0, t1):
    """Steps [t0, t1) of the non-final chunks: dL/dh_t = local + exp(decay) * gin[chunk],
    then dK from it (in place of the local values)."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    c = 0
    for t in range(t0, t1):
        while t >= cedges[c + 1]:
            c += 1
        for b in range(B):
            if domask and not mask[t, b]:
                dK[t, b, :] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            gi = gin[c, b]
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            dz = dK[t, b, :H]
            dh = dK[t, b, H:]
            for j in range(H):
                gj = dz[j] + exp_neg(dh[j], KK) * gi[j]
                z = _sigK(kz[j], KK)
                s = _sigK(kh[j], KK)
                pos = kh[j] >= 0
                ht = kh[j] + half if pos else s
                gd = one if pos else s * (one - s)
                dz[j] = gj * (ht - hp[j]) * z * (one - z)
                dh[j] = gj * z * gd


@njit(**_JIT)
def _minlstm_bwd_fix(K, Hs, h0, mask, dK, gin, cedges, t0, t1):
    """As :func:`_mingru_bwd_fix` for minLSTM."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    c = 0
    for t in range(t0, t1):
        while t >= cedges[c + 1]:
            c += 1
        for b in range(B):
            if domask and not mask[t, b]:
                dK[t, b, :] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            gi = gin[c, b]
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            di = dK[t, b, :H]
            df = dK[t, b, H:2 * H]
            dh = dK[t, b, 2 * H:]
            for j in range(H):
                gj = di[j] + exp_neg(df[j], KK) * gi[j]
                si = _sigK(ki[j], KK)
                sf = _sigK(kf[j], KK)
                s = sf + si
                fp = sf / s
                q = _sigK(kh[j], KK)
                pos = kh[j] >= 0
                ht = kh[j] + half if pos else q
                gd = one if pos else q * (one - q)
                w = gj * (hp[j] - ht) / (s * s)
                di[j] = -w * sf * si * (one - si)
                df[j] = w * si * sf * (one - sf)
                dh[j] = gj * (one - fp) * gd


def _make_chunked(fwd_span, fwd_local, bwd_span, bwd_local, bwd_fix):
    """The three parallel regions of one cell's chunked scan (numba prange over chunks or
    over pieces of steps)."""

    @njit(**_PAR_JIT)
    def fwd_pass1(K, h0, mask, Hs, Lc, cedges):
        # chunk 0 runs from the true h0 (no fix-up needed); the others from 0
        for c in prange(cedges.shape[0] - 1):
            if c == 0:
                fwd_span(K, h0, mask, Hs, 0, Hs.shape[1], 0, cedges[1])
            else:
                fwd_local(K, mask, Hs, Lc, cedges[c], cedges[c + 1])

    @njit(**_PAR_JIT)
    def bwd_pass1(K, Hs, h0, dY, mask, dK, gs, dec, cedges):
        # the last chunk runs from the true dL/dh_{T-1} (gs[-1]) and writes dK directly
        C = cedges.shape[0] - 1
        for c in prange(C):
            if c == C - 1:
                bwd_span(K, Hs, h0, dY, mask, dK, gs[c], 0, Hs.shape[1], cedges[c],
                         cedges[c + 1])
            else:
                bwd_local(K, dY, mask, dK, gs[c], dec[c], cedges[c], cedges[c + 1])

    @njit(**_PAR_JIT)
    def bwd_pass3(K, Hs, h0, mask, dK, gin, cedges, pedges):
        for p in prange(pedges.shape[0] - 1):
            bwd_fix(K, Hs, h0, mask, dK, gin, cedges, pedges[p], pedges[p + 1])

    return fwd_pass1, bwd_pass1, bwd_pass3


_LOOPS = {MinGRUCell: (_mingru_fwd, _mingru_fwd_par, _mingru_bwd, _mingru_bwd_par),
          MinLSTMCell: (_minlstm_fwd, _minlstm_fwd_par, _minlstm_bwd, _minlstm_bwd_par)}
_CHUNKED = {MinGRUCell: _make_chunked(_mingru_fwd_span, _mingru_fwd_local, _mingru_bwd_span,
                                      _mingru_bwd_local, _mingru_bwd_fix),
            MinLSTMCell: _make_chunked(_minlstm_fwd_span, _minlstm_fwd_local,
                                       _minlstm_bwd_span, _minlstm_bwd_local, _minlstm_bwd_fix)}


def _chunked_forward(cell, K, h0, m, Hs, C):
    """Forward scan by C time chunks: local scans in parallel, the sequential carry over the
    chunk ends, the parallel fix-up (see the module docstring)."""
    fwd_pass1 = _CHUNKED[type(cell)][0]
    T = K.shape[0]
    ce = _scan.chunk_edges(T, C)
    Lc = np.empty_like(Hs) if C > 1 else Hs[:0]
    with _threads.launch(C):
        fwd_pass1(K, h0, m, Hs, Lc, ce)
    if C == 1:
        return
    ends = ce[2:-1] - 1                                 # last steps of chunks 1 .. C-2
    hin = np.zeros((C,) + h0.shape, h0.dtype)
    hin[1:] = _scan.carry(Hs[ce[1] - 1], Lc[ends], Hs[ends])
    _scan.fix_forward(Hs, Lc, hin, ce)


def _chunked_backward(cell, K, Hs, h0, dY, m, dK, g, C):
    """Backward (reverse) scan by C time chunks; returns dL/dh_0 (B, H)."""
    _, bwd_pass1, bwd_pass3 = _CHUNKED[type(cell)]
    T = K.shape[0]
    ce = _scan.chunk_edges(T, C)
    gs = np.zeros((C,) + g.shape, g.dtype)
    gs[-1] = g
    dec = np.zeros_like(gs)
    with _threads.launch(C):
        bwd_pass1(K, Hs, h0, dY, m, dK, gs, dec, ce)
    if C == 1:
        return gs[0]
    # gradient entering chunk c from the later steps: gin[C-2] = gs[C-1] (exact), then
    # gin[c-1] = exp(dec[c]) gin[c] + gs[c]; the last value is dL/dh_0
    seq = _scan.carry(gs[-1], dec[C - 2::-1], gs[C - 2::-1])      # gin[C-2], ..., gin[0], dh0
    gin = np.ascontiguousarray(seq[C - 2::-1])                    # gin[0 .. C-2]
    pe = _scan.piece_edges(0, int(ce[C - 1]), _threads.count())
    with _threads.launch(len(pe) - 1):
        bwd_pass3(K, Hs, h0, m, dK, gin, ce, pe)
    return seq[-1]


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Run the cell over xs (T, B, F); returns ``(hs (T, B, H), [h_T], cache)``. The scan is
    the row split or the chunked time-parallel one, as :func:`._scan.time_chunks` decides."""
    fwd, fwd_par = _LOOPS[type(cell)][:2]
    T, B, _ = xs.shape
    dt = xs.dtype
    K = _scan.project(xs, cell.params["kernel"])                # (T, B, G): x W
    if cell.use_bias:
        K += cell.params["bias"]
    h0 = np.ascontiguousarray(states0[0], dt)
    m = _scan.mask_arg(mask)
    Hs = np.empty((T, B, cell.units), dt)
    C = _scan.time_chunks(B, T)
    if C:
        _chunked_forward(cell, K, h0, m, Hs, C)
    else:
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
    T, B = K.shape[:2]
    C = _scan.time_chunks(B, T)
    if C:
        g = _chunked_backward(cell, K, Hs, h0, dY, m, dK, g, C)
    else:
        _scan.run(bwd, bwd_par, B, K, Hs, h0, dY, m, dK, g)
    dxs, dparams = _scan.project_backward(xs, dK, cell.params["kernel"], cell.use_bias,
                                          input_grad)
    return dxs, [g], dparams

