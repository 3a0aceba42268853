"""Branch-free sigmoid, tanh, log1p and softplus for numba loops that LLVM can vectorize.

numba compiles ``math.exp``/``math.tanh`` to scalar libm calls (no SVML here), about 20x
slower per element than NumPy's SIMD loops. These versions use only arithmetic, ``floor``
and a bit cast, so the gate loops vectorize. Accuracy: a few ulp in float32 and float64
(``expm1`` by Cody-Waite reduction and a Taylor polynomial on ``|r| <= ln2/2``, degree
13 in float64 and 7 in float32; ``log1p`` by exponent/mantissa split and an atanh series).

Every constant comes from a tuple ``K`` of scalars of the working dtype (built by
:func:`constants`), so float32 code never promotes to float64 and the constants stay in
registers (an array could alias the output and block vectorization).
"""

from __future__ import annotations

import glob
import hashlib
import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Floating-point flags of every compiled kernel and helper: only "contract", which lets LLVM
# fuse a multiply and an add into one FMA instruction (one rounding instead of two, so each
# fused step is at least as accurate). No reassociation, no assumption of finite values.
# Measured on an Intel Xeon (AVX-512): sigmoid and tanh inside a vectorised loop 1.01 ->
# 0.70 ns per value, the polynomial and range reduction being chains of multiply-adds.
# A dict, so each user gets its own flag set (numba keeps a set it is given).
FASTMATH = {"contract": True}

# Compile options of the cell kernels and of the helpers they call, for every kernels module.
# Kernels are called from Python, never through a C function pointer: numba builds no C
# wrapper for them. Helpers called only from compiled code (HELPER_JIT) get no Python wrapper
# either. Building those wrappers was ~15% of a cold compile (issue 18).
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True,
           no_cfunc_wrapper=True)
HELPER_JIT = dict(JIT, no_cpython_wrapper=True)

# K layout: 0 one, 1 half, 2 log2(e), 3 ln2_hi, 4 ln2_lo, 5 lower clamp, 6..18 1/k! (k=13..1)
_N_POLY = 13


def constants(dtype) -> tuple:
    """The constant tuple ``K`` for ``dtype`` (float32 or float64), 19 scalars."""
    dt = np.dtype(dtype)
    if dt == np.float32:
        ln2_hi, ln2_lo, lo = 0.693359375, -2.12194440e-4, -87.0
    else:
        ln2_hi, ln2_lo, lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10, -708.0
    fact = [1.0]
    for k in range(1, _N_POLY + 1):
        fact.append(fact[-1] * k)
    poly = [1.0 / fact[k] for k in range(_N_POLY, 0, -1)]
    vals = np.array([1.0, 0.5, 1.4426950408889634, ln2_hi, ln2_lo, lo] + poly, dtype=dt)
    return tuple(vals)  # a tuple, so numba keeps the constants in registers


_K32 = constants(np.float32)
_K64 = constants(np.float64)


def consts_like(a):
    """The constant tuple for the dtype of array ``a`` (numba-only; a compile-time constant)."""
    raise NotImplementedError("only callable from numba-compiled code")  # pragma: no cover


@overload(consts_like, inline="always")
def _consts_like_impl(a):
    # Frozen into the compiled code as a constant: kernels need no K argument, which keeps
    # the per-call dispatch cost low (a tuple argument is unboxed element by element).
    if a.dtype == types.float32:
        return lambda a: _K32
    return lambda a: _K64


# Subnormal numbers: on x86, arithmetic that reads or produces one takes a slow microcode path
# (on the order of 100 cycles instead of a few). A gradient that decays over a long sequence
# walks through the subnormal range, and every operation on it there is slow: measured, a
# float32 product over a (32000 x 512) gradient half subnormal 25x slower, and the LSTM's
# backward at T = 1000 (``lstm_t1000_train``) ~9x slower on an Intel Xeon. So rnnkit's
# threads run with the CPU's flush-to-zero and denormals-are-zero modes on while a model
# works (:func:`rnnkit.kernels.threads.parallel`, entered by fit / evaluate / predict):
# subnormal results and inputs are 0, as TensorFlow does around its CPU kernels and
# ``torch.set_flush_denormal(True)`` does for a whole process. The caller's mode is restored
# on exit. Only x86-64 has these bits (in MXCSR); on other CPUs the calls do nothing.
_MXCSR_FTZ_DAZ = 0x8040
_X86 = platform.machine().lower() in ("x86_64", "amd64")


