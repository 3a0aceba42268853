"""Hostile or broken files: each raises RnnkitFileError with a clear message, runs no code,
does not crash and allocates nothing the file's real bytes do not back."""

import json
import os
import pathlib
import pickle
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from modelfiles import leaves
from safetensors import safe_open
from safetensors.numpy import load_file, save

import rnnkit
from rnnkit import RnnkitFileError, layers


def _small_model():
    rnnkit.utils.set_random_seed(0)
    m = rnnkit.Sequential([layers.LSTM(2, input_shape=(3, 2), dropout=0.1, seed=1, name="lstm"),
                           layers.Dense(1, name="out")])
    m.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    m.fit(rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 1)), epochs=1, verbose=0)
    return m


def _rich_model():
    """Wrappers, nested and seeded generators, a stateful layer, a schedule, metrics."""
    rnnkit.utils.set_random_seed(0)
    m = rnnkit.Sequential([
        layers.Masking(input_shape=(3, 2)),
        layers.Bidirectional(layers.GRU(2, return_sequences=True, dropout=0.2, seed=4)),
        layers.TimeDistributed(layers.Dense(2)), layers.Dropout(0.1, seed=3),
        layers.SimpleRNN(2, stateful=True), layers.Dense(1, name="out")])
    sched = rnnkit.optimizers.schedules.ExponentialDecay(0.01, 3, 0.9)
    m.compile(optimizer=rnnkit.optimizers.RMSprop(sched, momentum=0.5, centered=True),
              loss="mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    m.fit(rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 1)), epochs=1, verbose=0,
          batch_size=4)
    return m


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("good") / "m.rnnkit"
    _small_model().save(p)
    return p.read_bytes()


@pytest.fixture(scope="module")
def rich_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("rich") / "m.rnnkit"
    _rich_model().save(p)
    rnnkit.load_model(p)  # the unmutated file loads
    return p.read_bytes()


def _split(data):
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def _raw(header, body=b"", header_text=None):
    text = (header_text if header_text is not None else json.dumps(header)).encode()
    return struct.pack("<Q", len(text)) + text + body


def _meta_edit(data, key, fn):
    """Apply ``fn`` to the parsed JSON record ``key`` of the metadata and re-encode."""
    header, body = _split(data)
    rec = json.loads(header["__metadata__"][key])
    fn(rec)  # edits in place
    header["__metadata__"][key] = json.dumps(rec)
    return _raw(header, body)


def _load_bytes(tmp_path, data, **kw):
    p = tmp_path / "x.rnnkit"
    p.write_bytes(data)
    return rnnkit.load_model(p, **kw)


def _layers(cfg):
    return cfg["config"]["layers"]


def _spec(cfg, class_name):
    return next(s for s in _layers(cfg) if s["class_name"] == class_name)


# ------------------------------------------------------------------------- byte level
@pytest.mark.parametrize("cut", [0, 1, 7, 8, 20, "header-1", "data+3", "end-1"])
def test_truncated(tmp_path, good_bytes, cut):
    n = int.from_bytes(good_bytes[:8], "little")
    at = {"header-1": 8 + n - 1, "data+3": 8 + n + 3, "end-1": len(good_bytes) - 1}.get(cut, cut)
    with pytest.raises(RnnkitFileError, match=r"x\.rnnkit: .*(truncated|header size)"):
        _load_bytes(tmp_path, good_bytes[:at])


@pytest.mark.parametrize("data,what", [
    (b"GIF89a" + bytes(100), "header size"),
    (b"hello, this is a text file\n" * 3, "header size"),
    (b"PK\x03\x04" + bytes(60), "ZIP archive"),
    (b"\x89HDF\r\n\x1a\n" + bytes(60), "HDF5"),
    (b"\x93NUMPY\x01\x00" + bytes(60), "NumPy"),
    (struct.pack("<Q", 4) + b"[1] ", "not a JSON object"),
    (struct.pack("<Q", 4) + b"\xff\xfe{}", "not valid JSON"),
])
def test_wrong_magic(tmp_path, data, what):
    with pytest.raises(RnnkitFileError, match=what):
        _load_bytes(tmp_path, data)


