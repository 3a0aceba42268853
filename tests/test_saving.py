"""Model files: round trips, format versions, custom layers, checkpoints, temp files, no pickle."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save

import rnnkit
from rnnkit import RnnkitFileError, layers


def _data(n=24, t=5, f=3, out=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, t, f)).astype("float32"),
            rng.standard_normal((n, out)).astype("float32"))


def _trained(tmp_path=None, epochs=2):
    x, y = _data()
    m = rnnkit.Sequential([layers.LSTM(6, dropout=0.2, input_shape=(5, 3)),
                           layers.Dense(2, activation="tanh")])
    m.compile(optimizer="adam", loss="mse", metrics=["mae"])
    m.fit(x, y, epochs=epochs, batch_size=8, verbose=0)
    return m, x, y


def _rewrite(path, meta_update=None, tensors_update=None, drop=()):
    """Rewrite a file with changed metadata/tensors (plain safetensors, no rnnkit code)."""
    with safe_open(str(path), "np") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    meta.update(meta_update or {})
    tensors.update(tensors_update or {})
    for k in drop:
        tensors.pop(k)
    pathlib.Path(path).write_bytes(save(tensors, metadata=meta))


def test_model_round_trip(tmp_path):
    m, x, y = _trained()
    m.preprocessing = {"labels": ["a", "b"], "mean": [0.5, 1.5]}
    p = tmp_path / "m.rnnkit"
    m.save(p)
    m2 = rnnkit.load_model(p)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))
    assert m2.optimizer.iterations == m.optimizer.iterations == 6
    assert sorted(m2.optimizer.slots) == ["m", "v"]
    for s in ("m", "v"):
        for a, b in zip(m.optimizer.slots[s], m2.optimizer.slots[s]):
            np.testing.assert_array_equal(a, b)
    assert [mm.name for mm in m2.metrics] == ["mae"]
    assert m2.preprocessing == m.preprocessing and m2._epochs_done == 2
    assert m2.evaluate(x, y, verbose=0) == pytest.approx(m.evaluate(x, y, verbose=0))
    # a plain safetensors reader reads it too
    assert "weights/" + m.layers[0].name + "/kernel" in load_file(str(p))
    with safe_open(str(p), "np") as f:
        meta = f.metadata()
    assert meta["format"] == "rnnkit" and meta["format_version"] == "1"
    assert meta["kind"] == "model" and meta["rnnkit_version"] == rnnkit.__version__
    assert "created" in meta and json.loads(meta["config"])["class_name"] == "Sequential"


def test_compile_false_and_without_optimizer(tmp_path):
    m, x, _ = _trained()
    p = tmp_path / "m.rnnkit"
    m.save(p, include_optimizer=False)
    assert not any(k.startswith("optimizer/") for k in load_file(str(p)))
    m2 = rnnkit.load_model(p)
    assert m2.compiled and m2.optimizer.iterations == 0
    m3 = rnnkit.load_model(p, compile=False)
    assert not m3.compiled
    np.testing.assert_array_equal(m3.predict(x), m.predict(x))


def test_compiled_but_untrained_model_round_trip(tmp_path):
    m = rnnkit.Sequential([layers.GRU(3, input_shape=(4, 2)), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    m.save(tmp_path / "m.rnnkit")
    m2 = rnnkit.load_model(tmp_path / "m.rnnkit")
    assert m2.optimizer.iterations == 0 and m2._epochs_done == 0
    m2.fit(np.zeros((2, 4, 2)), np.zeros((2, 1)), verbose=0)


def test_model_built_on_first_call_and_wrappers(tmp_path):
    x, _ = _data()
    m = rnnkit.Sequential([layers.Bidirectional(layers.GRU(4, return_sequences=True)),
                           layers.TimeDistributed(layers.Dense(3)), layers.SimpleRNN(2)])
    m(x)
    m.save(tmp_path / "w.rnnkit")
    m2 = rnnkit.load_model(tmp_path / "w.rnnkit")
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))


def test_embedding_model_round_trip(tmp_path):
    ids = np.random.default_rng(0).integers(0, 20, (4, 7))
    m = rnnkit.Sequential([layers.Embedding(20, 5, mask_zero=True), layers.GRU(3)])
    m(ids)
    m.save(tmp_path / "e.rnnkit")
    np.testing.assert_array_equal(rnnkit.load_model(tmp_path / "e.rnnkit").predict(ids),
                                  m.predict(ids))


def test_stateful_states_and_layer_rng_are_saved(tmp_path):
    x, _ = _data(n=4)
    m = rnnkit.Sequential([layers.LSTM(3, stateful=True, dropout=0.5, seed=3,
                                       input_shape=(5, 3))])
    m(x)
    m.layers[0]._rng.random(5)  # advance the layer's own generator
    m.save(tmp_path / "s.rnnkit")
    m2 = rnnkit.load_model(tmp_path / "s.rnnkit")
    for a, b in zip(m.layers[0].states, m2.layers[0].states):
        np.testing.assert_array_equal(a, b)
    assert m2.layers[0]._rng.random() == m.layers[0]._rng.random()
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))  # continues from the states


def test_global_random_state_restored_only_when_asked(tmp_path):
    m, _, _ = _trained()
    m.save(tmp_path / "m.rnnkit")
    saved = rnnkit._backend.rng().random()  # the draw that follows the saved state
    rnnkit.utils.set_random_seed(99)
    expected = np.random.default_rng(99).random()
    rnnkit.load_model(tmp_path / "m.rnnkit")
    assert rnnkit._backend.rng().random() == expected  # untouched by default
    rnnkit.load_model(tmp_path / "m.rnnkit", restore_random_state=True)
    assert rnnkit._backend.rng().random() == saved


def test_save_weights_load_weights_match_by_position(tmp_path):
    m, x, _ = _trained()
    p = tmp_path / "w.safetensors"
    m.save_weights(p)
    other = rnnkit.Sequential([layers.LSTM(6, input_shape=(5, 3)), layers.Dense(2, "tanh")])
    assert other.layers[0].name != m.layers[0].name  # new auto names in this process
    other.load_weights(p)
    np.testing.assert_array_equal(other.predict(x), m.predict(x))
    other.load_weights(tmp_path / "w.safetensors")  # idempotent
    with pytest.raises(RnnkitFileError, match="load_weights"):
        rnnkit.load_model(p)
    wrong = rnnkit.Sequential([layers.GRU(6, input_shape=(5, 3)), layers.Dense(2)])
    with pytest.raises(RnnkitFileError, match="missing weight tensors|shape"):
        wrong.load_weights(p)
    shallow = rnnkit.Sequential([layers.LSTM(6, input_shape=(5, 3))])
    with pytest.raises(RnnkitFileError, match="2 layers"):
        shallow.load_weights(p)
    with pytest.raises(ValueError, match="Build the model"):
        rnnkit.Sequential([layers.Dense(2)]).load_weights(p)
    # a full model file also serves load_weights
    m.save(tmp_path / "m.rnnkit")
    other.load_weights(tmp_path / "m.rnnkit")


def test_newer_format_version_is_refused(tmp_path):
    m, _, _ = _trained()
    p = tmp_path / "m.rnnkit"
    m.save(p)
    _rewrite(p, {"format_version": "2"})
    with pytest.raises(RnnkitFileError, match=r"format version 2.*reads versions 1 to 1.*Upgrade"):
        rnnkit.load_model(p)
    for bad in ("0", "", "1.0", "-1", "one"):
        _rewrite(p, {"format_version": bad})
        with pytest.raises(RnnkitFileError, match="format_version"):
            rnnkit.load_model(p)


def test_hand_written_minimal_version_1_file_loads(tmp_path):
    """Version 1 is the first format version. A minimal v1 file written from the docs alone
    (only format, format_version and config; no build shape, compile, training or
    preprocessing records) must keep loading in every later rnnkit."""
    rng = np.random.default_rng(0)
    t = {"weights/rnn/kernel": rng.standard_normal((3, 4)).astype("float32"),
         "weights/rnn/recurrent_kernel": rng.standard_normal((4, 4)).astype("float32"),
         "weights/rnn/bias": np.zeros(4, "float32"),
         "weights/out/kernel": rng.standard_normal((4, 1)).astype("float64"),
         "weights/out/bias": np.ones(1, "float16")}
    config = {"class_name": "Sequential", "config": {"name": "tiny", "layers": [
        {"class_name": "SimpleRNN", "config": {"name": "rnn", "units": 4}},
        {"class_name": "Dense", "config": {"name": "out", "units": 1}}]}}
    p = tmp_path / "v1.rnnkit"
    p.write_bytes(save(t, metadata={"format": "rnnkit", "format_version": "1",
                                    "config": json.dumps(config)}))
    m = rnnkit.load_model(p)
    assert not m.compiled and m.name == "tiny"
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    h = np.zeros((2, 4))
    for s in range(5):
        h = np.tanh(x[:, s] @ t["weights/rnn/kernel"] + h @ t["weights/rnn/recurrent_kernel"])
    np.testing.assert_allclose(m.predict(x), h @ t["weights/out/kernel"] + 1.0, rtol=1e-5,
                               atol=1e-6)


class Scale(layers.Layer):
    """A custom layer: y = x * w (one weight per feature)."""

    def build(self, input_shape):
        self.add_weight("w", (input_shape[-1],), "ones")
        super().build(input_shape)

    def forward(self, x, training=False, mask=None):
        self._x = np.asarray(x)
        return self._x * self.params["w"]

    def backward(self, dy):
        self.grads["w"][...] = (dy * self._x).reshape(-1, self._x.shape[-1]).sum(0)
        return dy * self.params["w"]


def test_custom_layers_need_explicit_registration(tmp_path):
    x, _ = _data()
    m = rnnkit.Sequential([layers.GRU(4, input_shape=(5, 3)), Scale()])
    m.layers[1].params["w"][...] = [1.0, 2.0, 3.0, 4.0]
    p = tmp_path / "c.rnnkit"
    m.save(p)
    with pytest.raises(RnnkitFileError, match=r"'Scale'.*neither built into rnnkit nor "
                                              r"registered.*custom_objects"):
        rnnkit.load_model(p)
    m2 = rnnkit.load_model(p, custom_objects={"Scale": Scale})
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    with pytest.raises(TypeError, match="custom_objects"):
        rnnkit.load_model(p, custom_objects={"Scale": print})
    try:
        rnnkit.layers.register_layer(Scale)
        np.testing.assert_array_equal(rnnkit.load_model(p).predict(x), m.predict(x))
    finally:
        rnnkit.layers.base._CLASSES.pop("Scale", None)
    with pytest.raises(RnnkitFileError, match="neither built"):
        rnnkit.load_model(p)


def test_save_refuses_bad_models(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        rnnkit.Sequential([layers.Dense(2)]).save(tmp_path / "x.rnnkit")
    m = rnnkit.Sequential([layers.Dense(2, name="d", input_shape=(3,)), layers.Dense(2, name="d")])
    with pytest.raises(ValueError, match="unique.*'d'"):
        m.save(tmp_path / "x.rnnkit")
    m, _, _ = _trained()
    m.preprocessing = {"mean": np.zeros(3)}
    with pytest.raises(ValueError, match="JSON.*tolist"):
        m.save(tmp_path / "x.rnnkit")
    m.preprocessing = {}
    with pytest.raises(ValueError, match="directory"):
        m.save(tmp_path)
    assert not os.path.exists(tmp_path / "x.rnnkit")


def test_model_checkpoint_writes_loadable_files(tmp_path):
    x, y = _data()
    m = rnnkit.Sequential([layers.SimpleRNN(4, input_shape=(5, 3)), layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    cb = rnnkit.callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}.rnnkit"))
    best = rnnkit.callbacks.ModelCheckpoint(str(tmp_path / "best.rnnkit"), monitor="loss",
                                            save_best_only=True)
    wonly = rnnkit.callbacks.ModelCheckpoint(str(tmp_path / "w.safetensors"),
                                             save_weights_only=True)
    m.fit(x, y, epochs=3, verbose=0, callbacks=[cb, best, wonly])
    assert sorted(os.listdir(tmp_path)) == ["best.rnnkit", "ck-01.rnnkit", "ck-02.rnnkit",
                                            "ck-03.rnnkit", "w.safetensors"]
    last = rnnkit.load_model(tmp_path / "ck-03.rnnkit")
    assert last._epochs_done == 3
    assert rnnkit.load_model(tmp_path / "ck-01.rnnkit")._epochs_done == 1
    np.testing.assert_array_equal(last.predict(x), m.predict(x))


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path):
    m, _, _ = _trained()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.rnnkit.{dead}.deadbeef.part"
    live = tmp_path / f".m.rnnkit.{os.getppid()}.cafe.part"   # a running process
    other = tmp_path / f".other.rnnkit.{dead}.beef.part"      # another target: not ours
    odd = tmp_path / f".m.rnnkit.{'9' * 30}.x.part"            # not a valid pid: kept
    for f in (stale, live, other, odd):
        f.write_bytes(b"partial")
    m.save(tmp_path / "m.rnnkit")
    assert not stale.exists() and live.exists() and other.exists() and odd.exists()
    rnnkit.load_model(tmp_path / "m.rnnkit")


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    m, _, _ = _trained()
    p = tmp_path / "m.rnnkit"
    m.save(p)
    before = p.read_bytes()

    def boom(*a):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        m.save(p)
    monkeypatch.undo()
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["m.rnnkit"]


SRC = pathlib.Path(rnnkit.__file__).parent


def test_package_source_never_unpickles_or_evaluates():
    pattern = re.compile(r"^\s*(import|from)\s+(_?c?pickle|dill|cloudpickle|marshal|shelve)\b"
                         r"|allow_pickle\s*=\s*True|(?<![\w.])(?<!def )(eval|exec)\s*\("
                         r"|torch\.load\((?![^)]*weights_only\s*=\s*True)", re.M)
    bad = ["import pickle", "from pickle import loads", "import cloudpickle as cp", "np.load(f, allow_pickle=True)",
           "y = eval(s)", "exec (code)", "torch.load(path)"]
    good = ["model.eval()", "torch.load(p, weights_only=True)", "evaluate(x)", "# pickled"]
    assert all(pattern.search(b) for b in bad) and not any(pattern.search(g) for g in good)
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    hits = [f"{f.relative_to(SRC)}: {mt.group(0).strip()}" for f in files
            for mt in pattern.finditer(f.read_text(encoding="utf-8"))]
    assert hits == []
    assert "safetensors.numpy import load" not in (SRC / "saving.py").read_text()
