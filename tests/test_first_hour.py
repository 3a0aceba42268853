"""A Keras or PyTorch user's first hour (issue 19): each test fails on the code before the
fix and names the trap it guards against."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_cli import TINY, last_json, run_cli, write_ts

import rnnkit


# ------------------------------------------------------------------------------- evaluate
def test_evaluate_without_data_scores_the_recorded_test_file(tmp_path, capsys, monkeypatch):
    """Trained with --data TRAIN.ts --test TEST.ts, `evaluate MODEL` scored TRAIN.ts."""
    train = write_ts(tmp_path / "train.ts", n_per_class=8, seed=0)
    test = write_ts(tmp_path / "test.ts", n_per_class=3, seed=1)
    model = tmp_path / "m.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", train, "--test", test, "--out", model,
                             *TINY)
    assert code == 0, err
    trained = last_json(out)
    monkeypatch.chdir(tmp_path.parent)     # the recorded path must not depend on the folder
    code, out, err = run_cli(capsys, "evaluate", model, "--json")
    assert code == 0, err
    rec = last_json(out)
    assert "test.ts" in rec["data"] and "recorded at training" in rec["data"]
    assert rec["test"]["accuracy"] == pytest.approx(trained["test"]["accuracy"])
    assert rec["test"]["loss"] == pytest.approx(trained["test"]["loss"], rel=1e-5)


def test_evaluate_without_data_scores_the_recorded_holdout(tmp_path, capsys):
    train = write_ts(tmp_path / "train.ts", n_per_class=10, seed=0)
    model = tmp_path / "m.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", train, "--out", model, *TINY)
    assert code == 0, err
    trained = last_json(out)
    code, out, err = run_cli(capsys, "evaluate", model, "--json")
    rec = last_json(out)
    assert "hold-out" in rec["data"]
    assert rec["test"]["loss"] == pytest.approx(trained["test"]["loss"], rel=1e-5)


# ------------------------------------------------------------------------------- diagnose
@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    """The default `rnnkit train` model (tutorial LSTM on Japanese Vowels), fewer epochs."""
    from rnnkit.cli import main

    path = tmp_path_factory.mktemp("jv") / "default.rnnkit"
    assert main(["train", "--epochs", "25", "--patience", "25", "--quiet",
                 "--out", str(path)]) == 0
    return path


def test_diagnose_uses_the_saved_scaler_and_calls_a_trained_model_healthy(default_model,
                                                                          tmp_path, capsys):
    code, out, err = run_cli(capsys, "diagnose", default_model, "--data",
                             "builtin:japanese_vowels", "--out", tmp_path / "flow.png",
                             "--json")
    assert code == 0, err
    rec = json.loads(out.strip().splitlines()[-1])
    code, ev, _ = run_cli(capsys, "evaluate", default_model, "--json")
    ev_loss = last_json(ev)["test"]["loss"]
    # 128 of the 370 test sequences, scaled as in training: the loss is of the same order
    # as `evaluate`'s (unscaled, it was 2.39 against 0.08)
    assert rec["loss"] < max(3 * ev_loss, 0.5), (rec["loss"], ev_loss)
    assert "saved preprocessing" in rec["preprocessing"]
    assert rec["verdict"] == "healthy", rec["reason"]
    assert all(lf["verdict"] == "healthy" for lf in rec["layers"])


def test_diagnose_runs_in_seconds(default_model, tmp_path):
    import time

    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "rnnkit", "diagnose", str(default_model),
                          "--data", "builtin:japanese_vowels", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    assert seconds < 25, f"diagnose took {seconds:.1f} s"   # 42 s before; ~5 s on a busy box


def test_gradient_flow_still_calls_an_exploding_rnn_exploding():
    """The calibration must not hide real explosions: a SimpleRNN with a large recurrent
    kernel returning sequences into a second layer."""
    from rnnkit.diagnostics import gradient_flow

    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([
        rnnkit.layers.SimpleRNN(16, return_sequences=True, activation="linear",
                                recurrent_initializer=rnnkit.initializers.Orthogonal(gain=1.6)),
        rnnkit.layers.SimpleRNN(4), rnnkit.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 30, 3)) * 1e-3
    res = gradient_flow(model, x, np.ones((8, 1)))
    assert res.layers[0].verdict == "exploding", res.layers[0].reason


# ------------------------------------------------------------------------------- CSV files
def write_long_csv(path, n_seq=30, seed=0, label_name="label"):
    """Labelled sequences, one row per time step: id, t, two channels, a text label."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "t", "a", "b", label_name])
        for s in range(n_seq):
            lab = ["walk", "run", "sit"][s % 3]
            T = int(rng.integers(5, 9))
            for t in rng.permutation(T):          # rows out of time order
                w.writerow([s, t, f"{(s % 3) * 2 + 0.1 * t + rng.normal(0, .2):.3f}",
                            f"{rng.normal():.3f}", lab])
    return path


