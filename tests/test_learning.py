"""Learning checks on tasks with known answers (bounded budgets, fixed seeds)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import callbacks, layers, optimizers
from rnnkit.data import adding_problem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = 0.167  # MSE of always predicting 1 on the adding problem


def train_adding(cell, T=100, max_epochs=20, seed=0):
    """Train ``cell``(32) on the adding problem; stop once validation MSE < 0.005."""
    rnnkit.utils.set_random_seed(seed)
    x, y = adding_problem(6000, T, seed=seed)
    xv, yv = adding_problem(1000, T, seed=seed + 100)
    xt, yt = adding_problem(1000, T, seed=seed + 200)
    model = rnnkit.Sequential([cell(32), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
    stop = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: setattr(
        model, "stop_training", logs["val_loss"] < 0.005))
    hist = model.fit(x, y, batch_size=64, epochs=max_epochs, validation_data=(xv, yv),
                     callbacks=[stop], verbose=0)
    return model.evaluate(xt, yt, verbose=0), len(hist.history["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("cell", [layers.LSTM, layers.GRU])
def test_gated_cells_solve_adding_problem_T100(cell):
    mse, epochs = train_adding(cell)
    print(f"{cell.__name__} adding T=100: test MSE {mse:.5f} after {epochs} epochs "
          f"(baseline {BASELINE})")
    assert mse < 0.01, f"{cell.__name__}: test MSE {mse:.4f} >= 0.01 after {epochs} epochs"


@pytest.mark.slow
def test_simple_rnn_adding_problem_T100_is_reported():
    """The tutorial's warning: a plain RNN struggles at T=100. Reported, and it must at least
    train without diverging (finite loss)."""
    mse, epochs = train_adding(layers.SimpleRNN, max_epochs=6)
    print(f"SimpleRNN adding T=100: test MSE {mse:.4f} after {epochs} epochs (baseline {BASELINE})")
    assert np.isfinite(mse)


@pytest.mark.slow
def test_tutorial_example_reaches_095_on_japanese_vowels():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples",
                                                       "tutorial_japanese_vowels.py")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    acc = float(re.search(r"test accuracy ([0-9.]+)", out.stdout).group(1))
    print(f"tutorial model on Japanese Vowels: test accuracy {acc:.4f}")
    assert acc >= 0.95


@pytest.mark.slow
def test_rnnkit_train_defaults_on_japanese_vowels(tmp_path, capsys):
    """`rnnkit train` with no options on Japanese Vowels: the adaptive classification defaults
    (issue 16; per-channel scaling, no patches, bidirectional GRU ensemble) reach >= 0.97."""
    import json

    from rnnkit.cli import main

    assert main(["train", "--json", "--out", str(tmp_path / "jv.rnnkit")]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    acc = rec["test"]["accuracy"]
    print(f"rnnkit train defaults: test accuracy {acc:.4f}")
    chosen = {c["name"]: c["value"] for c in rec["choices"]}
    assert chosen["normalize"] == "channel" and chosen["patch"] == 1
    assert acc >= 0.97


@pytest.mark.slow
def test_rnnkit_train_airline_36_month_mape(tmp_path, capsys):
    import json

    from rnnkit.cli import main

    assert main(["train", "--data", "builtin:airline", "--horizon", "36", "--json",
                 "--out", str(tmp_path / "air.rnnkit")]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print(f"airline: {rec['test']}")
    assert rec["test"]["mape"] <= 0.06
