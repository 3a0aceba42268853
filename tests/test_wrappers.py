"""Bidirectional and TimeDistributed: shapes, semantics under masks, gradients, config, saving,
Keras parity, many-to-many training with sample and class weights."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad
from test_gradients import _randomize, check_layer

import rnnkit
from rnnkit import layers

RNG = np.random.default_rng(3)
MERGES = ["concat", "sum", "mul", "ave", None]
MASKS = {
    "right": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool),
    "left": np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], bool),
    "interior": np.array([[1, 0, 1, 0, 1], [1, 1, 0, 0, 1], [0, 1, 1, 0, 0]], bool),
}
CELLS = {
    "lstm": lambda **k: layers.LSTM(4, **k),
    "gru": lambda **k: layers.GRU(4, **k),
    "simple": lambda **k: layers.SimpleRNN(4, **k),
}


def _x(B=3, T=5, F=3):
    return RNG.normal(size=(B, T, F))


# ----------------------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("merge", MERGES, ids=str)
@pytest.mark.parametrize("seq", [True, False])
def test_bidirectional_shapes_and_params(merge, seq):
    bi = layers.Bidirectional(layers.LSTM(4, return_sequences=seq), merge_mode=merge)
    out = bi(np.ones((2, 5, 3), np.float32))
    want = bi.compute_output_shape((2, 5, 3))
    got = [o.shape for o in out] if isinstance(out, list) else out.shape
    assert (got == [tuple(w) for w in want]) if merge is None else (got == want)
    width = 8 if merge == "concat" else 4
    assert want == ([(2, 5, 4)] * 2 if seq else [(2, 4)] * 2) if merge is None else \
        want == ((2, 5, width) if seq else (2, width))
    assert bi.count_params() == 2 * (3 * 16 + 4 * 16 + 16)
    assert list(bi.params)[:3] == ["forward_lstm/kernel", "forward_lstm/recurrent_kernel",
                                   "forward_lstm/bias"] or list(bi.params)[0].startswith("forward_")
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards


def test_bidirectional_matches_two_manual_passes():
    """Output = merge(forward(x), flip(backward(flip(x))))."""
    bi = layers.Bidirectional(layers.GRU(4, return_sequences=True), dtype="float64")
    x = _x()
    out = bi(x)
    fw, bw = bi.forward_layer, bi.backward_layer
    f = layers.GRU(4, return_sequences=True, dtype="float64")
    f(x)
    f.set_weights(fw.get_weights())
    b = layers.GRU(4, return_sequences=True, dtype="float64")
    b(x)
    b.set_weights(bw.get_weights())
    ref = np.concatenate([f(x), b(x[:, ::-1])[:, ::-1]], axis=-1)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12,
                               err_msg="rnnkit vs reference (manual forward/backward passes)")


@pytest.mark.parametrize("padding", list(MASKS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_bidirectional_mask_equals_compressed_sequences(padding, cell):
    """Under a mask each direction equals running the layer on only the valid steps: the
    backward pass starts at each row's last valid step, masked outputs are zero."""
    mask = MASKS[padding]
    bi = layers.Bidirectional(CELLS[cell](return_sequences=True, dtype="float64"),
                              merge_mode=None)
    x = _x()
    yf, yb = bi(x, mask=mask)
    ref = CELLS[cell](return_sequences=True, dtype="float64")
    ref(x)
    for r in range(3):
        valid = np.flatnonzero(mask[r])
        xs = x[r:r + 1, valid]
        ref.set_weights(bi.forward_layer.get_weights())
        want_f = ref(xs)[0]
        ref.set_weights(bi.backward_layer.get_weights())
        want_b = ref(xs[:, ::-1])[0][::-1]
        np.testing.assert_allclose(yf[r, valid], want_f, atol=1e-12,
                                   err_msg=f"rnnkit vs reference: forward, row {r}, {padding}")
        np.testing.assert_allclose(yb[r, valid], want_b, atol=1e-12,
                                   err_msg=f"rnnkit vs reference: backward, row {r}, {padding}")
        assert np.all(yf[r, ~mask[r]] == 0) and np.all(yb[r, ~mask[r]] == 0)
    # final states (return_sequences=False): last valid step of each direction
    bi2 = layers.Bidirectional(CELLS[cell](dtype="float64"), merge_mode=None)
    bi2(x)
    bi2.set_weights(bi.get_weights())
    hf, hb = bi2(x, mask=mask)
    np.testing.assert_allclose(hf, yf[np.arange(3), [np.flatnonzero(m)[-1] for m in mask]],
                               atol=1e-12, err_msg="rnnkit vs reference: forward final state")
    np.testing.assert_allclose(hb, yb[np.arange(3), [np.flatnonzero(m)[0] for m in mask]],
                               atol=1e-12, err_msg="rnnkit vs reference: backward final state")


