"""Stateful layers and the streaming API: step-by-step (or chunked) processing equals
whole-sequence processing; states carried across batches; reset of all or chosen rows."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad
from test_gradients import _randomize

import rnnkit
from rnnkit import layers

RNG = np.random.default_rng(11)
CELLS = {
    "SimpleRNN": lambda u, **k: layers.SimpleRNN(u, **k),
    "LSTM": lambda u, **k: layers.LSTM(u, **k),
    "GRU": lambda u, **k: layers.GRU(u, **k),
    "GRU_before": lambda u, **k: layers.GRU(u, reset_after=False, **k),
}
TOL = {"rtol": 1e-5, "atol": 2e-6}   # float32 rounding


def _x(B=2, T=9, F=3):
    return RNG.normal(size=(B, T, F)).astype(np.float32)


def _model(cell, stacked, seq):
    make = CELLS[cell]
    stack = [make(6, return_sequences=True), make(5, return_sequences=seq)] if stacked else \
        [make(5, return_sequences=seq)]
    return rnnkit.Sequential(stack + [layers.Dense(2)])


@pytest.mark.parametrize("seq", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("stacked", [False, True], ids=["single", "stacked"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_stream_equals_whole_sequence(cell, stacked, seq):
    model = _model(cell, stacked, seq)
    x = _x()
    whole = model.predict(x)
    stream = model.stream(batch_size=2)
    steps = [stream.step(x[:, t]) for t in range(x.shape[1])]
    if seq:
        np.testing.assert_allclose(np.stack(steps, axis=1), whole, **TOL,
                                   err_msg="rnnkit stream vs reference (whole sequence)")
    else:
        np.testing.assert_allclose(steps[-1], whole, **TOL, err_msg="rnnkit stream vs reference")
        np.testing.assert_allclose(steps[3], model.predict(x[:, :4]), **TOL,
                                   err_msg="rnnkit stream vs reference (prefix)")
    stream.reset()
    chunks = [stream.step(x[:, a:b]) for a, b in [(0, 3), (3, 4), (4, 9)]]
    got = np.concatenate(chunks, axis=1) if seq else chunks[-1]
    np.testing.assert_allclose(got, whole, **TOL, err_msg="rnnkit chunked stream vs reference")


def test_stream_batch1_and_reset_rows():
    model = _model("LSTM", True, True)
    x = _x(B=3)
    whole = model.predict(x)
    stream = model.stream(batch_size=3)
    for t in range(4):
        stream.step(x[:, t])
    stream.reset(rows=[1])                               # row 1 starts a new sequence
    rest = np.stack([stream.step(x[:, t]) for t in range(4, 9)], axis=1)
    np.testing.assert_allclose(rest[[0, 2]], whole[[0, 2], 4:], **TOL)
    np.testing.assert_allclose(rest[1], model.predict(x[1:2, 4:])[0], **TOL)
    one = model.stream()                                  # batch 1
    out = [one.step(x[2:3, t]) for t in range(9)]
    np.testing.assert_allclose(np.stack(out, 1)[0], whole[2], **TOL)
    with pytest.raises(ValueError, match=r"row indices in \[0, 3\)"):
        stream.reset(rows=[3])


def test_stream_with_embedding_and_masking():
    model = rnnkit.Sequential([layers.Embedding(10, 4, mask_zero=True),
                               layers.GRU(5, return_sequences=True), layers.Dense(3)])
    ids = np.array([[3, 4, 0, 5, 0, 0], [1, 0, 0, 2, 7, 9]])
    whole = model.predict(ids)
    stream = model.stream(batch_size=2)
    got = np.stack([stream.step(ids[:, t]) for t in range(6)], axis=1)
    np.testing.assert_allclose(got, whole, **TOL, err_msg="rnnkit stream vs reference (masked)")
    model2 = rnnkit.Sequential([layers.Masking(0.0), layers.LSTM(4)])
    x = _x()
    x[0, 5:] = 0
    s = model2.stream(2)
    last = [s.step(x[:, t]) for t in range(9)][-1]
    np.testing.assert_allclose(last, model2.predict(x), **TOL)
    np.testing.assert_allclose(last[0], model2.predict(x[:1, :5])[0], **TOL)


def test_layer_step_functional_api():
    lstm = layers.LSTM(4, return_sequences=True)
    x = _x()
    lstm(x)
    ref = layers.LSTM(4, return_sequences=True, return_state=True)
    ref(x)
    ref.set_weights(lstm.get_weights())
    whole, h, c = ref(x)
    states = None
    outs = []
    for t in range(9):
        y, states = lstm.step(x[:, t], states)
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, 1), whole, **TOL)
    np.testing.assert_allclose(states[1], c, **TOL)
    mask = np.array([[1] * 9, [1] * 5 + [0] * 4], bool)
    y1, s = lstm.step(x[:, :5], mask=mask[:, :5])
    y2, s = lstm.step(x[:, 5:], s, mask=mask[:, 5:])
    np.testing.assert_allclose(np.concatenate([y1, y2], 1), lstm(x, mask=mask), **TOL)
    assert lstm.states is None                          # step() stores nothing on the layer


def test_stream_refuses_backwards_layers_and_bad_shapes():
    bi = rnnkit.Sequential([layers.Bidirectional(layers.LSTM(3)), layers.Dense(1)])
    with pytest.raises(ValueError, match="cannot be streamed"):
        bi.stream()
    gb = layers.GRU(3, go_backwards=True)
    gb(_x())
    with pytest.raises(ValueError, match="go_backwards=True"):
        gb.step(_x()[:, 0])
    model = _model("GRU", False, True)
    stream = model.stream(batch_size=2)
    with pytest.raises(ValueError, match=r"batch = 2, got shape \(3, 3\)"):
        stream.step(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.stream(batch_size=0)


# ----------------------------------------------------------------------- stateful
@pytest.mark.parametrize("cell", list(CELLS))
def test_stateful_batches_equal_whole_sequence(cell):
    x = _x(T=12)
    whole_layer = CELLS[cell](4, return_sequences=True)
    whole = whole_layer(x)
    sf = CELLS[cell](4, return_sequences=True, stateful=True)
    sf(x[:, :1])
    sf.reset_states()
    sf.set_weights(whole_layer.get_weights())
    parts = [sf(x[:, a:b]) for a, b in [(0, 5), (5, 6), (6, 12)]]
    np.testing.assert_allclose(np.concatenate(parts, 1), whole, **TOL,
                               err_msg="rnnkit stateful vs reference (whole sequence)")
    sf.reset_states()
    np.testing.assert_allclose(sf(x[:, :5]), whole[:, :5], **TOL)


def test_stateful_reset_chosen_rows_and_model_reset():
    model = rnnkit.Sequential([layers.LSTM(4, stateful=True, return_sequences=True),
                               layers.GRU(3, stateful=True), layers.Dense(1)])
    x = _x(B=3)
    ref = model.predict(x[:, 5:], batch_size=3)   # fresh states
    model.reset_states()
    model.predict(x[:, :5], batch_size=3)
    model.reset_states(rows=[0, 2])
    out = model.predict(x[:, 5:], batch_size=3)
    np.testing.assert_allclose(out[[0, 2]], ref[[0, 2]], **TOL)
    assert not np.allclose(out[1], ref[1])
    with pytest.raises(ValueError, match=r"integer row indices in \[0, 3\)"):
        model.reset_states(rows=[5])
    model.reset_states()
    assert all(l.states is None for l in model._recurrent_layers())


def test_stateful_different_batch_size_error():
    layer = layers.GRU(3, stateful=True)
    layer(_x(B=4))
    with pytest.raises(ValueError, match="carries states for batch size 4, got a batch of 2.*"
                                         "reset_states"):
        layer(_x(B=2))
    layer.reset_states()
    layer(_x(B=2))                                          # after a reset any size works
    model = rnnkit.Sequential([layers.LSTM(3, stateful=True), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="carries states for batch size 4, got a batch of 2"):
        model.fit(_x(B=10), np.zeros(10), batch_size=4, shuffle=False, verbose=0)


@pytest.mark.parametrize("cell", list(CELLS))
def test_stateful_second_batch_gradients(cell):
    """Batch 2's gradient with the state carried from batch 1 treated as a constant."""
    layer = CELLS[cell](3, return_sequences=True, stateful=True, dtype="float64")
    x1, x2 = _x().astype(np.float64), _x().astype(np.float64)
    layer(x1)
    _randomize(layer)
    layer.reset_states()
    layer(x1)
    carried = tuple(s.copy() for s in layer.states)
    assert np.abs(carried[0]).max() > 0
    w = RNG.normal(size=(2, 9, 3))

    def loss():
        layer.states = tuple(s.copy() for s in carried)
        return float((layer(x2) * w).sum())
    loss()
    dx = layer.backward(w)
    assert isinstance(dx, np.ndarray)                   # no gradient to the carried state
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert_close_grad(dx, numerical_grad(loss, x2), f"stateful {cell} dL/dx2")
    for k, p in layer.params.items():
        assert_close_grad(grads[k], numerical_grad(loss, p), f"stateful {cell} dL/d{k}")
