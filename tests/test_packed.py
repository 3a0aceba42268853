"""The packed recurrent product (rnnkit.kernels._packed) equals np.matmul, and the kernels
that use it equal the generic loop with the packed path forced on and off."""

import numpy as np
import pytest

_packed = pytest.importorskip("rnnkit.kernels._packed")
needs_packed = pytest.mark.skipif(not _packed.AVAILABLE,
                                  reason="packed product needs AVX-512F (OpenBLAS used instead)")


def test_pack_layout():
    U = np.arange(7 * 40, dtype=np.float32).reshape(7, 40)
    P = _packed.pack(U)
    assert P.shape == (2, 7, _packed.NR)
    np.testing.assert_array_equal(P[0], U[:, :32])
    np.testing.assert_array_equal(P[1, :, :8], U[:, 32:])
    assert not P[1, :, 8:].any()


def test_pack_refuses_wrong_dtype():
    with pytest.raises(ValueError, match="2-D float32"):
        _packed.pack(np.zeros((3, 4)))


@needs_packed
@pytest.mark.parametrize("M", [1, 3, 5, 8, 17, 32])
@pytest.mark.parametrize("K", [1, 7, 64])
@pytest.mark.parametrize("N", [1, 5, 32, 33, 100, 128])
@pytest.mark.parametrize("accumulate", [False, True])
def test_packed_matmul_equals_numpy(M, K, N, accumulate):
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    A = rng.standard_normal((M, K)).astype(np.float32)
    U = rng.standard_normal((K, N)).astype(np.float32)
    C0 = rng.standard_normal((M, N)).astype(np.float32)
    C = C0.copy()
    _packed.packed_matmul(A, _packed.pack(U), C, accumulate)
    want = A.astype(np.float64) @ U.astype(np.float64) + (C0 if accumulate else 0)
    np.testing.assert_allclose(C, want, rtol=2e-5, atol=2e-5 * np.sqrt(K),
                               err_msg="packed vs numpy")


@needs_packed
def test_gemm_with_offsets_touches_only_its_block():
    """Row-major offsets / leading dimensions as the kernels use them (a row block of a
    (T, B, G) buffer); the elements around the block stay untouched."""
    rng = np.random.default_rng(1)
    T, B, H, G = 3, 9, 16, 40
    h = rng.standard_normal((T, B, H)).astype(np.float32)
    U = rng.standard_normal((H, G)).astype(np.float32)
    out = np.full((T, B, G), 7.0, np.float32)
    tile = np.empty((B, _packed.NR), np.float32)
    t, b0, b1 = 1, 2, 7
    _packed.gemm(b1 - b0, G, h, t * B * H + b0 * H, H, _packed.pack(U), out,
                 t * B * G + b0 * G, G, False, tile)
    want = np.full_like(out, 7.0)
    want[t, b0:b1] = h[t, b0:b1] @ U
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=1e-5)
