"""Faults during training and saving: NaN/Inf loss, Ctrl-C, exploding gradients, and a
process killed (SIGKILL) at random moments while it saves."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import rnnkit
from rnnkit import layers


def _xy(n=32, t=4, f=2, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, t, f)).astype("float32"),
            (scale * rng.standard_normal((n, 1))).astype("float32"))


# ------------------------------------------------------------------------- NaN / Inf loss
def test_terminate_on_nan_names_the_batch_and_suggests_clipnorm(capsys):
    x, y = _xy(scale=1e4)
    m = rnnkit.Sequential([layers.SimpleRNN(8, activation="relu", input_shape=(4, 2)),
                           layers.Dense(1)])
    m.compile(optimizer=rnnkit.optimizers.SGD(learning_rate=1.0), loss="mse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow RuntimeWarnings and the exploding warning
        h = m.fit(x, y, epochs=5, batch_size=4, verbose=0, shuffle=False,
                  callbacks=[rnnkit.callbacks.TerminateOnNaN()])
    info = m.terminated_on_nan
    assert info is not None and not np.isfinite(info["loss"])
    out = capsys.readouterr().out
    assert f"Batch {info['batch']} of epoch {info['epoch'] + 1}: invalid loss" in out
    assert "clipnorm" in out
    assert len(h.epoch) == info["epoch"] + 1  # stopped in that epoch, nothing after
    assert m.optimizer.iterations == info["epoch"] * 8 + info["batch"]  # bad step not applied
    assert all(np.all(np.isfinite(w)) for w in m.get_weights())


# ------------------------------------------------------------------------- Ctrl-C
CTRL_C = r'''
import json, os, signal, sys, time
import numpy as np
import rnnkit
from rnnkit import layers

mode, out_dir, K_EPOCH, K_BATCH = sys.argv[1], sys.argv[2], 1, 2
# as in a program started from a terminal: a process launched in the background by a
# non-interactive shell starts with SIGINT ignored, and fit rightly restores *that*
signal.signal(signal.SIGINT, signal.default_int_handler)
rng = np.random.default_rng(0)
x = rng.standard_normal((40, 4, 2)).astype("float32")
y = rng.standard_normal((40, 1)).astype("float32")

def make():
    rnnkit.utils.set_random_seed(3)
    m = rnnkit.Sequential([layers.GRU(5, input_shape=(4, 2), name="gru"),
                           layers.Dense(1, name="out")])
    m.compile(optimizer=rnnkit.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    return m

class CtrlC(rnnkit.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model._current_epoch == K_EPOCH and batch == K_BATCH:
            signal.raise_signal(signal.SIGINT)
            if mode == "twice":
                signal.raise_signal(signal.SIGINT)

m = make()
try:
    h = m.fit(x, y, epochs=4, batch_size=8, shuffle=False, verbose=0, callbacks=[CtrlC()])
except KeyboardInterrupt:
    print(json.dumps({"raised": True}))
    sys.exit(0)
ref = make()
for e in range(K_EPOCH + 1):
    for b in range(5):
        if e == K_EPOCH and b > K_BATCH:
            break
        ref.train_on_batch(x[b * 8:(b + 1) * 8], y[b * 8:(b + 1) * 8])
m.save_weights(os.path.join(out_dir, "interrupted.safetensors"))
ref.save_weights(os.path.join(out_dir, "reference.safetensors"))
restored = False
# fit restored the default handler: a Ctrl-C now interrupts the program. raise_signal
# delivers it to this (the main) thread at once; os.kill may hand it to one of numba's or
# OpenBLAS's threads, and then nothing wakes the main thread out of a sleep.
try:
    signal.raise_signal(signal.SIGINT)
    time.sleep(1)
except KeyboardInterrupt:
    restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
print(json.dumps({"epochs": h.epoch, "loss": h.history["loss"], "restored": restored,
                  "iterations": m.optimizer.iterations,
                  "ref_iterations": ref.optimizer.iterations}))
'''


def _script(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_ctrl_c_stops_after_the_current_batch(tmp_path):
    from safetensors.numpy import load_file
    res = subprocess.run([sys.executable, _script(tmp_path, "ctrlc.py", CTRL_C), "once",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert "Training interrupted (Ctrl-C) in epoch 2 after batch 2" in res.stdout
    info = json.loads(lines[-1])
    assert info["epochs"] == [0] and len(info["loss"]) == 1  # History of completed epochs
    assert info["iterations"] == info["ref_iterations"] == 5 + 3
    assert info["restored"]
    a = load_file(str(tmp_path / "interrupted.safetensors"))
    b = load_file(str(tmp_path / "reference.safetensors"))
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"rnnkit vs reference: {k}")


def test_second_ctrl_c_raises(tmp_path):
    res = subprocess.run([sys.executable, _script(tmp_path, "ctrlc.py", CTRL_C), "twice",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"raised": True}


# ------------------------------------------------------------------------- exploding gradients
def _exploding_warnings(fn):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn()
    return [w for w in rec if "Exploding gradients" in str(w.message)]


def test_exploding_gradients_warn_once_per_fit():
    x, y = _xy(scale=1e5)
    m = rnnkit.Sequential([layers.LSTM(4, input_shape=(4, 2)), layers.Dense(1)])
    m.compile(optimizer=rnnkit.optimizers.SGD(1e-9), loss="mse")
    got = _exploding_warnings(lambda: m.fit(x, y, epochs=3, batch_size=4, verbose=0))
    assert len(got) == 1, [str(w.message) for w in got]  # 24 steps over the threshold, 1 warning
    msg = str(got[0].message)
    assert got[0].category is RuntimeWarning and "clipnorm" in msg and "batch 0" in msg
    assert len(_exploding_warnings(lambda: m.fit(x, y, epochs=1, verbose=0))) == 1  # per fit
    with pytest.warns(RuntimeWarning, match="Exploding gradients"):
        m.fit(x, y, epochs=1, verbose=0)
    m.compile(optimizer=rnnkit.optimizers.SGD(1e-9, clipnorm=1.0), loss="mse")
    assert _exploding_warnings(lambda: m.fit(x, y, epochs=1, verbose=0)) == []
    small = _xy(scale=0.1)
    m.compile(optimizer=rnnkit.optimizers.SGD(1e-9), loss="mse")
    assert _exploding_warnings(lambda: m.fit(*small, epochs=1, verbose=0)) == []


# ------------------------------------------------------------------------- SIGKILL while saving
SAVER = r'''
import os, sys, time
import rnnkit
from rnnkit import layers
path, base = sys.argv[1], int(sys.argv[2])
real_fsync = os.fsync

def announced_fsync(fd):  # lets the test kill a save right inside its write window
    print("fsync", flush=True)
    time.sleep(0.02)
    real_fsync(fd)

os.fsync = announced_fsync
m = rnnkit.Sequential([layers.LSTM(512, input_shape=(None, 512), kernel_initializer="zeros",
                                   recurrent_initializer="zeros"), layers.Dense(8)])  # 8.4 MB
i = 0
while True:
    tag = base + i
    for j, w in enumerate(m.weights):
        w.fill(tag * 8 + j)
    m.preprocessing = {"tag": tag}
    print(tag, flush=True)  # announced before the write starts
    m.save(path)
    i += 1
'''


def _check_complete(path, started):
    m = rnnkit.load_model(path)
    tag = m.preprocessing["tag"]
    assert tag in started, (tag, sorted(started)[-5:])
    for j, w in enumerate(m.weights):
        assert np.all(w == tag * 8 + j), f"weight {j} of save {tag} is not what was written"
    return tag


def test_sigkill_during_save_never_leaves_a_partial_file(tmp_path):
    """30 SIGKILLs: a third at any moment (even before the first save), a third at a random
    moment of the save loop, a third right inside a write (data written, fsync running, not
    yet renamed). After each, the target is absent (no save finished yet) or complete."""
    script = _script(tmp_path, "saver.py", SAVER)
    target = tmp_path / "out" / "model.rnnkit"
    rnd = random.Random(1234)
    started, last_tag, mid_write = set(), -1, 0
    for k in range(30):
        proc = subprocess.Popen([sys.executable, script, str(target), str(k * 1000)],
                                stdout=subprocess.PIPE, text=True)
        lines = []
        if k % 3 == 0:
            time.sleep(rnd.uniform(0.0, 0.6))
        elif k % 3 == 1:
            lines.append(proc.stdout.readline())
            time.sleep(rnd.uniform(0.0, 0.3))
        else:
            for _ in range(rnd.randint(1, 4)):  # the n-th write window
                while (line := proc.stdout.readline()) and line.strip() != "fsync":
                    lines.append(line)
                proc.stdout.readline()  # the folder's fsync, after the rename
            while (line := proc.stdout.readline()) and line.strip() != "fsync":
                lines.append(line)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        started.update(int(t) for t in "".join(lines + [out]).split() if t.isdigit())
        folder = os.listdir(target.parent) if target.parent.exists() else []
        killed_in_write = any(n.endswith(".part") and f".{proc.pid}." in n for n in folder)
        assert killed_in_write or k % 3 != 2, "a kill inside a write left no temporary file"
        mid_write += killed_in_write
        if not target.exists():
            assert last_tag == -1, "the model file disappeared after a complete save"
            continue
        tag = _check_complete(target, started)
        assert tag >= last_tag
        last_tag = tag
    print(f"{mid_write} of 30 kills hit a write in progress; last complete save {last_tag}")
    assert last_tag >= 0, "no save ever completed; the test did not exercise anything"
    # the next complete save (another process) removes the temp files of the killed writers
    proc = subprocess.run([sys.executable, "-c", SAVER.replace("while True", "for _ in [0]"),
                           str(target), "99999"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(target.parent) == ["model.rnnkit"]
    assert _check_complete(target, {99999}) == 99999


CHECKPOINTER = r'''
import hashlib, sys
import numpy as np
import rnnkit
from rnnkit import layers
path = sys.argv[1]
rnnkit.utils.set_random_seed(int(sys.argv[2]))
x = np.random.default_rng(0).standard_normal((4, 3, 128)).astype("float32")
y = np.zeros((4, 1), "float32")
m = rnnkit.Sequential([layers.GRU(384, input_shape=(3, 128), recurrent_initializer="zeros"),
                       layers.Dense(1)])  # ~11 MB with the momentum-free SGD
m.compile(optimizer="sgd", loss="mse")

class Announce(rnnkit.callbacks.Callback):  # runs before ModelCheckpoint in the same event
    def on_epoch_end(self, epoch, logs=None):
        h = hashlib.sha256(b"".join(w.tobytes() for w in self.model.get_weights())).hexdigest()
        print(h, flush=True)

m.fit(x, y, epochs=10**6, batch_size=4, verbose=0,
      callbacks=[Announce(), rnnkit.callbacks.ModelCheckpoint(path)])
'''


def test_sigkill_during_model_checkpoint_never_leaves_a_partial_file(tmp_path):
    script = _script(tmp_path, "ckpt.py", CHECKPOINTER)
    target = tmp_path / "ckpt.rnnkit"
    rnd = random.Random(99)
    announced, seen = set(), 0
    for k in range(10):
        proc = subprocess.Popen([sys.executable, script, str(target), str(k)],
                                stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()  # the first epoch ended; checkpoints are being written
        time.sleep(rnd.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        announced.update((first + out).split())
        if target.exists():
            m = rnnkit.load_model(target)
            h = hashlib.sha256(b"".join(w.tobytes() for w in m.get_weights())).hexdigest()
            assert h in announced
            assert m._epochs_done >= 1 and m.optimizer.iterations == m._epochs_done
            seen += 1
    assert seen >= 5, f"only {seen} of 10 runs completed a checkpoint"
    assert not any(n == "ckpt.rnnkit" and not (tmp_path / n).is_file()
                   for n in os.listdir(tmp_path))
