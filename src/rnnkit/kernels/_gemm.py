"""Large products split across rnnkit's threads: one BLAS call per row (or column) block,
all in one numba parallel region (used by :func:`rnnkit.kernels.threads.matmul`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _blas
from ._math import consts_like as _consts_like

_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)
_PAR_JIT = dict(_JIT, parallel=True)


@njit(**_JIT)
def _gemm_block(ta, tb, M, N, K, A, offa, lda, Bm, offb, ldb, C, offc, ldc, by_rows, e0, e1):
    """Rows (or columns) e0:e1 of C = op(A) @ op(B) (row-major, beta 0)."""
    KK = _consts_like(C)
    one, zero = KK[0], KK[0] - KK[0]
    if by_rows:
        _blas.gemm(ta, tb, e1 - e0, N, K, one, A, offa + (e0 if ta else e0 * lda), lda,
                   Bm, offb, ldb, zero, C, offc + e0 * ldc, ldc)
    else:
        _blas.gemm(ta, tb, M, e1 - e0, K, one, A, offa, lda,
                   Bm, offb + (e0 * ldb if tb else e0), ldb, zero, C, offc + e0, ldc)


@njit(**_PAR_JIT)
def _gemm_par(ta, tb, M, N, K, A, offa, lda, Bm, offb, ldb, C, offc, ldc, by_rows, edges):
    """C = op(A) @ op(B) with the rows (or columns) of C cut at ``edges``, one block a thread."""
    for i in prange(edges.shape[0] - 1):
        _gemm_block(ta, tb, M, N, K, A, offa, lda, Bm, offb, ldb, C, offc, ldc, by_rows,
                    edges[i], edges[i + 1])


def _operand(a):
    """(transposed flag, C-ordered 2-D array whose memory holds ``a``, leading dimension)."""
    item = a.itemsize
    if a.strides[1] == item and a.strides[0] >= a.shape[1] * item:
        return 0, a, a.strides[0] // item
    if a.strides[0] == item and a.strides[1] >= a.shape[0] * item:
        return 1, a.T, a.strides[1] // item
    a = np.ascontiguousarray(a)
    return 0, a, a.shape[1]




def gemm_split(a, b, out, by_rows, edges):
    """``out[...] = a @ b`` (2-D, one float dtype, ``out`` rows contiguous) with the rows of
    the result (``by_rows``) or its columns cut at ``edges`` (int64 ``[e0, ..., en]``), one
    block per thread of the current numba region. Returns ``out``."""
    M, K = a.shape
    N = b.shape[1]
    ta, A, lda = _operand(a)
    tb, Bm, ldb = _operand(b)
    ldc = out.strides[0] // out.itemsize          # rows contiguous: threads.matmul checks
    _gemm_par(ta, tb, M, N, K, A, 0, lda, Bm, 0, ldb, out, 0, ldc, by_rows, edges)
    return out
