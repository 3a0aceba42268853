"""The micro-measurements behind docs/performance.md ("Why three targets are out of reach").

    python benchmarks/shapes.py        # run without OPENBLAS_CORETYPE, as benchmarks/run.py does

Prints, on one thread, the float32 GFLOP/s of NumPy's OpenBLAS for the per-step products of
the issue-8 workloads (one thread's row block), the backward product with ``U^T`` as a
transposed view and as a contiguous copy, one fused ``[x | h] @ [W; U]`` product against
two, and the cost of running two blocks on two threads: rnnkit's worker pool
(``threads.run_blocks``, what the row-split loops and products use), a numba parallel region
(what the linear-scan cells use) and a ``concurrent.futures`` thread pool.
"""

from __future__ import annotations

import concurrent.futures
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def best_seconds(fn, calls):
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def rate(a, b):
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
    s = best_seconds(lambda: np.matmul(a, b, out=out), max(20, int(2e8 / flops)))
    return flops / s / 1e9


def main():
    rng = np.random.default_rng(0)
    blas = [(i["internal_api"], i.get("architecture")) for i in threadpool_info()
            if i["user_api"] == "blas"]
    print(f"BLAS: {blas}; one thread; float32 GFLOP/s")
    with threadpool_limits(1):
        a = rng.random((2048, 2048), dtype=np.float32)
        print(f"  2048^3 product                              {rate(a, a):6.0f}")
        for label, rows, H in [("seed_train layer 1 (32-row block)", 32, 128),
                               ("seed_train layer 2 (32-row block)", 32, 64),
                               ("seed_predict layer 1 (128-row block)", 128, 128),
                               ("lstm_large_train (64-row block)", 64, 512)]:
            G = 4 * H
            h = rng.random((rows, H), dtype=np.float32)
            U = rng.random((H, G), dtype=np.float32)
            dz = rng.random((rows, G), dtype=np.float32)
            print(f"  {label:38s} fwd h@U {rate(h, U):4.0f} | bwd dZ@U.T view "
                  f"{rate(dz, U.T):4.0f}, contiguous U^T {rate(dz, np.ascontiguousarray(U.T)):4.0f}")
        x = rng.random((128, 32), dtype=np.float32)
        h = rng.random((128, 128), dtype=np.float32)
        W = rng.random((32, 512), dtype=np.float32)
        U = rng.random((128, 512), dtype=np.float32)
        xh, WU, z = np.hstack([x, h]), np.vstack([W, U]), np.empty((128, 512), np.float32)

        def two():
            np.matmul(x, W, out=z)
            z.__iadd__(h @ U)
        one = best_seconds(lambda: np.matmul(xh, WU, out=z), 2000) * 1e6
        print(f"  inference step, seed layer 1: x@W + h@U {best_seconds(two, 2000) * 1e6:.0f} us"
              f" | one [x|h]@[W;U] {one:.0f} us")

    from numba import njit, prange

    from rnnkit.kernels import threads

    @njit(parallel=True, nogil=True)
    def region(n):
        s = 0
        for i in prange(n):
            s += i
        return s

    @njit(nogil=True)
    def block(out, b0, b1):
        out[b0:b1] += 1

    region(2)
    acc = np.zeros(2)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(int).result()
    two = [(0, 1), (1, 2)]
    threads.run_blocks(block, (acc,), two)
    print(f"two blocks on two threads: rnnkit worker pool "
          f"{best_seconds(lambda: threads.run_blocks(block, (acc,), two), 5000) * 1e6:.1f} us"
          f" | numba parallel region {best_seconds(lambda: region(2), 5000) * 1e6:.1f} us"
          f" | concurrent.futures pool "
          f"{best_seconds(lambda: pool.submit(int).result(), 2000) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
