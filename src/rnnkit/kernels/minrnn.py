"""Compiled scans for :class:`~rnnkit.cells.MinGRUCell` and :class:`~rnnkit.cells.MinLSTMCell`.

Both cells are ``h_t = a_t * h_{t-1} + b_t`` with ``a_t, b_t`` functions of ``x_t`` alone, so a
training step needs no per-step matrix product: the input projection ``K = X @ kernel +
bias`` (all T*B rows), one pass of the scan over time (each row of the batch independent),
one reverse pass for the gradients (another linear scan, ``g_{t-1} = a_t * g_t +
dL/dh_{t-1}``), and the products for ``dkernel``, ``dbias`` and ``dX``. That is what makes
these cells several times faster than an LSTM of the same width.

**Two ways to run the scans**, chosen per call by :func:`._scan.time_chunks`:

* *row split, fused with the products* (wide batches, ``B >= 2 * threads``, or short
  sequences): each thread runs the sequential recurrence over all T steps for its block of
  rows, time outer. Forward, per step: the rows' ``x_t @ kernel`` (one small OpenBLAS
  product, :func:`._scan.project_rows`), then at once their gates and states while those
  rows are in L1; the gates the backward needs overwrite them in place (minGRU ``[z | s]``, minLSTM
  ``[sigma(k_i) | sigma(k_f) | s]``, ``s = g(k_h)`` with its branch kept in its sign,
  :func:`_g_signed`), so the backward computes no exponential and no division. Backward,
  by blocks of steps (about 512 KB of ``dK`` rows, :func:`._scan.block_steps`): the
  reverse scan writes the block's ``dK`` into a scratch, and ``dW += X^T dK``,
  ``db += sum dK``, ``dX = dK W^T`` run on it while it is in cache
  (:func:`._scan.block_grads`). Neither the (T, B, G) products nor ``dK`` go through
  memory a second time; the first layer of a model skips ``dX``. The backward's per-unit
  loops vectorize (each writes at most two arrays and reads three: LLVM checks at run time
  that they do not overlap and gives up on more). Inside a model's fit / predict it runs with
  subnormal numbers flushed to zero (:func:`.threads.parallel`): a gradient that decays
  over a long sequence walks through the subnormal range, where x86 arithmetic takes a slow
  microcode path (measured, this backward on one thread at the ``mingru_train`` shape:
  72-82 ms without the mode, 16-19 ms with it).
  Measured on one thread (B = 32, T = 1000, H = 128, F = 32, float32, the
  ``mingru_train`` shape, loaded 2-core machine): forward 27 -> 20 ms, backward 86 -> 15
  ms against the earlier unfused kernel (one product over all T*B rows, the scan reading
  it back, the gates recomputed, ``dK`` stored and multiplied afterwards).
* *chunked, time-parallel, in log space* (narrow batches with ``T >= 64 * threads``, where
  the row split would leave threads idle — B = 1 runs on one core): T is cut into C chunks
  (C = threads). Pass 1, in parallel over chunks: chunk 0 runs the true recurrence from
  ``h_0``; every other chunk runs it from ``h = 0`` and sums its decays in log space,
  ``L_t = sum_{s <= t in chunk} log a_s`` (minGRU ``log a = -softplus(k_z)``, minLSTM
  ``log a = log f' = -log1p(i / f)``, both finite for any input, so the product of the a's
  never underflows into a 0 * inf), keeping the chunk's total and snapshots of it.
  Pass 2, sequential over the C chunk ends (B * H values each): the true state entering
  chunk c, ``h_in[c] = exp(L_end[c-1]) * h_in[c-1] + local_end[c-1]``. Pass 3, in parallel
  over pieces of the chunks: ``h_t += exp(L_t) * h_in[c]``, with ``L_t`` recomputed from
  ``K`` (storing a (T, B, H) decay buffer measured slower: these loops are memory-bound),
  stopping once ``exp(L_t) |h_in|`` is below the smallest normal number everywhere (after
  about 130 steps for gates near 0.5; a state that is kept over a whole chunk makes the
  fix-up run over all of it). The backward pass is the same scheme reversed (the last chunk
  exact, from ``dL/dh_{T-1}``; the others from ``g = 0`` with ``dK`` computed from the
  local gradient; the carry over chunk ends gives each chunk's incoming gradient and
  ``dL/dh_0``; the fix-up adds ``exp(R_t) * g_in[c]`` times the gate derivatives to ``dK``,
  ``R_t`` the log decay of the chunk's later steps). A masked step is ``a = 1, b = 0``
  (``log a = 0``) in every pass, as in the sequential loop. Same results as the row split
  to float rounding (tests/test_scan_parallel.py), about twice the arithmetic, so it is
  used only when the row split cannot use the threads. It keeps the unfused layout: ``K``
  for all T*B rows first (:func:`._scan.project`), ``dK`` stored, its products after
  (:func:`._scan.project_backward`).

This is the paper's log-space parallel scan (Heinsen) applied to the decays only: the
states themselves stay in linear space (``g(v)`` keeps them positive in the paper, which
needs it for ``log h``; rnnkit accepts any initial state), and the scan is two-level
(a sequential scan inside each chunk, one across chunks), which suits a few CPU cores.

Kernel contract: :mod:`rnnkit.kernels` (whole-sequence kernels of a non-projected cell).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..cells.minrnn import MinGRUCell, MinLSTMCell
from . import _scan
from . import threads as _threads
from ._math import FASTMATH, consts_like, exp_neg, log1p_pos
from ._math import copy as _copy
from ._math import fill as _fill
from ._math import sigmoid as _sigK
from ._math import wide_vectors as _wide_vectors

_JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)
# the sequential loops over a span of steps, and the per-unit equations, are inlined into
# their callers: called through a wrapper, a minGRU backward span measured 25% slower (B =
# 32, T = 1000, H = 128)
_SPAN_JIT = dict(_JIT, inline="always")


def supports(cell, dtype) -> bool:
    """Exactly MinGRUCell / MinLSTMCell, float32 or float64."""
    return type(cell) in (MinGRUCell, MinLSTMCell) and _scan.float_dtype(dtype)


# The equations of one unit, written once and inlined into every loop below (the row split
# and the chunked scan): the gates from the pre-activations, and the gradients given g_j =
# dL/dh_t of the unit. g(v) = v + 1/2 (v >= 0), sigmoid(v) (v < 0); gd = g'(v).

@njit(**_SPAN_JIT)
def _g_signed(kh, KK):
    """``g(kh)`` with its branch kept in the sign: ``kh + 1/2`` (>= 1/2) where kh >= 0,
    ``-sigmoid(kh)`` (in (-1/2, 0): the sigmoid never reaches 0, see _math.sigmoid) where
    kh < 0. What the fused forward stores for the backward (:func:`_g_of`)."""
    return kh + KK[1] if kh >= 0 else -_sigK(kh, KK)


@njit(**_SPAN_JIT)
def _g_of(s, one):
    """``(g(kh), g'(kh))`` from ``s = _g_signed(kh)``."""
    ht = abs(s)
    return ht, (one if s >= 0 else ht * (one - ht))


@njit(**_SPAN_JIT)
def _mingru_gates(kz, kh, KK):
    """``(z, e, s)``: z = sigmoid(kz), e = exp(-|kz|) (for the log decay), s =
    :func:`_g_signed` (kh)."""
    e = exp_neg(-abs(kz), KK)
    d = KK[0] + e
    return (KK[0] / d if kz >= 0 else e / d), e, _g_signed(kh, KK)


@njit(**_SPAN_JIT)
def _mingru_unit(kz, kh, KK):
    """``(z, e, h~, g'(kh))``: z = sigmoid(kz), e = exp(-|kz|) (for the log decay)."""
    z, e, s = _mingru_gates(kz, kh, KK)
    ht, gd = _g_of(s, KK[0])
    return z, e, ht, gd


@njit(**_SPAN_JIT)
def _mingru_unit_grad(gj, hp, z, ht, gd, one):
    """``(dL/dk_z, dL/dk_h, dL/dh_{t-1})`` of ``h_t = h_{t-1} + z (h~ - h_{t-1})``."""
    return gj * (ht - hp) * z * (one - z), gj * z * gd, gj * (one - z)


@njit(**_SPAN_JIT)
def _minlstm_gates(ki, kf, kh, KK):
    """``(sigma(ki), sigma(kf), f' = f / (f + i), s)``, s = :func:`_g_signed` (kh)."""
    si = _sigK(ki, KK)
    sf = _sigK(kf, KK)
    return si, sf, sf / (sf + si), _g_signed(kh, KK)


@njit(**_SPAN_JIT)
def _minlstm_unit(ki, kf, kh, KK):
    """``(sigma(ki), sigma(kf), f' = f / (f + i), h~, g'(kh))``."""
    si, sf, fp, s = _minlstm_gates(ki, kf, kh, KK)
    ht, gd = _g_of(s, KK[0])
    return si, sf, fp, ht, gd


@njit(**_SPAN_JIT)
def _minlstm_unit_grad(gj, hp, si, sf, ht, gd, one):
    """``(dL/dk_i, dL/dk_f, dL/dk_h, dL/dh_{t-1})`` of ``h_t = h~ + f' (h_{t-1} - h~)``."""
    sm = sf + si
    fp = sf / sm
    w = gj * (hp - ht) / (sm * sm)
    return -w * sf * si * (one - si), w * si * sf * (one - sf), gj * (one - fp) * gd, gj * fp


@njit(**_SPAN_JIT)
def _mingru_fwd_span(K, h0, mask, Hs, r0, r1, t0, t1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(t0, t1):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                _copy(hp, ho)
                continue
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            for j in range(H):
                z, _, ht, _ = _mingru_unit(kz[j], kh[j], KK)
                ho[j] = hp[j] + z * (ht - hp[j])


@njit(**_SPAN_JIT)
def _mingru_bwd_span(K, Hs, h0, dY, mask, dK, g, r0, r1, t0, t1):
    """Steps t1-1 .. t0 of rows [r0, r1). g (B, H): in dL/dh_{t1-1} from the later steps, out
    dL/dh_{t0-1}. dY empty = no per-step output gradient."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one = KK[0]
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
                _fill(dK[t, b], 0.0)
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            dz = dK[t, b, :H]
            dh = dK[t, b, H:]
            for j in range(H):
                z, _, ht, gd = _mingru_unit(kz[j], kh[j], KK)
                dz[j], dh[j], gb[j] = _mingru_unit_grad(gb[j], hp[j], z, ht, gd, one)


@njit(**_SPAN_JIT)
def _minlstm_fwd_span(K, h0, mask, Hs, r0, r1, t0, t1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(t0, t1):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                _copy(hp, ho)
                continue
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            for j in range(H):
                _, _, fp, ht, _ = _minlstm_unit(ki[j], kf[j], kh[j], KK)
                ho[j] = ht + fp * (hp[j] - ht)


@njit(**_SPAN_JIT)
def _minlstm_bwd_span(K, Hs, h0, dY, mask, dK, g, r0, r1, t0, t1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one = KK[0]
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
                _fill(dK[t, b], 0.0)
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            di = dK[t, b, :H]
            df = dK[t, b, H:2 * H]
            dh = dK[t, b, 2 * H:]
            for j in range(H):
                si, sf, _, ht, gd = _minlstm_unit(ki[j], kf[j], kh[j], KK)
                di[j], df[j], dh[j], gb[j] = _minlstm_unit_grad(gb[j], hp[j], si, sf, ht, gd,
                                                                one)


# Row split (wide batches), fused with the input projection (see the module docstring):
# every thread runs whole sequences for its block of rows, time outer. Forward: per step,
# the rows' x_t W (_scan.project_rows) into A, then their gates and states while A's rows
# are in L1, the gates the backward needs written over them. Backward: per block of steps,
# the reverse scan writes the block's dK into a cache-sized scratch and _scan.block_grads
# turns it into dW, db, dX while it is still in cache; no (T, B, G) dK is stored. The
# per-unit loops vectorize: the backward's writes dK's row and the gradient (in place) and
# reads A's row and h_{t-1}, within LLVM's limit of run-time overlap checks.

@njit(**_JIT)
def _mingru_fwd_rows(x, W, bias, h0, mask, A, Hs, r0, r1):
    """Steps 0 .. T-1 of rows [r0, r1), with their products x_t W computed step by step into
    A (T, B, 2H), which then keeps what the backward needs: ``[z | g signed]``
    (:func:`_g_signed`). bias (2H,): zeros when the cell has none."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    domask = mask.size > 0
    for t in range(T):
        _scan.project_rows(x, W, A, t, r0, r1)
        for b in range(r0, r1):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                _copy(hp, ho)
                continue
            a = A[t, b]
            for j in range(H):
                z, _, s = _mingru_gates(a[j] + bias[j], a[H + j] + bias[H + j], KK)
                ho[j] = hp[j] + z * (abs(s) - hp[j])
                a[j] = z
                a[H + j] = s


@njit(**_JIT)
def _mingru_bwd_rows(x, W, A, Hs, h0, dY, mask, g, dWs, dbs, dxs, tb, r0, r1):
    """Steps T-1 .. 0 of rows [r0, r1) from what :func:`_mingru_fwd_rows` kept in A, by
    blocks of tb steps; g (B, H) in dL/dh_{T-1}, out dL/dh_0 (the initial state's); the row
    block's dW, db added into its slot of dWs (n, F, G), dbs (n, G or 0); dxs (T, B, F) or
    empty (not wanted)."""
    _wide_vectors()
    T, B, H = Hs.shape
    G = W.shape[1]
    KK = consts_like(Hs)
    one = KK[0]
    domask = mask.size > 0
    dodY = dY.size > 0
    n = r1 - r0
    dKs = np.empty((tb * n, G), Hs.dtype)
    Xs = np.empty((tb * n, x.shape[2]), Hs.dtype)
    dXs = np.empty_like(Xs) if dxs.size > 0 else Xs
    slot = _scan.block_index(r0, B, dWs.shape[0])
    dW, db = dWs[slot], dbs[slot]
    for t1 in range(T, 0, -tb):
        t0 = max(0, t1 - tb)
        for t in range(t1 - 1, t0 - 1, -1):
            for b in range(r0, r1):
                gb = g[b]
                if dodY:
                    dy = dY[t, b]
                    for j in range(H):
                        gb[j] += dy[j]
                dk = dKs[(t - t0) * n + b - r0]
                if domask and not mask[t, b]:
                    _fill(dk, 0.0)
                    continue
                hp = h0[b] if t == 0 else Hs[t - 1, b]
                a = A[t, b]
                for j in range(H):
                    ht, gd = _g_of(a[H + j], one)
                    dk[j], dk[H + j], gb[j] = _mingru_unit_grad(gb[j], hp[j], a[j], ht, gd,
                                                                 one)
        _scan.block_grads(x, W, dKs, Xs, dXs, dW, db, dxs, t0, t1, r0, r1)


@njit(**_JIT)
def _minlstm_fwd_rows(x, W, bias, h0, mask, A, Hs, r0, r1):
    """As :func:`_mingru_fwd_rows`; A (T, B, 3H) keeps ``[sigma(k_i) | sigma(k_f) | g
    signed]``."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    domask = mask.size > 0
    for t in range(T):
        _scan.project_rows(x, W, A, t, r0, r1)
        for b in range(r0, r1):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                _copy(hp, ho)
                continue
            a = A[t, b]
            for j in range(H):
                si, sf, fp, s = _minlstm_gates(a[j] + bias[j], a[H + j] + bias[H + j],
                                               a[2 * H + j] + bias[2 * H + j], KK)
                ht = abs(s)
                ho[j] = ht + fp * (hp[j] - ht)
                a[j] = si
                a[H + j] = sf
                a[2 * H + j] = s


@njit(**_JIT)
def _minlstm_bwd_rows(x, W, A, Hs, h0, dY, mask, g, dWs, dbs, dxs, tb, r0, r1):
    """As :func:`_mingru_bwd_rows`, from what :func:`_minlstm_fwd_rows` kept in A."""
    _wide_vectors()
    T, B, H = Hs.shape
    G = W.shape[1]
    KK = consts_like(Hs)
    one = KK[0]
    domask = mask.size > 0
    dodY = dY.size > 0
    n = r1 - r0
    dKs = np.empty((tb * n, G), Hs.dtype)
    Xs = np.empty((tb * n, x.shape[2]), Hs.dtype)
    dXs = np.empty_like(Xs) if dxs.size > 0 else Xs
    slot = _scan.block_index(r0, B, dWs.shape[0])
    dW, db = dWs[slot], dbs[slot]
    for t1 in range(T, 0, -tb):
        t0 = max(0, t1 - tb)
        for t in range(t1 - 1, t0 - 1, -1):
            for b in range(r0, r1):
                gb = g[b]
                if dodY:
                    dy = dY[t, b]
                    for j in range(H):
                        gb[j] += dy[j]
                dk = dKs[(t - t0) * n + b - r0]
                if domask and not mask[t, b]:
                    _fill(dk, 0.0)
                    continue
                hp = h0[b] if t == 0 else Hs[t - 1, b]
                a = A[t, b]
                for j in range(H):
                    ht, gd = _g_of(a[2 * H + j], one)
                    dk[j], dk[H + j], dk[2 * H + j], gb[j] = _minlstm_unit_grad(
                        gb[j], hp[j], a[j], a[H + j], ht, gd, one)
        _scan.block_grads(x, W, dKs, Xs, dXs, dW, db, dxs, t0, t1, r0, r1)


# Chunked time-parallel scan (long, narrow batches); see the module docstring. Decays in log
# space (finite for any input: the sigmoids never reach 0, see _math.sigmoid):
#   minGRU  a = 1 - z = sigmoid(-k_z),  log a = -softplus(k_z)
#   minLSTM a = f' = f / (f + i),        log a = -log1p(i / f)
# Chunk edges pe (S + 1,): the chunk's S pieces, the units of work of the fix-up pass.
# Forward snapshots snap[s] = log decay of the chunk's steps before piece s; backward ones
# snap[s] = log decay of the chunk's steps after piece s.

@njit(**_JIT)
def _mingru_fwd_local(K, mask, Hs, lend, snap, pe):
    """Steps [pe[0], pe[-1]) of every row from h = 0: the local states into Hs, the chunk's
    total log decay into lend (B, H), the piece snapshots into snap (S, B, H)."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one = KK[0]
    zero = np.zeros(H, Hs.dtype)
    S = pe.shape[0] - 1
    t0, t1 = pe[0], pe[S]
    domask = mask.size > 0
    for b in range(B):
        lacc = lend[b]
        _fill(lacc, 0.0)
        _fill(snap[0, b], 0.0)
        s = 1
        for t in range(t0, t1):
            while s < S and t == pe[s]:
                _copy(lacc, snap[s, b])
                s += 1
            hp = zero if t == t0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                _copy(hp, ho)
                continue
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            for j in range(H):
                k = kz[j]
                z, e, ht, _ = _mingru_unit(k, kh[j], KK)
                ho[j] = hp[j] + z * (ht - hp[j])
                lacc[j] -= max(k, one - one) + log1p_pos(e, KK)
        while s < S:
            _copy(lacc, snap[s, b])
            s += 1


@njit(**_JIT)
def _minlstm_fwd_local(K, mask, Hs, lend, snap, pe):
    """As :func:`_mingru_fwd_local` for minLSTM."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    zero = np.zeros(H, Hs.dtype)
    S = pe.shape[0] - 1
    t0, t1 = pe[0], pe[S]
    domask = mask.size > 0
    for b in range(B):
        lacc = lend[b]
        _fill(lacc, 0.0)
        _fill(snap[0, b], 0.0)
        s = 1
        for t in range(t0, t1):
            while s < S and t == pe[s]:
                _copy(lacc, snap[s, b])
                s += 1
            hp = zero if t == t0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                _copy(hp, ho)
                continue
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            for j in range(H):
                si, sf, fp, ht, _ = _minlstm_unit(ki[j], kf[j], kh[j], KK)
                ho[j] = ht + fp * (hp[j] - ht)
                lacc[j] -= log1p_pos(si / sf, KK)
        while s < S:
            _copy(lacc, snap[s, b])
            s += 1


@njit(**_JIT)
def _mingru_fwd_fix(K, mask, Hs, L, hin, lh, p0, p1):
    """Steps [p0, p1) of one chunk: ``Hs[t] += exp(L_t) * hin`` with L (B, H) the chunk's log
    decay before p0 on entry (updated in place); stops once every remaining correction is
    below the smallest normal number (lh = log|hin|)."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, cut = KK[0], KK[5]
    domask = mask.size > 0
    for t in range(p0, p1):
        if (t - p0) % 8 == 0 and _scan.negligible(L, lh, cut):
            return
        for b in range(B):
            ho = Hs[t, b]
            lb = L[b]
            hb = hin[b]
            if domask and not mask[t, b]:
                for j in range(H):
                    ho[j] += exp_neg(lb[j], KK) * hb[j]
                continue
            kz = K[t, b, :H]
            for j in range(H):
                k = kz[j]
                lb[j] -= max(k, one - one) + log1p_pos(exp_neg(-abs(k), KK), KK)
                ho[j] += exp_neg(lb[j], KK) * hb[j]


@njit(**_JIT)
def _minlstm_fwd_fix(K, mask, Hs, L, hin, lh, p0, p1):
    """As :func:`_mingru_fwd_fix` for minLSTM."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    cut = KK[5]
    domask = mask.size > 0
    for t in range(p0, p1):
        if (t - p0) % 8 == 0 and _scan.negligible(L, lh, cut):
            return
        for b in range(B):
            ho = Hs[t, b]
            lb = L[b]
            hb = hin[b]
            if domask and not mask[t, b]:
                for j in range(H):
                    ho[j] += exp_neg(lb[j], KK) * hb[j]
                continue
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            for j in range(H):
                lb[j] -= log1p_pos(_sigK(ki[j], KK) / _sigK(kf[j], KK), KK)
                ho[j] += exp_neg(lb[j], KK) * hb[j]


@njit(**_JIT)
def _mingru_bwd_local(K, Hs, h0, dY, mask, dK, g, dec, snap, pe):
    """Steps pe[-1]-1 .. pe[0] of every row, reversed, from g = 0 (zeros on entry): dK as if
    no gradient came from the later chunks, g out = the local gradient leaving the chunk,
    dec (B, H) the chunk's total log decay, snap (S, B, H) the piece snapshots."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one = KK[0]
    S = pe.shape[0] - 1
    t0, t1 = pe[0], pe[S]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(B):
        gb = g[b]
        racc = dec[b]
        _fill(racc, 0.0)
        _fill(snap[S - 1, b], 0.0)
        s = S - 1
        for t in range(t1 - 1, t0 - 1, -1):
            while s > 0 and t < pe[s]:
                s -= 1
                _copy(racc, snap[s, b])
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            if domask and not mask[t, b]:
                _fill(dK[t, b], 0.0)
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            dz = dK[t, b, :H]
            dh = dK[t, b, H:]
            for j in range(H):
                k = kz[j]
                z, e, ht, gd = _mingru_unit(k, kh[j], KK)
                dz[j], dh[j], gb[j] = _mingru_unit_grad(gb[j], hp[j], z, ht, gd, one)
                racc[j] -= max(k, one - one) + log1p_pos(e, KK)
        while s > 0:
            s -= 1
            _copy(racc, snap[s, b])


@njit(**_JIT)
def _minlstm_bwd_local(K, Hs, h0, dY, mask, dK, g, dec, snap, pe):
    """As :func:`_mingru_bwd_local` for minLSTM."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one = KK[0]
    S = pe.shape[0] - 1
    t0, t1 = pe[0], pe[S]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(B):
        gb = g[b]
        racc = dec[b]
        _fill(racc, 0.0)
        _fill(snap[S - 1, b], 0.0)
        s = S - 1
        for t in range(t1 - 1, t0 - 1, -1):
            while s > 0 and t < pe[s]:
                s -= 1
                _copy(racc, snap[s, b])
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            if domask and not mask[t, b]:
                _fill(dK[t, b], 0.0)
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            di = dK[t, b, :H]
            df = dK[t, b, H:2 * H]
            dh = dK[t, b, 2 * H:]
            for j in range(H):
                si, sf, _, ht, gd = _minlstm_unit(ki[j], kf[j], kh[j], KK)
                di[j], df[j], dh[j], gb[j] = _minlstm_unit_grad(gb[j], hp[j], si, sf, ht, gd,
                                                                one)
                racc[j] -= log1p_pos(si / sf, KK)
        while s > 0:
            s -= 1
            _copy(racc, snap[s, b])


@njit(**_JIT)
def _mingru_bwd_fix(K, Hs, h0, mask, dK, R, gin, lg, p0, p1):
    """Steps p1-1 .. p0 of one chunk: add to dK the part due to ``gin`` (B, H), the gradient
    entering the chunk from the later steps: dL/dh_t gains ``exp(R_t) * gin`` with R (B, H)
    the log decay of the chunk's steps after p1-1 on entry (updated in place). Stops once
    every remaining correction is below the smallest normal number (lg = log|gin|)."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, cut = KK[0], KK[5]
    domask = mask.size > 0
    for t in range(p1 - 1, p0 - 1, -1):
        if (p1 - 1 - t) % 8 == 0 and _scan.negligible(R, lg, cut):
            return
        for b in range(B):
            if domask and not mask[t, b]:
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            rb = R[b]
            gi = gin[b]
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            dz = dK[t, b, :H]
            dh = dK[t, b, H:]
            for j in range(H):
                k = kz[j]
                z, e, ht, gd = _mingru_unit(k, kh[j], KK)
                gz, gh, _ = _mingru_unit_grad(exp_neg(rb[j], KK) * gi[j], hp[j], z, ht, gd, one)
                dz[j] += gz
                dh[j] += gh
                rb[j] -= max(k, one - one) + log1p_pos(e, KK)


@njit(**_JIT)
def _minlstm_bwd_fix(K, Hs, h0, mask, dK, R, gin, lg, p0, p1):
    """As :func:`_mingru_bwd_fix` for minLSTM."""
    _wide_vectors()
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, cut = KK[0], KK[5]
    domask = mask.size > 0
    for t in range(p1 - 1, p0 - 1, -1):
        if (p1 - 1 - t) % 8 == 0 and _scan.negligible(R, lg, cut):
            return
        for b in range(B):
            if domask and not mask[t, b]:
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            rb = R[b]
            gi = gin[b]
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            di = dK[t, b, :H]
            df = dK[t, b, H:2 * H]
            dh = dK[t, b, 2 * H:]
            for j in range(H):
                si, sf, _, ht, gd = _minlstm_unit(ki[j], kf[j], kh[j], KK)
                gi_, gf, gh, _ = _minlstm_unit_grad(exp_neg(rb[j], KK) * gi[j], hp[j], si, sf,
                                                    ht, gd, one)
                di[j] += gi_
                df[j] += gf
                dh[j] += gh
                rb[j] -= log1p_pos(si / sf, KK)


def _make_chunked(fwd_span, fwd_local, fwd_fix, bwd_span, bwd_local, bwd_fix):
    """The four parallel regions of one cell's chunked scan (prange over chunks, or over the
    pieces of the chunks that need the fix-up)."""

    @njit(**_PAR_JIT)
    def fwd_pass1(K, h0, mask, Hs, lend, snap, pe):
        # chunk 0 runs from the true h0 (exact, no fix-up); the others from 0
        for c in prange(pe.shape[0]):
            if c == 0:
                fwd_span(K, h0, mask, Hs, 0, Hs.shape[1], 0, pe[0, -1])
            else:
                fwd_local(K, mask, Hs, lend[c], snap[c], pe[c])

    @njit(**_PAR_JIT)
    def fwd_pass3(K, mask, Hs, snap, hin, lh, pe):
        S = pe.shape[1] - 1
        for i in prange((pe.shape[0] - 1) * S):
            c, s = 1 + i // S, i % S
            fwd_fix(K, mask, Hs, snap[c, s].copy(), hin[c], lh[c], pe[c, s], pe[c, s + 1])

    @njit(**_PAR_JIT)
    def bwd_pass1(K, Hs, h0, dY, mask, dK, gs, dec, snap, pe):
        # the last chunk runs from the true dL/dh_{T-1} (gs[-1], exact); the others from 0
        C = pe.shape[0]
        for c in prange(C):
            if c == C - 1:
                bwd_span(K, Hs, h0, dY, mask, dK, gs[c], 0, Hs.shape[1], pe[c, 0], pe[c, -1])
            else:
                bwd_local(K, Hs, h0, dY, mask, dK, gs[c], dec[c], snap[c], pe[c])

    @njit(**_PAR_JIT)
    def bwd_pass3(K, Hs, h0, mask, dK, snap, gin, lg, pe):
        S = pe.shape[1] - 1
        for i in prange((pe.shape[0] - 1) * S):
            c, s = i // S, i % S
            bwd_fix(K, Hs, h0, mask, dK, snap[c, s].copy(), gin[c], lg[c], pe[c, s],
                    pe[c, s + 1])

    return fwd_pass1, fwd_pass3, bwd_pass1, bwd_pass3


_ROWS = {MinGRUCell: (_mingru_fwd_rows, _mingru_bwd_rows),
         MinLSTMCell: (_minlstm_fwd_rows, _minlstm_bwd_rows)}
_CHUNKED = {MinGRUCell: _make_chunked(_mingru_fwd_span, _mingru_fwd_local, _mingru_fwd_fix,
                                      _mingru_bwd_span, _mingru_bwd_local, _mingru_bwd_fix),
            MinLSTMCell: _make_chunked(_minlstm_fwd_span, _minlstm_fwd_local,
                                       _minlstm_fwd_fix, _minlstm_bwd_span,
                                       _minlstm_bwd_local, _minlstm_bwd_fix)}


def _layout(T, B, H, C, dt, exact):
    """Chunk edges (the ``exact`` chunk, 'first' or 'last', longer), piece edges (C, S + 1)
    and the snapshot buffer (C, S, B, H): S pieces per chunk so that the C - 1 chunks that
    need the fix-up give every thread work."""
    S = _scan.fix_pieces(C)
    ce = _scan.chunk_edges(T, C, exact)
    return ce, _scan.chunk_pieces(ce, S), np.zeros((C, S, B, H), dt)


def _chunked_forward(cell, K, h0, m, Hs, C):
    """Forward scan by C time chunks: local scans in parallel, the sequential carry over the
    chunk ends, the parallel fix-up (see the module docstring)."""
    fwd_pass1, fwd_pass3 = _CHUNKED[type(cell)][:2]
    T, B, H = Hs.shape
    ce, pe, snap = _layout(T, B, H, C, Hs.dtype, "first")
    lend = np.zeros((C, B, H), Hs.dtype)
    with _threads.launch(C):
        fwd_pass1(K, h0, m, Hs, lend, snap, pe)
    if C == 1:
        return
    ends = ce[2:-1] - 1                                 # last steps of chunks 1 .. C-2
    hin = np.zeros((C, B, H), Hs.dtype)                 # true state entering chunk c
    hin[1:] = _scan.carry(Hs[ce[1] - 1], lend[1:C - 1], Hs[ends])
    with _threads.launch((C - 1) * snap.shape[1]):
        fwd_pass3(K, m, Hs, snap, hin, _scan.log_abs(hin), pe)


def _chunked_backward(cell, K, Hs, h0, dY, m, dK, g, C):
    """Backward (reverse) scan by C time chunks; returns dL/dh_0 (B, H)."""
    bwd_pass1, bwd_pass3 = _CHUNKED[type(cell)][2:]
    T, B, H = Hs.shape
    ce, pe, snap = _layout(T, B, H, C, Hs.dtype, "last")
    gs = np.zeros((C, B, H), Hs.dtype)
    gs[-1] = g
    dec = np.zeros_like(gs)
    with _threads.launch(C):
        bwd_pass1(K, Hs, h0, dY, m, dK, gs, dec, snap, pe)
    if C == 1:
        return gs[0]
    # gradient entering chunk c from the later steps: gin[C-2] = gs[C-1] (exact), then
    # gin[c-1] = exp(dec[c]) gin[c] + gs[c]; the last value is dL/dh_0
    seq = _scan.carry(gs[-1], dec[C - 2::-1], gs[C - 2::-1])      # gin[C-2], ..., gin[0], dh0
    gin = np.ascontiguousarray(seq[C - 2::-1])                    # gin[0 .. C-2]
    with _threads.launch((C - 1) * snap.shape[1]):
        bwd_pass3(K, Hs, h0, m, dK, snap, gin, _scan.log_abs(gin), pe)
    return seq[-1]


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Run the cell over xs (T, B, F); returns ``(hs (T, B, H), [h_T], cache)``. The scan is
    the fused row split or the chunked time-parallel one, as :func:`._scan.time_chunks`
    decides."""
    T, B, _ = xs.shape
    dt = xs.dtype
    xs = np.ascontiguousarray(xs)
    W = np.ascontiguousarray(cell.params["kernel"], dt)
    h0 = np.ascontiguousarray(states0[0], dt)
    m = _scan.mask_arg(mask)
    Hs = _threads.buffer(ws, "Hs", (T, B, cell.units), dt)
    C = _scan.time_chunks(B, T)
    if C:
        K = _scan.project(xs, W, ws)                            # (T, B, G): x W
        if cell.use_bias:
            K += cell.params["bias"]
        _chunked_forward(cell, K, h0, m, Hs, C)
    else:
        K = _threads.buffer(ws, "K", (T, B, W.shape[1]), dt)
        bias = (np.ascontiguousarray(cell.params["bias"], dt) if cell.use_bias
                else np.zeros(W.shape[1], dt))
        _scan.run_rows(_ROWS[type(cell)][0], B, xs, W, bias, h0, m, K, Hs)
    return Hs, [Hs[-1].copy()], (xs, K, Hs, h0, m)


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`; returns ``(dxs (T, B, F) or None when not input_grad,
    [dh_0], [dkernel, dbias])``."""
    xs, K, Hs, h0, m = cache
    dt = K.dtype
    g = _scan.state_grad(dstates[0], h0)
    dY = _scan.seq_grad(dys, dt)
    T, B, F = xs.shape
    W = np.ascontiguousarray(cell.params["kernel"], dt)
    C = _scan.time_chunks(B, T)
    if C:
        dK = _threads.buffer(ws, "dK", K.shape, dt)
        g = _chunked_backward(cell, K, Hs, h0, dY, m, dK, g, C)
        dxs, dparams = _scan.project_backward(xs, dK, W, cell.use_bias, input_grad)
        return dxs, [g], dparams
    n = _scan.n_row_blocks(B)
    G = W.shape[1]
    dWs = np.zeros((n, F, G), dt)
    dbs = np.zeros((n, G if cell.use_bias else 0), dt)
    dxs = np.empty((T, B, F) if input_grad else (0, 0, 0), dt)
    _scan.run_rows(_ROWS[type(cell)][1], B, xs, W, K, Hs, h0, dY, m, g, dWs, dbs, dxs,
                   _scan.block_steps(B, G, dt.itemsize, T))
    dparams = [dWs.sum(axis=0)] + ([dbs.sum(axis=0)] if cell.use_bias else [])
    return (dxs if input_grad else None), [g], dparams
