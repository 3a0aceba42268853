"""A recurrent product over a weight matrix packed once per sequence (issue 18, item 1).

The per-step product ``h_t @ U`` (B x K times K x N, e.g. N = 4H for LSTM) multiplies the same
``U`` at every step. OpenBLAS repacks ``U`` on every call. Here ``U`` is packed once
(:func:`pack`) into column panels of :data:`NR` columns, each panel's K x NR block stored
contiguously (the last panel zero-padded), and a micro-kernel written directly in vector LLVM
IR (a numba ``@intrinsic``) computes an MR x NR register block of the result:

    C[i:i+MR, p*NR:(p+1)*NR] (+)= A[i:i+MR, :] @ P[p]

keeping MR x 2 vector accumulators in registers across the whole k loop (``A[r, k]``
broadcast, ``llvm.fma``). Plain numba loops could not keep the
accumulators in SIMD registers (6-28 GFLOP/s, docs/performance.md).

Layout: ``P`` is (N_panels, K, NR) float32, ``P[p, k, c] = U[k, p*NR + c]`` (0 beyond N).

Rounding: each output element is a sequential FMA chain over k = 0..K-1 (the same order as a
plain dot product); it differs from OpenBLAS only by float32 rounding.

Only float32 is served, on CPUs with AVX-512F or with AVX2 and FMA (:data:`AVAILABLE`); the
register block follows the vector registers: 8 rows x two ``<16 x float>`` (16 of 32 zmm
registers hold accumulators) with AVX-512F, 6 rows x two ``<8 x float>`` (12 of 16 ymm) with
AVX2 (the 6x16 shape of BLIS's Haswell kernel). float64 and other CPUs keep OpenBLAS.

The compiled cell kernels call :func:`product` for their per-step products (``h @ U`` in
training and inference, ``dZ @ U^T`` in backward, ``x_t @ W`` in inference); their Python
wrappers pack ``U`` (``U^T``, ``W``) once per call with :func:`for_call`,
which returns an empty placeholder (meaning: OpenBLAS) when the packed path is off:
float64, neither AVX-512F nor AVX2+FMA, or ``RNNKIT_PACKED=0`` in the environment (read at
import; tests flip :data:`ENABLED`).

The product itself is compiled once, as a C-callable function (:data:`_SYMBOL`, registered in
LLVM's symbol table at import), and called by name from the kernels like OpenBLAS: linked
into each kernel instead, its unrolled register blocks were optimised again in every kernel
(cold compile of ``rnnkit train`` 14.7 -> 11.7 CPU-s when this changed).
"""

from __future__ import annotations

import os

import numpy as np

KC = 256         # k per chunk: a panel's chunk (KC x NR floats, 16-32 KiB) stays in L1
MC = 128         # rows per chunk: A's chunk, MC x KC floats = 128 KiB, stays in L2

AVAILABLE = False
ENABLED = os.environ.get("RNNKIT_PACKED", "1") != "0"
_LANES, MR = 16, 8   # vector width and rows per register block (set below by the CPU)
ISA = None           # the instruction set the product is written for, where AVAILABLE
try:
    import llvmlite.binding as _llvm
    from llvmlite import ir as _ir
    from numba import carray as _carray
    from numba import cfunc as _cfunc
    from numba import njit
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic
    from numba.extending import overload as _overload

    from . import _blas
    from ._math import HELPER_JIT as _HELPER_JIT
    from ._math import JIT as _JIT
    from ._math import consts_like as _consts_like

    _FEATURES = _llvm.get_host_cpu_features()
    if _FEATURES.get("avx512f", False):
        AVAILABLE, ISA = True, "AVX-512F"
    elif _FEATURES.get("avx2", False) and _FEATURES.get("fma", False):
        AVAILABLE, ISA, _LANES, MR = True, "AVX2+FMA", 8, 6
except ImportError:  # pragma: no cover - numba missing: callers keep OpenBLAS
    njit = None

NR = 2 * _LANES  # columns per panel: two vectors


def serves(dtype):
    """Whether the packed product runs the products of ``dtype`` in this process: float32,
    a CPU with AVX-512F or AVX2+FMA (:data:`AVAILABLE`), and not turned off
    (``RNNKIT_PACKED=0``, :data:`ENABLED`)."""
    return ENABLED and AVAILABLE and np.dtype(dtype) == np.float32


