"""Data-parallel training over MPI: 2 ranks equal one process, uneven and empty shards,
failures end every rank quickly, `rnnkit train --distributed`, threads per rank.

The multi-rank tests launch ``mpiexec -n N python -m mpi4py script.py`` (mpiexec comes with
the mpich wheel of the ``mpi`` extra) with a timeout, so a hang fails the test.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import layers

SCRIPTS = Path(__file__).parent / "distributed_scripts"
SRC = str(Path(__file__).resolve().parents[1] / "src")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args, ranks=None, timeout=180, cwd=None):
    """Run a Python script alone (ranks None) or under mpiexec; returns (proc, seconds)."""
    if ranks is None:
        cmd = [sys.executable] + args
    else:
        assert MPIEXEC, "mpiexec not found: install the mpi extra (mpi4py, mpich)"
        cmd = [MPIEXEC, "-n", str(ranks), sys.executable] + args
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                          cwd=cwd)
    return proc, time.perf_counter() - t0


def _train(tmp_path, name, dtype, ranks=None, extra=()):
    out = tmp_path / f"{name}.npz"
    args = [str(SCRIPTS / "train_equal.py"), str(out), dtype, *extra]
    if ranks is not None:
        args = ["-m", "mpi4py"] + args + ["--distributed"]
    proc, _ = _run(args, ranks)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out)), proc.stderr


@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-10, 0.0), ("float32", 1e-5, 1e-6)])
def test_two_ranks_equal_one_process(tmp_path, dtype, rtol, atol):
    # masks, per-sample weights, an L2 penalty, validation, EarlyStopping, ReduceLROnPlateau
    # and ModelCheckpoint: 3 epochs on 2 ranks give the single-process weights and logs.
    # float32 needs atol for weights that pass near zero: the two runs sum the same products
    # in different orders (~1e-7 absolute).
    single, _ = _train(tmp_path, "single", dtype)
    multi, err = _train(tmp_path, "multi", dtype, ranks=2)
    assert sorted(single) == sorted(multi)
    for k in single:
        np.testing.assert_allclose(multi[k], single[k], rtol=rtol, atol=atol,
                                   err_msg=f"{k}: 2 ranks vs 1 process")
    # both ranks ran the same epochs and ended with the same learning rate (the ranks'
    # lines may interleave on the shared stderr)
    done = dict(re.findall(r"done rank (\d) (epochs \d+ lr [\d.e+-]+)", err))
    assert len(done) == 2 and done["0"] == done["1"], err[-2000:]
    assert (tmp_path / "multi.npz.ckpt.rnnkit").exists()


def test_uneven_and_empty_shards(tmp_path):
    # 3 ranks, batches of 7 rows (shards 2/2/3) and a last batch of 2 rows (shards 0/1/1)
    single, _ = _train(tmp_path, "single", "float64", extra=["--batch-size", "7"])
    multi, _ = _train(tmp_path, "multi", "float64", ranks=3, extra=["--batch-size", "7"])
    for k in single:
        np.testing.assert_allclose(multi[k], single[k], rtol=1e-10, err_msg=k)


def test_two_inputs_two_outputs_equal_one_process(tmp_path):
    # a functional model whose outputs count different positions (masked per-time-step tags,
    # a final-step value, loss weights 1 and 0.5): 3 ranks with shards 2/2/3 and 0/1/1 give
    # the single-process weights, per-output losses and metrics
    extra = ["--two-outputs", "--batch-size", "7"]
    single, _ = _train(tmp_path, "single", "float64", extra=extra)
    multi, _ = _train(tmp_path, "multi", "float64", ranks=3, extra=extra)
    assert sorted(single) == sorted(multi) and "history_val_value_loss" in single
    for k in single:
        np.testing.assert_allclose(multi[k], single[k], rtol=1e-10, err_msg=k)


def test_lazy_attribute_after_import_rnnkit():
    code = ("import sys, rnnkit; init = rnnkit.distributed.init; "
            "assert 'mpi4py' not in sys.modules and 'ray' not in sys.modules")
    proc, _ = _run(["-c", code])
    assert proc.returncode == 0, proc.stderr


def _fail(tmp_path, extra, module=True):
    args = [str(SCRIPTS / "train_equal.py"), str(tmp_path / "f.npz"), "float64",
            "--distributed", "--fail-rank", "1", *extra]
    proc, seconds = _run((["-m", "mpi4py"] if module else []) + args, ranks=2, timeout=60)
    assert proc.returncode != 0
    assert seconds < 30, f"took {seconds:.1f} s to end the job"
    return proc.stderr, seconds


def test_failure_inside_a_step_is_reported_by_every_rank(tmp_path):
    err, seconds = _fail(tmp_path, [])
    print(f"a rank raising inside a step: job ended after {seconds:.2f} s")
    for r in (0, 1):
        assert (f"rank {r} of 2 failed (DistributedError: rank 1 of 2 failed in a training "
                f"step of 'sequential': RuntimeError: simulated failure on rank 1)") in err


@pytest.mark.parametrize("module", [True, False], ids=["python-m-mpi4py", "plain-python"])
def test_failure_outside_a_step_aborts_the_job(tmp_path, module):
    err, seconds = _fail(tmp_path, ["--fail-outside"], module)
    print(f"a rank raising outside a step: job ended after {seconds:.2f} s")
    assert "simulated failure on rank 1 outside the step" in err
    assert "rank 1 of 2 failed (RuntimeError" in err and "aborting all ranks" in err


def test_cli_train_distributed(tmp_path):
    csv = tmp_path / "series.csv"
    t = np.arange(120)
    csv.write_text("value\n" + "\n".join(f"{v:.4f}" for v in np.sin(t / 5) + t / 50) + "\n")
    out = tmp_path / "m.rnnkit"
    args = ["-m", "rnnkit", "train", "--distributed", "--data", str(csv), "--horizon", "6",
            "--units", "4", "--epochs", "2", "--ensemble", "1", "--window", "12",
            "--out", str(out), "--quiet", "--json"]
    proc, _ = _run(args, ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout   # only rank 0 prints its JSON result
    assert out.exists()
    model = rnnkit.load_model(out)
    assert model.count_params() > 0


def test_cli_distributed_error_ends_every_rank(tmp_path):
    proc, seconds = _run(["-m", "rnnkit", "train", "--distributed", "--data",
                          str(tmp_path / "missing.csv")], ranks=2, timeout=60)
    assert proc.returncode != 0 and seconds < 30
    assert proc.stderr.count("rnnkit train: error (rank") == 2, proc.stderr


# -- in-process pieces (a single rank: mpi4py runs without mpiexec) -----------------------
@pytest.fixture
def world():
    import rnnkit.distributed as dist
    w = dist.init(threads=None)
    yield w
    dist.shutdown()


def _model():
    m = rnnkit.Sequential([layers.GRU(4), layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def test_one_rank_equals_plain_fit(world):
    x = np.random.default_rng(1).normal(size=(20, 5, 3))
    y = np.eye(2)[np.arange(20) % 2]
    rnnkit.utils.set_random_seed(0)
    a = _model()
    ha = a.fit(x, y, batch_size=6, epochs=2, verbose=0, validation_split=0.2)
    import rnnkit.distributed as dist
    dist.shutdown()
    rnnkit.utils.set_random_seed(0)
    b = _model()
    hb = b.fit(x, y, batch_size=6, epochs=2, verbose=0, validation_split=0.2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    np.testing.assert_allclose(ha.history["val_loss"], hb.history["val_loss"], rtol=1e-6)
    assert world.last_allreduce_seconds >= 0.0


def test_shard_rows():
    from rnnkit.distributed import GradientReducer

    class Comm:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

        def Get_rank(self):
            return self.rank

        def Get_size(self):
            return self.size

    x = np.arange(5)
    parts = [GradientReducer(Comm(r, 3)).shard(x, None)[0] for r in range(3)]
    assert [p.tolist() for p in parts] == [[0], [1, 2], [3, 4]]
    assert GradientReducer(Comm(0, 8)).shard(x, x)[0].size == 0


def test_threads_per_rank(world):
    from rnnkit.kernels import _blas
    before = _blas.num_threads()
    world.set_threads("auto")   # one rank on this node: every core
    assert world.threads == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="threads must be a positive integer or 'auto', got 0"):
        world.set_threads(0)
    _blas.set_threads(before)


def test_loss_count_and_metric_state():
    assert rnnkit.losses.Loss.count((4, 3)) == 12.0
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    assert rnnkit.losses.Loss.count((2, 3), mask) == 3.0
    m = rnnkit.metrics.get("mae")
    m.update(np.zeros((2, 1)), np.ones((2, 1)))
    state = m.get_state()
    m.reset()
    m.set_state(state * 2)
    assert m.result() == 1.0 and state.tolist() == [2.0, 2.0]


def test_init_without_mpi4py_says_how_to_install(monkeypatch):
    import rnnkit.distributed as dist
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "rnnkit\[mpi\]"'):
        dist.init()


def test_only_rank_0_writes_files(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import rnnkit.distributed.mpi as mpi
    m = _model()
    m.build((None, 5, 3))
    monkeypatch.setattr(mpi, "_WORLD", SimpleNamespace(rank=1))
    m.save(tmp_path / "a.rnnkit")
    m.save_weights(tmp_path / "a.weights.rnnkit")
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(mpi, "_WORLD", SimpleNamespace(rank=0))
    m.save(tmp_path / "a.rnnkit")
    assert (tmp_path / "a.rnnkit").exists()


def test_dropout_and_single_batch_calls_agree_across_ranks():
    proc, _ = _run(["-m", "mpi4py", str(SCRIPTS / "dropout_ranks.py")], ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(re.findall(r"RESULT (\d) (True \[[^\]]*\] \[[^\]]*\])", proc.stderr))
    assert len(lines) == 2 and lines["0"] == lines["1"], proc.stderr[-2000:]


@pytest.mark.parametrize("name", sorted(rnnkit.metrics._REGISTRY))
def test_metric_states_add_up_across_shards(name):
    # what the reducer does: each rank's state from its rows, summed, equals one process's
    rng = np.random.default_rng(0)
    y_pred = rng.uniform(0.01, 1.0, size=(10, 4))
    y_pred /= y_pred.sum(-1, keepdims=True)
    ids = rng.integers(0, 4, 10)
    y_true = ids if name.startswith("sparse") else np.eye(4)[ids]
    w = rng.uniform(0.5, 2.0, 10)
    whole = rnnkit.metrics.get(name)
    whole.update(y_true, y_pred, w)
    total = None
    for rows in (slice(0, 3), slice(3, 10)):
        part = rnnkit.metrics.get(name)
        part.update(y_true[rows], y_pred[rows], w[rows])
        total = part.get_state() if total is None else total + part.get_state()
    merged = rnnkit.metrics.get(name)
    merged.set_state(total)
    np.testing.assert_allclose(merged.result(), whole.result(), rtol=1e-12, err_msg=name)
