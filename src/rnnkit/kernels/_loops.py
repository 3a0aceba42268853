"""What the compiled cell kernels share: numba settings, row helpers, the thread launcher.

Where the speed comes from (see docs/performance.md):

* The input projection ``X @ kernel + bias`` for all steps is done by the layer before the
  loop, as one matrix product.
* The time loop runs inside compiled code. The per-step recurrent product ``h_{t-1} @ U``
  is, in float32 on a CPU with AVX-512F or AVX2+FMA, rnnkit's own micro-kernel over ``U``
  packed once per call (:mod:`._packed`; ``RNNKIT_PACKED=0`` turns it off), otherwise a
  direct call into the OpenBLAS that ships with NumPy (:mod:`._blas`); no Python overhead
  per step at any batch size, and no SciPy dependency.
* The element-wise gate math of a step (sigmoids, tanh, cell update; in backward their
  derivatives) is one fused pass that LLVM vectorizes (branch-free sigmoid/tanh from
  :mod:`._math`).
* In backward only ``dZ_t @ U^T`` stays in the loop (with ``U^T`` stored contiguously,
  which OpenBLAS runs faster); ``dU = H_prev^T @ dZ`` is one product over all ``T * B``
  rows after it.
* Threads: the loop is split by batch rows; each thread runs it on its rows with one-thread
  BLAS calls, in one numba parallel region per loop (:func:`run`, :mod:`.threads`).
  Unsplit loops (small batches) run their per-step products on one BLAS thread unless they
  are large (:data:`._blas.SMALL_GEMM_MACS`).
* Inference: no caches, ``x_t @ W`` per step into a scratch that stays in cache, input read
  as (B, T, F) and output written as (B, T, H).
* Memory: forward keeps only what backward needs: ``h`` for every step (which is also the
  output), the activated gates, and ``c`` for LSTM (GRU: the recurrent term of the
  candidate).

Compiled kernels take C-contiguous arrays; an empty (size-0) mask / rmask / dhs / b_rec
means "none". ``hbuf`` is (T+1, B, H) with ``hbuf[0] = h0``, so ``hbuf[1:]`` is the output
and ``hbuf[:-1]`` the previous states that multiply U.

The element-wise work is written as short loops over one row (1-D views), each touching
few arrays and always counting from 0 (``range(H)`` plus an offset, never
``range(2 * H, 3 * H)``): LLVM only vectorizes a loop when it can check at run time that
its arrays do not overlap, and gives up when a loop touches too many of them. Measured:
the same gate math is 4-15x slower when written as one big loop.

Threads: :func:`run` hands the row blocks of a loop to :func:`.threads.run_blocks` (the
calling thread and resident Python workers; the kernels release the GIL). Nothing is
compiled for the threading itself. The previous launcher was a numba parallel region that
took the kernel as a function pointer: starting a region cost ~1 us against ~20-75 us for a
thread hand-off, but the region was compiled once per kernel signature (~1 CPU-s each, a
third of the cold compile of ``rnnkit train``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _blas, _packed
from . import threads as _threads
from ._math import (  # noqa: F401  (the kernels import them from here)
    FASTMATH,
    HELPER_JIT,
    JIT,
    copy,
    fill,
    wide_vectors,
)
from ._math import consts_like as _consts_like

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

if not _blas.AVAILABLE:  # pragma: no cover - depends on how NumPy was built
    raise ImportError("rnnkit's compiled kernels need the OpenBLAS bundled in the NumPy wheel; "
                      "none was found, so the generic loop is used.")


@njit(**HELPER_JIT)
def dropped(hbuf, t, rmask, hp, b0, b1):
    """hp[b0:b1] = hbuf[t, b0:b1] * rmask[b0:b1]."""
    wide_vectors()
    H = hp.shape[1]
    for b in range(b0, b1):
        src, r, dst = hbuf[t, b], rmask[b], hp[b]
        for j in range(H):
            dst[j] = src[j] * r[j]


@njit(**HELPER_JIT)
def add_row(d, dhs, t, b, has_dhs):
    """d += dhs[t, b] when dL/dh_t comes from the outputs."""
    wide_vectors()
    if has_dhs:
        s = dhs[t, b]
        for j in range(d.shape[0]):
            d[j] += s[j]


@njit(**HELPER_JIT)
def rec_grad(dtmp, dh, mask, t, rmask, has_mask, has_r, accumulate, b0, b1):
    """dh (+)= dtmp * rmask on the rows b0:b1 that were not masked at step t."""
    wide_vectors()
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

_SMALL_M = 4   # up to this many rows, a plain loop beats BLAS gemm (which packs U per call)


@njit(**HELPER_JIT)
def project(x, W, PW, U, P, h, z, t, tile, b0, b1):
    """z[b0:b1] = x[b0:b1, t] @ W + h[b0:b1] @ U (``PW`` / ``P``: W / U packed or empty,
    ``tile``: their scratch, :func:`._packed.product`).

    Up to ``_SMALL_M`` rows (a stateful model fed one sample at a time) plain vectorized
    loops: BLAS would repack W and U on every call, 5-8x slower for one row of a
    LSTM(128) (measured 25-33 us vs ~4 us a step)."""
    K = _consts_like(x)
    B, T, F = x.shape
    H, G = U.shape
    n = b1 - b0
    if n <= _SMALL_M:
        for b in range(b0, b1):
            zb, xb, hb = z[b], x[b, t], h[b]
            for j in range(G):
                zb[j] = K[0] - K[0]
            for k in range(F):
                a, wk = xb[k], W[k]
                for j in range(G):
                    zb[j] += a * wk[j]
            for k in range(H):
                a, uk = hb[k], U[k]
                for j in range(G):
                    zb[j] += a * uk[j]
        return
    _packed.product(n, G, F, x, b0 * T * F + t * F, T * F, W, 0, G, PW, z, b0 * G, G, False,
                    tile)
    _packed.product(n, G, H, h, b0 * H, H, U, 0, G, P, z, b0 * G, G, True, tile)


@njit(**HELPER_JIT)
def emit(h, out, s, b, has_out):
    if has_out:
        copy(h[b], out[b, s])


@njit(**HELPER_JIT)
def mm_acc(A, Bm, C, beta):
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


# Batch rows are independent through the whole recurrence, so the time loop is split by
# rows across threads (:mod:`.threads`): each thread runs the complete compiled loop on its
# own block of rows with one-thread BLAS calls, and the threads meet only at the end of the
# sequence (no synchronisation per step).
_MIN_ROWS = 8          # rows per thread; fewer and the loop stays on one thread
_MIN_WORK = 1 << 20    # B*H*G*T multiply-adds below which threads cost more than they save


def split(B, work, T):
    """Row blocks ``[(b0, b1), ...]`` for the threads that run one loop (one block = no split)."""
    if B < 2 * _MIN_ROWS or B * work * T < _MIN_WORK:
        return [(0, B)]
    return _threads.blocks(B, min(_threads.count(), B // _MIN_ROWS))


def run(fn, B, work, T, *args):
    """Call compiled loop ``fn(*args, b0, b1)`` over all B rows, split across threads
    (:func:`.threads.run_blocks`: the caller and resident worker threads, one block each).

    ``work`` is the multiply-adds of one row's recurrent product per step (H*G), ``T`` the
    number of steps. Unsplit outside :func:`.threads.parallel`, the per-step products of a
    small loop run on one BLAS thread (:func:`._blas.threads_for`).
    """
    blocks = split(B, work, T)
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
            _threads.run_blocks(fn, args, blocks)
    finally:
        _blas.restore(token)


def opt(a, dt, ndim):
    """C-contiguous array of dtype ``dt``, or an empty placeholder meaning "absent"."""
    if a is None:
        return np.empty((0,) * ndim, dt)
    return np.ascontiguousarray(a, dt)


def check_infer_shapes(cell, x, W, U, b_in, b_rec, states0, mask):
    """The kernels index raw memory: refuse shapes that do not fit together."""
    def bad(name, want, got):
        raise ValueError(f"infer: {name} must have shape {want}, got {got}; build "
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
        raise ValueError(f"infer: states0 must hold {cell.n_states} state array(s), "
                         f"got {len(states0)}.")
    for k, s0 in enumerate(states0):
        if np.shape(s0) != (B, H):
            bad(f"states0[{k}]", (B, H), np.shape(s0))
    if mask is not None and np.shape(mask) != (T, B):
        bad("mask", f"(time, batch) = {(T, B)}", np.shape(mask))


def prepare_forward(xw, states0, U, mask, rmask, ws):
    """Contiguous inputs and the (T+1, B, H) state buffer of a compiled forward loop.

    Returns ``(xw, U, m, rm, hp, hbuf)``: ``m`` / ``rm`` the mask / recurrent-dropout mask or
    empty placeholders, ``hp`` a (B, H) scratch for the dropped state (empty without
    recurrent dropout), ``hbuf`` with ``hbuf[0] = states0[0]``.
    """
    dt = xw.dtype
    xw = np.ascontiguousarray(xw)
    U = np.ascontiguousarray(U, dt)
    T, B, _ = xw.shape
    H = U.shape[0]
    hp = np.empty((B, H) if rmask is not None else (0, 0), dt)
    hbuf = _threads.buffer(ws, "hbuf", (T + 1, B, H), dt)
    hbuf[0] = states0[0]
    return xw, U, opt(mask, np.bool_, 2), opt(rmask, dt, 2), hp, hbuf


def prepare_backward(hbuf, U, dhs, dstates, mask, rmask, ws):
    """Shared set-up of a compiled backward loop: returns
    ``(U^T contiguous, m, rm, dhs or placeholder, state-gradient list, dxw buffer, dtmp)``.

    ``dZ_t @ U^T`` with U^T stored contiguously: OpenBLAS is 1.2-2.3x faster per step for
    small row blocks than with the transposed view (measured 32 rows, H=128: 146 vs 97
    GFLOP/s). ``dxw`` reuses the layer's X @ W buffer ("tbg"), free by now."""
    dt = hbuf.dtype
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    G = U.shape[1]
    dst = [np.zeros((B, H), dt) if s is None else np.array(s, dtype=dt) for s in dstates]
    dxw = _threads.buffer(ws, "tbg", (T, B, G), dt)
    return (np.ascontiguousarray(np.asarray(U, dt).T), opt(mask, np.bool_, 2),
            opt(rmask, dt, 2), opt(dhs, dt, 3), dst, dxw, np.empty((B, H), dt))