def test_labelled_csv_is_not_silently_forecast(tmp_path, capsys):
    data = write_long_csv(tmp_path / "seqs.csv")
    code, _, err = run_cli(capsys, "train", "--data", data, *TINY)
    assert code == 2
    assert "labelled sequences" in err and "--task classify --label label --id id" in err


def test_labelled_csv_classified_with_label_and_id(tmp_path, capsys):
    data = write_long_csv(tmp_path / "seqs.csv")
    model = tmp_path / "m.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", data, "--task", "classify",
                             "--label", "label", "--id", "id", "--time", "t",
                             "--out", model, "--units", "6", "--epochs", "2", "--json")
    assert code == 0, err
    rec = last_json(out)
    assert rec["classes"] == ["run", "sit", "walk"]
    assert "label column 'label', sequences by 'id' ordered by 't'; channels ['a', 'b']" in err
    assert "2 channel(s)" in err
    code, out, err = run_cli(capsys, "predict", model, "--data", data, "--json")
    assert code == 0, err
    preds = last_json(out)["predictions"]
    assert len(preds) == 30 and preds[0]["label"] in ("run", "sit", "walk")
    code, out, err = run_cli(capsys, "evaluate", model, "--json")
    assert code == 0, err
    assert "hold-out" in last_json(out)["data"]


def test_classify_csv_without_label_says_how(tmp_path, capsys):
    data = write_long_csv(tmp_path / "seqs.csv")
    code, _, err = run_cli(capsys, "train", "--data", data, "--task", "classify", *TINY)
    assert code == 2 and "--label COLUMN" in err


def test_load_csv_sequences_orders_steps_and_checks_labels(tmp_path):
    from rnnkit.data import load_csv_sequences

    p = tmp_path / "s.csv"
    p.write_text("seq,step,v,label\n1,2,20,x\n1,1,10,x\n2,1,5,y\n")
    x, y, cols = load_csv_sequences(p, "label", id_column="seq", time_column="step")
    assert cols == ["v"] and list(y) == ["x", "y"]
    assert x[0][:, 0].tolist() == [10, 20]
    p.write_text("seq,v,label\n1,2,x\n1,1,z\n")
    with pytest.raises(ValueError, match="more than one label"):
        load_csv_sequences(p, "label", id_column="seq")
    p.write_text(",c1,c2,c3,label\n0,1,2,3,a\n1,4,5,6,b\n")    # wide layout, pandas index
    x, y, cols = load_csv_sequences(p, "label")
    assert cols == ["c1", "c2", "c3"] and x[1][:, 0].tolist() == [4, 5, 6]


LYNX = [269, 321, 585, 871, 1475, 2821, 3928, 5943, 4950, 2577, 523, 98, 184, 279, 409,
        2285, 2685, 3409, 1824, 409, 151, 45, 68, 213, 546, 1033, 2129, 2536, 957, 361, 377,
        225, 360, 731, 1638, 2725, 2871, 2119, 684, 299, 236, 245, 552, 1623, 3311, 6721,
        4254, 687, 255, 473, 358, 784, 1594, 1676, 2251, 1426, 756, 299, 201, 229, 469, 736]


def test_pandas_index_column_is_never_the_target(tmp_path, capsys):
    """pandas' to_csv() of the Lynx series: header ',0', the years as an unnamed index."""
    p = tmp_path / "lynx.csv"
    p.write_text(",0\n" + "".join(f"{1821 + i},{v}\n" for i, v in enumerate(LYNX)))
    code, out, err = run_cli(capsys, "train", "--data", p, "--task", "forecast", "--horizon",
                             "6", "--ensemble", "1", "--units", "4", "--epochs", "2",
                             "--json", "--quiet")
    assert code == 0, err
    rec = last_json(out)
    assert rec["settings"]["target"] is None
    fc = np.asarray(rec["forecast"])
    assert fc.min() < 1000 or fc.max() > 2000          # animal counts, not years 1877..1882
    assert not np.allclose(fc, np.arange(1877, 1883), atol=5)
    code, out, err = run_cli(capsys, "train", "--data", p, "--task", "forecast", "--horizon",
                             "6", "--ensemble", "1", "--units", "4", "--epochs", "2")
    assert "target '0'" in out and "left out '' (unnamed leading column: a row index)" in out


