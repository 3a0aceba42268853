"""Truncated BPTT (fit/evaluate/predict ``tbptt=k``): memory bounded by k, states carried
between windows without gradient, weights updated after every window."""

import tracemalloc

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad
from test_gradients import _randomize

import rnnkit
from rnnkit import layers

RNG = np.random.default_rng(21)


def _delay_data(B, T, F=1, lag=2, dtype=np.float32):
    x = RNG.normal(size=(B, T, F)).astype(dtype)
    return x, np.roll(x, lag, axis=1)              # y_t = x_{t-lag}


def _seq_model(cell=layers.LSTM, units=8, dtype="float32", **kw):
    return rnnkit.Sequential([cell(units, return_sequences=True, dtype=dtype, **kw),
                              layers.Dense(1, dtype=dtype)])


def test_memory_grows_with_window_not_sequence_length():
    """A 10,000-step sequence with tbptt=100 peaks within 2x of a 100-step sequence."""
    model = _seq_model(units=64)
    model.compile(optimizer="adam", loss="mse")
    model.fit(*_delay_data(4, 100), epochs=1, verbose=0)     # build weights and optimizer slots

    def peak(T, k):
        x, y = _delay_data(4, T)
        tracemalloc.start()
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, tbptt=k)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p
    short = peak(100, None)
    long = peak(10_000, 100)
    print(f"tbptt peak memory: {long / 1e6:.2f} MB (10,000 steps, k=100) vs {short / 1e6:.2f} MB (100 steps)")
    assert long <= 2 * short, f"peak {long / 1e6:.2f} MB for 10,000 steps vs {short / 1e6:.2f} MB"


