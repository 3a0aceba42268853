"""BLAS matrix multiply callable from numba-compiled code, without SciPy.

``np.dot`` inside numba needs SciPy. Instead we load the OpenBLAS library that ships inside
the NumPy wheel (``numpy.libs/libscipy_openblas*.so``) into LLVM's symbol table and emit a
direct call to its ``cblas_?gemm`` by *name*. Calls by name (not by a run-time address)
keep ``@njit(cache=True)`` working: the cached object code is relinked on load. The same
library serves ``numpy.matmul``, so threadpoolctl limits both.

:data:`AVAILABLE` is False when no such library is found (e.g. a NumPy built against
Accelerate or MKL); the compiled kernels (:mod:`rnnkit.kernels`) then fail to import and the
reference path runs.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

AVAILABLE = False
LIBRARY = None
_SYMBOLS = {}   # dtype name -> cblas symbol
_INT_BITS = 64


def _find_library():
    root = os.path.dirname(np.__file__)
    patterns = [os.path.join(root, os.pardir, "numpy.libs", "libscipy_openblas*.so*"),
                os.path.join(root, ".dylibs", "libscipy_openblas*.dylib")]
    for pat in patterns:
        for path in sorted(glob.glob(pat)):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for sfx, bits in (("64_", 64), ("", 32)):
                s, d = f"scipy_cblas_sgemm{sfx}", f"scipy_cblas_dgemm{sfx}"
                if hasattr(lib, s) and hasattr(lib, d):
                    return path, {"float32": s, "float64": d}, bits
    return None, {}, 64


try:
    import llvmlite.binding as _llvm
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    LIBRARY, _SYMBOLS, _INT_BITS = _find_library()
    if LIBRARY is not None:
        _llvm.load_library_permanently(LIBRARY)
        AVAILABLE = True
except ImportError:  # numba missing: the fast path is disabled by the caller
    pass


# Per-step products smaller than this many multiply-adds (16.8M, e.g. 256 x 128 x 512) run on
# one BLAS thread. Each step's product is only tens of microseconds; OpenBLAS wakes its helper
# threads for every call, and when the other core is busy the wake-up waits for a scheduler
# time slice. Measured on the shared 2-core machine: seed_train fell from ~2400 samples/s
# (one thread per step) to 18-700 samples/s with two.
SMALL_GEMM_MACS = 1 << 24
_set_local = _get_threads = None
if AVAILABLE:
    _lib = ctypes.CDLL(LIBRARY)
    # the wheel's OpenBLAS prefixes its API (scipy_openblas_*64_); threadpoolctl uses the same
    _getter = next((n for n in ("scipy_openblas_get_num_threads64_",
                                "scipy_openblas_get_num_threads", "openblas_get_num_threads")
                    if hasattr(_lib, n)), None)
    if hasattr(_lib, "openblas_set_num_threads_local") and _getter is not None:
        _set_local = _lib.openblas_set_num_threads_local
        _set_local.argtypes, _set_local.restype = [ctypes.c_int], ctypes.c_int
        _get_threads = getattr(_lib, _getter)
        _get_threads.argtypes, _get_threads.restype = [], ctypes.c_int


def num_threads():
    """OpenBLAS's thread count (what threadpoolctl sets); 1 when it cannot be controlled
    per thread (an OpenBLAS without ``openblas_set_num_threads_local``)."""
    return 1 if _get_threads is None else max(1, _get_threads())


def set_threads(n):
    """Set OpenBLAS's thread count; returns a token (the previous count) for :func:`restore`.

    Despite its name, ``openblas_set_num_threads_local`` sets the *process-wide* count (it
    only adds the return value), so callers set it once around a whole loop, never from
    several threads at once.
    """
    return None if _set_local is None else _set_local(n)


def threads_for(macs_per_step):
    """Limit BLAS to one thread (process-wide, see :func:`set_threads`) when the per-step
    product is small.

    Returns a token for :func:`restore`, or None when nothing was changed.
    """
    if _set_local is None or macs_per_step >= SMALL_GEMM_MACS:
        return None
    return _set_local(1)


def restore(token):
    """Undo :func:`threads_for`."""
    if token is not None:
        _set_local(token)


if AVAILABLE:

    @_intrinsic
    def gemm(typingctx, transa, transb, M, N, K, alpha, A, offa, lda, B, offb, ldb,
             beta, C, offc, ldc):
        """Row-major ``C[offc:] = alpha * op(A) @ op(B) + beta * C`` (cblas ?gemm).

        ``A``, ``B``, ``C`` are arrays of one float dtype (any rank, contiguous memory
        addressed through the leading dimensions ``lda``/``ldb``/``ldc`` from element
        offsets ``offa``/``offb``/``offc``). ``transa``/``transb``: 0 = as is, 1 = transposed.
        """
        dt = C.dtype
        if not (isinstance(A, _types.Array) and A.dtype == dt and B.dtype == dt):
            return None
        sig = _types.void(transa, transb, M, N, K, alpha, A, offa, lda, B, offb, ldb,
                          beta, C, offc, ldc)
        name = _SYMBOLS["float32" if dt == _types.float32 else "float64"]

        def codegen(context, builder, signature, args):
            (ta, tb, m, n, k, al, a, oa, la, b, ob, lb, be, c, oc, lc) = args
            st = signature.args
            fdt = context.get_value_type(dt)
            i32, ii = _ir.IntType(32), _ir.IntType(_INT_BITS)
            p = fdt.as_pointer()
            fnty = _ir.FunctionType(_ir.VoidType(),
                                    [i32, i32, i32, ii, ii, ii, fdt, p, ii, p, ii, fdt, p, ii])
            fn = _cgutils.get_or_insert_function(builder.module, fnty, name)

            def as_int(v, t):
                return context.cast(builder, v, t, _types.intp if _INT_BITS == 64
                                    else _types.int32)

            def ptr(arr, t, off, toff):
                data = context.make_array(t)(context, builder, arr).data
                return builder.gep(data, [context.cast(builder, off, toff, _types.intp)])

            def trans(v, t):
                flag = context.cast(builder, v, t, _types.int32)
                return builder.add(flag, _ir.Constant(i32, 111))  # CblasNoTrans=111, Trans=112

            builder.call(fn, [
                _ir.Constant(i32, 101),                            # CblasRowMajor
                trans(ta, st[0]), trans(tb, st[1]),
                as_int(m, st[2]), as_int(n, st[3]), as_int(k, st[4]),
                context.cast(builder, al, st[5], dt),
                ptr(a, st[6], oa, st[7]), as_int(la, st[8]),
                ptr(b, st[9], ob, st[10]), as_int(lb, st[11]),
                context.cast(builder, be, st[12], dt),
                ptr(c, st[13], oc, st[14]), as_int(lc, st[15]),
            ])
            return context.get_dummy_value()

        return sig, codegen