@pytest.mark.parametrize("merge", MERGES, ids=str)
@pytest.mark.parametrize("seq", [True, False])
def test_bidirectional_gradients(merge, seq):
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=seq, dtype="float64"),
                              merge_mode=merge)
    check_layer(bi, _x(T=4))


@pytest.mark.parametrize("merge", MERGES, ids=str)
@pytest.mark.parametrize("padding", list(MASKS))
def test_bidirectional_masked_gradients(merge, padding):
    bi = layers.Bidirectional(layers.GRU(3, return_sequences=True, dtype="float64"),
                              merge_mode=merge)
    check_layer(bi, _x(), mask=MASKS[padding])


def test_bidirectional_fully_masked_row_gradients():
    mask = MASKS["right"].copy()
    mask[1] = False
    bi = layers.Bidirectional(layers.LSTM(3, dtype="float64"))
    out = bi(_x(), mask=mask)
    assert np.all(np.isfinite(out)) and np.all(out[1] == 0)   # zero initial states kept
    check_layer(bi, _x(), mask=mask)


def test_bidirectional_return_state_and_initial_state_gradients():
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True, return_state=True,
                                          dtype="float64"), merge_mode="ave")
    x = _x()
    bi.maybe_build(x.shape)
    states = [RNG.normal(0, 0.5, (3, 3)) for _ in range(4)]
    out = bi([x, *states])
    assert len(out) == 5 and out[0].shape == (3, 5, 3)
    check_layer(bi, x, initial_state=states, mask=MASKS["interior"])


def test_bidirectional_return_state_order():
    bi = layers.Bidirectional(layers.GRU(4, return_state=True), merge_mode="concat")
    x = _x()
    out, hf, hb = bi(x)
    np.testing.assert_array_equal(out, np.concatenate([hf, hb], -1))
    np.testing.assert_array_equal(hf, bi.forward_layer(x)[1])


def test_bidirectional_initial_state_count_error():
    bi = layers.Bidirectional(layers.LSTM(3))
    with pytest.raises(ValueError, match="expects 4 initial state arrays"):
        bi(_x(), initial_state=[np.zeros((3, 3))] * 2)


def test_bidirectional_dropout_gradients_fixed_seed():
    bi = layers.Bidirectional(layers.GRU(3, return_sequences=True, dropout=0.3,
                                         recurrent_dropout=0.3, seed=5, dtype="float64"))
    x = _x()
    bi.maybe_build(x.shape)

    def reseed():
        for sub in (bi.forward_layer, bi.backward_layer):
            sub.reset_dropout_rng()
    _randomize(bi)
    w = RNG.normal(size=(3, 5, 6))

    def loss():
        reseed()
        return float((bi.forward(x, training=True) * w).sum())
    loss()
    dx = bi.backward(w)
    grads = {k: g.copy() for k, g in bi.grads.items()}
    assert_close_grad(dx, numerical_grad(loss, x), "bidirectional dropout dL/dx")
    for k, p in bi.params.items():
        assert_close_grad(grads[k], numerical_grad(loss, p), f"bidirectional dropout dL/d{k}")
    reseed()
    assert not np.allclose(bi.forward(x, training=True), bi.forward(x))  # dropout is active


def test_bidirectional_weights_config_and_custom_backward():
    fw = layers.LSTM(4, return_sequences=True, name="enc")
    bw = layers.GRU(4, return_sequences=True, go_backwards=True, name="enc_back")
    bi = layers.Bidirectional(fw, backward_layer=bw, merge_mode="sum")
    x = _x().astype(np.float32)
    y = bi(x)
    assert bi.forward_layer.name == "forward_enc" and bi.backward_layer is bw
    ws = bi.get_weights()
    assert [w.shape for w in ws] == [w.shape for w in bi.forward_layer.get_weights()
                                     + bw.get_weights()]
    cfg = bi.get_config()
    assert cfg["layer"]["class_name"] == "LSTM" and cfg["backward_layer"]["class_name"] == "GRU"
    clone = layers.deserialize({"class_name": "Bidirectional", "config": cfg})
    clone(x)
    clone.set_weights(ws)
    np.testing.assert_array_equal(clone(x), y)
    # weights= at construction, Keras order (forward then backward)
    bi2 = layers.Bidirectional(layers.LSTM(4, return_sequences=True), merge_mode="sum",
                               backward_layer=layers.GRU(4, return_sequences=True,
                                                         go_backwards=True), weights=ws)
    np.testing.assert_array_equal(bi2(x), y)