@intrinsic
def _mxcsr_or(typingctx, bits):
    """MXCSR |= bits; returns the previous MXCSR (x86-64 only)."""
    if not _X86 or bits != types.int32:
        return None

    def codegen(context, builder, sig, args):
        i32, i8p = ir.IntType(32), ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p])
        st = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.stmxcsr")
        ld = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.ldmxcsr")
        slot = cgutils.alloca_once(builder, i32)
        builder.call(st, [builder.bitcast(slot, i8p)])
        old = builder.load(slot)
        builder.store(builder.or_(old, args[0]), slot)
        builder.call(ld, [builder.bitcast(slot, i8p)])
        return old

    return types.int32(types.int32), codegen


@intrinsic
def _mxcsr_set(typingctx, value):
    """MXCSR = value (x86-64 only)."""
    if not _X86 or value != types.int32:
        return None

    def codegen(context, builder, sig, args):
        i8p = ir.IntType(8).as_pointer()
        ld = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [i8p]), "llvm.x86.sse.ldmxcsr")
        builder.call(ld, [builder.bitcast(cgutils.alloca_once_value(builder, args[0]), i8p)])
        return context.get_dummy_value()

    return types.void(types.int32), codegen


if _X86:
    @njit(cache=True, nogil=True)
    def fp_mode():
        """The calling thread's floating-point mode (a token for :func:`set_fp_mode`)."""
        return _mxcsr_or(np.int32(0))

    @njit(cache=True, nogil=True)
    def subnormals_to_zero():
        """Turn on flush-to-zero and denormals-are-zero for the calling thread; returns the
        previous mode, a token for :func:`set_fp_mode`."""
        return _mxcsr_or(np.int32(_MXCSR_FTZ_DAZ))

    @njit(cache=True, nogil=True)
    def set_fp_mode(token):
        """Set the calling thread's floating-point mode to ``token`` (from
        :func:`subnormals_to_zero` or :func:`set_fp_mode`); returns the previous mode."""
        old = fp_mode()
        _mxcsr_set(np.int32(token))
        return old
else:  # pragma: no cover - not x86-64
    @njit(cache=True, nogil=True)
    def fp_mode():
        """Nothing to read on this CPU (see the comment above)."""
        return np.int32(0)

    @njit(cache=True, nogil=True)
    def subnormals_to_zero():
        """Nothing to do on this CPU (see the comment above)."""
        return np.int32(0)

    @njit(cache=True, nogil=True)
    def set_fp_mode(token):
        """Nothing to do on this CPU."""
        return np.int32(0)


@intrinsic
def wide_vectors(typingctx):
    """Compiled code only: let LLVM vectorise the calling function's loops with 512-bit
    registers where the CPU has them (``wide_vectors()`` as a kernel's first statement).

    LLVM's tuning for Skylake-X and later CPUs prefers 256-bit vectors for loops it
    vectorises by itself, so the gate loops ran on 8 lanes though 16 fit; the explicit
    ``<16 x float>`` product (:mod:`._packed`) already runs the cores at 512 bits. Measured
    on an Intel Xeon (AVX-512): the element-wise sigmoid 0.94 -> 0.57 ns per value, identical
    results. The attribute is per function: a callee's loops are vectorised in its own module
    before LLVM inlines it, so every compiled function with hot loops calls this itself. On
    CPUs without 512-bit vectors the preference changes nothing.
    """
    def codegen(context, builder, sig, args):
        # llvmlite's AttributeSet accepts only the attributes it lists; LLVM takes any
        # "key"="value" string attribute, so it is added to the underlying set directly.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _exp2i(typingctx, nf):
    """2**n for an integer-valued float ``n`` in the normal exponent range (bit construction)."""
    if nf == types.float32:
        ibits, bias, shift = 32, 127, 23
    elif nf == types.float64:
        ibits, bias, shift = 64, 1023, 52
    else:
        return None

    def codegen(context, builder, sig, args):
        it = ir.IntType(ibits)
        i = builder.fptosi(args[0], it)
        i = builder.shl(builder.add(i, ir.Constant(it, bias)), ir.Constant(it, shift))
        return builder.bitcast(i, context.get_value_type(nf))

    return nf(nf), codegen


def _expm1_poly(r, K):
    """``(expm1(r) - r) / r**2`` on ``|r| <= ln2/2`` (dispatched on the dtype below)."""
    raise NotImplementedError("only callable from numba-compiled code")  # pragma: no cover