def pack(U, out=None):
    """Pack ``U`` (K, N) into column panels for :func:`packed_matmul`.

    Args:
        U: (K, N) float32 matrix (any strides).
        out: optional (ceil(N / NR), K, NR) float32 C-contiguous array to fill.

    Returns:
        ``P`` (ceil(N / NR), K, NR) float32, ``P[p, k, c] = U[k, p * NR + c]``, zero beyond N.
    """
    U = np.asarray(U)
    if U.ndim != 2 or U.dtype != np.float32:
        raise ValueError(f"pack expects U as a 2-D float32 array, got {U.dtype} of shape "
                         f"{U.shape}.")
    K, N = U.shape
    npan = -(-N // NR)
    shape = (npan, K, NR)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"pack: out must be a C-contiguous float32 array of shape {shape}, "
                         f"got {out.dtype} {out.shape}.")
    full = N // NR
    if full:
        out[:full] = U[:, :full * NR].reshape(K, full, NR).transpose(1, 0, 2)
    if full < npan:
        rest = N - full * NR
        out[full, :, :rest] = U[:, full * NR:]
        out[full, :, rest:] = 0
    return out


def _make_block(mr):
    """The micro-kernel intrinsic for ``mr`` rows (``mr <= MR``):
    ``block(A, a_off, lda, P, p_off, C, c_off, ldc, K, accumulate)``.

    ``C[c_off + r*ldc + c] (+)= sum_k A[a_off + r*lda + k] * P[p_off + k*NR + c]`` for
    r < mr, c < NR (element offsets into the arrays' memory; any rank, contiguous)."""
    nv = NR // _LANES

    @_intrinsic
    def block(typingctx, A, a_off, lda, P, p_off, C, c_off, ldc, K, accumulate):
        for arr in (A, P, C):
            if not (isinstance(arr, _types.Array) and arr.dtype == _types.float32):
                return None
        sig = _types.void(A, a_off, lda, P, p_off, C, c_off, ldc, K, accumulate)

        def codegen(context, builder, signature, args):
            (a, ao, la, p, po, c, co, lc, kk, acc_flag) = args
            st = signature.args
            f32 = _ir.FloatType()
            vt = _ir.VectorType(f32, _LANES)
            ip = context.get_value_type(_types.intp)

            def idx(v, t):
                return context.cast(builder, v, t, _types.intp)

            def data(arr, t):
                return context.make_array(t)(context, builder, arr).data

            ao, la, po, co, lc, kk = (idx(ao, st[1]), idx(la, st[2]), idx(po, st[4]),
                                      idx(co, st[6]), idx(lc, st[7]), idx(kk, st[8]))
            flag = context.cast(builder, acc_flag, st[9], _types.boolean)
            pa, pp, pc = data(a, st[0]), data(p, st[3]), data(c, st[5])
            fma = _cgutils.get_or_insert_function(
                builder.module, _ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.v{_LANES}f32")

            def vload(base, off):
                ptr = builder.bitcast(builder.gep(base, [off]), vt.as_pointer())
                return builder.load(ptr, align=4)

            def vstore(val, base, off):
                ptr = builder.bitcast(builder.gep(base, [off]), vt.as_pointer())
                builder.store(val, ptr, align=4)

            zero = _ir.Constant(vt, None)
            accs = []
            for r in range(mr):
                row = []
                for v in range(nv):
                    slot = _cgutils.alloca_once(builder, vt)
                    off = builder.add(co, _ir.Constant(ip, v * _LANES))
                    off = builder.add(off, builder.mul(lc, _ir.Constant(ip, r)))
                    with builder.if_else(flag) as (then, otherwise):
                        with then:
                            builder.store(vload(pc, off), slot)
                        with otherwise:
                            builder.store(zero, slot)
                    row.append(slot)
                accs.append(row)
            arows = [builder.gep(pa, [builder.add(ao, builder.mul(la, _ir.Constant(ip, r)))])
                     for r in range(mr)]
            pbase = builder.gep(pp, [po])
            undef = _ir.Constant(vt, _ir.Undefined)
            mask0 = _ir.Constant(_ir.VectorType(_ir.IntType(32), _LANES), [0] * _LANES)
            with _cgutils.for_range(builder, kk) as loop:
                k = loop.index
                pk = builder.mul(k, _ir.Constant(ip, NR))
                bs = [vload(pbase, builder.add(pk, _ir.Constant(ip, v * _LANES)))
                      for v in range(nv)]
                for r in range(mr):
                    s = builder.load(builder.gep(arows[r], [k]))
                    s = builder.insert_element(undef, s, _ir.Constant(_ir.IntType(32), 0))
                    s = builder.shuffle_vector(s, undef, mask0)
                    for v in range(nv):
                        slot = accs[r][v]
                        builder.store(builder.call(fma, [s, bs[v], builder.load(slot)]), slot)
            for r in range(mr):
                for v in range(nv):
                    off = builder.add(co, _ir.Constant(ip, v * _LANES))
                    off = builder.add(off, builder.mul(lc, _ir.Constant(ip, r)))
                    vstore(builder.load(accs[r][v]), pc, off)
            return context.get_dummy_value()

        return sig, codegen

    return block


if AVAILABLE:
    _blockm = _make_block(MR)
    _block4 = _make_block(4)
    _block2 = _make_block(2)
    _block1 = _make_block(1)

    @njit(**_HELPER_JIT)
    def _rows(A, a_off, lda, P, p_off, C, c_off, ldc, K, M, accumulate):
        """C rows 0..M-1 of one panel (full NR columns at C[c_off:])."""
        i = 0
        while i + MR <= M:
            _blockm(A, a_off + i * lda, lda, P, p_off, C, c_off + i * ldc, ldc, K, accumulate)
            i += MR
        if i + 4 <= M:
            _block4(A, a_off + i * lda, lda, P, p_off, C, c_off + i * ldc, ldc, K, accumulate)
            i += 4
        if i + 2 <= M:
            _block2(A, a_off + i * lda, lda, P, p_off, C, c_off + i * ldc, ldc, K, accumulate)
            i += 2
        if i < M:
            _block1(A, a_off + i * lda, lda, P, p_off, C, c_off + i * ldc, ldc, K, accumulate)

    @njit(**_HELPER_JIT)
    def _gemm_flat(M, N, K, A, lda, P, C, ldc, accumulate, t):
        """The packed product on flat arrays: ``C (+)= A @ U``, A and C row-major with leading
        dimensions ``lda``/``ldc``, ``P`` the packing of ``U`` (K, N), ``t`` an M x NR scratch
        for the last, partial panel.

        The rows are cut into chunks of :data:`MC` and the k range into chunks of
        :data:`KC`, so that a rows chunk of A (MC x KC) stays in the L2 cache while every
        panel passes over it, and a panel's chunk (KC x NR) in the L1 cache while every row
        block of the chunk runs over it. Each output element remains one FMA chain over k in
        order (a k chunk starts from the value the previous one stored), so the result is
        bit for bit the unchunked one."""
        full = N // NR
        rest = N - full * NR
        c0 = full * NR
        if rest > 0 and accumulate:
            for i in range(M):
                for j in range(rest):
                    t[i * NR + j] = C[c0 + i * ldc + j]
        for i0 in range(0, M, MC):
            m = min(MC, M - i0)
            for k0 in range(0, K, KC):
                kc = min(KC, K - k0)
                acc = accumulate or k0 > 0
                a0 = i0 * lda + k0
                for p in range(full):
                    _rows(A, a0, lda, P, (p * K + k0) * NR, C, i0 * ldc + p * NR, ldc, kc, m,
                          acc)
                if rest > 0:
                    # ldc typed as the other call's (a literal NR would compile _rows again)
                    _rows(A, a0, lda, P, (full * K + k0) * NR, t, i0 * NR, np.intp(NR), kc, m,
                          acc)
        if rest > 0:
            for i in range(M):
                for j in range(rest):
                    C[c0 + i * ldc + j] = t[i * NR + j]

    # The product is compiled once, as a C-callable function registered in LLVM's symbol
    # table under a fixed name, and the kernels call it by that name (as they call OpenBLAS,
    # :mod:`._blas`). Called as a numba function instead, its code (four unrolled register
    # blocks) was linked into every kernel and optimised again there: cold compile of
    # ``rnnkit train`` 8.2 -> 15.2 s, of every kernel 63 s (issue 18).
    _SYMBOL = "rnnkit_packed_sgemm_v1"
    _f32p = _types.CPointer(_types.float32)
    _C_SIG = _types.void(_types.intp, _types.intp, _types.intp, _f32p, _types.intp, _f32p,
                         _f32p, _types.intp, _types.int32, _f32p)

    @_cfunc(_C_SIG, cache=True, nogil=True, error_model="numpy")
    def _gemm_c(M, N, K, a, lda, p, c, ldc, accumulate, t):
        A = _carray(a, ((M - 1) * lda + K,))
        P = _carray(p, (((N + NR - 1) // NR) * K * NR,))
        C = _carray(c, ((M - 1) * ldc + N,))
        T = _carray(t, (M * NR if N % NR else 0,))
        _gemm_flat(M, N, K, A, lda, P, C, ldc, accumulate != 0, T)

    _llvm.add_symbol(_SYMBOL, _gemm_c.address)

    @_intrinsic
    def _call(typingctx, M, N, K, A, a_off, lda, P, C, c_off, ldc, accumulate, tile):
        """Emit the call of the registered product (:data:`_SYMBOL`) on the memory of A, P,
        C, tile from element offsets ``a_off`` / ``c_off``."""
        for arr in (A, P, C, tile):
            if not (isinstance(arr, _types.Array) and arr.dtype == _types.float32):
                return None
        sig = _types.void(M, N, K, A, a_off, lda, P, C, c_off, ldc, accumulate, tile)

        def codegen(context, builder, signature, args):
            st = signature.args
            ip = context.get_value_type(_types.intp)
            fp = _ir.FloatType().as_pointer()
            i32 = _ir.IntType(32)
            fn = _cgutils.get_or_insert_function(
                builder.module, _ir.FunctionType(_ir.VoidType(),
                                                 [ip, ip, ip, fp, ip, fp, fp, ip, i32, fp]),
                _SYMBOL)

            def n(i):
                return context.cast(builder, args[i], st[i], _types.intp)

            def data(i, off=None):
                ptr = context.make_array(st[i])(context, builder, args[i]).data
                return ptr if off is None else builder.gep(ptr, [n(off)])

            acc = context.cast(builder, args[10], st[10], _types.int32)
            builder.call(fn, [n(0), n(1), n(2), data(3, 4), n(5), data(6), data(7, 8), n(9),
                              acc, data(11)])
            return context.get_dummy_value()

        return sig, codegen

    @njit(**_JIT)
    def gemm(M, N, A, a_off, lda, P, C, c_off, ldc, accumulate, tile):
        """``C[c_off:] (+)= A[a_off:] @ U`` with ``U`` packed as ``P`` (:func:`pack`).

        Row-major, element offsets and leading dimensions as in :func:`._blas.gemm`: A is
        M x K (K = ``P.shape[1]``), C is M x N. ``tile`` is a float32 scratch of at least
        M x NR elements (for the last, partial panel when N is not a multiple of NR).
        """
        _call(M, N, P.shape[1], A, a_off, lda, P, C, c_off, ldc, accumulate, tile)

    @njit(**_JIT)
    def packed_matmul(A, P, C, accumulate):
        """``C (+)= A @ U`` for 2-D C-contiguous float32 A (M, K) and C (M, N), ``U``
        packed as ``P`` (:func:`pack`; N <= P.shape[0] * NR)."""
        M, N = C.shape
        tile = np.empty((M, NR), np.float32) if N % NR else np.empty((0, NR), np.float32)
        gemm(M, N, A, 0, A.shape[1], P, C, 0, N, accumulate, tile)

    @njit(**_JIT)
    def packed_matmul_bias(A, P, C, bias):
        """``C = A @ U + bias`` (A, C as in :func:`packed_matmul`, bias (N,)): row chunks of
        :data:`MC` are set to the bias and the product accumulates into them while they are
        in the cache (no separate pass over C for the bias)."""
        M, N = C.shape
        K = A.shape[1]
        tile = np.empty((MC, NR), np.float32) if N % NR else np.empty((0, NR), np.float32)
        for i0 in range(0, M, MC):
            m = min(MC, M - i0)
            for i in range(i0, i0 + m):
                row = C[i]
                for j in range(N):
                    row[j] = bias[j]
            gemm(m, N, A, i0 * K, K, P, C, i0 * N, N, True, tile)


def matmul(A, P, N, out=None, accumulate=False):
    """``A @ U`` (or ``out += A @ U``) with ``U`` (K, N) packed as ``P``.

    Args:
        A: (M, K) float32.
        P: the result of :func:`pack` for ``U``.
        N: columns of ``U``.
        out: optional (M, N) float32 C-contiguous result array.
        accumulate: add into ``out`` instead of overwriting it.

    Returns:
        ``out`` (M, N).
    """
    A = np.ascontiguousarray(A, np.float32)
    if A.ndim != 2 or A.shape[1] != P.shape[1] or N > P.shape[0] * NR:
        raise ValueError(f"matmul expects A (M, {P.shape[1]}) for N <= {P.shape[0] * NR}, "
                         f"got A {A.shape} and N={N}.")
    if out is None:
        out = np.zeros((A.shape[0], N), np.float32)
    packed_matmul(A, P, out, accumulate)
    return out


# One shared placeholder (empty: nothing can be written to it; not flagged read-only,
# which numba would type as another signature and compile every kernel again): a
# stateful model fed one step per call asks for it twice per layer and call.
_NOT_PACKED = np.empty((0, 0, NR), np.float32)


def for_call(U, dtype, rows=None):
    """``U`` packed for one kernel call, or the empty placeholder that selects OpenBLAS.

    Args:
        U: (K, N) matrix of the per-step product ``A @ U``.
        dtype: the kernel's dtype (only float32 is packed).
        rows: rows of that product; ``None`` for training loops (always packed when on).
            Inference packs only when ``rows`` is above the few-row threshold of
            :func:`._loops.project` (below it a plain loop runs, and a stateful model fed one
            step per call would pay the packing on every call).

    Returns:
        ``P`` from :func:`pack`, or a (0, 0, NR) float32 array.
    """
    if not serves(dtype) or (rows is not None and rows <= 4):
        return _NOT_PACKED
    return pack(np.asarray(U, np.float32))


def scratch(rows):
    """The (rows, NR) float32 tile :func:`product` needs for a partial last panel."""
    return np.empty((rows, NR), np.float32)


def product(n, N, K, A, a_off, lda, U, u_off, ldu, P, C, c_off, ldc, accumulate, tile):
    """Compiled code only: ``C[c_off:] (+)= A[a_off:] @ U[u_off:]`` (row-major, n x K times
    K x N, leading dimensions ``lda``/``ldu``/``ldc``) by the packed kernel when ``P`` is a
    packing of that ``U`` block (non-empty, float32), by OpenBLAS otherwise."""
    raise NotImplementedError("product is callable from numba-compiled code only")


if njit is not None:

    @_overload(product, jit_options=dict(cache=True, no_cpython_wrapper=True,
                                         no_cfunc_wrapper=True))
    def _product(n, N, K, A, a_off, lda, U, u_off, ldu, P, C, c_off, ldc, accumulate, tile):
        if AVAILABLE and A.dtype == _types.float32:
            def impl(n, N, K, A, a_off, lda, U, u_off, ldu, P, C, c_off, ldc, accumulate,
                     tile):
                if P.shape[0] > 0:
                    gemm(n, N, A, a_off, lda, P, C, c_off, ldc, accumulate, tile)
                else:
                    _blas_product(n, N, K, A, a_off, lda, U, u_off, ldu, C, c_off, ldc,
                                  accumulate)
        else:
            def impl(n, N, K, A, a_off, lda, U, u_off, ldu, P, C, c_off, ldc, accumulate,
                     tile):
                _blas_product(n, N, K, A, a_off, lda, U, u_off, ldu, C, c_off, ldc,
                              accumulate)
        return impl

    @njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
    def _blas_product(n, N, K, A, a_off, lda, U, u_off, ldu, C, c_off, ldc, accumulate):
        KK = _consts_like(C)
        beta = KK[0] if accumulate else KK[0] - KK[0]
        _blas.gemm(0, 0, n, N, K, KK[0], A, a_off, lda, U, u_off, ldu, beta, C, c_off, ldc)