@pytest.mark.parametrize("bad,match", [
    (lambda: layers.Bidirectional(layers.Dense(3)), "wraps a recurrent layer"),
    (lambda: layers.Bidirectional(layers.LSTM(3), merge_mode="max"), "merge_mode must be one of"),
    (lambda: layers.Bidirectional(layers.LSTM(3), backward_layer=layers.LSTM(3)),
     "opposite direction"),
    (lambda: layers.Bidirectional(layers.LSTM(3, return_sequences=True),
                                  backward_layer=layers.LSTM(3, go_backwards=True)),
     "same return_sequences"),
])
def test_bidirectional_bad_arguments(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


def test_bidirectional_mask_shape_error():
    bi = layers.Bidirectional(layers.LSTM(3))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4\).*must have shape"):
        bi(_x(), mask=np.ones((3, 4), bool))


def test_bidirectional_model_trains_saves_and_loads(tmp_path):
    model = rnnkit.Sequential([
        layers.Input((None, 3)),
        layers.Masking(0.0),
        layers.Bidirectional(layers.LSTM(6, return_sequences=True, kernel_regularizer="l2")),
        layers.Bidirectional(layers.GRU(5), merge_mode="ave"),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seqs = [RNG.normal(size=(int(t), 3)).astype(np.float32) for t in RNG.integers(2, 8, 24)]
    y = np.array([int(s[:, 0].sum() > 0) for s in seqs])
    before = model.evaluate(seqs, y, verbose=0)[0]
    model.fit(seqs, y, epochs=8, batch_size=8, verbose=0)
    assert model.evaluate(seqs, y, verbose=0)[0] < before
    assert len(model.get_weights()) == 14 and model.regularization_loss() > 0
    path = tmp_path / "bi.rnnkit"
    model.save(path)
    loaded = rnnkit.load_model(path)
    np.testing.assert_allclose(loaded.predict(seqs), model.predict(seqs), rtol=1e-6, atol=1e-7,
                               err_msg="rnnkit (loaded) vs reference (saved model)")
    loaded.fit(seqs, y, epochs=1, batch_size=8, verbose=0)   # optimizer state restored


@pytest.mark.parametrize("merge", ["concat", None])
@pytest.mark.parametrize("seq", [True, False])
def test_bidirectional_keras_parity_with_mask(merge, seq):
    import keras
    x = RNG.normal(size=(3, 5, 3)).astype(np.float32)
    mask = MASKS["right"] | MASKS["left"]
    mask[2] = MASKS["interior"][2]
    ours = layers.Bidirectional(layers.LSTM(4, return_sequences=seq), merge_mode=merge)
    ours(x)
    _randomize(ours, seed=11)
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=seq),
                                        merge_mode=merge)
    theirs(x)
    theirs.set_weights(ours.get_weights())
    got = ours(x, mask=mask)
    want = theirs(x, mask=mask)
    got = got if isinstance(got, list) else [got]
    want = [keras.ops.convert_to_numpy(w) for w in (want if isinstance(want, (list, tuple))
                                                    else [want])]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg="rnnkit vs reference (Keras)")


# ----------------------------------------------------------------------------- TimeDistributed
def test_time_distributed_shapes_config_and_gradients():
    td = layers.TimeDistributed(layers.Dense(3, activation="tanh", dtype="float64"))
    x = _x(T=4, F=5)
    assert td(x).shape == (3, 4, 3) and td.compute_output_shape((None, 4, 5)) == (None, 4, 3)
    assert list(td.params) == ["kernel", "bias"] and td.count_params() == 18
    check_layer(td, x)
    clone = layers.deserialize({"class_name": "TimeDistributed", "config": td.get_config()})
    clone(x)
    clone.set_weights(td.get_weights())
    np.testing.assert_array_equal(clone(x), td(x))
    with pytest.raises(ValueError, match="rank >= 3"):
        td(np.ones((3, 5)))


def test_time_distributed_dropout_is_per_item():
    td = layers.TimeDistributed(layers.Dropout(0.5, seed=1))
    x = np.ones((2, 6, 4), np.float32)
    y = td(x, training=True)
    assert y.shape == x.shape and set(np.unique(y)) <= {0.0, 2.0}
    np.testing.assert_array_equal(td.backward(np.ones_like(x)), y)
    np.testing.assert_array_equal(td(x), x)


def _seq_model(loss, n_out, act):
    model = rnnkit.Sequential([
        layers.LSTM(8, return_sequences=True),
        layers.TimeDistributed(layers.Dense(n_out, activation=act)),
    ])
    model.compile(optimizer=rnnkit.optimizers.Adam(0.02), loss=loss)
    return model


@pytest.mark.parametrize("loss,act", [("sparse_categorical_crossentropy", "softmax"),
                                      ("categorical_crossentropy", "softmax"),
                                      ("mse", None)])
