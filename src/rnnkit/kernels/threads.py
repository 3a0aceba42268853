"""How rnnkit uses the cores: its own parallel regions, OpenBLAS single-threaded inside.

Recurrent layers are split by batch rows: each thread runs the whole compiled time loop on
its block of rows (:func:`rnnkit.kernels._loops.run`), with one-thread BLAS calls, and the
threads meet only at the end of the sequence. Mixing that with OpenBLAS's own thread pool
over-subscribes the cores: after a multi-threaded product OpenBLAS's helper threads keep
spinning for a while, on the cores our loop threads need. So inside :func:`parallel`
(entered by ``Model.fit`` / ``evaluate`` / ``predict`` / ``*_on_batch`` / ``model(x)``)
OpenBLAS runs single-threaded and rnnkit splits the large products itself (:func:`matmul`).
The row blocks of a loop or a product run on a small pool of Python threads
(:func:`run_blocks`): the calling thread takes the first block, a resident worker each other
one, and the compiled code they call releases the GIL. (The time-parallel scans of the linear
cells use numba parallel regions, :func:`launch`.)

The number of threads is OpenBLAS's thread count when :func:`parallel` is entered, so
``threadpoolctl.threadpool_limits(n)`` and ``OPENBLAS_NUM_THREADS`` keep controlling it
(``1`` runs everything in the calling thread).

Inside :func:`parallel` subnormal floats (below 1.2e-38 in float32, 2.2e-308 in float64) are
flushed to zero, in the calling thread and in every worker (each block runs in its caller's
floating-point mode): on x86 arithmetic on them takes a microcode path ~100x slower, and a
gradient decaying over a long sequence spends most of the backward there (the LSTM at
T = 1000 trains ~9x faster on an Intel Xeon with the mode; :mod:`._math`). TensorFlow runs
its CPU kernels the same way. The caller's mode is restored when :func:`parallel` exits.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading

import numpy as np

from . import _blas, _packed
from ._math import fp_mode as _fp_mode
from ._math import set_fp_mode, subnormals_to_zero

_MIN_MACS = 1 << 21     # smaller products run on one thread (2M multiply-adds, ~10 us)
_state = threading.local()
_LAUNCH_LOCK = threading.Lock()
_FORKED = False     # in a child created by fork(): OpenMP thread pools do not survive it


def _forked():
    global _FORKED, _LAUNCH_LOCK, _POOL
    _FORKED, _LAUNCH_LOCK, _POOL = True, threading.Lock(), _Pool()


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


def parallel():
    """Run the enclosed work on rnnkit's threads (re-entrant; nested calls are free).

    Use as ``with parallel(): ...``. A class, not a generator context manager: every model
    entry point enters it, and a stateful model fed one step per ``predict_on_batch`` call
    pays its cost on every step (~2 us less per call).
    """
    return _Parallel()


class _Parallel:
    __slots__ = ("_token", "_fp_mode", "_outer")

    def __enter__(self):
        self._outer = not active()
        if not self._outer:
            _state.depth += 1
            return self
        n = _blas.num_threads()
        self._token = _blas.set_threads(1) if n > 1 else None
        _state.depth, _state.n, _state.workspaces = 1, n, []
        self._fp_mode = subnormals_to_zero()
        return self

    def __exit__(self, *exc):
        if not self._outer:
            _state.depth -= 1
            return False
        set_fp_mode(self._fp_mode)
        for ws in _state.workspaces:
            ws.clear()
        _state.depth, _state.workspaces = 0, []
        _blas.restore(self._token)
        return False


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


class _Pool:
    """Resident worker threads, each with its own inbox; one caller at a time."""

    def __init__(self):
        self._inboxes = []
        self._done = queue.SimpleQueue()
        self.lock = threading.Lock()

    def _work(self, inbox):
        mode = _fp_mode()
        while True:
            fn, args, b0, b1, caller_mode = inbox.get()
            try:
                if caller_mode != mode:       # run in the caller's floating-point mode
                    set_fp_mode(caller_mode)
                    mode = caller_mode
                fn(*args, b0, b1)
                self._done.put(None)
            except BaseException as e:        # handed to the caller, re-raised there
                self._done.put(e)

    def run(self, fn, args, blocks):
        while len(self._inboxes) < len(blocks) - 1:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), daemon=True,
                             name=f"rnnkit-{len(self._inboxes) + 1}").start()
            self._inboxes.append(inbox)
        fp_mode = _fp_mode()
        for inbox, (b0, b1) in zip(self._inboxes, blocks[1:]):
            inbox.put((fn, args, b0, b1, fp_mode))
        error = None
        try:
            fn(*args, *blocks[0])
        except BaseException as e:
            error = e
        for _ in blocks[1:]:                  # wait for every worker, even after an error
            e = self._done.get()
            error = error or e
        if error is not None:
            raise error


_POOL = _Pool()


def run_blocks(fn, args, blocks):
    """``fn(*args, b0, b1)`` for every ``(b0, b1)`` in ``blocks``, one block per thread: the
    caller runs the first, resident workers the others (``fn`` must release the GIL to run
    in parallel: a compiled ``nogil`` kernel or a NumPy product). Returns when all are done;
    the first error raised by any block is raised here. A second caller while the pool is
    busy (another Python thread) runs its blocks one after another in its own thread."""
    if len(blocks) > 1 and _POOL.lock.acquire(blocking=False):
        try:
            _POOL.run(fn, args, blocks)
        finally:
            _POOL.lock.release()
        return
    for b0, b1 in blocks:
        fn(*args, b0, b1)


def matmul(a, b, out=None, bias=None):
    """``a @ b`` (``+ bias``) for 2-D arrays (views such as ``x.T`` are fine), split across
    rnnkit's threads inside :func:`parallel` when the product is large.

    Args: a (M, K); b (K, N); out: optional (M, N) array of the result dtype; bias: optional
    (N,) row added to every row of the result (on the packed path inside the product, while
    each block is in cache; otherwise by each thread after its block).
    Returns: (M, N) array (``out`` when given). Rows of ``a`` are split when M >= N, else
    columns of ``b``; every block is one product on one thread (:func:`run_blocks`): the
    packed product over ``b`` packed once (float32, C-contiguous ``a``; :mod:`._packed`),
    else OpenBLAS.
    """
    if np.ndim(a) != 2 or np.ndim(b) != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul expects a (M, K) and b (K, N), got a {np.shape(a)} and b "
                         f"{np.shape(b)}: the inner dimensions must agree.")
    M, K = a.shape
    N = b.shape[1]
    if out is not None and out.shape != (M, N):
        raise ValueError(f"matmul: out must have shape (M, N) = {(M, N)}, got {out.shape}.")
    if bias is not None and np.shape(bias) != (N,):
        raise ValueError(f"matmul: bias must have shape (N,) = ({N},), got {np.shape(bias)}.")
    n = count() if active() else 1
    if n <= 1 or M * K * N < _MIN_MACS or min(M, N) < 2 * n:
        out = np.matmul(a, b, out=out)
        if bias is not None:
            out += bias
        return out
    if out is None:
        out = np.empty((M, N), np.result_type(a, b))
    if M >= N:
        if _packed_rows(a, b, out):
            if bias is not None:
                bias = np.ascontiguousarray(bias, np.float32)
            run_blocks(_rows_packed, (a, _packed.pack(b), out, bias), blocks(M, n))
        else:
            run_blocks(_rows_product, (a, b, out, bias), blocks(M, n))
    else:
        run_blocks(_cols_product, (a, b, out, bias), blocks(N, n))
    return out


def _packed_rows(a, b, out):
    """Whether ``a @ b`` split by rows runs on rnnkit's packed product (:mod:`._packed`):
    float32 throughout, ``a`` and ``out`` C-contiguous, the packed path on. Its speed does
    not depend on ``OPENBLAS_CORETYPE``, and it beats OpenBLAS on the thin products of a
    recurrent layer (docs/performance.md, issue 18)."""
    return (_packed.serves(a.dtype) and a.dtype == b.dtype == out.dtype
            and a.flags.c_contiguous and out.flags.c_contiguous)


def _rows_packed(a, P, out, bias, r0, r1):
    if bias is None:
        _packed.packed_matmul(a[r0:r1], P, out[r0:r1], False)
    else:
        _packed.packed_matmul_bias(a[r0:r1], P, out[r0:r1], bias)


def _rows_product(a, b, out, bias, r0, r1):
    np.matmul(a[r0:r1], b, out=out[r0:r1])
    if bias is not None:
        out[r0:r1] += bias


def _cols_product(a, b, out, bias, c0, c1):
    np.matmul(a, b[:, c0:c1], out=out[:, c0:c1])
    if bias is not None:
        out[:, c0:c1] += bias[c0:c1]
