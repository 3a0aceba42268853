"""rnnkit's own worker threads for the batch-parallel work.

Recurrent layers are split by batch rows: each thread runs the whole compiled time loop on
its block of rows (:func:`rnnkit.kernels.fast._run`), with one-thread BLAS calls, and the
threads meet only at the end of the sequence. Mixing that with OpenBLAS's own thread pool
over-subscribes the cores: after a multi-threaded product OpenBLAS's helper threads keep
spinning for a while, on the cores our loop threads need. So inside :func:`parallel`
(entered by ``Model.fit`` / ``evaluate`` / ``predict`` / ``*_on_batch`` / ``forward`` /
``backward``) OpenBLAS runs single-threaded and rnnkit splits the large products itself
(:func:`matmul`). One pool of threads does all the work, as in PyTorch's OpenMP pool.

The number of threads is OpenBLAS's thread count when :func:`parallel` is entered, so
``threadpoolctl.threadpool_limits(n)`` and ``OPENBLAS_NUM_THREADS`` keep controlling it
(``1`` runs everything in the calling thread).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading

import numpy as np

from . import _blas

_MIN_MACS = 1 << 21     # smaller products run unsplit: thread hand-off costs ~20-50 us
_state = threading.local()
_POOL = None
_POOL_LOCK = threading.Lock()


def pool(n):
    """A shared executor with at least ``n`` worker threads."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < n:
            _POOL = concurrent.futures.ThreadPoolExecutor(
                max_workers=n, thread_name_prefix="rnnkit-worker")
        return _POOL


def active():
    """True inside :func:`parallel` (OpenBLAS is then single-threaded)."""
    return getattr(_state, "depth", 0) > 0


def count():
    """Threads available to rnnkit's split work."""
    return _state.n if active() else _blas.num_threads()


@contextlib.contextmanager
def parallel():
    """Run the enclosed work on rnnkit's threads (re-entrant; nested calls are free)."""
    if active():
        _state.depth += 1
        try:
            yield
        finally:
            _state.depth -= 1
        return
    n = _blas.num_threads()
    token = _blas.set_threads(1) if n > 1 else None
    _state.depth, _state.n, _state.workspaces = 1, n, []
    try:
        yield
    finally:
        for ws in _state.workspaces:
            ws.clear()
        _state.depth, _state.workspaces = 0, []
        _blas.restore(token)


def workspace(owner):
    """A dict of reusable buffers for ``owner`` (a layer) inside :func:`parallel`, else None.

    Large arrays (a (T, B, 4H) gate buffer is 100 MB for LSTM(512) at B=128, T=100) come
    from fresh ``mmap`` pages that the kernel zeroes on first touch: measured 17% of an
    LSTM(512) training step. Reusing them across the batches of one ``fit``/``predict`` call
    avoids that; the buffers are dropped when the outermost :func:`parallel` exits.
    """
    if not active():
        return None
    ws = owner.__dict__.get("_workspace")
    if ws is None:
        ws = owner.__dict__["_workspace"] = {}
    if not any(w is ws for w in _state.workspaces):
        _state.workspaces.append(ws)
    return ws


def buffer(ws, key, shape, dtype):
    """An uninitialised array of ``shape``/``dtype``: the one kept in ``ws[key]`` when nothing
    else references it any more (no cache, output or view still holds it), else a new one."""
    if ws is None:
        return np.empty(shape, dtype)
    a = ws.get(key)
    # references: the dict entry, ``a`` and getrefcount's argument
    if a is not None and a.shape == tuple(shape) and a.dtype == dtype and sys.getrefcount(a) <= 3:
        return a
    a = ws[key] = np.empty(shape, dtype)
    return a


def _after_fork():          # a forked child has none of the parent's worker threads
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def run_blocks(fn, blocks):
    """Call ``fn(b0, b1)`` for every block, the first in this thread, the rest in the pool."""
    if len(blocks) == 1:
        fn(*blocks[0])
        return
    futures = [pool(len(blocks) - 1).submit(fn, b0, b1) for b0, b1 in blocks[1:]]
    try:
        fn(*blocks[0])
    finally:
        for f in futures:
            f.result()


def blocks(n_items, n_blocks):
    """``[(start, stop), ...]``: ``n_items`` cut into ``n_blocks`` near-equal blocks."""
    edges = [n_items * i // n_blocks for i in range(n_blocks + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays (views such as ``x.T`` are fine), split across rnnkit's
    threads inside :func:`parallel` when the product is large.

    Args: a (M, K); b (K, N); out: optional (M, N) array of the result dtype.
    Returns: (M, N) array (``out`` when given). Rows of ``a`` are split when M >= N, else
    columns of ``b``; every block is one BLAS call on one thread.
    """
    M, K = a.shape
    N = b.shape[1]
    n = _state.n if active() else 1
    if n <= 1 or M * K * N < _MIN_MACS or min(M, N) < 2 * n:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((M, N), np.result_type(a, b))
    if M >= N:
        def part(i, j):
            np.matmul(a[i:j], b, out=out[i:j])
        run_blocks(part, blocks(M, n))
    else:
        def part(i, j):
            np.matmul(a, b[:, i:j], out=out[:, i:j])
        run_blocks(part, blocks(N, n))
    return out
