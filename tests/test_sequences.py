"""Masks and variable lengths: Keras masking semantics (golden numbers and live parity), masked
gradients (right / left / interior padding, fully masked rows), recurrent dropout, ragged list
inputs, bad-input errors, and masked training on Japanese Vowels."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad
from test_gradients import _randomize, check_layer

import rnnkit
from rnnkit import data, kernels, layers

RNG = np.random.default_rng(5)
CELLS = {
    "SimpleRNN": lambda **k: layers.SimpleRNN(3, **k),
    "LSTM": lambda **k: layers.LSTM(3, **k),
    "GRU": lambda **k: layers.GRU(3, **k),
    "GRU_before": lambda **k: layers.GRU(3, reset_after=False, **k),
}
PADDINGS = {
    "right": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], bool),
    "left": np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 1, 1]], bool),
    "interior": np.array([[1, 0, 1, 0, 1], [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]], bool),
    "fully_masked_row": np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0]], bool),
}


def _x(B=3, T=5, F=4):
    return RNG.normal(size=(B, T, F))


# ----------------------------------------------------------------------- golden Keras numbers
# Computed once with keras 3 (KERAS_BACKEND=torch): layer(2 units, return_sequences=True),
# kernel = linspace(-0.6, 0.6), recurrent_kernel = linspace(0.5, -0.5), bias =
# linspace(-0.2, 0.3) (reshaped to each layer's shapes), x = arange(16).reshape(2, 4, 2)/8 - 1,
# mask rows [1, 1, 0, 0] (right padding) and [0, 1, 0, 1] (left + interior padding).
GOLDEN = {
    ('LSTM', False): [[0.014155, -0.007219, 0.029199, 0.00585, 0.029199, 0.00585, 0.029199, 0.00585], [0.0, 0.0, 0.037201, 0.073944, 0.037201, 0.073944, 0.057302, 0.135054]],
    ('LSTM', True): [[0.0, 0.0, 0.0, 0.0, 0.019553, 0.008581, 0.025004, -0.002958], [0.042535, 0.101595, 0.042535, 0.101595, 0.050438, 0.110297, 0.050438, 0.110297]],
    ('GRU', False): [[-0.056643, -0.118066, -0.05007, -0.117129, -0.05007, -0.117129, -0.05007, -0.117129], [0.0, 0.0, 0.141367, 0.201536, 0.141367, 0.201536, 0.279931, 0.398995]],
    ('GRU', True): [[0.0, 0.0, 0.0, 0.0, -0.027453, -0.065275, -0.068454, -0.14898], [0.247877, 0.334874, 0.247877, 0.334874, 0.22236, 0.32038, 0.22236, 0.32038]],
    ('SimpleRNN', False): [[0.221278, -0.024995, 0.235312, 0.12374, 0.235312, 0.12374, 0.235312, 0.12374], [0.0, 0.0, -0.268271, 0.44223, -0.268271, 0.44223, -0.593363, 0.38777]],
    ('SimpleRNN', True): [[0.0, 0.0, 0.0, 0.0, 0.124353, 0.07486, 0.267993, -0.04168], [-0.44223, 0.588259, -0.44223, 0.588259, -0.53288, 0.106757, -0.53288, 0.106757]],
}
GOLDEN_X = (np.arange(16, dtype=np.float32).reshape(2, 4, 2) / 8.0 - 1.0)
GOLDEN_MASK = np.array([[1, 1, 0, 0], [0, 1, 0, 1]], bool)


def _golden_layer(cls, go_backwards):
    layer = getattr(layers, cls)(2, return_sequences=True, go_backwards=go_backwards)
    layer(GOLDEN_X)
    g = layer.n_gates
    b = layer.params["bias"]
    layer.set_weights([np.linspace(-0.6, 0.6, 4 * g).reshape(2, 2 * g),
                       np.linspace(0.5, -0.5, 4 * g).reshape(2, 2 * g),
                       np.linspace(-0.2, 0.3, b.size).reshape(b.shape)])
    return layer


@pytest.mark.parametrize("mode", ["auto", "reference"])
@pytest.mark.parametrize("key", list(GOLDEN), ids=lambda k: f"{k[0]}-{'backwards' if k[1] else 'forwards'}")
def test_golden_keras_masking(key, mode):
    """Masked steps carry state and output; go_backwards reads from the end (output in
    reversed order, as Keras); left padding keeps the zero initial state."""
    old = kernels.get_kernel_mode()
    kernels.set_kernel_mode(mode)
    try:
        got = _golden_layer(*key)(GOLDEN_X, mask=GOLDEN_MASK)
    finally:
        kernels.set_kernel_mode(old)
    np.testing.assert_allclose(got.reshape(2, 8), np.array(GOLDEN[key]), atol=2e-6,
                               err_msg="rnnkit vs reference (Keras golden numbers)")


@pytest.mark.parametrize("padding", ["right", "left", "interior", "fully_masked_row"])
@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
def test_masking_parity_with_live_keras(cell, padding):
    import keras
    x = RNG.normal(size=(3, 5, 4)).astype(np.float32)
    mask = PADDINGS[padding]
    for go_backwards in (False, True):
        for seq in (True, False):
            ours = CELLS[cell](return_sequences=seq, go_backwards=go_backwards)
            ours(x)
            _randomize(ours, seed=2)
            theirs = getattr(keras.layers, cell)(3, return_sequences=seq, go_backwards=go_backwards)
            theirs(x)
            theirs.set_weights(ours.get_weights())
            want = keras.ops.convert_to_numpy(theirs(x, mask=mask))
            np.testing.assert_allclose(
                ours(x, mask=mask), want, rtol=1e-5, atol=1e-6,
                err_msg=f"rnnkit vs reference (Keras), go_backwards={go_backwards}, seq={seq}")


# ----------------------------------------------------------------------- masked semantics
@pytest.mark.parametrize("padding", ["right", "left", "interior"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_masked_equals_compressed_sequence(cell, padding):
    """A masked layer equals the same layer run on each row's valid steps only."""
    mask = PADDINGS[padding]
    layer = CELLS[cell](return_sequences=True, dtype="float64")
    x = _x()
    out = layer(x, mask=mask)
    for r in range(3):
        valid = np.flatnonzero(mask[r])
        want = layer(x[r:r + 1, valid])[0]
        np.testing.assert_allclose(out[r, valid], want, atol=1e-12,
                                   err_msg=f"rnnkit vs reference: row {r}, {padding} padding")
        for t in np.flatnonzero(~mask[r]):   # a masked step repeats the previous output
            np.testing.assert_array_equal(out[r, t], out[r, t - 1] if t else 0)