@overload(_expm1_poly, jit_options=dict(fastmath=FASTMATH, error_model="numpy"), inline="always")
def _expm1_poly_impl(r, K):
    # Taylor terms up to r^13/13! for float64 (error ~1e-17) and up to r^7/7! for float32
    # (error ~2e-8 < 1 ulp), Horner form, coefficients K[6..17] = 1/13! .. 1/2!.
    if r == types.float32:
        def impl(r, K):
            p = K[12]
            p = p * r + K[13]
            p = p * r + K[14]
            p = p * r + K[15]
            p = p * r + K[16]
            return p * r + K[17]
        return impl

    def impl64(r, K):
        p = K[6]
        p = p * r + K[7]
        p = p * r + K[8]
        p = p * r + K[9]
        p = p * r + K[10]
        p = p * r + K[11]
        p = p * r + K[12]
        p = p * r + K[13]
        p = p * r + K[14]
        p = p * r + K[15]
        p = p * r + K[16]
        return p * r + K[17]
    return impl64


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _exp_parts(x, K):
    """``(s, q)`` with ``exp(x) = s * (1 + q)``, ``s = 2**n`` and ``q = expm1(r)``, x <= 0.

    x is clamped at K[5], where exp underflows anyway."""
    x = max(x, K[5])
    n = np.floor(x * K[2] + K[1])
    r = (x - n * K[3]) - n * K[4]
    p = _expm1_poly(r, K)
    q = p * r * r + r                  # expm1(r) = r + r^2 (1/2! + r/3! + ...)
    return _exp2i(n), q


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def exp_neg(x, K):
    """``exp(x)`` for ``x <= 0``."""
    s, q = _exp_parts(x, K)
    return s * q + s


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def expm1_neg(x, K):
    """``exp(x) - 1`` for ``x <= 0``, accurate near 0."""
    s, q = _exp_parts(x, K)
    return s * q + (s - K[0])


# sigmoid and tanh are compiled once per dtype as ordinary functions, not inlined into
# numba IR (inline="always"): LLVM still inlines and vectorises them inside every loop
# that calls them (the kernels' machine code is unchanged), and numba no longer types
# and lowers their bodies again at every call site: cold compile of every LSTM/GRU/
# SimpleRNN kernel ~10% less CPU time. No Python or C wrapper: compiled callers only.
@njit(cache=True, fastmath=FASTMATH, error_model="numpy", no_cpython_wrapper=True,
      no_cfunc_wrapper=True)
def sigmoid(z, K):
    """Logistic function, stable for any z (same form as the reference)."""
    e = exp_neg(-abs(z), K)
    d = K[0] + e
    return K[0] / d if z >= 0 else e / d


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", no_cpython_wrapper=True,
      no_cfunc_wrapper=True)
def tanh(z, K):
    """Hyperbolic tangent via expm1 (accurate near 0)."""
    em = expm1_neg(-(abs(z) + abs(z)), K)      # exp(-2|z|) - 1, in (-1, 0]
    a = -em / (em + K[0] + K[0])
    return a if z >= 0 else -a


# log1p: 2 atanh(s) = 2s + s^3 (2/3 + 2/5 s^2 + ...), s = (m - 1)/(m + 1), |s| <= 0.1716 after
# the mantissa m is reduced to [sqrt(1/2), sqrt(2)); Taylor terms up to s^9 in float32
# (truncation ~2e-9 relative) and s^21 in float64 (~6e-19). Tuples: ln2_hi, ln2_lo, sqrt2,
# then 2/(2k+1) for k = K..1 (Horner order).
def _log_consts(dtype, n_terms):
    dt = np.dtype(dtype)
    hi = 0.693359375 if dt == np.float32 else 6.93147180369123816490e-01
    lo = -2.12194440e-4 if dt == np.float32 else 1.90821492927058770002e-10
    poly = [2.0 / (2 * k + 1) for k in range(n_terms, 0, -1)]
    return tuple(np.array([hi, lo, np.sqrt(2.0)] + poly, dtype=dt))


_L32 = _log_consts(np.float32, 4)
_L64 = _log_consts(np.float64, 10)


def _bits_intrinsic(fn_name, part):
    """An intrinsic splitting a positive normal float into its exponent (as a float of the
    same type) or its mantissa in [1, 2) (exponent bits set to the bias)."""
    def impl(typingctx, x):
        if x == types.float32:
            ibits, bias, shift = 32, 127, 23
        elif x == types.float64:
            ibits, bias, shift = 64, 1023, 52
        else:
            return None

        def codegen(context, builder, sig, args):
            it = ir.IntType(ibits)
            i = builder.bitcast(args[0], it)
            if part == "exponent":
                e = builder.sub(builder.lshr(i, ir.Constant(it, shift)), ir.Constant(it, bias))
                return builder.sitofp(e, context.get_value_type(x))
            mant = builder.and_(i, ir.Constant(it, (1 << shift) - 1))
            return builder.bitcast(builder.or_(mant, ir.Constant(it, bias << shift)),
                                   context.get_value_type(x))
        return x(x), codegen
    impl.__name__ = fn_name
    return intrinsic(impl)


_exponent = _bits_intrinsic("_exponent", "exponent")
_mantissa = _bits_intrinsic("_mantissa", "mantissa")