def recurrent_grad(hbuf, rmask, dzrec):
    """``dU = sum_t h'_{t-1}^T dzrec_t`` as one product over all T*B rows (h' after
    recurrent dropout)."""
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    hprev = hbuf[:-1] if rmask is None else hbuf[:-1] * rmask                 # (T, B, H)
    return _threads.matmul(hprev.reshape(T * B, H).T, dzrec.reshape(T * B, -1))


def prepare_infer(cell, x, states0, mask):
    """Checked, contiguous inputs of a compiled inference loop (the kernels index raw memory,
    so shapes that do not fit together are refused here).

    Returns ``(x, W, U, b_in, b_rec, states, m)``; ``states`` are fresh copies the loop
    updates in place, ``m`` the mask or an empty placeholder.

    The checks and conversions of the weights are planned once per cell and reused while
    the call has the same input, mask and state shapes and the very same weight arrays (a stateful
    model fed one step at a time: ``predict_on_batch`` on a batch of 1). Weights updated in
    place stay valid (the plan holds the arrays, not copies); weights that are replaced, or
    that need a conversion (dtype, memory order), are planned again on every call."""
    p = cell.params
    U = p["recurrent_kernel"]
    dt = U.dtype
    x = np.ascontiguousarray(x, dt)
    key = (x.shape, None if mask is None else np.shape(mask),
           tuple(np.shape(s) for s in states0))
    plan = cell.__dict__.get("_infer_plan")
    if (plan is None or plan[0] != key or plan[1] is not p["kernel"] or plan[2] is not U
            or plan[3] is not p.get("bias")):
        W = np.ascontiguousarray(p["kernel"], dt)
        U = np.ascontiguousarray(U, dt)
        b_in, b_rec = cell.split_bias()
        check_infer_shapes(cell, x, W, U, b_in, b_rec, states0, mask)
        bi, br = opt(b_in, dt, 1), opt(b_rec, dt, 1)
        plan = (key, p["kernel"], p["recurrent_kernel"], p.get("bias"), (W, U, bi, br))
        if W is p["kernel"] and U is p["recurrent_kernel"] and all(
                b is None or (c is b and np.shares_memory(b, p["bias"]))
                for b, c in ((b_in, bi), (b_rec, br))):
            cell.__dict__["_infer_plan"] = plan      # only arrays that track the weights
    W, U, b_in, b_rec = plan[4]
    states = [np.array(s, dtype=dt, order="C") for s in states0]
    return x, W, U, b_in, b_rec, states, opt(mask, np.bool_, 2)