@pytest.mark.parametrize("cell", list(CELLS))
def test_fully_masked_row_keeps_initial_state(cell):
    layer = CELLS[cell](return_sequences=True, return_state=True, dtype="float64")
    x = _x()
    layer.maybe_build(x.shape)
    init = [RNG.normal(size=(3, 3)) for _ in range(layer.n_states)]
    mask = PADDINGS["fully_masked_row"]
    out, *states = layer(x, mask=mask, initial_state=init)
    assert all(np.all(np.isfinite(a)) for a in [out, *states])
    for s, s0 in zip(states, init):
        np.testing.assert_array_equal(s[1], s0[1])
    np.testing.assert_array_equal(out[1], np.broadcast_to(init[0][1], (5, 3)))


@pytest.mark.parametrize("padding", list(PADDINGS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_masked_gradients(cell, padding):
    """dL/dx, dL/d(initial state) and dL/dW under each padding, outputs and final states."""
    mask = PADDINGS[padding]
    x = _x(T=5, F=2)
    layer = CELLS[cell](return_sequences=True, return_state=True, dtype="float64")
    layer.maybe_build(x.shape)
    init = [RNG.normal(0, 0.5, (3, 3)) for _ in range(layer.n_states)]
    check_layer(layer, x, initial_state=init, mask=mask)
    check_layer(CELLS[cell](go_backwards=True, dtype="float64"), x, mask=mask)


def test_fully_masked_row_gradient_is_identity_to_initial_state():
    layer = layers.LSTM(3, return_state=True, dtype="float64")
    x = _x()
    layer.maybe_build(x.shape)
    init = [RNG.normal(size=(3, 3)) for _ in range(2)]
    mask = PADDINGS["fully_masked_row"]
    layer(x, mask=mask, initial_state=init)
    g = [np.ones((3, 3)), np.full((3, 3), 2.0), np.full((3, 3), 3.0)]
    dx, dh0, dc0 = layer.backward(g)
    np.testing.assert_array_equal(dx[1], 0)
    np.testing.assert_array_equal(dh0[1], 3.0)    # output h and final h both reach h0
    np.testing.assert_array_equal(dc0[1], 3.0)


def test_masked_model_gradients_embedding_mask_zero():
    """Embedding(mask_zero) -> LSTM -> Dense; gradients through the mask and the loss."""
    model = rnnkit.Sequential([layers.Embedding(6, 3, mask_zero=True, dtype="float64"),
                               layers.LSTM(3, return_sequences=True, dtype="float64"),
                               layers.Dense(2, activation="softmax", dtype="float64")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ids = np.array([[1, 2, 3, 0, 0], [0, 0, 4, 5, 1], [2, 0, 3, 0, 5]])
    y = RNG.integers(0, 2, (3, 5))
    model(ids)
    for i, l in enumerate(model.layers):
        _randomize(l, seed=i)
    model._loss_and_grad(ids, y, None, None)
    grads = {(l.name, n): g.copy() for l in model.layers for n, g in l.grads.items()}

    def f():
        y_pred, m = model.forward(ids)
        return model.loss(y, y_pred, None, m)
    for l in model.layers:
        for n, w in l.params.items():
            assert_close_grad(grads[(l.name, n)], numerical_grad(f, w), f"{l.name}/{n} masked")
    # the loss ignores padded steps: changing their targets changes nothing
    y2 = np.where(ids == 0, 1 - y, y)
    y_pred, m = model.forward(ids)
    assert f() == pytest.approx(model.loss(y2, y_pred, None, m))
    assert f() != pytest.approx(model.loss(y2, y_pred))              # unmasked: it would


# ----------------------------------------------------------------------- recurrent dropout
@pytest.mark.parametrize("cell", list(CELLS))
def test_dropout_gradients_with_mask_fixed_seed(cell):
    layer = CELLS[cell](dropout=0.25, recurrent_dropout=0.4, seed=3, return_sequences=True,
                        dtype="float64")
    check_layer(layer, _x(), training=True, mask=PADDINGS["interior"])


def test_dropout_masks_are_per_sequence_keras_semantics():
    """dropout: one (B, F) mask on x_t reused at every step; recurrent_dropout: one (B, units)
    mask on h_{t-1} before the recurrent product; inactive at inference; seeded."""
    x = _x().astype(np.float64)
    lay = layers.GRU(3, dropout=0.5, recurrent_dropout=0.5, seed=9, return_sequences=True,
                     dtype="float64")
    lay(x)
    ref = layers.GRU(3, return_sequences=True, dtype="float64")
    ref(x)
    ref.set_weights(lay.get_weights())
    y_train = lay(x, training=True)
    r = np.random.default_rng(9)                       # the layer's own seeded generator
    dp = (r.random((3, 4)) >= 0.5) / 0.5
    rdp = (r.random((3, 3)) >= 0.5) / 0.5
    # replay: recurrent dropout multiplies h_{t-1} going into U only (not the carry z*h_{t-1})
    cell = ref.cell
    h = np.zeros((3, 3))
    for t in range(5):
        h, _, _ = cell.step(x[:, t] * dp, [h], recurrent_mask=rdp)
        np.testing.assert_allclose(y_train[:, t], h, atol=1e-12, err_msg="rnnkit vs reference")
    np.testing.assert_array_equal(lay(x), ref(x))                 # inference: no dropout
    again = layers.GRU(3, dropout=0.5, recurrent_dropout=0.5, seed=9, return_sequences=True,
                       dtype="float64")
    again(x)
    again.set_weights(lay.get_weights())
    np.testing.assert_array_equal(again(x, training=True), y_train)   # same seed, same masks


# ----------------------------------------------------------------------- ragged lists
def _ragged(n=10, F=3, lo=2, hi=9):
    return [RNG.normal(size=(int(t), F)).astype(np.float32) for t in RNG.integers(lo, hi, n)]


def test_ragged_lists_equal_padded_with_mask():
    seqs = _ragged()
    model = rnnkit.Sequential([layers.GRU(4), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    y = RNG.integers(0, 2, len(seqs))
    x, mask = rnnkit.utils.pad_ragged(seqs)
    pred = model.predict(seqs, batch_size=4)
    np.testing.assert_allclose(pred, model.forward(x, mask=mask)[0], rtol=1e-6)
    for i, s in enumerate(seqs):                       # each equals its own unpadded pass
        np.testing.assert_allclose(pred[i], model.predict(s[None])[0], rtol=1e-5, atol=1e-6,
                                   err_msg="rnnkit vs reference (unpadded sequence)")
    # post-padding with Masking gives the same numbers as the ragged list
    padded = data.pad_sequences(seqs, dtype="float32", padding="post", value=0.0)
    masked = rnnkit.Sequential([layers.Masking(0.0), model.layers[0], model.layers[1]])
    np.testing.assert_allclose(masked.predict(padded), pred, rtol=1e-5, atol=1e-6)
    assert model.evaluate(seqs, y, verbose=0) == pytest.approx(model.loss(y, pred), rel=1e-5)
    model.fit(seqs, y, epochs=2, batch_size=4, verbose=0)


def test_ragged_per_step_targets_loss_is_mean_over_valid_steps():
    seqs = _ragged(n=6)
    ys = [RNG.integers(0, 3, len(s)) for s in seqs]
    model = rnnkit.Sequential([layers.LSTM(4, return_sequences=True),
                               layers.TimeDistributed(layers.Dense(3, activation="softmax"))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    loss, acc = model.evaluate(seqs, ys, verbose=0, batch_size=6)
    pred = model.predict(seqs)
    p = np.concatenate([pred[i, :len(y)][np.arange(len(y)), y] for i, y in enumerate(ys)])
    hits = np.concatenate([pred[i, :len(y)].argmax(-1) == y for i, y in enumerate(ys)])
    assert loss == pytest.approx(-np.log(p).mean(), rel=1e-5)
    assert acc == pytest.approx(hits.mean())
    model.fit(seqs, ys, epochs=2, batch_size=3, verbose=0)


def test_pad_sequences_empty_sequence_is_a_fully_masked_row():
    seqs = [[[1.0, 2.0]], [], [[0.5, 0.5], [1.0, 1.0]]]
    x = data.pad_sequences(seqs, dtype="float32", padding="post")
    model = rnnkit.Sequential([layers.Masking(0.0), layers.LSTM(3), layers.Dense(1)])
    out = model.predict(x)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[1], model.layers[2](np.zeros((1, 3), np.float32))[0], atol=1e-7)


# ----------------------------------------------------------------------- bad inputs
def test_error_mask_shape_disagrees_with_x():
    layer = layers.LSTM(3)
    x = _x().astype(np.float32)
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4\).*batch size 3 and 5 time "
                                         r"steps.*\(3, 5\)"):
        layer(x, mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 5\)"):
        layer(x, mask=np.ones((2, 5), bool))


def test_error_zero_length_sequences():
    with pytest.raises(ValueError, match="zero-length sequences"):
        layers.GRU(3)(np.zeros((2, 0, 4), np.float32))
    model = rnnkit.Sequential([layers.LSTM(3), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    seqs = _ragged(n=3)
    seqs[1] = np.zeros((0, 3), np.float32)
    with pytest.raises(ValueError, match="Sequence 1 has length 0"):
        model.fit(seqs, np.zeros(3), verbose=0)
    with pytest.raises(ValueError, match="Sequence 1 has length 0"):
        model.predict(seqs)


def test_error_mismatched_list_lengths_between_x_and_y():
    model = rnnkit.Sequential([layers.LSTM(3), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    seqs = _ragged(n=5)
    with pytest.raises(ValueError, match="x and y must contain the same number of samples, "
                                         "got x with 5 sequences and y with 4"):
        model.fit(seqs, [0.0] * 4, verbose=0)
    with pytest.raises(ValueError, match="same number of samples, got x with 5 and y with 3"):
        model.fit(seqs, np.zeros(3), verbose=0)
    ys = [np.zeros(len(s)) for s in seqs[:4]]
    with pytest.raises(ValueError, match="same number of samples"):
        model.evaluate(seqs, ys, verbose=0)


# ----------------------------------------------------------------------- learning
def test_japanese_vowels_masked_training_reaches_097():
    """True variable lengths (7..29 steps): ragged lists padded and masked by rnnkit."""
    from rnnkit import data
    x_tr, y_tr, x_te, y_te = data.load_japanese_vowels()
    scaler = data.StandardScaler().fit(x_tr)
    x_tr = [s.astype(np.float32) for s in scaler.transform(x_tr)]
    x_te = [s.astype(np.float32) for s in scaler.transform(x_te)]
    assert len({len(s) for s in x_tr}) > 10                     # really variable lengths
    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([layers.Bidirectional(layers.LSTM(32)),
                               layers.Dense(9, activation="softmax")])
    model.compile(optimizer=rnnkit.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    from threadpoolctl import threadpool_limits
    # one BLAS thread: the per-step products are tiny, and on a busy machine extra BLAS
    # threads make this test ~50x slower (measured 62 s vs 0.8 s on 2 shared cores)
    with threadpool_limits(1):
        model.fit(x_tr, y_tr, epochs=30, batch_size=32, verbose=0)
    loss, acc = model.evaluate(x_te, y_te, verbose=0)
    assert acc >= 0.97, f"test accuracy {acc:.4f} < 0.97 (loss {loss:.4f})"
