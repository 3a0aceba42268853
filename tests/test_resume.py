"""Exact resume: fit N epochs, save, load in a NEW process, fit M more == fit N+M at once.

Bit for bit: weights, optimizer slots, step counter (hence the ExponentialDecay learning rate),
the global random stream (shuffling, unseeded dropout / recurrent dropout) and a seeded
layer's own generator. The documented call sequence (docs/files.md) is::

    model = rnnkit.load_model(path, restore_random_state=True)
    model.fit(x, y, epochs=N + M, initial_epoch=N, ...)
"""

import json
import os
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

N, M = 2, 2

SCRIPT = r'''
import json, sys
import numpy as np
import rnnkit
from rnnkit import layers, optimizers

mode, path, out, N, M = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(7)
x = rng.standard_normal((45, 6, 3)).astype("float32")
y = rng.standard_normal((45, 2)).astype("float32")
kw = dict(batch_size=10, shuffle=True, verbose=0)

def make():
    rnnkit.utils.set_random_seed(42)
    m = rnnkit.Sequential([
        layers.LSTM(8, dropout=0.3, recurrent_dropout=0.2, return_sequences=True,
                    input_shape=(6, 3)),
        layers.GRU(5, dropout=0.1, recurrent_dropout=0.1, seed=11),  # its own generator
        layers.Dropout(0.25),
        layers.Dense(2),
    ])
    sched = optimizers.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.8)
    m.compile(optimizer=optimizers.Adam(sched), loss="mse")
    return m

if mode == "full":
    m = make()
    h = m.fit(x, y, epochs=N + M, **kw)
    m.save(out)
elif mode == "first":
    m = make()
    h = m.fit(x, y, epochs=N, callbacks=[rnnkit.callbacks.ModelCheckpoint(path)], **kw)
else:
    m = rnnkit.load_model(path, restore_random_state=(mode == "resume"))
    h = m.fit(x, y, epochs=N + M, initial_epoch=N, **kw)
    m.save(out)
print(json.dumps({"loss": h.history["loss"], "epoch": h.epoch,
                  "lr": m.optimizer.learning_rate, "iterations": m.optimizer.iterations}))
'''


def _run(tmp_path, mode, ckpt, out):
    script = tmp_path / "resume_script.py"
    script.write_text(SCRIPT)
    res = subprocess.run([sys.executable, str(script), mode, str(ckpt), str(out), str(N), str(M)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def _assert_same_files(a, b):
    ta, tb = load_file(a), load_file(b)
    assert sorted(ta) == sorted(tb)
    assert any(k.startswith("optimizer/") for k in ta) and any(k.startswith("weights/") for k in ta)
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape, k
        if not np.array_equal(ta[k], tb[k]):
            raise AssertionError(f"{k}: resumed vs uninterrupted differ, max |diff| = "
                                 f"{np.max(np.abs(ta[k].astype(float) - tb[k].astype(float)))}")


def test_resume_in_new_process_is_bit_exact(tmp_path):
    ckpt, full, resumed = tmp_path / "ckpt.rnnkit", tmp_path / "full.rnnkit", tmp_path / "res.rnnkit"
    first = _run(tmp_path, "first", ckpt, "-")
    with safe_open(str(ckpt), "np") as f:
        assert json.loads(f.metadata()["training"])["epochs_done"] == N  # ModelCheckpoint
    h_full = _run(tmp_path, "full", "-", full)
    h_res = _run(tmp_path, "resume", ckpt, resumed)
    # the first run really trained: its weights differ from the final ones
    assert not np.array_equal(load_file(ckpt)["weights/dense/kernel"],
                              load_file(full)["weights/dense/kernel"])
    _assert_same_files(full, resumed)
    assert h_res["epoch"] == list(range(N, N + M))
    assert h_res["loss"] == h_full["loss"][N:], ("rnnkit vs reference", h_res, h_full)
    assert first["loss"] == h_full["loss"][:N]
    assert h_res["iterations"] == h_full["iterations"] == 5 * (N + M)
    assert h_res["lr"] == h_full["lr"]

    # Negative control: without restore_random_state the shuffles and dropout masks differ,
    # so the comparison above can fail.
    other = tmp_path / "other.rnnkit"
    _run(tmp_path, "resume_no_rng", ckpt, other)
    assert not np.array_equal(load_file(full)["weights/dense/kernel"],
                              load_file(other)["weights/dense/kernel"])
