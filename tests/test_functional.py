"""The functional API: rnnkit.Input, layers called on symbolic tensors, rnnkit.Model with
several inputs/outputs, shared layers, gradients through the graph, errors, saving."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad

import rnnkit
from rnnkit import layers as L

RNG = np.random.default_rng(1)
F64 = dict(dtype="float64")


def _graph_gradcheck(model, xs, tol=1e-6):
    """dL/d(inputs) and dL/d(every weight) of L = sum_i sum(y_i * R_i), against central
    differences, through the whole graph (fan-out, shared layers, several outputs)."""
    xin = xs if len(xs) > 1 else xs[0]
    ys, _ = model.forward(xin, training=True)
    ys = ys if isinstance(ys, list) else [ys]
    Rs = [RNG.standard_normal(y.shape) for y in ys]

    def loss():
        out, _ = model.forward(xin, training=True)
        out = out if isinstance(out, list) else [out]
        return float(sum((o * r).sum() for o, r in zip(out, Rs)))

    loss()
    dx = model.backward(Rs if len(Rs) > 1 else Rs[0])
    dxs = dx if isinstance(dx, list) else [dx]
    grads = {(layer.name, n): g.copy() for layer in model.layers for n, g in layer.grads.items()}
    for i, x in enumerate(xs):
        assert_close_grad(dxs[i], numerical_grad(loss, x), f"dx[{i}]", tol)
    for layer in model.layers:
        for n in layer.trainable_param_names():
            assert_close_grad(grads[(layer.name, n)], numerical_grad(loss, layer.params[n]),
                              f"{layer.name}/{n}", tol)


def test_issue_example_lstm_on_input_is_symbolic():
    x = rnnkit.Input(shape=(12, 5))
    h = L.LSTM(16)(x)
    assert h.shape == (None, 16)
    assert isinstance(h, L.SymbolicTensor)
    out, hs, cs = L.LSTM(4, return_sequences=True, return_state=True)(x)
    assert out.shape == (None, 12, 4) and hs.shape == cs.shape == (None, 4)


def test_gradients_through_a_graph_with_fan_out_shared_layer_and_two_outputs():
    a = rnnkit.Input((6, 3))
    b = rnnkit.Input((4,))
    shared = L.Dense(4, activation="tanh", bias_initializer="random_normal", **F64)
    h = L.LSTM(5, return_sequences=True, bias_initializer="random_normal", **F64)(a)
    c = L.Conv1D(4, 3, padding="causal", **F64)(h)
    p = L.GlobalAveragePooling1D(**F64)(c)
    q = L.GlobalMaxPooling1D(**F64)(h)                  # h read twice (fan-out)
    s1 = shared(p)
    s2 = shared(b)                                      # the same Dense called twice
    m = L.Concatenate(**F64)([s1, q, s2])
    y1 = L.Dense(3, activation="softmax", **F64)(m)
    y2 = L.Add(**F64)([s1, s2])
    model = rnnkit.Model([a, b], [y1, y2])
    assert model.get_layer(shared.name) is shared
    _graph_gradcheck(model, [RNG.standard_normal((3, 6, 3)), RNG.standard_normal((3, 4))])


def test_gradients_through_encoder_decoder_with_initial_state():
    enc_in, dec_in = rnnkit.Input((5, 3)), rnnkit.Input((4, 2))
    _, h, c = L.LSTM(4, return_state=True, **F64)(enc_in)
    seq = L.LSTM(4, return_sequences=True, **F64)(dec_in, initial_state=[h, c])
    y = L.Dense(2, **F64)(L.BatchNormalization(**F64)(seq))
    model = rnnkit.Model([enc_in, dec_in], y)
    _graph_gradcheck(model, [RNG.standard_normal((3, 5, 3)), RNG.standard_normal((3, 4, 2))])


def test_functional_equals_sequential_and_trains_the_same():
    rnnkit.utils.set_random_seed(3)
    seq = rnnkit.Sequential([L.Input((7, 3)), L.GRU(6), L.Dense(2, activation="softmax")])
    x = rnnkit.Input((7, 3))
    model = rnnkit.Model(x, L.Dense(2, activation="softmax")(L.GRU(6)(x)))
    model.set_weights(seq.get_weights())
    X = RNG.standard_normal((20, 7, 3)).astype("float32")
    Y = np.eye(2)[RNG.integers(0, 2, 20)]
    np.testing.assert_allclose(model.predict(X, verbose=0), seq.predict(X, verbose=0), rtol=1e-6)
    for m in (seq, model):
        m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        m.fit(X, Y, epochs=2, batch_size=5, shuffle=False, verbose=0)
    for u, v in zip(model.get_weights(), seq.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_masks_flow_through_the_graph():
    x = rnnkit.Input((None,), dtype="int32")
    e = L.Embedding(10, 4, mask_zero=True)(x)
    h = L.LSTM(3, return_sequences=True)(e)
    y = L.GlobalAveragePooling1D()(h)
    model = rnnkit.Model(x, y)
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    short = model.predict(ids[:1, :3], verbose=0)
    np.testing.assert_allclose(model.predict(ids, verbose=0)[:1], short, rtol=1e-5, atol=1e-6)


def test_several_outputs_losses_metrics_and_loss_weights():
    x = rnnkit.Input((5, 2))
    h = L.LSTM(8)(x)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    reg = L.Dense(1, name="reg")(h)
    model = rnnkit.Model(x, {"cls": cls, "reg": reg})
    model.compile("adam", loss={"cls": "categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"]}, loss_weights={"cls": 1.0, "reg": 0.25})
    X = RNG.standard_normal((16, 5, 2)).astype("float32")
    Yc, Yr = np.eye(3)[RNG.integers(0, 3, 16)], X.sum(axis=(1, 2))[:, None]
    res = model.evaluate(X, {"cls": Yc, "reg": Yr}, return_dict=True, verbose=0)
    assert list(res) == ["loss", "cls_loss", "reg_loss", "cls_accuracy"]
    pc, pr = model.predict(X, verbose=0)
    cce = -np.mean(np.sum(Yc * np.log(np.clip(pc, 1e-7, 1)), axis=1))
    mse = np.mean((pr - Yr) ** 2)
    assert res["loss"] == pytest.approx(cce + 0.25 * mse, rel=1e-4)
    assert res["cls_loss"] == pytest.approx(cce, rel=1e-4)
    assert res["reg_loss"] == pytest.approx(mse, rel=1e-4)
    hist = model.fit(X, [Yc, Yr], epochs=3, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert len(hist.history["reg_loss"]) == 3


def test_save_and_load_a_functional_model(tmp_path):
    a, b = rnnkit.Input((9, 3), name="series"), rnnkit.Input((2,), name="static")
    c = L.Conv1D(5, 3, padding="same", activation="relu")(a)
    c = L.BatchNormalization()(c)
    c = L.GlobalAveragePooling1D()(c)
    h = L.LSTM(5)(a)
    shared = L.Dense(3)
    y = L.Dense(2, activation="softmax")(L.Concatenate()([shared(h), shared(c), b]))
    model = rnnkit.Model({"series": a, "static": b}, y)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    X = [RNG.standard_normal((12, 9, 3)), RNG.standard_normal((12, 2))]
    Y = np.eye(2)[RNG.integers(0, 2, 12)]
    model.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "f.rnnkit"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert isinstance(loaded, rnnkit.Model) and loaded.input_names == ["series", "static"]
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    assert loaded.evaluate(X, Y, verbose=0) == model.evaluate(X, Y, verbose=0)
    # training resumes with the same optimizer state
    loaded.fit(X, Y, epochs=1, shuffle=False, verbose=0)
    model.fit(X, Y, epochs=1, shuffle=False, verbose=0)
    for u, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)


def test_a_shared_layer_called_on_another_width_is_refused():
    x, z = rnnkit.Input((4,)), rnnkit.Input((6,))
    d = L.Dense(3, name="dd")
    d(x)
    with pytest.raises(ValueError, match=r"'dd' \(Dense\) was built for inputs of shape "
                                         r"\(None, 4\) and cannot take shape \(None, 6\)"):
        d(z)


def test_summary_shows_connections():
    x = rnnkit.Input((4, 2), name="inp")
    d = L.Dense(3, name="shared")
    y = L.Add(name="sum")([d(x), d(x)])
    lines = []
    rnnkit.Model(x, y).summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "shared[0][0], shared[1][0]" in text


def test_disconnected_unused_and_bad_inputs_are_clear_errors():
    a, b = rnnkit.Input((3,), name="a_in"), rnnkit.Input((3,), name="b_in")
    y = L.Dense(2, name="head")(L.Add()([a, b]))
    with pytest.raises(ValueError, match="Graph disconnected.*reads input 'b_in'"):
        rnnkit.Model(a, y)
    c = rnnkit.Input((3,), name="c_in")
    with pytest.raises(ValueError, match=r"model input\(s\) \['c_in'\] are not used"):
        rnnkit.Model([a, b, c], y)
    with pytest.raises(ValueError, match="Layer 'lstm_bad' .*cannot take input.*\\(None, 3\\)"):
        L.LSTM(3, name="lstm_bad")(a)
    with pytest.raises(TypeError, match="needs inputs and outputs"):
        rnnkit.Model()
    model = rnnkit.Model([a, b], y)
    with pytest.raises(ValueError, match="has 2 inputs"):
        model.predict(np.zeros((2, 3)), verbose=0)
    with pytest.raises(ValueError, match="Input 'a_in' .* expects shape \\(None, 3\\), got \\(2, 4\\)"):
        model.predict([np.zeros((2, 4)), np.zeros((2, 3))], verbose=0)


def test_a_cyclic_or_out_of_order_config_is_refused():
    x = rnnkit.Input((3,), name="i")
    model = rnnkit.Model(x, L.Dense(2, name="d2")(L.Dense(3, name="d1")(x)))
    cfg = model.get_config()
    d1 = next(s for s in cfg["layers"] if s["name"] == "d1")
    d1["inbound_nodes"][0]["inputs"] = [["d2", 0, 0]]           # d1 <- d2 <- d1
    with pytest.raises(ValueError, match="not computed before it.*cycle"):
        rnnkit.Model.from_config(cfg)


def test_every_new_layer_round_trips_through_the_file_format(tmp_path):
    q, v = rnnkit.Input((8, 4), name="q"), rnnkit.Input((6, 4), name="v")
    a = L.Attention(use_scale=True, score_mode="concat")([q, v])
    b = L.AdditiveAttention()([q, v])
    m, w = L.MultiHeadAttention(2, 3, value_dim=2, output_shape=4)(
        q, v, return_attention_scores=True)
    s = L.LayerNormalization()(L.Average()([a, b, m]))
    s = L.Maximum()([s, L.Minimum()([a, L.Multiply()([b, m])])])
    c = L.Conv1D(6, 3, padding="causal", dilation_rate=2, groups=2)(s)
    c = L.AveragePooling1D(2, padding="same")(L.MaxPooling1D(2, strides=1)(c))
    c = L.Cropping1D((1, 0))(L.ZeroPadding1D(1)(L.UpSampling1D(2)(c)))
    g = L.GlobalMaxPooling1D()(c)
    r = L.Reshape((-1,))(L.Permute((2, 1))(L.RepeatVector(3)(g)))
    d = L.Dot(axes=1, normalize=True)([r, r])
    y = L.Subtract()([L.Dense(1)(L.Flatten()(w)), d])
    model = rnnkit.Model([q, v], [y, L.GlobalAveragePooling1D(keepdims=True)(s)])
    model.compile("adam", ["mse", "mae"])
    xs = [RNG.standard_normal((3, 8, 4)), RNG.standard_normal((3, 6, 4))]
    model.fit(xs, [np.zeros((3, 1)), np.zeros((3, 1, 4))], epochs=1, verbose=0)
    model.save(tmp_path / "all.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "all.rnnkit")
    assert [type(la).__name__ for la in loaded.layers] == [type(la).__name__ for la in model.layers]
    for u, v_ in zip(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0)):
        np.testing.assert_array_equal(u, v_)
    for layer in model.layers:
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("module", ["rnnkit.models.functional", "rnnkit.layers.conv",
                                    "rnnkit.layers.attention", "rnnkit.layers.core"])
def test_docstring_examples(module):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(module),
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_a_model_called_on_symbolic_tensors_is_a_clear_error():
    x = rnnkit.Input((3,))
    model = rnnkit.Model(x, L.Dense(2)(x))
    with pytest.raises(TypeError, match="nesting models is not supported"):
        model(rnnkit.Input((3,)))


def test_several_inputs_with_validation_split_generators_and_single_batches():
    a, b = rnnkit.Input((4, 2)), rnnkit.Input((3,))
    y = L.Dense(1)(L.Concatenate()([L.GRU(3)(a), b]))
    model = rnnkit.Model([a, b], y)
    model.compile("adam", "mse")
    xa, xb = RNG.standard_normal((20, 4, 2)), RNG.standard_normal((20, 3))
    t = xb.sum(axis=1, keepdims=True)
    hist = model.fit([xa, xb], t, validation_split=0.25, epochs=2, batch_size=4, verbose=0)
    assert len(hist.history["val_loss"]) == 2
    def batches():  # a generator: a list would be read as the list of inputs
        return (([xa[i:i + 5], xb[i:i + 5]], t[i:i + 5]) for i in range(0, 20, 5))
    model.fit(batches(), epochs=1, verbose=0)
    assert np.isfinite(model.train_on_batch([xa, xb], t))
    assert model.evaluate(batches(), verbose=0) == pytest.approx(
        model.evaluate([xa, xb], t, batch_size=5, verbose=0))
    np.testing.assert_allclose(model.predict_on_batch([xa, xb]), model.predict([xa, xb], verbose=0),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit([xa, xb[:5]], t, verbose=0)


def test_truncated_bptt_runs_on_a_functional_model_and_matches_whole_sequence_inference():
    x = rnnkit.Input((None, 2))              # windows are shorter than the sequences
    h = L.LSTM(4, return_sequences=True)(x)
    y = L.Dense(1)(L.Add()([h, L.GRU(4, return_sequences=True)(x)]))
    model = rnnkit.Model(x, y)
    model.compile("adam", "mse")
    X, Y = RNG.standard_normal((6, 12, 2)), RNG.standard_normal((6, 12, 1))
    model.fit(X, Y, epochs=1, tbptt=4, verbose=0)
    np.testing.assert_allclose(model.predict(X, tbptt=5, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)
    two = rnnkit.Model(x, [y, L.Dense(1)(h)])
    two.compile("adam", "mse")
    with pytest.raises(ValueError, match="tbptt needs a model with one input and one output"):
        two.fit(X, [Y, Y], tbptt=4, verbose=0)


def test_a_graph_deeper_than_the_recursion_limit_is_ordered():
    x = rnnkit.Input((3,))
    h = x
    for _ in range(1500):
        h = L.Activation("linear")(h)
    model = rnnkit.Model(x, L.Add()([h, x]))
    np.testing.assert_allclose(model.predict(np.ones((2, 3)), verbose=0), 2.0)


def test_functional_to_json_model_from_json_and_keras_file(tmp_path):
    import keras
    x = rnnkit.Input((5, 2), name="x")
    model = rnnkit.Model(x, L.Dense(3)(L.GlobalAveragePooling1D()(L.Conv1D(4, 2)(x))))
    again = rnnkit.models.model_from_json(model.to_json())
    assert isinstance(again, rnnkit.Model) and again.get_config() == model.get_config()
    model.save(tmp_path / "f.keras")                    # a real Keras file, as Sequential
    X = RNG.standard_normal((2, 5, 2)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.saving.load_model(
        tmp_path / "f.keras")(X)), model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