def test_not_a_file(tmp_path):
    with pytest.raises(RnnkitFileError, match="No model file"):
        rnnkit.load_model(tmp_path / "missing.rnnkit")
    with pytest.raises(RnnkitFileError, match="directory"):
        rnnkit.load_model(tmp_path)
    if os.path.exists("/dev/zero"):  # would never end if read blindly
        with pytest.raises(RnnkitFileError, match="not a regular file"):
            rnnkit.load_model("/dev/zero")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_payload_executes_nothing(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Payload(str(marker)), protocol=protocol)
    # positive control: unpickling this payload really runs code
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(str(control)), protocol=protocol))
    assert control.exists()
    p = tmp_path / "model.rnnkit"
    p.write_bytes(payload)
    with pytest.raises(RnnkitFileError, match="model.rnnkit: .*(pickle|header size|JSON)"):
        rnnkit.load_model(p)
    with pytest.raises(RnnkitFileError):
        rnnkit.Sequential([layers.Dense(1, input_shape=(2,))]).load_weights(p)
    assert not marker.exists()


def test_torch_checkpoint_executes_nothing(tmp_path):
    import torch
    marker = tmp_path / "PWNED"
    p = tmp_path / "model.rnnkit"
    torch.save({"w": torch.zeros(2), "evil": _Payload(str(marker))}, p)
    with pytest.raises(RnnkitFileError, match="ZIP archive.*never unpickles"):
        rnnkit.load_model(p)
    assert not marker.exists()


# ------------------------------------------------------------------------- header level
def test_header_entries_are_checked(tmp_path, good_bytes):
    header, body = _split(good_bytes)
    key = "weights/out/kernel"
    cases = {
        "huge shape": ({**header[key], "shape": [10**12, 10**6]}, "declares shape"),
        "negative dim": ({**header[key], "shape": [-1, 1]}, "invalid shape"),
        "float dim": ({**header[key], "shape": [2.0, 1]}, "invalid shape"),
        "bool dim": ({**header[key], "shape": [True, 1]}, "invalid shape"),
        "int32 dtype": ({**header[key], "dtype": "I32"}, "dtype 'I32'"),
        "object dtype": ({**header[key], "dtype": "O"}, "dtype 'O'"),
        "offsets past end": ({**header[key], "data_offsets": [0, 10**15]}, "outside"),
        "reversed offsets": ({**header[key], "data_offsets": [8, 0]}, "outside"),
        "overlap": ({**header[key], "data_offsets": [0, 8]}, "overlap|starts at"),
        "extra field": ({**header[key], "extra": 1}, "malformed"),
        "not a dict": ([1, 2], "malformed"),
    }
    for entry, msg in cases.values():
        bad = dict(header)
        bad[key] = entry
        with pytest.raises(RnnkitFileError, match=msg):
            _load_bytes(tmp_path, _raw(bad, body))
    with pytest.raises(RnnkitFileError, match="cover"):
        _load_bytes(tmp_path, _raw(header, body + b"\0\0\0\0"))
    meta = header["__metadata__"]
    for bad_meta, msg in [({**meta, "format": "other"}, "not an rnnkit file"),
                          ({**meta, "kind": 5}, "strings"), (None, "not an rnnkit file"),
                          ("rnnkit", "not an rnnkit file")]:
        with pytest.raises(RnnkitFileError, match=msg):
            _load_bytes(tmp_path, _raw({**header, "__metadata__": bad_meta}, body))
    text = json.dumps(header)
    with pytest.raises(RnnkitFileError, match="duplicate key"):
        _load_bytes(tmp_path, _raw(None, body, header_text=text[:-1] + ', "__metadata__": {}}'))
    with pytest.raises(RnnkitFileError, match="not valid JSON"):
        _load_bytes(tmp_path, _raw(None, body, header_text="[" * 100000 + "]" * 100000))
    with pytest.raises(RnnkitFileError, match="header size"):
        _load_bytes(tmp_path, struct.pack("<Q", 2**40) + b"{}")


