"""How rnnkit uses the cores: its own parallel regions, OpenBLAS single-threaded inside.

Recurrent layers are split by batch rows: each thread runs the whole compiled time loop on
its block of rows (:func:`rnnkit.kernels._loops.run`), with one-thread BLAS calls, and the
threads meet only at the end of the sequence. Mixing that with OpenBLAS's own thread pool
over-subscribes the cores: after a multi-threaded product OpenBLAS's helper threads keep
spinning for a while, on the cores our loop threads need. So inside :func:`parallel`
(entered by ``Model.fit`` / ``evaluate`` / ``predict`` / ``*_on_batch`` / ``model(x)``)
OpenBLAS runs single-threaded and rnnkit splits the large products itself (:func:`matmul`).
All of it runs in numba parallel regions (:func:`launch`): one pool of threads does all the
work, as PyTorch's OpenMP pool does, and starting a region costs about a microsecond.

The number of threads is OpenBLAS's thread count when :func:`parallel` is entered, so
``threadpoolctl.threadpool_limits(n)`` and ``OPENBLAS_NUM_THREADS`` keep controlling it
(``1`` runs everything in the calling thread).
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from . import _blas

_MIN_MACS = 1 << 21     # smaller products run on one thread (2M multiply-adds, ~10 us)
_state = threading.local()
_LAUNCH_LOCK = threading.Lock()
_FORKED = False     # in a child created by fork(): OpenMP thread pools do not survive it


def _forked():
    global _FORKED, _LAUNCH_LOCK
    _FORKED, _LAUNCH_LOCK = True, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def active():
    """True inside :func:`parallel` (OpenBLAS is then single-threaded)."""
    return getattr(_state, "depth", 0) > 0


def count():
    """Threads available to rnnkit's split work (1 in a forked child process: GNU OpenMP,
    numba's usual threading layer, cannot run parallel regions after fork())."""
    if _FORKED:
        return 1
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


class Workspace:
    """Reusable buffers owned by one layer, handed out while :func:`parallel` is active.

    Large arrays (a (T, B, 4H) gate buffer is 100 MB for LSTM(512) at B=128, T=100) come
    from fresh ``mmap`` pages that the kernel zeroes on first touch: measured 17% of an
    LSTM(512) training step. Reusing them across the batches of one ``fit``/``predict`` call
    avoids that. Ownership is explicit: :meth:`take` lends a buffer until the owner calls
    :meth:`release` (a layer releases everything when it drops its cache at the start of its
    next forward pass); a buffer still lent out is never handed out again. The buffers are
    dropped when the outermost :func:`parallel` exits.
    """

    def __init__(self):
        self._bufs = {}
        self._lent = set()

    def get(self):
        """This workspace inside :func:`parallel`, else None (then every buffer is fresh)."""
        if not active():
            return None
        if not any(w is self for w in _state.workspaces):
            _state.workspaces.append(self)
        return self

    def take(self, key, shape, dtype):
        """An uninitialised array of ``shape`` / ``dtype`` lent until :meth:`release`: the
        one kept under ``key`` when it is free and fits, else a new one."""
        shape = tuple(shape)
        a = self._bufs.get(key)
        if key in self._lent:                 # still in use: never share it
            return np.empty(shape, dtype)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._bufs[key] = np.empty(shape, dtype)
        self._lent.add(key)
        return a

    def release(self, *keys):
        """Give back the buffers lent under ``keys`` (all of them when none are named)."""
        if keys:
            self._lent.difference_update(keys)
        else:
            self._lent.clear()

    def clear(self):
        """Drop every buffer."""
        self._bufs.clear()
        self._lent.clear()


def buffer(ws, key, shape, dtype):
    """``ws.take(key, shape, dtype)``, or a fresh uninitialised array when ``ws`` is None."""
    if ws is None:
        return np.empty(shape, dtype)
    return ws.take(key, shape, dtype)


@contextlib.contextmanager
def launch(n):
    """Around one numba parallel region: ``n`` threads, one region at a time per process
    (numba's workqueue layer, the fallback when neither OpenMP nor TBB is available, must
    not be entered from two threads at once)."""
    import numba
    with _LAUNCH_LOCK:
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(before)


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
    if np.ndim(a) != 2 or np.ndim(b) != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul expects a (M, K) and b (K, N), got a {np.shape(a)} and b "
                         f"{np.shape(b)}: the inner dimensions must agree.")
    M, K = a.shape
    N = b.shape[1]
    if out is not None and out.shape != (M, N):
        raise ValueError(f"matmul: out must have shape (M, N) = {(M, N)}, got {out.shape}.")
    n = count() if active() else 1
    if n <= 1 or M * K * N < _MIN_MACS or min(M, N) < 2 * n:
        return np.matmul(a, b, out=out)
    dt = np.result_type(a, b)
    if dt not in (np.float32, np.float64) or a.dtype != dt or b.dtype != dt or (
            out is not None and (out.dtype != dt or out.strides[1] != dt.itemsize)):
        return np.matmul(a, b, out=out)
    from . import get_kernel_mode
    if get_kernel_mode() == "reference":      # debugging: no compiled code anywhere
        return np.matmul(a, b, out=out)
    try:
        from ._gemm import gemm_split
    except ImportError:          # no numba: one BLAS call
        return np.matmul(a, b, out=out)
    by_rows = M >= N
    blks = blocks(M if by_rows else N, n)
    edges = np.array([e0 for e0, _ in blks] + [blks[-1][1]], np.int64)
    with launch(len(blks)):
        return gemm_split(a, b, np.empty((M, N), dt) if out is None else out, by_rows, edges)
