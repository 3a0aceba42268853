"""Sweeps on Ray Tune: the TOML spec, the table, and a 4-trial sweep on a local Ray that is
interrupted after its first trial, resumed, and saves a best model.

The Ray test starts a local Ray with ``ray.init(num_cpus=2, object_store_memory=200 * 2**20)``
(``--num-cpus 2 --object-store-mb 200``) twice: about 40-80 s on the 2-core machine.
"""

import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rnnkit
from rnnkit.distributed import SweepSpec, load_sweep_spec
from rnnkit.distributed.tune import format_table

SRC = str(Path(__file__).resolve().parents[1] / "src")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"

TINY = """
[sweep]
name = "tiny"
search = "tpe"
num_samples = 4
max_concurrent = 1
grace_period = 1
storage = "out"

[train]
data = "builtin:japanese_vowels"
epochs = 3
layers = 1
validation-split = 0.2

[space]
units = { choice = [4, 8] }
lr = { loguniform = [1e-3, 3e-2] }
"""


def _write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_example_spec_loads():
    spec = load_sweep_spec(EXAMPLE)
    assert spec.search == "tpe" and spec.scheduler == "asha" and spec.metric == "val_loss"
    assert spec.train["data"] == "builtin:japanese_vowels"
    assert set(spec.space) == {"cell", "units", "layers", "lr", "dropout", "batch_size"}
    assert os.path.isabs(spec.storage)


