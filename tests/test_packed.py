"""The packed recurrent product (rnnkit.kernels._packed) equals np.matmul, and the kernels
that use it equal the generic loop with the packed path forced on and off."""

import numpy as np
import pytest

_packed = pytest.importorskip("rnnkit.kernels._packed")
needs_packed = pytest.mark.skipif(not _packed.AVAILABLE,
                                  reason="packed product needs AVX-512F or AVX2+FMA "
                                         "(OpenBLAS used instead)")


def test_pack_layout():
    NR = _packed.NR
    U = np.arange(7 * (NR + 8), dtype=np.float32).reshape(7, NR + 8)
    P = _packed.pack(U)
    assert P.shape == (2, 7, NR)
    np.testing.assert_array_equal(P[0], U[:, :NR])
    np.testing.assert_array_equal(P[1, :, :8], U[:, NR:])
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
@pytest.mark.parametrize("K", [_packed.KC - 1, _packed.KC, _packed.KC + 1, 2 * _packed.KC + 37])
@pytest.mark.parametrize("accumulate", [False, True])
def test_k_chunks_keep_one_fma_chain_per_element(K, accumulate):
    """The k range runs in chunks (for the L1 cache); each element is still one FMA chain
    over k in order: bit for bit a plain loop compiled with the kernels' FMA contraction."""
    from numba import njit

    from rnnkit.kernels._math import FASTMATH

    @njit(fastmath=FASTMATH)
    def chain(A, U, C, accumulate):
        for i in range(C.shape[0]):
            for j in range(C.shape[1]):
                s = C[i, j] if accumulate else np.float32(0)
                for k in range(A.shape[1]):
                    s = s + A[i, k] * U[k, j]
                C[i, j] = s

    rng = np.random.default_rng(K)
    M, N = 11, 2 * _packed.NR + 5            # a partial row block and a partial last panel
    A = rng.standard_normal((M, K)).astype(np.float32)
    U = rng.standard_normal((K, N)).astype(np.float32)
    C0 = rng.standard_normal((M, N)).astype(np.float32)
    got, want = C0.copy(), C0.copy()
    _packed.packed_matmul(A, _packed.pack(U), got, accumulate)
    chain(A, U, want, accumulate)
    np.testing.assert_array_equal(got, want)


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


@pytest.fixture(params=[True, False], ids=["packed", "openblas"])
def packed_mode(request, monkeypatch):
    """Run a test with the packed product forced on (counting the packings) and off."""
    calls = []
    real = _packed.pack

    def counting(U, out=None):
        calls.append(U.shape)
        return real(U, out)

    monkeypatch.setattr(_packed, "ENABLED", request.param)
    monkeypatch.setattr(_packed, "pack", counting)
    yield request.param, calls
    assert bool(calls) == (request.param and _packed.AVAILABLE), calls


@pytest.mark.parametrize("name", ["simple_tanh", "lstm", "gru_after", "gru_before"])
@pytest.mark.parametrize("B,T,H", [(11, 5, 20), (16, 4, 32), (3, 6, 17)])
def test_kernels_equal_reference_packed_on_and_off(packed_mode, name, B, T, H):
    """Training forward + backward of the compiled kernels, float32, equal the generic loop
    with the packed product on and off: row blocks of 8, 2 and 1 rows, partial last panels
    (N = 20, 60, 80) and whole ones, masks and recurrent dropout."""
    from test_kernels import _random_case
    for mask_kind, rdrop in ((None, False), ("interior", True)):
        _random_case(name, np.float32, B, T, H, mask_kind=mask_kind, rdrop=rdrop,
                     b_rec=name == "gru_after", seed=B + T + H)


@pytest.mark.parametrize("threads", [1, 3])
def test_kernels_split_across_threads_packed(packed_mode, monkeypatch, threads):
    """Rows split over threads: each thread's block uses its own scratch tile."""
    from test_kernels import _loops, _random_case
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: threads)
    for name in ("simple_tanh", "lstm", "gru_after", "gru_before"):
        _random_case(name, np.float32, 19, 5, 12, mask_kind="interior", rdrop=True,
                     b_rec=name == "gru_after", seed=threads)


@pytest.mark.parametrize("name", ["simple_tanh", "lstm", "gru_after"])
@pytest.mark.parametrize("threads", [1, 3])
def test_inference_equals_reference_packed_on_and_off(packed_mode, monkeypatch, name,
                                                      threads):
    from test_kernels import test_cache_free_inference_equals_reference
    test_cache_free_inference_equals_reference(monkeypatch, name, np.float32, threads)


def test_for_call_placeholder_when_off(monkeypatch):
    """float64, few inference rows and RNNKIT_PACKED=0 (ENABLED False) select OpenBLAS."""
    U = np.ones((4, 8), np.float32)
    assert _packed.for_call(U.astype(np.float64), np.float64).shape[0] == 0
    assert _packed.for_call(U, np.float32, rows=4).shape[0] == 0
    monkeypatch.setattr(_packed, "ENABLED", False)
    assert _packed.for_call(U, np.float32).shape[0] == 0