def _log_consts_of(x):
    """The log constant tuple for the dtype of scalar ``x`` (numba-only)."""
    raise NotImplementedError("only callable from numba-compiled code")  # pragma: no cover


@overload(_log_consts_of, inline="always")
def _log_consts_of_impl(x):
    if x == types.float32:
        return lambda x: _L32
    return lambda x: _L64


def _log_poly(s2, L):
    """``(2 atanh(s) - 2s) / s^3`` as a polynomial in ``s2 = s*s`` (dispatched on dtype)."""
    raise NotImplementedError("only callable from numba-compiled code")  # pragma: no cover


@overload(_log_poly, jit_options=dict(fastmath=FASTMATH, error_model="numpy"), inline="always")
def _log_poly_impl(s2, L):
    if s2 == types.float32:
        def impl(s2, L):
            p = L[3]
            p = p * s2 + L[4]
            p = p * s2 + L[5]
            return p * s2 + L[6]
        return impl

    def impl64(s2, L):
        p = L[3]
        p = p * s2 + L[4]
        p = p * s2 + L[5]
        p = p * s2 + L[6]
        p = p * s2 + L[7]
        p = p * s2 + L[8]
        p = p * s2 + L[9]
        p = p * s2 + L[10]
        p = p * s2 + L[11]
        return p * s2 + L[12]
    return impl64


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def log1p_pos(x, K):
    """``log(1 + x)`` for finite ``x >= 0``, accurate near 0 and branch-free (vectorizes).

    ``w = 1 + x`` is split into ``2**e * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``;
    ``log m = 2 atanh((m - 1)/(m + 1))`` by a short series, and ``(x - (w - 1)) / w`` puts
    back what the rounding of ``1 + x`` lost. A few ulp in float32 and float64."""
    L = _log_consts_of(x)
    w = K[0] + x
    e = _exponent(w)
    m = _mantissa(w)
    big = m > L[2]
    m = m * K[1] if big else m
    e = e + K[0] if big else e
    s = (m - K[0]) / (m + K[0])
    s2 = s * s
    r = s * s2 * _log_poly(s2, L) + (s + s)
    c = (x - (w - K[0])) / w
    return e * L[0] + ((e * L[1] + r) + c)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def softplus(z, K):
    """``log(1 + exp(z))`` for any finite z, stable (never overflows)."""
    return max(z, K[0] - K[0]) + log1p_pos(exp_neg(-abs(z), K), K)


# Row copies as plain loops: numba's slice assignment (``a[:] = b``) compiles an
# implementation that formats its error messages (~3 s of a cold MinGRU fit's compile time).

@njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True,
      no_cpython_wrapper=True, no_cfunc_wrapper=True)
def copy(src, dst):
    """``dst[:] = src`` for 1-D arrays of one length."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True,
      no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fill(dst, v):
    """``dst[:] = v`` for a 1-D array."""
    for j in range(dst.shape[0]):
        dst[j] = v


# numba keys a cached function by its own bytecode and its source file's time stamp only: not
# by the helpers it inlines from other modules (sigmoid, tanh, the packed product) nor by
# the compile flags (FASTMATH, JIT in ._loops). In a checkout where this file changed but
# lstm.py did not, the cached LSTM kernels would keep the old math. So the cache directory
# of the kernels holds a digest of every kernels/*.py; when it differs, the cached kernels
# there are deleted and compile again on first use. (A pip upgrade rewrites every file, so
# numba's own stamps already catch it; an edited or pulled source tree is the case here.)
_DIGEST_FILE = "rnnkit-kernels.digest"


def sources_digest() -> str:
    """SHA-256 of the kernels package's Python sources (names and contents)."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(here, "*.py"))):
        h.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def drop_stale_cache():
    """Delete numba's cached kernels when the kernels' sources changed since they were
    cached (see the comment above). Returns the number of cache files deleted."""
    try:
        cache_dir = fp_mode._cache.cache_path     # numba's choice for this package's files
    except Exception:   # no writable cache location, or a numba without this internal
        return 0
    digest = sources_digest()
    stamp = os.path.join(cache_dir, _DIGEST_FILE)
    try:
        with open(stamp) as f:
            if f.read() == digest:
                return 0
    except OSError:
        pass
    dropped = 0
    for path in glob.glob(os.path.join(cache_dir, "*.nb[ci]")):
        try:
            os.remove(path)
            dropped += 1
        except OSError:     # another process removed it first, or not ours to remove
            pass
    try:
        tmp = f"{stamp}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(digest)
        os.replace(tmp, stamp)      # atomic: a concurrent reader sees old or new, never half
    except OSError:
        pass
    return dropped


drop_stale_cache()