def test_many_to_many_training(loss, act):
    """Per-time-step targets: label at t = sign of the running sum of x[:, :t+1, 0]."""
    x = RNG.normal(size=(64, 12, 2)).astype(np.float32)
    labels = (np.cumsum(x[..., 0], axis=1) > 0).astype(np.int64)       # (N, T)
    y = {"sparse_categorical_crossentropy": labels,
         "categorical_crossentropy": rnnkit.utils.to_categorical(labels, 2),
         "mse": labels[..., None].astype(np.float32)}[loss]
    model = _seq_model(loss, 1 if loss == "mse" else 2, act)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.6 * first
    pred = model.predict(x)
    acc = ((pred[..., 0] > 0.5) if loss == "mse" else pred.argmax(-1)) == labels
    assert acc.mean() > 0.85


def _model_loss_grads(model, x, y, sw, mask=None):
    model._loss_and_grad(x, y, sw, mask)
    return {(l.name, n): g.copy() for l in model.layers for n, g in l.grads.items()}


@pytest.mark.parametrize("sw_kind", ["none", "1d", "2d"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_time_distributed_sample_weight_gradients(sw_kind, loss):
    model = rnnkit.Sequential([
        layers.GRU(3, return_sequences=True, dtype="float64"),
        layers.TimeDistributed(layers.Dense(2, activation="softmax" if loss != "mse" else None,
                                            dtype="float64")),
    ])
    model.compile(optimizer="sgd", loss=loss)
    x = _x(B=3, T=4, F=2)
    y = RNG.integers(0, 2, (3, 4)) if loss != "mse" else RNG.normal(size=(3, 4, 2))
    sw = {"none": None, "1d": np.array([1.0, 0.5, 2.0]),
          "2d": RNG.uniform(0, 2, (3, 4))}[sw_kind]
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]], bool)
    model(x)
    for i, l in enumerate(model.layers):
        _randomize(l, seed=i)
    grads = _model_loss_grads(model, x, y, sw, mask)

    def f():
        y_pred, m = model.forward(x, mask=mask)
        return model.loss(y, y_pred, sw, m)
    for l in model.layers:
        for n, w in l.params.items():
            assert_close_grad(grads[(l.name, n)], numerical_grad(f, w),
                              f"{l.name}/{n} sample_weight={sw_kind}")


def test_sample_weight_2d_zero_equals_dropping_steps():
    """A per-step weight of 0 removes that step from the loss (like a mask, but the
    normaliser still counts it, as in Keras)."""
    model = _seq_model("sparse_categorical_crossentropy", 2, "softmax")
    x = RNG.normal(size=(4, 6, 2)).astype(np.float32)
    y = RNG.integers(0, 2, (4, 6))
    model(x)
    sw = np.ones((4, 6))
    sw[:, 3:] = 0
    l_sw = model.evaluate(x, y, sample_weight=sw, verbose=0)
    y_pred = model.predict(x)
    p = y_pred[np.arange(4)[:, None], np.arange(3)[None], y[:, :3]]
    want = -np.log(np.clip(p, 1e-7, 1)).sum() / 24
    np.testing.assert_allclose(l_sw, want, rtol=1e-5, err_msg="rnnkit vs reference")


def test_class_weight_per_time_step():
    """class_weight with per-time-step sparse labels weights every step by its own class."""
    model = _seq_model("sparse_categorical_crossentropy", 2, "softmax")
    x = RNG.normal(size=(8, 5, 2)).astype(np.float32)
    y = RNG.integers(0, 2, (8, 5))
    model(x)
    w = model._class_weights(y, {0: 1.0, 1: 3.0})
    np.testing.assert_array_equal(w, np.where(y == 1, 3.0, 1.0))
    from rnnkit._data_adapter import combine_weights
    sw = np.arange(1, 9, dtype=float)
    np.testing.assert_array_equal(combine_weights(sw, w), sw[:, None] * w)
    l_cw = model.evaluate(x, y, sample_weight=combine_weights(sw, w), verbose=0)
    model.fit(x, y, class_weight={0: 1.0, 1: 3.0}, sample_weight=sw, epochs=1, verbose=0,
              batch_size=8, shuffle=False)
    assert np.isfinite(l_cw)
    # one-hot per-time-step targets give the same weights
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    w2 = model._class_weights(rnnkit.utils.to_categorical(y, 2), {0: 1.0, 1: 3.0})
    np.testing.assert_array_equal(w2, w)


def test_time_distributed_model_save_load(tmp_path):
    model = rnnkit.Sequential([layers.Input((7, 3)),
                               layers.GRU(4, return_sequences=True),
                               layers.TimeDistributed(layers.Dense(2, activation="softmax"))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = RNG.normal(size=(5, 7, 3)).astype(np.float32)
    model.fit(x, RNG.integers(0, 2, (5, 7)), epochs=1, verbose=0)
    model.save(tmp_path / "td.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "td.rnnkit")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6,
                               err_msg="rnnkit (loaded) vs reference (saved model)")
