"""rnnkit's own threads (rnnkit.kernels.threads): split products equal unsplit ones, OpenBLAS
is single-threaded only inside ``parallel()``, and a model trains to the same numbers on one
thread or several."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import rnnkit
from rnnkit.kernels import _blas, threads


def _openblas_threads():
    """Thread counts of the OpenBLAS that NumPy (and rnnkit) call. Other OpenBLAS copies in the
    process (scipy's, loaded by keras) serve other libraries and are left alone."""
    import os
    return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"
            and os.path.realpath(i["filepath"]) == os.path.realpath(_blas.LIBRARY)]


@pytest.fixture
def three_threads(monkeypatch):
    monkeypatch.setattr(threads, "_MIN_MACS", 0)
    monkeypatch.setattr(_blas, "num_threads", lambda: 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(50, 7, 9), (9, 7, 50), (6, 3, 6), (5, 4, 5),
                                   (300, 300, 40)])     # the packed product's row and k chunks
def test_split_matmul_equals_numpy(three_threads, dtype, M, K, N):
    rng = np.random.default_rng(M * N)
    a = rng.normal(size=(M, K)).astype(dtype)
    b = rng.normal(size=(K, N)).astype(dtype)
    # float32: two orders of summation over K terms of size ~1 differ by ~eps * sqrt(K)
    tol = (dict(rtol=1e-5, atol=1e-5 * np.sqrt(K)) if dtype == np.float32
           else dict(rtol=1e-12, atol=1e-12))
    with threads.parallel():
        assert threads.count() == 3
        # float32 rows split: the packed product where the CPU has it (float64: OpenBLAS)
        packed = threads._packed_rows(a, b, np.empty((M, N), dtype))
        assert packed == (dtype == np.float32 and threads._packed.AVAILABLE)
        np.testing.assert_allclose(threads.matmul(a, b), a @ b, **tol)
        # with a bias row: rows split (packed or not) and, transposed, columns split
        bias_n, bias_m = rng.normal(size=N).astype(dtype), rng.normal(size=M).astype(dtype)
        np.testing.assert_allclose(threads.matmul(a, b, bias=bias_n), a @ b + bias_n, **tol)
        np.testing.assert_allclose(threads.matmul(b.T, a.T, bias=bias_m), b.T @ a.T + bias_m,
                                   **tol)
        # transposed views (weight gradients are x.T @ dz) and an out= array
        out = np.full((K, K), np.nan, dtype)
        got = threads.matmul(a.T, a, out=out)
        assert got is out
        np.testing.assert_allclose(out, a.T @ a, **tol)
        np.testing.assert_allclose(threads.matmul(b.T, a.T), b.T @ a.T, **tol)


def test_blocks_cover_every_item_once():
    for n_items in (1, 2, 7, 64):
        for n_blocks in (1, 2, 3, 5):
            bl = threads.blocks(n_items, n_blocks)
            covered = [i for a, b in bl for i in range(a, b)]
            assert covered == list(range(n_items)) and all(b > a for a, b in bl)


def test_parallel_makes_openblas_single_threaded_and_restores():
    before = _openblas_threads()
    with threadpool_limits(2):
        n = _openblas_threads()
        with threads.parallel():
            assert _openblas_threads() == [1] * len(n)
            with threads.parallel():            # re-entrant
                assert threads.active()
            assert threads.active() and _openblas_threads() == [1] * len(n)
        assert not threads.active() and _openblas_threads() == n
    assert _openblas_threads() == before


def test_parallel_restores_after_an_error():
    n = _openblas_threads()
    with pytest.raises(RuntimeError):
        with threads.parallel():
            raise RuntimeError("boom")
    assert not threads.active() and _openblas_threads() == n


