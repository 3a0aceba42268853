"""Functional models (and the new layers) through to_keras and export_onnx: the Keras model
loaded back from the .keras file and the ONNX Runtime session give rnnkit's predictions."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

import rnnkit  # noqa: E402
from rnnkit import layers as L  # noqa: E402
from rnnkit.interop import to_keras  # noqa: E402

RNG = np.random.default_rng(5)


def _randomise(model):
    """Non-zero random weights everywhere (biases, BN statistics) so parity means something."""
    for layer in model.layers:
        ws = [RNG.standard_normal(w.shape).astype(np.float32) * 0.4 for w in layer.get_weights()]
        for n, w in zip(layer.params, ws):
            if n == "moving_variance":
                w[...] = np.abs(w) + 0.5
        if ws:
            layer.set_weights(ws)


def lstm_fcn(T=20, F=3):
    x = rnnkit.Input((T, F))
    h = L.LSTM(6)(L.Masking()(x))
    c = L.Conv1D(8, 5, padding="same", activation="relu")(x)
    c = L.BatchNormalization()(c)
    c = L.Conv1D(8, 3, padding="causal", dilation_rate=2)(c)
    c = L.MaxPooling1D(2)(c)
    c = L.Conv1D(4, 3, strides=2, padding="same", groups=2)(c)
    c = L.LayerNormalization()(c)
    p = L.GlobalAveragePooling1D()(c)
    q = L.GlobalMaxPooling1D()(L.AveragePooling1D(3, strides=1, padding="valid")(c))
    y = L.Dense(3, activation="softmax")(L.Concatenate()([h, p, q]))
    model = rnnkit.Model(x, y)
    _randomise(model)
    return model


def two_in_two_out():
    a, b = rnnkit.Input((6, 4), name="seq"), rnnkit.Input((5,), name="meta")
    shared = L.Dense(4, activation="tanh")
    h = L.GRU(5)(a)
    m = shared(b)
    r = L.Reshape((2, 2))(shared(L.Dense(5)(h)))
    s = L.Add()([L.Dense(4)(h), m])
    out1 = L.Dense(2, name="first")(L.Concatenate()([s, L.Subtract()([m, s])]))
    out2 = L.Permute((2, 1))(r)
    model = rnnkit.Model([a, b], [out1, out2])
    _randomise(model)
    return model


def test_lstm_fcn_to_keras(tmp_path):
    import keras
    model = lstm_fcn()
    x = RNG.standard_normal((4, 20, 3)).astype(np.float32)
    x[0, 15:] = 0.0                                   # padding the Masking layer hides
    path = tmp_path / "m.keras"
    to_keras(model, path)
    back = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back(x)), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_two_inputs_two_outputs_and_a_shared_layer_to_keras(tmp_path):
    import keras
    model = two_in_two_out()
    xs = [RNG.standard_normal((3, 6, 4)).astype(np.float32),
          RNG.standard_normal((3, 5)).astype(np.float32)]
    to_keras(model, tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras")
    for k, r in zip(back(xs), model.predict(xs, verbose=0)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(k), r, rtol=1e-4, atol=1e-5)


def test_attention_model_to_keras(tmp_path):
    import keras
    q, v = rnnkit.Input((4, 6)), rnnkit.Input((5, 6))
    a = L.Attention(use_scale=True)([q, v])
    m = L.MultiHeadAttention(2, 3)(q, v)
    model = rnnkit.Model([q, v], L.Concatenate()([a, m, L.AdditiveAttention()([q, v])]))
    _randomise(model)
    xs = [RNG.standard_normal((2, 4, 6)).astype(np.float32),
          RNG.standard_normal((2, 5, 6)).astype(np.float32)]
    to_keras(model, tmp_path / "a.keras")
    back = keras.saving.load_model(tmp_path / "a.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(back(xs)), model.predict(xs, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_lstm_fcn_to_onnx(tmp_path):
    import onnxruntime as ort
    model = lstm_fcn()
    x = RNG.standard_normal((4, 20, 3)).astype(np.float32)
    x[1, 12:] = 0.0
    model.export_onnx(tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_two_inputs_two_outputs_to_onnx(tmp_path):
    import onnxruntime as ort
    model = two_in_two_out()
    xs = [RNG.standard_normal((3, 6, 4)).astype(np.float32),
          RNG.standard_normal((3, 5)).astype(np.float32)]
    model.export_onnx(tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"seq": xs[0], "meta": xs[1]})
    for a, b in zip(got, model.predict(xs, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sequential_with_conv_and_padding_layers_to_onnx(tmp_path):
    import onnxruntime as ort
    model = rnnkit.Sequential([L.Input((9, 2)), L.ZeroPadding1D((1, 2)), L.Conv1D(4, 3),
                               L.Cropping1D((1, 1)), L.Flatten(), L.RepeatVector(2),
                               L.LSTM(3)])
    _randomise(model)
    x = RNG.standard_normal((2, 9, 2)).astype(np.float32)
    model.export_onnx(tmp_path / "s.onnx")
    got = ort.InferenceSession(str(tmp_path / "s.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_unsupported_layers_are_named_by_export_onnx(tmp_path):
    q, v = rnnkit.Input((4, 6)), rnnkit.Input((5, 6))
    model = rnnkit.Model([q, v], L.Attention(name="att")([q, v]))
    with pytest.raises(ValueError, match="layer 'att' \\(Attention\\) is not supported"):
        model.export_onnx(tmp_path / "x.onnx")
    enc = rnnkit.Input((5, 2))
    _, h = L.GRU(3, return_state=True, name="enc")(enc)
    with pytest.raises(ValueError, match="'enc' \\(GRU\\) is called with initial states or "
                                         "returns states"):
        rnnkit.Model(enc, h).export_onnx(tmp_path / "y.onnx")