# ------------------------------------------------------------------------- tampered JSON
def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("field,value,msg", [
    ("units", 10**12, r"'weights/lstm/kernel' has shape \(2, 8\), but layer 'lstm' as "
                      r"configured needs \(2, 4000000000000\)"),
    ("units", 3, "shape"),
    ("units", -3, "units must be a positive integer"),
    ("units", "2", "units must be a positive integer"),
    ("dtype", "object", "dtype must be a float"),
    ("dtype", "no-such-dtype", "cannot rebuild"),
    ("activation", "__import__", "Unknown activation"),
    ("kernel_initializer", {"class_name": "os.system", "config": {}}, "cannot rebuild"),
    ("bogus_argument", 1, "bogus_argument"),
])
def test_tampered_layer_config(tmp_path, good_bytes, field, value, msg):
    data = _meta_edit(good_bytes, "config", lambda c: _spec(c, "LSTM")["config"].update(
        {field: value}))
    peak = _peak_bytes(lambda: _expect(tmp_path, data, msg))
    assert peak < 20 * 2**20, f"loading a tampered file allocated {peak / 2**20:.0f} MiB"


def test_huge_input_shape_does_not_allocate(tmp_path, good_bytes):
    data = _meta_edit(good_bytes, "config", lambda c: _spec(c, "InputLayer")["config"].update(
        shape=[3, 2**40]))
    assert _peak_bytes(lambda: _expect(tmp_path, data, "as configured needs")) < 20 * 2**20


def _expect(tmp_path, data, msg, **kw):
    with pytest.raises(RnnkitFileError, match=msg):
        _load_bytes(tmp_path, data, **kw)


def test_huge_sizes_in_nested_and_embedding_layers_do_not_allocate(tmp_path):
    x = np.zeros((2, 3, 2), "float32")
    bi = rnnkit.Sequential([layers.Bidirectional(layers.GRU(2)), layers.Dense(1)])
    bi(x)
    bi.save(tmp_path / "bi.rnnkit")
    data = _meta_edit((tmp_path / "bi.rnnkit").read_bytes(), "config",
                      lambda c: _spec(c, "Bidirectional")["config"]["layer"]["config"].update(
                          units=10**9))
    assert _peak_bytes(lambda: _expect(tmp_path, data, "holds no such tensor")) < 20 * 2**20
    emb = rnnkit.Sequential([layers.Embedding(10, 2), layers.GRU(2)])
    emb(np.zeros((2, 3), int))
    emb.save(tmp_path / "e.rnnkit")
    data = _meta_edit((tmp_path / "e.rnnkit").read_bytes(), "config",
                      lambda c: _spec(c, "Embedding")["config"].update(input_dim=10**12))
    assert _peak_bytes(lambda: _expect(tmp_path, data, "shape")) < 20 * 2**20