def test_windows_carry_states_and_equal_whole_sequence():
    """predict/evaluate window by window equal one pass over all 2k (and ragged 2k+3) steps."""
    model = rnnkit.Sequential([layers.GRU(6, return_sequences=True),
                               layers.LSTM(5, return_sequences=True), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x, _ = _delay_data(3, 23, F=2)
    y = RNG.normal(size=(3, 23, 2)).astype(np.float32)
    whole = model.predict(x)
    np.testing.assert_allclose(model.predict(x[:, :20], tbptt=10), whole[:, :20], rtol=1e-5,
                               atol=1e-6, err_msg="rnnkit tbptt vs reference (whole sequence)")
    np.testing.assert_allclose(model.predict(x, tbptt=10), whole, rtol=1e-5, atol=1e-6,
                               err_msg="rnnkit tbptt vs reference (whole sequence)")
    assert model.evaluate(x, y, tbptt=10, verbose=0) == pytest.approx(
        model.evaluate(x, y, verbose=0), rel=1e-5)
    assert all(l.states is None and not l.carry_states for l in model._recurrent_layers())
    last = rnnkit.Sequential([layers.LSTM(4), layers.Dense(1)])   # final-step output
    np.testing.assert_allclose(last.predict(x, tbptt=7), last.predict(x), rtol=1e-5, atol=1e-6)


def _window_grads(model, x, y, carried):
    layer = model.layers[0]
    layer.states = None if carried is None else tuple(s.copy() for s in carried)
    model._loss_and_grad(x, y, None, None)
    return {(l.name, n): g.copy() for l in model.layers for n, g in l.grads.items()}


@pytest.mark.parametrize("cell", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_window_gradient_float64(cell):
    """The second window's gradient: carried state constant, checked by central differences."""
    model = _seq_model(cell, units=3, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    x, y = _delay_data(2, 8, F=2, dtype=np.float64)
    y = y[..., :1]
    model(x)
    for i, l in enumerate(model.layers):
        _randomize(l, seed=i)
    rnn = model.layers[0]
    rnn.set_state_carry(True)
    try:
        model.forward(x[:, :4])                      # window 1
        carried = tuple(s.copy() for s in rnn.states)
        grads = _window_grads(model, x[:, 4:], y[:, 4:], carried)

        def loss():
            rnn.states = tuple(s.copy() for s in carried)
            return model.loss(y[:, 4:], model.forward(x[:, 4:])[0])
        for l in model.layers:
            for n, w in l.params.items():
                assert_close_grad(grads[(l.name, n)], numerical_grad(loss, w),
                                  f"tbptt window 2 {l.name}/{n}")
    finally:
        rnn.set_state_carry(False)


def test_fit_updates_after_every_window_and_detaches():
    """fit(tbptt=k) on one batch equals: for each window, the window's own gradient (state
    from the previous window as a constant), then one SGD update."""
    x, y = _delay_data(2, 12, dtype=np.float64)
    a = _seq_model(layers.GRU, units=4, dtype="float64")
    b = _seq_model(layers.GRU, units=4, dtype="float64")
    for m in (a, b):
        m.compile(optimizer=rnnkit.optimizers.SGD(0.1), loss="mse")
        m(x)
    w0 = a.get_weights()
    b.set_weights(w0)
    a.fit(x, y, batch_size=2, epochs=1, tbptt=5, verbose=0, shuffle=False)
    rnn = b.layers[0]
    carried = None
    for s in range(0, 12, 5):
        rnn.set_state_carry(True)
        rnn.states = carried
        b._loss_and_grad(x[:, s:s + 5], y[:, s:s + 5], None, None)
        carried = rnn.states
        rnn.set_state_carry(False)
        params, grads = b._trainable()
        for p, g in zip(params, grads):
            p -= 0.1 * g
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-12,
                                   err_msg="rnnkit tbptt fit vs reference (manual windows)")
    # and it differs from full BPTT with the same data and start (one update on 12 steps)
    c = _seq_model(layers.GRU, units=4, dtype="float64")
    c.compile(optimizer=rnnkit.optimizers.SGD(0.1), loss="mse")
    c(x)
    c.set_weights(w0)
    c.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    assert not np.allclose(a.get_weights()[1], c.get_weights()[1])


def test_tbptt_learns_a_delay_task_on_long_sequences():
    x, y = _delay_data(8, 600)
    model = _seq_model(units=16)
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    hist = model.fit(x, y, batch_size=8, epochs=6, tbptt=50, verbose=0,
                     validation_data=(x[:2], y[:2]))
    assert hist.history["loss"][-1] < 0.3 * before
    assert hist.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[:2], y[:2], verbose=0), rel=1e-4)


def test_tbptt_with_stateful_layers_and_masks():
    """Stateful layers keep carrying across batches; masked (padded) steps carry the state
    across window boundaries too."""
    x, y = _delay_data(2, 20)
    mask = np.ones((2, 20), bool)
    mask[1, 13:] = False
    model = _seq_model(units=4)
    model.compile(optimizer="adam", loss="mse")
    whole = model.forward(x, mask=mask)[0]
    parts = [p[2] for p in model._windowed_forward(x, None, None, mask, 6)]
    np.testing.assert_allclose(np.concatenate(parts, 1), whole, rtol=1e-5, atol=1e-6)
    sf = _seq_model(units=4, stateful=True)
    sf.compile(optimizer="adam", loss="mse")
    sf.fit(x, y, batch_size=2, epochs=1, tbptt=6, verbose=0, shuffle=False)
    assert sf.layers[0].states is not None                 # carried to the next batch


@pytest.mark.parametrize("kw,match", [
    ({"tbptt": 0}, "tbptt must be a positive integer"),
    ({"tbptt": 2.5}, "tbptt must be a positive integer"),
])
def test_tbptt_bad_values(kw, match):
    model = _seq_model()
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=match):
        model.fit(*_delay_data(2, 10), verbose=0, **kw)


def test_tbptt_needs_per_step_targets_and_forward_layers():
    x, _ = _delay_data(2, 10)
    last = rnnkit.Sequential([layers.LSTM(3), layers.Dense(1)])
    last.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"per-time-step targets: y must have shape \(batch, 10"):
        last.fit(x, np.zeros((2, 1)), tbptt=5, verbose=0)
    bi = rnnkit.Sequential([layers.Bidirectional(layers.LSTM(3, return_sequences=True)),
                            layers.Dense(1)])
    bi.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="read sequences backwards"):
        bi.fit(x, np.zeros((2, 10, 1)), tbptt=5, verbose=0)
    dense = rnnkit.Sequential([layers.Dense(1)])
    dense.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="needs a model with a recurrent layer"):
        dense.fit(x, np.zeros((2, 10, 1)), tbptt=5, verbose=0)
