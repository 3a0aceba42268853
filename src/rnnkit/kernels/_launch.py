"""The one parallel launcher of the compiled kernels: :func:`launch` calls a kernel once per
row block in one numba parallel region (used by :func:`._loops.run` and
:func:`._scan.run_rows`).

One parallel launcher (:func:`launch`) serves every kernel: it receives the compiled
kernel as a function pointer (numba's first-class function type) and calls it once per row
block in one parallel region. numba's threading layer starts a region in ~1 us; a Python
thread hand-off costs ~75 us here. A launcher per kernel that calls the kernel by name
(the previous layout) made numba link the kernel's code into the launcher and optimise it
again there: that was half of the whole cold compile time (LSTM forward: kernel 2.2 CPU-s,
its launcher another 3 s; through the pointer 0.6 s, compiled once per kernel signature and
cached like the kernels). A launcher made by a factory closing over the kernel cannot be
cached at all (closures), so every process would recompile it.

It lives in a module of its own so that a kernel can use it without importing (and
compiling, on a cold cache) the recurrent kernels' shared code (:mod:`._loops` imports the
packed product, whose C-callable compiles at import: 1.4 s).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, typeof
from numba.core import types as _types
from numba.core.types.function_type import CompileResultWAP as _CompiledFunction

_PAR_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True, parallel=True)


@njit(**_PAR_JIT)
def launch(fn, args, edges):
    """``fn(*args, b0, b1)`` for every row block ``edges[i]:edges[i + 1]``, one parallel
    region; ``fn`` is a compiled kernel passed as a function pointer (:func:`pointer`)."""
    for i in prange(edges.shape[0] - 1):
        fn(*args, edges[i], edges[i + 1])


_POINTERS = {}


def pointer(fn, args):
    """Kernel ``fn`` compiled for ``(*args, b0, b1)`` as a first-class function for
    :func:`launch` (compiled, or loaded from numba's cache, on first use)."""
    key = (fn,) + tuple((a.dtype.num, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous,
                         a.flags.writeable, a.flags.aligned)
                        if isinstance(a, np.ndarray) else type(a) for a in args)
    ptr = _POINTERS.get(key)
    if ptr is None:
        sig = tuple(typeof(a) for a in args) + (_types.int64, _types.int64)
        fn.compile(sig)
        ptr = _POINTERS[key] = _CompiledFunction(fn.overloads[sig])
    return ptr


def edges(blocks):
    """``[(b0, b1), ...]`` as the int64 array ``[b0, ..., last b1]`` the launchers take."""
    return np.array([b0 for b0, _ in blocks] + [blocks[-1][1]], np.int64)