def test_unknown_layer_class_and_malformed_configs(tmp_path, good_bytes):
    data = _meta_edit(good_bytes, "config",
                      lambda c: _spec(c, "LSTM").update(class_name="subprocess.Popen"))
    _expect(tmp_path, data, "'subprocess.Popen', which is neither built into rnnkit nor "
                            "registered.*cannot supply code")
    for edit, msg in [
        (lambda c: c.update(class_name="Functional"),
         r"'config.class_name': expected one of \['Model', 'Sequential'\], got 'Functional'"),
        (lambda c: c["config"].update(layers=[]), "layers': expected a list of 1 to 10000 items, got 0"),
        (lambda c: c["config"].update(layers="LSTM"), "layers': expected a list, got a string"),
        (lambda c: _layers(c).append(_spec(c, "Dense")), "two layers are named 'out'"),
        (lambda c: _layers(c).pop(), "unexpected weight tensors"),
        (lambda c: _spec(c, "LSTM").pop("class_name"), "layers\\[1\\]': missing entry 'class_name'"),
        (lambda c: _spec(c, "Dense")["config"].update(units=True), "units must be a positive"),
        (lambda c: c.update(build_input_shape=[None, -3, 2]), "build_input_shape\\[1\\]': expected an integer in"),
        (lambda c: c["config"].update(name=["x"]), "config.config.name': expected a string"),
        (lambda c: _spec(c, "LSTM")["config"].update(dropout=float("nan")), "non-finite"),
        (lambda c: _layers(c).extend([{"class_name": "Dropout", "config": {"rate": 0.1}}]
                                     * 200_000), "expected a list of 1 to 10000 items, got 20000[0-9]"),
    ]:
        _expect(tmp_path, _meta_edit(good_bytes, "config", edit), msg)
    header, body = _split(good_bytes)
    header["__metadata__"]["config"] = "{not json"
    _expect(tmp_path, _raw(header, body), "'config' record is not valid JSON")
    del header["__metadata__"]["config"]
    _expect(tmp_path, _raw(header, body), "missing 'config'")


def _retensor(good_bytes, tmp_path, update=None, drop=()):
    p = tmp_path / "src.rnnkit"
    p.write_bytes(good_bytes)
    with safe_open(str(p), "np") as f:
        meta = dict(f.metadata())
    t = load_file(str(p))
    t.update(update or {})
    for k in drop:
        t.pop(k)
    return save(t, metadata=meta)


def test_tensor_level_tampering(tmp_path, good_bytes):
    t = load_file(_write(tmp_path, good_bytes))
    k = "weights/out/kernel"
    _expect(tmp_path, _retensor(good_bytes, tmp_path, drop=[k]),
            "no tensor 'weights/out/kernel'")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {"weights/out/extra": t[k]}),
            "unexpected weight tensors")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {k: t[k].astype(np.int64)}),
            "dtype int64; weights must be float")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {k: np.zeros((3, 1), "float32")}),
            "has shape")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {k: np.full((2, 1), 1e300)}),
            "NaN/Inf")  # float64 overflowing float32
    it = "optimizer/iterations"
    for bad in (np.array([1.5]), np.array([-1], np.int64), np.array([1, 2], np.int64)):
        _expect(tmp_path, _retensor(good_bytes, tmp_path, {it: bad}), "iterations")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {"optimizer/m/0": np.zeros((5, 5))}),
            "optimizer")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {"optimizer/evil/0": np.zeros(2)}),
            "optimizer state tensors")
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {"states/x/0": np.zeros((1, 2))}),
            "unexpected state")


def _write(tmp_path, data):
    p = tmp_path / "w.rnnkit"
    p.write_bytes(data)
    return str(p)


def test_non_finite_weights_error_by_default_warning_when_allowed(tmp_path, good_bytes):
    t = load_file(_write(tmp_path, good_bytes))
    k = "weights/out/kernel"
    w = t[k].copy()
    w[0, 0] = np.nan
    data = _retensor(good_bytes, tmp_path, {k: w})
    _expect(tmp_path, data, r"'weights/out/kernel' contains 1 NaN/Inf.*allow_nonfinite=True")
    with pytest.warns(RuntimeWarning, match="NaN/Inf"):
        m = _load_bytes(tmp_path, data, allow_nonfinite=True)
    assert np.isnan(m.layers[1].params["kernel"][0, 0])
    with pytest.raises(RnnkitFileError, match="NaN/Inf"):
        rnnkit.Sequential([layers.LSTM(2, input_shape=(3, 2)), layers.Dense(1)]).load_weights(
            _write(tmp_path, data))
    m_slot = t["optimizer/v/0"].copy()
    m_slot.flat[0] = np.inf
    _expect(tmp_path, _retensor(good_bytes, tmp_path, {"optimizer/v/0": m_slot}),
            "optimizer slot 'v/0' contains 1 NaN/Inf")