def test_date_and_counter_columns_are_never_channels(tmp_path):
    from rnnkit.cli._common import load_series

    p = tmp_path / "s.csv"
    rows = ["year,row,date,sales,temp"] + [f"{2000 + i},{i},2020-01-{i + 1:02d},{10 + i % 3},"
                                           f"{20 - i % 4}" for i in range(20)]
    p.write_text("\n".join(rows) + "\n")
    values, columns, dates, target, left = load_series(str(p))
    assert columns == ["sales", "temp"] and values.shape == (20, 2) and target == 0
    assert dates[0] == "2000"
    assert dict(left) == {"row": "a counter (0, 1, ... rising by 1)",
                          "date": "dates or times"}
    from rnnkit.data import csv_column_roles
    p.write_text("n,flag,level\n" + "".join(f"{i // 3},1,{i * 1.5}\n" for i in range(12)))
    assert csv_column_roles(p).roles == {"n": "id", "flag": "value", "level": "value"}


# ------------------------------------------------------------------------------- predict
def test_predict_json_and_head_without_broken_pipe(tmp_path, capsys):
    train = write_ts(tmp_path / "train.ts", n_per_class=40, seed=0)
    model = tmp_path / "m.rnnkit"
    code, _, err = run_cli(capsys, "train", "--data", train, "--out", model, *TINY)
    assert code == 0, err
    code, out, err = run_cli(capsys, "predict", model, "--data", train, "--json")
    assert code == 0, err
    rec = last_json(out)
    assert rec["task"] == "classify" and len(rec["predictions"]) == 120
    assert set(rec["predictions"][0]) >= {"index", "label"}
    cmd = (f"{sys.executable} -m rnnkit predict {model} --data {train} | head -n 2")
    res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                         text=True, timeout=120)
    assert "Broken pipe" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert len(res.stdout.splitlines()) == 2


# ------------------------------------------------------------------------------- file formats
def _small_model():
    model = rnnkit.Sequential([rnnkit.layers.Input((None, 3)), rnnkit.layers.LSTM(4),
                               rnnkit.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_save_keras_suffix_writes_a_real_keras_file(tmp_path):
    import keras

    model = _small_model()
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    kmodel = keras.saving.load_model(tmp_path / "m.keras")
    assert np.allclose(keras.ops.convert_to_numpy(kmodel(x)), model.predict(x, verbose=0),
                       atol=1e-5)


def test_save_h5_refuses_and_names_the_alternatives(tmp_path):
    with pytest.raises(ValueError, match=r"legacy HDF5.*'\.keras'.*to_keras.*'\.rnnkit'"):
        _small_model().save(tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_load_model_on_keras_and_torch_files_names_the_interop_function(tmp_path):
    import torch

    from rnnkit.interop import to_keras

    model = _small_model()
    to_keras(model, tmp_path / "m.keras")
    with pytest.raises(rnnkit.RnnkitFileError, match=r"rnnkit\.interop\.from_keras\(path\)"):
        rnnkit.load_model(tmp_path / "m.keras")
    torch.save(torch.nn.LSTM(3, 4).state_dict(), tmp_path / "m.pt")
    with pytest.raises(rnnkit.RnnkitFileError, match=r"PyTorch checkpoint.*from_torch"):
        rnnkit.load_model(tmp_path / "m.pt")
    import h5py
    with h5py.File(tmp_path / "w.weights.h5", "w") as f:
        f["x"] = np.zeros(2)
    with pytest.raises(rnnkit.RnnkitFileError, match=r"from_keras\(path, config"):
        rnnkit.load_model(tmp_path / "w.weights.h5")


def test_from_keras_on_a_missing_path_says_it_does_not_exist(tmp_path):
    from rnnkit.interop import from_keras

    with pytest.raises(FileNotFoundError, match="does not exist"):
        from_keras(tmp_path / "nope.keras")


def test_to_keras_works_without_keras_backend_set(tmp_path):
    """With the [keras] extra alone (no TensorFlow) and KERAS_BACKEND unset."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = os.path.abspath("src") + os.pathsep + env.get("PYTHONPATH", "")
    code = ("import rnnkit, numpy as np\n"
            "from rnnkit.interop import to_keras\n"
            "m = rnnkit.Sequential([rnnkit.layers.Input((None, 2)), rnnkit.layers.GRU(3)])\n"
            f"to_keras(m, {str(tmp_path / 'g.keras')!r})\n"
            "import keras; print(keras.backend.backend())\n")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "torch"
