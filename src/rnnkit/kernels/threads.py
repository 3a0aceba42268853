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
    _state.depth, _state.n = 1, n
    try:
        yield
    finally:
        _state.depth = 0
        _blas.restore(token)


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
