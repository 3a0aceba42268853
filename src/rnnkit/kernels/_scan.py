"""What the compiled scans (:mod:`.minrnn`, :mod:`.lru`, :mod:`.indrnn`) share: the input
projection and its gradient as products over all T*B rows, argument normalisation, and the
row-split launch across rnnkit's threads (each row of a batch is an independent recurrence),
and the shared pieces of the chunked time-parallel scan (:func:`time_chunks` decides when it
runs, :func:`carry` is its sequential pass over the chunk ends)."""

from __future__ import annotations

import os

import numpy as np
from numba import njit

from . import _blas
from . import threads as _threads
from ._math import FASTMATH, consts_like

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype) -> bool:
    """True for float32 and float64, the dtypes the scans are compiled for."""
    return np.dtype(dtype) in _DTYPES


def project(xs, W, ws=None):
    """``xs @ W`` for (T, B, F) xs: one product over all T*B rows -> (T, B, G) (the kernels
    add the bias while they read it), into the buffer ``"K"`` of workspace ``ws`` when given
    (:func:`.threads.buffer`)."""
    T, B, F = xs.shape
    K = _threads.buffer(ws, "K", (T, B, W.shape[1]), np.result_type(xs.dtype, W.dtype))
    _threads.matmul(np.ascontiguousarray(xs).reshape(T * B, F), W, out=K.reshape(T * B, -1))
    return K


def bias_arg(b, G, dt):
    """The (G,) bias as a C-contiguous array of ``dt``, or an empty one meaning "no bias"."""
    return np.zeros(0, dt) if b is None else np.ascontiguousarray(b, dt)


def project_backward(xs, dK, W, use_bias, input_grad=True):
    """``(dxs, [dW, (db)])`` of :func:`project` (plus bias) given dK (T, B, G); dxs is None
    when ``input_grad`` is False (nobody reads it)."""
    T, B, F = xs.shape
    dK2 = dK.reshape(T * B, -1)
    grads = [_threads.matmul(np.ascontiguousarray(xs).reshape(T * B, F).T, dK2)]
    if use_bias:
        grads.append(dK2.sum(axis=0))
    if not input_grad:
        return None, grads
    dxs = _threads.matmul(dK2, np.ascontiguousarray(W.T)).reshape(T, B, F)
    return dxs, grads


def mask_arg(mask):
    """(T, B) bool C-contiguous mask, or an empty (0, 0) array meaning "no mask"."""
    if mask is None:
        return np.zeros((0, 0), np.bool_)
    return np.ascontiguousarray(mask, np.bool_)


def state_grad(d, like):
    """A fresh C-contiguous copy of the state gradient ``d`` (zeros when None)."""
    if d is None:
        return np.zeros_like(like)
    return np.array(d, dtype=like.dtype, order="C")


def seq_grad(dys, dt):
    """C-contiguous (T, B, n) output gradients, or an empty (0, 0, 0) array for None."""
    if dys is None:
        return np.zeros((0, 0, 0), dt)
    return np.ascontiguousarray(dys, dt)


def run(serial, parallel, B, *args):
    """``serial(*args, 0, B)``, or ``parallel(*args, edges)`` with the B rows cut into one
    block per rnnkit thread (:mod:`.threads`) when there are several."""
    n = min(_threads.count(), B)
    if n <= 1:
        serial(*args, 0, B)
        return
    blocks = _threads.blocks(B, n)
    edges = np.array([b0 for b0, _ in blocks] + [blocks[-1][1]], np.int64)
    with _threads.launch(len(blocks)):
        parallel(*args, edges)


# ---------------------------------------------------------------------------------------
# Row split fused with the input projection (kernels/minrnn.py): each thread computes its
# rows' pre-activations ``K = X W + b`` step by step and scans them while they are in cache,
# and its backward turns the gradients into dW, db and dX by blocks of steps that stay in
# cache (:func:`block_grads`), instead of three products over all T*B rows that stream
# (T, B, G) arrays through memory.

#: bytes of the (steps x rows, G) gradient block a backward thread fills before its products
BLOCK_BYTES = 1 << 19


def run_rows(fn, B, *args):
    """``fn(*args, r0, r1)`` on every block of the B rows, one block per rnnkit thread
    (:func:`.threads.run_blocks`); OpenBLAS single-threaded meanwhile (the kernels call it
    on their own rows). Returns the number of blocks (the kernels' per-block slots:
    :func:`block_index`)."""
    n = min(_threads.count(), B)
    if n <= 1:
        fn(*args, 0, B)
        return 1
    token = None if _threads.active() else _blas.set_threads(1)
    try:
        _threads.run_blocks(fn, args, _threads.blocks(B, n))
    finally:
        _blas.restore(token)
    return n