@pytest.mark.parametrize("text,message", [
    ("[space]\nwidth = { choice = [1] }", r"\[space\] has unknown option 'width'"),
    ("[space]\nlr = { normal = [0, 1] }", r"\[space\] lr must be one of \{ choice"),
    ("[space]\nlr = { loguniform = [0, 1] }", "loguniform needs positive bounds"),
    ("[space]\nlr = { uniform = [1, 1] }", r"uniform needs low < high, got \[1, 1\]"),
    ("[space]\nlayers = { randint = [1, 2.5] }", "randint needs two integers"),
    ("[train]\nlr = 0.1\n[space]\nlr = { choice = [0.1] }", "appear in both"),
    ("[train]\nout = 'x.rnnkit'\n[space]\nlr = { choice = [0.1] }", "set by the sweep itself"),
    ("[sweep]\nsearch = 'grid'\n[space]\nlr = { choice = [0.1] }",
     r"search must be one of \['random', 'tpe'\], got 'grid'"),
    ("[sweep]\nnum_samples = 0\n[space]\nlr = { choice = [0.1] }",
     "num_samples must be a positive integer, got 0"),
    ("[sweep]\npopulation = 3\n[space]\nlr = { choice = [0.1] }", r"unknown key\(s\) \['population'\]"),
    ("[search]\n", r"unknown table\(s\) or key\(s\) \['search'\]"),
    ("[train]\nepochs = 3\n", r"\[space\] is empty"),
    ("[space\n", "invalid TOML"),
])
def test_spec_errors_name_the_setting(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_sweep_spec(_write(tmp_path, text))


def test_spec_from_python():
    spec = SweepSpec(train={"epochs": 2}, space={"units": {"choice": [4, 8]}}, num_samples=2)
    assert spec.mode == "min"
    with pytest.raises(ValueError, match="mode must be one of"):
        SweepSpec(space={"units": {"choice": [4]}}, mode="best")


def test_table_marks_the_best_completed_trial():
    rows = [{"trial": "a", "status": "COMPLETED", "lr": 0.01, "epochs": 3, "val_loss": 0.5},
            {"trial": "b", "status": "STOPPED", "lr": 0.02, "epochs": 1, "val_loss": 0.1},
            {"trial": "c", "status": "COMPLETED", "lr": 0.03, "epochs": 3, "val_loss": 0.7}]
    lines = format_table(rows, "val_loss", "min", ["lr"]).splitlines()
    assert lines[0].split() == ["trial", "status", "lr", "epochs", "val_loss"]
    assert lines[1].endswith("*") and not lines[2].endswith("*") and not lines[3].endswith("*")


def _sweep_cmd(spec):
    return [sys.executable, "-m", "rnnkit", "sweep", str(spec), "--num-cpus", "2",
            "--object-store-mb", "200"]


def test_sweep_interrupted_resumed_saves_best_model(tmp_path):
    spec = _write(tmp_path, TINY)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    first = subprocess.Popen(_sweep_cmd(spec), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    pattern = str(tmp_path / "out" / "tiny" / "*" / "checkpoint_*" / "model.rnnkit")
    trials = str(tmp_path / "out" / "tiny" / "_trial_*")
    try:
        # the first trial saved its model and ended: the second one (1 at a time) has started
        while not (glob.glob(pattern) and len(glob.glob(trials)) >= 2):
            assert first.poll() is None, first.stdout.read()[-3000:]
            assert time.perf_counter() - t0 < 240, "no trial finished within 240 s"
            time.sleep(0.2)
        done_first = glob.glob(pattern)
        stamp = os.path.getmtime(done_first[0])
        first.send_signal(signal.SIGINT)   # interrupt the sweep (Ctrl-C)
        out1, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, out1[-3000:]
    assert "the sweep was interrupted" in out1

    second = subprocess.run(_sweep_cmd(spec) + ["--json"], env=env, capture_output=True,
                            text=True, timeout=300)
    print(second.stderr[-4000:])
    print(f"interrupted + resumed 4-trial sweep: {time.perf_counter() - t0:.1f} s")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming the sweep" in second.stderr
    record = json.loads(second.stdout.strip().splitlines()[-1])
    assert record["resumed"] and not record["interrupted"]
    trials = record["trials"]
    assert len(trials) == 4
    assert {t["status"] for t in trials} <= {"COMPLETED", "STOPPED"}
    assert os.path.getmtime(done_first[0]) == stamp          # the finished trial did not rerun
    best = record["best"]
    completed = [t for t in trials if t["status"] == "COMPLETED"]
    assert best["val_loss"] == min(t["val_loss"] for t in completed)
    model = rnnkit.load_model(record["best_model"])
    assert model.preprocessing["task"] == "classify"
    # the recurrent layer (the classify defaults may put a per-step Dense before it and a
    # Bidirectional around it)
    rnn = next(getattr(la, "forward_layer", la) for la in model.layers
               if isinstance(getattr(la, "forward_layer", la), rnnkit.layers.RNN))
    assert rnn.units == best["units"]
    folder = Path(record["path"])
    with open(folder / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert json.loads((folder / "results.json").read_text())["best"]["trial"] == best["trial"]


def test_cli_bad_sweep_file_is_a_usage_error(tmp_path):
    from rnnkit.cli import main
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert main(["sweep", str(_write(tmp_path, "[space]\nlr = { normal = [0, 1] }"))]) == 2


def test_search_and_scheduler_from_the_spec():
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    from rnnkit.distributed.tune import _domain, _max_iterations, _tune_config

    spec = SweepSpec(train={"epochs": 5, "data": "builtin:airline", "ensemble": 2},
                     space={"units": {"choice": [4, 8]}}, search="random", scheduler="none")
    assert _max_iterations(spec) == 5 * 2 + 1       # every member's epochs, then the final
    cfg = _tune_config(spec, 11)
    assert isinstance(cfg.search_alg, BasicVariantGenerator) and cfg.scheduler is None
    spec = SweepSpec(train={"lr": 0.01}, space={"epochs": {"choice": [3, 9]}}, search="tpe",
                     grace_period=2)
    # the default data is a classification set: a classifier trains up to 3 members
    assert _max_iterations(spec) == 9 * 3 + 1
    spec = SweepSpec(train={"lr": 0.01, "ensemble": 1}, space={"epochs": {"choice": [3, 9]}},
                     search="tpe", grace_period=2)
    assert _max_iterations(spec) == 9 + 1
    cfg = _tune_config(spec, 10)
    assert isinstance(cfg.search_alg, OptunaSearch) and isinstance(cfg.scheduler, ASHAScheduler)
    assert cfg.scheduler._max_t == 10 and cfg.scheduler._time_attr == "training_iteration"
    d = _domain({"randint": [1, 3]})                # both ends included
    assert (d.lower, d.upper) == (1, 4)
