"""Model-level inference (predict / evaluate / model(x)) runs the cache-free kernels and gives
the numbers of the training-path forward and of the pure-NumPy reference."""

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels
from rnnkit.kernels import lstm as lstm_kernel

L = rnnkit.layers


def _models():
    yield "lstm_gru_masked", lambda: [L.Masking(0.0), L.LSTM(9, return_sequences=True,
                                                             go_backwards=True),
                                      L.GRU(7), L.Dense(3, activation="softmax")]
    yield "simple_relu_bidir", lambda: [L.Bidirectional(L.SimpleRNN(6, activation="relu",
                                                                    return_sequences=True)),
                                        L.TimeDistributed(L.Dense(2))]
    yield "gru_before_and_after", lambda: [L.GRU(5, reset_after=False, return_sequences=True),
                                           L.GRU(4, bias_initializer="random_normal")]
    yield "lstm_biases", lambda: [L.LSTM(8, bias_initializer="random_normal")]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20, 11, 4)).astype(np.float32)
    x[3, 7:] = 0.0                                    # right padding
    x[5, :4] = 0.0                                    # left padding
    return x


@pytest.mark.parametrize("name,make", list(_models()))
def test_predict_equals_training_forward_and_reference(name, make):
    rnnkit.utils.set_random_seed(1)
    m = rnnkit.Sequential([L.Input((None, 4))] + make())
    x = _data()
    got = m.predict(x, batch_size=8, verbose=0)
    assert np.array_equal(m(x), m.predict(x, batch_size=len(x), verbose=0))
    x2, mask = m._prepare_x(x)
    plain = m.forward(x2, training=False, mask=mask)[0]     # keeps caches: training path
    np.testing.assert_allclose(got, plain, rtol=2e-5, atol=2e-6)
    kernels.set_kernel_mode("reference")
    try:
        ref = m.predict(x, batch_size=8, verbose=0)
    finally:
        kernels.set_kernel_mode("auto")
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6)


def test_predict_uses_the_cache_free_kernels(monkeypatch):
    calls = []
    real = lstm_kernel.infer
    monkeypatch.setattr(lstm_kernel, "infer", lambda *a, **k: calls.append(1) or real(*a, **k))
    m = rnnkit.Sequential([L.Input((None, 4)), L.LSTM(5)])
    m.predict(_data(), verbose=0)
    assert calls and m.layers[0]._cache is None
    with pytest.raises(RuntimeError, match="backward called before forward"):
        m.layers[0].backward(np.ones((20, 5), np.float32))


def test_stateful_and_tbptt_inference_carry_states():
    rnnkit.utils.set_random_seed(2)
    x = _data(3)[:8]
    m = rnnkit.Sequential([L.Input((None, 4)), L.LSTM(6, stateful=True,
                                                   return_sequences=True)])
    a = m.predict(x[:, :5], batch_size=8, verbose=0)
    b = m.predict(x[:, 5:], batch_size=8, verbose=0)
    m.reset_states()
    whole = m.predict(x, batch_size=8, verbose=0)
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), whole, rtol=2e-5, atol=2e-6)
    m2 = rnnkit.Sequential([L.Input((None, 4)), L.GRU(6, return_sequences=True)])
    np.testing.assert_allclose(m2.predict(x, tbptt=3, verbose=0), m2.predict(x, verbose=0),
                               rtol=2e-5, atol=2e-6)


def test_evaluate_matches_loss_of_predictions():
    rnnkit.utils.set_random_seed(4)
    x = _data(5)
    y = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    m = rnnkit.Sequential([L.Input((None, 4)), L.LSTM(7), L.Dense(3)])
    m.compile(optimizer="adam", loss="mse")
    loss = m.evaluate(x, y, batch_size=20, verbose=0)
    pred = m.predict(x, verbose=0)
    np.testing.assert_allclose(loss, np.mean((pred - y) ** 2), rtol=1e-5)