def n_row_blocks(B):
    """How many row blocks :func:`run_rows` cuts B rows into."""
    return max(1, min(_threads.count(), B))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
def block_index(r0, B, n):
    """Which of the n blocks of :func:`run_rows` (``threads.blocks(B, n)``) starts at row
    r0."""
    for i in range(n):
        if B * i // n == r0:
            return i
    return 0


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
def project_rows(x, W, K, t, r0, r1):
    """``K[t, r0:r1] = x[t, r0:r1] @ W`` (x (T, B, F), W (F, G), K (T, B, G)): one small
    OpenBLAS product, in cache for the scan that reads it next (and adds the bias). At
    F = 32, G = 256 and 16 or 32 rows it measured 15-30% faster than rnnkit's packed
    micro-kernel (:mod:`._packed`), one thread."""
    T, B, F = x.shape
    G = W.shape[1]
    KK = consts_like(K)
    _blas.gemm(0, 0, r1 - r0, G, F, KK[0], x, (t * B + r0) * F, F, W, 0, G, KK[0] - KK[0], K,
               (t * B + r0) * G, G)


def block_steps(B, G, itemsize, T):
    """Steps per backward block of the fused row split: the (steps * rows, G) gradient block
    of the largest row block of :func:`run_rows` about :data:`BLOCK_BYTES` (at most T)."""
    rows = -(-B // n_row_blocks(B))
    return max(1, min(T, BLOCK_BYTES // (rows * G * itemsize)))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
def block_grads(x, W, dKs, Xs, dXs, dW, db, dxs, t0, t1, r0, r1):
    """The products of one backward block: rows ``(t, b)`` for t in [t0, t1), b in [r0, r1)
    with dK in ``dKs[(t - t0) * n + b - r0]`` (n = r1 - r0): ``dW += X^T dK``,
    ``db += sum dK`` (db empty: no bias), ``dxs[t, b] = dK W^T`` (dxs empty: not wanted).
    Xs (rows, F) and dXs (rows, F) are scratch."""
    T, B, F = x.shape
    G = W.shape[1]
    n = r1 - r0
    m = (t1 - t0) * n
    KK = consts_like(dKs)
    one = KK[0]
    for t in range(t0, t1):
        for b in range(r0, r1):
            src, dst = x[t, b], Xs[(t - t0) * n + b - r0]
            for k in range(F):
                dst[k] = src[k]
    _blas.gemm(1, 0, F, G, m, one, Xs, 0, F, dKs, 0, G, one, dW, 0, G)
    if db.size > 0:
        for r in range(m):
            row = dKs[r]
            for j in range(G):
                db[j] += row[j]
    if dxs.size > 0:
        _blas.gemm(0, 1, m, F, G, one, dKs, 0, G, W, 0, G, one - one, dXs, 0, F)
        for t in range(t0, t1):
            for b in range(r0, r1):
                src, dst = dXs[(t - t0) * n + b - r0], dxs[t, b]
                for k in range(F):
                    dst[k] = src[k]


# ---------------------------------------------------------------------------------------
# Time-parallel (chunked) scans of h_t = a_t h_{t-1} + b_t with a_t in (0, 1]: the pieces a
# cell's kernel shares (kernels/minrnn.py uses them; the cell-specific local scans live there).

#: "auto" (:func:`time_chunks` decides), "rows" (always the row split) or "time" (always the
#: chunked scan); from ``RNNKIT_SCAN`` at import, changed by :func:`set_scan_mode`.
_SCAN_MODE = os.environ.get("RNNKIT_SCAN", "auto")
_SCAN_CHUNKS = None
_SCAN_PIECES = None


def set_scan_mode(mode="auto", chunks=None, pieces=None):
    """Choose how the linear scans train: ``'auto'`` (:func:`time_chunks`'s rule), ``'rows'``
    (batch rows split across threads, sequential over time) or ``'time'`` (the chunked
    time-parallel scan, with ``chunks`` chunks — default the thread count, at least 2 — and
    ``pieces`` pieces per chunk in the fix-up pass — default :func:`fix_pieces`'s).
    For tests and measurements."""
    global _SCAN_MODE, _SCAN_CHUNKS, _SCAN_PIECES
    if mode not in ("auto", "rows", "time"):
        raise ValueError(f"scan mode must be 'auto', 'rows' or 'time', got {mode!r}.")
    for name, v in (("chunks", chunks), ("pieces", pieces)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}.")
    _SCAN_MODE, _SCAN_CHUNKS, _SCAN_PIECES = mode, chunks, pieces


def get_scan_mode():
    """``(mode, chunks, pieces)`` as set by :func:`set_scan_mode` (or ``RNNKIT_SCAN``)."""
    return _SCAN_MODE, _SCAN_CHUNKS, _SCAN_PIECES


def fix_pieces(C):
    """Pieces per chunk in the fix-up pass of a C-chunk scan: enough that the C - 1 chunks
    that need it give every rnnkit thread one (forced by :func:`set_scan_mode`)."""
    if _SCAN_PIECES is not None:
        return _SCAN_PIECES
    return max(1, -(-_threads.count() // max(1, C - 1)))


def time_chunks(B, T):
    """How many time chunks a scan over (T, B) should use: 0 means the row split.

    Rule (mode ``'auto'``): with ``n`` rnnkit threads, the chunked scan when the batch is too
    narrow to give every thread rows (``B < 2 n``) and the sequence is long (``T >= 64 n``),
    with ``n`` chunks. The chunked scan does about twice the arithmetic of the sequential one
    (a local scan, then a fix-up pass), so it pays only when the row split leaves threads
    idle; for wide batches the row split is faster. Mode ``'time'`` forces ``min(chunks, T)``
    chunks, ``'rows'`` forces 0 (see :func:`set_scan_mode`).
    """
    n = _threads.count()
    if _SCAN_MODE == "rows":
        return 0
    if _SCAN_MODE == "time":
        return max(1, min(_SCAN_CHUNKS or max(n, 2), T))
    if n > 1 and B < 2 * n and T >= 64 * n:
        return n
    return 0


#: the chunk that starts from the true state (the first one forward, the last one backward)
#: skips the log decays and the fix-up: measured about 1.3x cheaper per step than the others
#: (single-thread, B = 1, H = 128), so it gets that many more steps
EXACT_WEIGHT = 1.3


def chunk_edges(T, C, exact="first", weight=None):
    """(C + 1,) int64 edges of C time chunks of [0, T), none empty (needs ``C <= T``): equal,
    except that the ``exact`` ('first' or 'last') chunk is ``weight`` (default
    :data:`EXACT_WEIGHT`) times as long as the others."""
    w = np.ones(C)
    w[0 if exact == "first" else -1] = EXACT_WEIGHT if weight is None else weight
    e = np.rint(T * np.concatenate([[0.0], np.cumsum(w)]) / w.sum()).astype(np.int64)
    e[0], e[-1] = 0, T
    for i in range(1, C):
        e[i] = min(max(e[i], e[i - 1] + 1), T - (C - i))
    return e


def piece_edges(t0, t1, n):
    """(n + 1,) int64 edges cutting the steps [t0, t1) into ``n`` near-equal pieces (for the
    fix-up pass, which is independent per step)."""
    n = max(1, min(n, t1 - t0))
    return np.array([t0 + (t1 - t0) * i // n for i in range(n + 1)], np.int64)


def carry(start, dec, loc):
    """The sequential pass over chunk summaries: ``out[0] = start``,
    ``out[k + 1] = exp(dec[k]) * out[k] + loc[k]``.

    Args: start (B, H); dec (n, B, H) the log of each chunk's total decay (<= 0); loc (n, B, H)
    each chunk's result started from zero. Returns (n + 1, B, H)."""
    out = np.empty((len(dec) + 1,) + start.shape, start.dtype)
    out[0] = start
    with np.errstate(under="ignore"):
        for k in range(len(dec)):
            out[k + 1] = np.exp(dec[k]) * out[k] + loc[k]
    return out


def chunk_pieces(cedges, S):
    """(C, S + 1) int64: every chunk ``[cedges[c], cedges[c + 1])`` cut into ``S`` near-equal
    pieces (the units of work of the fix-up pass)."""
    C = len(cedges) - 1
    out = np.empty((C, S + 1), np.int64)
    for c in range(C):
        t0, t1 = int(cedges[c]), int(cedges[c + 1])
        out[c] = [t0 + (t1 - t0) * s // S for s in range(S + 1)]
    return out


def log_abs(a):
    """``log|a|`` (``-inf`` where a is 0), the fix-up pass's cut-off test in log space."""
    with np.errstate(divide="ignore"):
        return np.log(np.abs(a))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
def negligible(L, la, cut):
    """True when ``L + la < cut`` everywhere ((B, H) arrays): every remaining correction
    ``exp(L) * |v|`` (``la = log|v|``) is below ``exp(cut)``, the smallest normal number
    (about 1e-38 in float32), and the fix-up pass can stop."""
    B, H = L.shape
    for b in range(B):
        for j in range(H):
            if L[b, j] + la[b, j] >= cut:
                return False
    return True
