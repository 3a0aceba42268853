"""ONNX export: ONNX Runtime must reproduce model.predict within 1e-5."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rnnkit
from rnnkit import layers as L
from rnnkit.interop import export_onnx

B, T, F = 4, 7, 3
TOL = 1e-5


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape) for w in model.get_weights()])
    return model


def data(masked=False, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(B, T, F)) * 3).astype(np.float32)
    if masked:  # right padding with Masking's value 0
        lengths = np.array([T, 5, 2, 1])
        x[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    return x


def check(model, x, tmp_path, opset=None, what=""):
    path = tmp_path / "model.onnx"
    proto = model.export_onnx(path, opset=opset)
    got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    want = model.predict(x)
    assert got.shape == want.shape, f"{what}: rnnkit vs reference shapes {want.shape} vs {got.shape}"
    err = np.max(np.abs(got - want))
    assert err <= TOL, f"{what}: rnnkit vs reference (onnxruntime) max diff {err:.3g}\n{want}\n{got}"
    return proto


RECURRENT = [
    ("simple_tanh", lambda **k: L.SimpleRNN(5, **k)),
    ("simple_relu", lambda **k: L.SimpleRNN(5, activation="relu", **k)),
    ("simple_linear", lambda **k: L.SimpleRNN(5, activation="linear", **k)),
    ("lstm", lambda **k: L.LSTM(5, **k)),
    ("lstm_hard_sigmoid", lambda **k: L.LSTM(5, recurrent_activation="hard_sigmoid", **k)),
    ("gru_reset_after", lambda **k: L.GRU(5, **k)),
    ("gru_reset_before", lambda **k: L.GRU(5, reset_after=False, **k)),
]


@pytest.mark.parametrize("name,make", RECURRENT, ids=[r[0] for r in RECURRENT])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "go_backwards"])
def test_recurrent_layers(name, make, masked, go_backwards, tmp_path):
    model = randomize(rnnkit.Sequential(
        [L.Input((T, F))] + ([L.Masking()] if masked else []) + [
            make(return_sequences=True, go_backwards=go_backwards), make(),
            L.Dense(2, activation="softmax")]))
    what = f"{name} masked={masked} go_backwards={go_backwards}"
    if masked and go_backwards:  # the second layer would see a left-padded (reversed) mask
        with pytest.raises(ValueError, match="time-reversed mask"):
            export_onnx(model, tmp_path / "m.onnx")
        return
    proto = check(model, data(masked), tmp_path, what=what)
    ops = [n.op_type for n in proto.graph.node]
    assert sum(op in ("RNN", "LSTM", "GRU") for op in ops) == 2
    assert not {"Loop", "Scan"} & set(ops)


@pytest.mark.parametrize("name,make", RECURRENT, ids=[r[0] for r in RECURRENT])
def test_go_backwards_sequence_output_masked(name, make, tmp_path):
    model = randomize(rnnkit.Sequential([
        L.Input((T, F)), L.Masking(), make(return_sequences=True, go_backwards=True)]))
    check(model, data(True), tmp_path, what=f"{name} go_backwards masked")


@pytest.mark.parametrize("merge", ["concat", "sum", "ave", "mul"])
@pytest.mark.parametrize("kind", [L.SimpleRNN, L.LSTM, L.GRU])
def test_bidirectional(kind, merge, tmp_path):
    model = randomize(rnnkit.Sequential([
        L.Input((T, F)), L.Masking(),
        L.Bidirectional(kind(4, return_sequences=True), merge_mode=merge),
        L.Bidirectional(kind(3), merge_mode=merge),
        L.Dense(2)]))
    proto = check(model, data(True), tmp_path, what=f"bidirectional {kind.__name__} {merge}")
    dirs = [a.s for n in proto.graph.node for a in n.attribute if a.name == "direction"]
    assert dirs == [b"bidirectional", b"bidirectional"]


def test_embedding_mask_zero_and_time_distributed(tmp_path):
    model = randomize(rnnkit.Sequential([
        L.Input((T,)), L.Embedding(20, 4, mask_zero=True),
        L.GRU(6, return_sequences=True), L.TimeDistributed(L.Dense(3, activation="tanh")),
        L.Dropout(0.5), L.Dense(2, activation="sigmoid")]))
    ids = np.random.default_rng(1).integers(1, 20, size=(B, T))
    ids[1, 4:] = 0
    ids[2, 1:] = 0
    check(model, ids.astype(np.int64), tmp_path, what="embedding mask_zero")


@pytest.mark.parametrize("act", ["relu", "tanh", "elu", "softplus", "softsign", "hard_sigmoid",
                                 "swish", "linear", "softmax"])
def test_dense_activations_and_flatten(act, tmp_path):
    model = randomize(rnnkit.Sequential([
        L.Input((T, F)), L.LSTM(4, return_sequences=True), L.Flatten(),
        L.Dense(5, activation=act), L.Activation("sigmoid")]))
    check(model, data(), tmp_path, what=f"Dense {act}")


@pytest.mark.parametrize("opset", [14, 17, 18, 20])
def test_opsets(opset, tmp_path):
    model = randomize(rnnkit.Sequential([L.Input((T, F)), L.Masking(), L.LSTM(4), L.Dense(1)]))
    proto = check(model, data(True), tmp_path, opset=opset, what=f"opset {opset}")
    assert proto.opset_import[0].version == opset
    onnx.checker.check_model(onnx.load(str(tmp_path / "model.onnx")))


def test_variable_batch_and_length(tmp_path):
    model = randomize(rnnkit.Sequential([L.Input((None, F)), L.GRU(4), L.Dense(1)]))
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    sess = ort.InferenceSession(str(path))
    for shape in [(1, 2, F), (6, 11, F)]:
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        got = sess.run(None, {"input": x})[0]
        assert np.max(np.abs(got - model.predict(x))) <= TOL, "rnnkit vs reference (ORT)"


def test_low_opset_is_rejected(tmp_path):
    model = randomize(rnnkit.Sequential([L.Input((T, F)), L.LSTM(4)]))
    with pytest.raises(ValueError, match="opset must be an integer >= 14"):
        export_onnx(model, tmp_path / "m.onnx", opset=13)


def test_activation_onnx_lacks_is_rejected(tmp_path):
    model = rnnkit.Sequential([L.Input((T, F)), L.SimpleRNN(4, activation="swish")])
    with pytest.raises(ValueError, match="activation 'swish', which ONNX's RNN operator lacks"):
        export_onnx(model, tmp_path / "m.onnx")


def test_stateful_is_rejected(tmp_path):
    model = rnnkit.Sequential([L.Input((T, F)), L.LSTM(4, stateful=True)])
    with pytest.raises(ValueError, match="stateful"):
        export_onnx(model, tmp_path / "m.onnx")


def test_reversed_mask_feeding_a_recurrent_layer_is_rejected(tmp_path):
    model = rnnkit.Sequential([L.Input((T, F)), L.Masking(),
                               L.LSTM(4, go_backwards=True, return_sequences=True), L.LSTM(3)])
    with pytest.raises(ValueError, match="time-reversed mask"):
        export_onnx(model, tmp_path / "m.onnx")


def test_unknown_layer_is_rejected(tmp_path):
    @L.register_layer
    class Twice(L.Layer):
        def forward(self, x, training=False, mask=None):
            return 2 * np.asarray(x)

    model = rnnkit.Sequential([L.Input((T, F)), Twice(), L.LSTM(4)])
    with pytest.raises(ValueError, match="layer 'twice.*' \\(Twice\\) is not supported"):
        export_onnx(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequence_lens_input_matches_ragged_predict(bidirectional, tmp_path):
    """A model without Masking, fed a ragged list in rnnkit and sequence_lens in ONNX."""
    rec = L.LSTM(4, return_sequences=True)
    model = randomize(rnnkit.Sequential([
        L.Input((None, F)), L.Bidirectional(rec) if bidirectional else rec, L.GRU(3),
        L.Dense(2)]))
    x = data()
    lengths = np.array([T, 5, 2, 1], np.int32)
    ragged = [x[b, :n] for b, n in enumerate(lengths)]
    export_onnx(model, tmp_path / "m.onnx", sequence_lens_input=True)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = sess.run(None, {"input": x, "sequence_lens": lengths})[0]
    want = model.predict(ragged)
    assert np.max(np.abs(got - want)) <= TOL, f"rnnkit vs reference (ORT)\n{want}\n{got}"
    assert np.max(np.abs(want - model.predict(x))) > 1e-3  # the lengths do matter