def _train(seed=0):
    rnnkit.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, 12, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 96)]
    L = rnnkit.layers
    m = rnnkit.Sequential([L.Input((None, 5)), L.LSTM(24, return_sequences=True), L.GRU(16),
                           L.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    h = m.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    return np.array(h.history["loss"]), m.predict(x, verbose=0)


def test_training_is_the_same_on_one_thread_and_on_several(monkeypatch):
    with threadpool_limits(1):
        loss1, pred1 = _train()
    # force the row split and the product split on this small model, three threads
    from rnnkit.kernels import _loops
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(threads, "_MIN_MACS", 0)
    monkeypatch.setattr(_blas, "num_threads", lambda: 3)
    assert len(_loops.split(32, 1, 1)) == 3
    loss3, pred3 = _train()
    np.testing.assert_allclose(loss3, loss1, rtol=1e-5)
    np.testing.assert_allclose(pred3, pred1, rtol=1e-4, atol=1e-5)


def test_buffers_are_reused_within_a_call_and_dropped_after(monkeypatch):
    loss_ws, pred_ws = _train()
    monkeypatch.setattr(threads.Workspace, "get", lambda self: None)
    loss_plain, pred_plain = _train()
    np.testing.assert_array_equal(loss_ws, loss_plain)       # same arithmetic, bit for bit
    np.testing.assert_array_equal(pred_ws, pred_plain)
    monkeypatch.undo()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 3)).astype(np.float32)
    y = rng.normal(size=(8, 4)).astype(np.float32)
    m = rnnkit.Sequential([rnnkit.layers.Input((None, 3)), rnnkit.layers.LSTM(4)])
    m.compile(optimizer="sgd", loss="mse")
    lstm = m.layers[0]
    with threads.parallel():
        m.train_on_batch(x, y)
        ws = lstm._workspace
        first = {k: id(v) for k, v in ws._bufs.items()}
        m.train_on_batch(x, y)
        assert {"tbg", "hbuf", "cbuf", "gates"} <= set(first)
        # reused across steps: the buffers the step used are the ones lent before
        assert {k: id(v) for k, v in ws._bufs.items()} == first
        ws.release()
        lent = ws.take("gates", ws._bufs["gates"].shape, ws._bufs["gates"].dtype)
        assert lent is ws._bufs["gates"]
        assert ws.take("gates", lent.shape, lent.dtype) is not lent   # lent: never shared
        ws.release("gates")
        assert ws.take("gates", lent.shape, lent.dtype) is lent       # given back: reused
    assert ws._bufs == {}


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_child_trains_after_the_parent_used_parallel_regions(tmp_path):
    """GNU OpenMP cannot run parallel regions in a child after fork() (numba terminates the
    child); rnnkit runs the child's work on one thread instead."""
    import subprocess
    import sys
    script = tmp_path / "fork.py"
    script.write_text(
        "import os, numpy as np, rnnkit\n"
        "L = rnnkit.layers\n"
        "x = np.random.default_rng(0).normal(size=(64, 20, 8)).astype(np.float32)\n"
        "y = np.random.default_rng(1).normal(size=(64, 1)).astype(np.float32)\n"
        "m = rnnkit.Sequential([L.Input((None, 8)), L.LSTM(64), L.Dense(1)])\n"
        "m.compile(optimizer='adam', loss='mse')\n"
        "m.fit(x, y, batch_size=32, epochs=1, verbose=0)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    m.fit(x, y, batch_size=32, epochs=1, verbose=0)\n"
        "    os._exit(0 if m.predict(x, verbose=0).shape == (64, 1) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n")
    env = dict(__import__("os").environ, OPENBLAS_NUM_THREADS="2")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]


def test_matmul_refuses_shapes_that_do_not_fit(three_threads):
    a = np.ones((8, 5), np.float32)
    with threads.parallel():
        with pytest.raises(ValueError, match=r"inner dimensions must agree"):
            threads.matmul(a, np.ones((4, 9), np.float32))
        with pytest.raises(ValueError, match=r"out must have shape \(M, N\) = \(8, 9\)"):
            threads.matmul(a, np.ones((5, 9), np.float32), out=np.empty((9, 8), np.float32))
        with pytest.raises(ValueError, match=r"bias must have shape \(N,\) = \(9,\)"):
            threads.matmul(a, np.ones((5, 9), np.float32), bias=np.ones(8, np.float32))


def test_run_blocks_runs_every_block_once_and_raises_a_workers_error():
    seen = []
    lock = threading.Lock()

    def record(tag, b0, b1):
        with lock:
            seen.append((tag, b0, b1, threading.current_thread().name))

    blocks = [(0, 2), (2, 5), (5, 6)]
    threads.run_blocks(record, ("x",), blocks)
    assert sorted(s[1:3] for s in seen) == blocks
    assert len({s[3] for s in seen}) == 3              # the caller and two workers

    def fail_second(b0, b1):
        if b0 == 2:
            raise ValueError(f"block {b0}:{b1} failed")

    with pytest.raises(ValueError, match="block 2:5 failed"):
        threads.run_blocks(fail_second, (), blocks)
    seen.clear()
    threads.run_blocks(record, ("y",), blocks)           # the pool still works after it
    assert sorted(s[1:3] for s in seen) == blocks


def _flushes():
    """True when this thread flushes subnormal results to zero (1e-38 * 1e-3 in float32)."""
    return (np.array([1e-38], np.float32) * np.float32(1e-3))[0] == 0


def test_parallel_flushes_subnormals_in_every_thread_and_restores_the_mode():
    seen = {}

    def probe(b0, b1):
        seen[b0, b1] = (_flushes(), threading.current_thread().name)

    blocks = [(0, 1), (1, 2), (2, 3)]
    assert not _flushes()
    threads.run_blocks(probe, (), blocks)
    assert not any(f for f, _ in seen.values())        # outside parallel(): as the caller
    with threads.parallel():
        assert _flushes()
        with threads.parallel():                       # nested: still on
            assert _flushes()
        assert _flushes()
        seen.clear()
        threads.run_blocks(probe, (), blocks)
        assert len(seen) == 3 and all(f for f, _ in seen.values())
        assert len({name for _, name in seen.values()}) == 3      # caller and two workers
    assert not _flushes()                              # the caller's mode is back
    seen.clear()
    threads.run_blocks(probe, (), blocks)
    assert len(seen) == 3 and not any(f for f, _ in seen.values())  # so is the workers'
    with pytest.raises(RuntimeError, match="inside"):
        with threads.parallel():
            raise RuntimeError("inside")
    assert not _flushes()