def test_tampered_compile_and_training_records(tmp_path, good_bytes):
    for edit, msg in [
        (lambda c: c.update(loss="__builtins__"), "Unknown loss"),
        (lambda c: c.update(optimizer={"class_name": "Adam",
                                       "config": {"learning_rate": -1}}), "learning_rate"),
        (lambda c: c.update(optimizer={"class_name": "os.system"}), "Unknown optimizer"),
        (lambda c: c.update(metrics="mae"),
         "'compile.metrics': expected a list of metric names or one such list per output, got a "
         "string"),
        (lambda c: c.pop("loss"), "'compile': missing entry 'loss'"),
    ]:
        _expect(tmp_path, _meta_edit(good_bytes, "compile", edit), msg)
    for edit, msg, kw in [
        (lambda t: t.update(epochs_done=-1), "epochs_done", {}),
        (lambda t: t.update(epochs_done=1.5), "epochs_done", {}),
        (lambda t: t.update(layer_rng_states=[]), "layer_rng_states", {}),
        (lambda t: t["layer_rng_states"][next(iter(t["layer_rng_states"]))].update(
            bit_generator="seed"), "bit_generator", {}),
        (lambda t: t["rng_state"].update(bit_generator="seed"), "bit_generator",
         {"restore_random_state": True}),
        (lambda t: t["rng_state"]["state"].update(state="x"), "rng_state.state.state': expected an integer",
         {"restore_random_state": True}),
        (lambda t: t.pop("rng_state"), "no random state", {"restore_random_state": True}),
    ]:
        _expect(tmp_path, _meta_edit(good_bytes, "training", edit), msg, **kw)


# ------------------------------------------------------------------------- property based
def _check_loads_or_file_error(tmp_path, data):
    p = tmp_path / "fuzz.rnnkit"
    p.write_bytes(data)
    try:
        m = rnnkit.load_model(p)
    except RnnkitFileError:
        return
    assert m.built and m.count_params() < 10**6


FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(data=st.data())
def test_fuzz_bytes(tmp_path, good_bytes, rich_bytes, data):
    buf = bytearray(data.draw(st.sampled_from([good_bytes, rich_bytes])))
    n_edits = data.draw(st.integers(1, 8))
    for _ in range(n_edits):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[:data.draw(st.integers(0, len(buf)))]
    _check_loads_or_file_error(tmp_path, bytes(buf))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.sampled_from([0, 1, -1, 2, 10**12, 2**63, 2**31, 3])
    | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["LSTM", "Dense", "F32", "I64", "PCG64", "zeros", "float64", "adam"]),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6)


@FUZZ
@given(data=st.data())
def test_fuzz_header_fields(tmp_path, good_bytes, rich_bytes, data):
    header, body = _split(data.draw(st.sampled_from([good_bytes, rich_bytes])))
    meta = header["__metadata__"]
    doc = {"tensors": {k: v for k, v in header.items() if k != "__metadata__"},
           "meta": {k: (json.loads(v) if k in ("config", "compile", "training",
                                                  "preprocessing", "weight_layers") else v)
                    for k, v in meta.items()}}
    for _ in range(data.draw(st.integers(1, 3))):
        # pick a section first (the tensor table, the plain metadata, or one JSON record) so
        # that the config, compile and training records get as many mutations as the table
        section = data.draw(st.sampled_from([("tensors",), ("meta",)] + [
            ("meta", k) for k in ("config", "compile", "training", "preprocessing",
                                  "weight_layers") if k in doc["meta"]]))
        paths = [p for p in leaves(doc) if len(p) >= 2 and p[:len(section)] == section
                 and (len(section) == 2 or p[1] not in ("config", "compile", "training"))]
        assume(paths)
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON_VALUES)
    new_meta = {k: (json.dumps(v) if k in ("config", "compile", "training", "preprocessing",
                                           "weight_layers") else v)
                for k, v in doc["meta"].items()}
    out = _raw({**doc["tensors"], "__metadata__": new_meta}, body)
    _check_loads_or_file_error(tmp_path, out)
