"""The packed recurrent product (kernels/_packed.py) against OpenBLAS, one thread, float32.

    python benchmarks/packed.py                                          # the environment's pins
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/packed.py   # OpenBLAS unpinned

NumPy reads OPENBLAS_CORETYPE at import, so the two settings need two processes. Prints
GFLOP/s (2*M*K*N per product) for rows x K x N, best of ``--rounds`` rounds (the machine is
shared: the best round is the least disturbed one). Columns:

* packed: ``_packed.gemm`` over U packed once (:func:`rnnkit.kernels._packed.pack`), called
  ``reps`` times in a compiled loop (what a kernel's time loop does);
* blas loop: OpenBLAS ``cblas_sgemm`` called the same way from compiled code (``_blas.gemm``,
  what the kernels call today; it repacks U on every call);
* np.matmul: OpenBLAS through ``np.matmul(a, u, out=c)`` from Python (includes ~1 us of call
  overhead per product);
* pack us: the one-off cost of packing U, microseconds.

Then, with ``--kernels``, the LSTM kernels themselves on one thread (rows not split), float32,
milliseconds per call, best of the rounds, packed path on and off in alternation: training
forward + backward (B, T, H) and cache-free inference.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from numba import njit
from threadpoolctl import threadpool_info, threadpool_limits

from rnnkit.kernels import _blas, _packed

SHAPES = [(32, 128, 512), (32, 64, 256), (128, 128, 512), (64, 512, 2048), (64, 2048, 512),
          (64, 128, 512),
          (1, 128, 512)]


@njit(cache=True, nogil=True)
def _loop_packed(A, P, C, N, reps):
    M = A.shape[0]
    tile = np.empty((M, _packed.NR), np.float32)
    for _ in range(reps):
        _packed.gemm(M, N, A, 0, A.shape[1], P, C, 0, N, False, tile)


@njit(cache=True, nogil=True)
def _loop_blas(A, U, C, reps):
    M, K = A.shape
    N = U.shape[1]
    one, zero = np.float32(1.0), np.float32(0.0)
    for _ in range(reps):
        _blas.gemm(0, 0, M, N, K, one, A, 0, K, U, 0, N, zero, C, 0, N)


def best(fn, rounds):
    fn()
    out = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def measure(M, K, N, rounds, rng):
    """One table row for the product (M, K) @ (K, N)."""
    A = rng.standard_normal((M, K)).astype(np.float32)
    U = rng.standard_normal((K, N)).astype(np.float32)
    C = np.empty((M, N), np.float32)
    flops = 2.0 * M * K * N
    reps = max(10, int(2e8 / flops))
    P = _packed.pack(U)
    _loop_packed(A, P, C, N, 1)
    err = np.abs(C - A @ U).max() / max(1.0, np.abs(A @ U).max())
    assert err < 1e-5, err
    tp = best(lambda: _loop_packed(A, P, C, N, reps), rounds) / reps
    tb = best(lambda: _loop_blas(A, U, C, reps), rounds) / reps

    def np_loop():
        for _ in range(reps):
            np.matmul(A, U, out=C)

    tn = best(np_loop, rounds) / reps
    tk = best(lambda: _packed.pack(U, P), rounds)
    return (f"{M:5d} x {K:4d} x {N:4d} {flops / tp / 1e9:8.0f} {flops / tb / 1e9:10.0f} "
            f"{flops / tn / 1e9:10.0f} {tk * 1e6:8.1f}")


KERNEL_SHAPES = [(32, 50, 128), (64, 50, 128), (64, 50, 64), (128, 100, 512), (256, 50, 128)]


def measure_kernels(rounds, rng):
    """LSTM kernel times (ms), packed on / off, one thread."""
    from rnnkit import cells
    from rnnkit.kernels import _loops, lstm

    _loops._MIN_ROWS = 1 << 30                     # one block of rows: one thread
    print(f"\nLSTM kernels, one thread, float32, ms per call, best of {rounds} "
          "(packed / OpenBLAS)")
    print(f"{'B x T x H':>16s} {'fwd+bwd':>18s} {'infer (F=32)':>18s}")
    for B, T, H in KERNEL_SHAPES:
        cell = cells.LSTMCell(H)
        cell.build_weights(32, np.float32)
        cell.params["recurrent_kernel"][...] = rng.normal(0, 0.1, (H, 4 * H))
        xw = rng.standard_normal((T, B, 4 * H)).astype(np.float32)
        x = rng.standard_normal((B, T, 32)).astype(np.float32)
        s0 = [np.zeros((B, H), np.float32)] * 2
        dhs = rng.standard_normal((T, B, H)).astype(np.float32)

        def train(cell=cell, xw=xw, s0=s0, dhs=dhs):
            _, _, cache = lstm.forward(cell, xw.copy(), s0)
            lstm.backward(cell, cache, dhs, [None, None])

        def infer(cell=cell, x=x, s0=s0):
            lstm.infer(cell, x, s0)

        best_t = {}
        for on in (True, False) * 2:
            _packed.ENABLED = on
            for name, fn in (("train", train), ("infer", infer)):
                t = best(fn, max(1, rounds // 2))
                best_t[on, name] = min(best_t.get((on, name), t), t)
        _packed.ENABLED = True
        print(f"{B:4d} x {T:3d} x {H:3d} {best_t[True, 'train'] * 1e3:8.2f} / "
              f"{best_t[False, 'train'] * 1e3:7.2f} {best_t[True, 'infer'] * 1e3:8.2f} / "
              f"{best_t[False, 'infer'] * 1e3:7.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--kernels", action="store_true", help="also time the LSTM kernels")
    args = ap.parse_args()
    blas = [(i["internal_api"], i.get("architecture")) for i in threadpool_info()
            if i["user_api"] == "blas"]
    pins = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"BLAS {blas}; pins {pins or 'none'}; packed kernel available: {_packed.AVAILABLE}")
    print(f"one thread, float32 GFLOP/s, best of {args.rounds} rounds (shared machine)")
    print(f"{'rows x K x N':>18s} {'packed':>8s} {'blas loop':>10s} {'np.matmul':>10s} "
          f"{'pack us':>8s}")
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for M, K, N in SHAPES:
            print(measure(M, K, N, args.rounds, rng))
        if args.kernels:
            measure_kernels(args.rounds, rng)

if __name__ == "__main__":
    main()
