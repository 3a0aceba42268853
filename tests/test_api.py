"""The Keras-shaped API: building, training, callbacks, weights, summary, configs, seeds."""

import csv

import numpy as np
import pytest

import rnnkit
from rnnkit import callbacks, layers, optimizers


def _data(n=64, T=6, F=3, classes=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, T, F)).astype("float32")
    labels = (x[:, :, 0].sum(1) > 0).astype(int) + (x[:, -1, 1] > 0.5)
    return x, rnnkit.utils.to_categorical(labels, classes), labels


def _model(cell=layers.LSTM, **kw):
    return rnnkit.Sequential([cell(8, return_sequences=True), cell(8),
                              layers.Dense(3, activation="softmax")], **kw)


def test_tutorial_api_trains_and_lowers_loss():
    x, y, _ = _data()
    model = _model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert set(hist.history) == {"loss", "accuracy"}
    assert len(hist.history["loss"]) == 5
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    loss, acc = model.evaluate(x, y, verbose=0)
    assert 0 <= acc <= 1 and np.isfinite(loss)
    p = model.predict(x)
    assert p.shape == (64, 3) and np.allclose(p.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("cell", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_layer_harness(cell, tmp_path):
    """Build, output shape, parameter count, config round-trip, save/load, one training step."""
    layer = cell(5, return_sequences=True)
    out = layer(np.ones((2, 4, 3), "float32"))
    assert out.shape == (2, 4, 5)
    gates = {layers.SimpleRNN: 1, layers.LSTM: 4, layers.GRU: 3}[cell]
    bias = 2 * 3 * 5 if cell is layers.GRU else gates * 5
    assert layer.count_params() == 3 * gates * 5 + 5 * gates * 5 + bias
    clone = cell.from_config(layer.get_config())
    clone(np.ones((2, 4, 3), "float32"))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(np.ones((2, 4, 3), "float32")), out)
    model = rnnkit.Sequential([layers.Input((4, 3)), cell(5), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.random.default_rng(0).normal(size=(8, 4, 3)), np.ones((8, 1))
    before = model.test_on_batch(x, y)
    model.train_on_batch(x, y)
    assert model.test_on_batch(x, y) < before
    model.save(tmp_path / "m.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "m.rnnkit")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_keras_defaults_and_layout():
    lstm = layers.LSTM(4)
    lstm(np.zeros((1, 2, 3), "float32"))
    k, r, b = lstm.get_weights()
    assert (k.shape, r.shape, b.shape) == ((3, 16), (4, 16), (16,))
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    # orthogonal recurrent kernel: rows orthonormal over the whole (u, 4u) matrix
    np.testing.assert_allclose(r @ r.T, np.eye(4), atol=1e-5)
    gru = layers.GRU(4)
    gru(np.zeros((1, 2, 3), "float32"))
    assert gru.params["bias"].shape == (2, 12)
    gru_b = layers.GRU(4, reset_after=False)
    gru_b(np.zeros((1, 2, 3), "float32"))
    assert gru_b.params["bias"].shape == (12,)
    assert layers.LSTM(3).name.startswith("lstm") and layers.SimpleRNN(3).name.startswith("simple_rnn")
    d = layers.Dense(2)
    assert d.activation.name == "linear"
    opt = optimizers.Adam()
    assert (opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.SGD().learning_rate == 0.01


def test_dense_per_time_step_matches_2d():
    d = layers.Dense(3, activation="tanh")
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    y3 = d(x)
    assert y3.shape == (2, 5, 3)
    np.testing.assert_allclose(y3[1, 2], d(x[1:2, 2])[0], rtol=1e-6)


def test_initial_state_and_return_state():
    lstm = layers.LSTM(3, return_state=True, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype("float32")
    seq, h, c = lstm(x)
    np.testing.assert_array_equal(seq[:, -1], h)
    seq2, h2, c2 = lstm(x[:, 2:], initial_state=[lstm(x[:, :2])[1], lstm(x[:, :2])[2]])
    np.testing.assert_allclose(h2, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c2, c, rtol=1e-5, atol=1e-6)


def test_go_backwards_equals_reversed_input():
    rnn = layers.GRU(3, return_sequences=True, go_backwards=True)
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype("float32")
    out = rnn(x)
    fwd = layers.GRU(3, return_sequences=True)
    fwd(x)
    fwd.set_weights(rnn.get_weights())
    np.testing.assert_allclose(out, fwd(x[:, ::-1]), rtol=1e-6)


def test_summary_and_counts(capsys):
    model = rnnkit.Sequential([layers.Input((29, 12)), layers.LSTM(128, return_sequences=True),
                               layers.LSTM(64), layers.Dense(9, activation="softmax")])
    model.summary()
    out = capsys.readouterr().out
    assert "(None, 29, 128)" in out and "(None, 64)" in out and "(None, 9)" in out
    # Keras counts: 4*(12*128+128*128+128) = 72192; 4*(128*64+64*64+64) = 49408; 64*9+9 = 585
    assert model.count_params() == 72192 + 49408 + 585
    assert f"Total params: {72192 + 49408 + 585:,}" in out


def test_get_set_weights_model_roundtrip():
    x, y, _ = _data()
    a, b = _model(), _model()
    a(x)
    b(x)
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    with pytest.raises(ValueError, match="expects shape"):
        w = a.get_weights()
        w[0] = np.zeros((2, 2))
        b.set_weights(w)


def test_sequential_add_and_input_shape_kwarg():
    m = rnnkit.Sequential()
    m.add(layers.GRU(4, input_shape=(None, 3)))
    m.add(layers.Dense(1))
    assert m.built and m.layers[0].params["kernel"].shape == (3, 12)


def test_seed_gives_bit_identical_runs():
    x, y, _ = _data()

    def run():
        rnnkit.utils.set_random_seed(42)
        m = rnnkit.Sequential([layers.LSTM(6, dropout=0.2, recurrent_dropout=0.2),
                               layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
        m.compile(loss="categorical_crossentropy", optimizer="adam")
        h = m.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
        return h.history, m.get_weights()

    h1, w1 = run()
    h2, w2 = run()
    assert h1 == h2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_validation_data_and_split_logs():
    x, y, _ = _data()
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    h = m.fit(x, y, epochs=2, verbose=0, validation_data=(x[:10], y[:10]))
    assert {"val_loss", "val_accuracy"} <= set(h.history)
    h = m.fit(x, y, epochs=1, verbose=0, validation_split=0.2)
    assert "val_loss" in h.history


def test_metrics_resolution_and_sparse_labels():
    x, y, labels = _data()
    m = _model()
    m.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    m.fit(x, labels, epochs=1, verbose=0)
    assert type(m.metrics[0]).__name__ == "SparseCategoricalAccuracy"
    res = m.evaluate(x, labels, verbose=0, return_dict=True)
    pred = m.predict(x).argmax(1)
    assert res["accuracy"] == pytest.approx((pred == labels).mean())


def test_binary_and_regression_paths():
    x, _, labels = _data()
    yb = (labels > 0).astype("float32")
    m = rnnkit.Sequential([layers.GRU(6), layers.Dense(1, activation="sigmoid")])
    m.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    m.fit(x, yb, epochs=2, verbose=0)
    assert type(m.metrics[0]).__name__ == "BinaryAccuracy"
    r = rnnkit.Sequential([layers.SimpleRNN(6), layers.Dense(1)])
    r.compile(loss="huber", optimizer=optimizers.SGD(0.01, momentum=0.9, nesterov=True),
              metrics=["mae", "mse"])
    h = r.fit(x, x[:, -1, :1], epochs=2, verbose=0)
    assert {"mae", "mse"} <= set(h.history)


def test_progress_bar_and_verbose2(capsys):
    x, y, _ = _data(n=32)
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    m.fit(x, y, epochs=1, batch_size=8, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "4/4" in err and "loss:" in err and "accuracy:" in err
    m.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert out.count("Epoch") == 2 and "loss:" in out


def test_callbacks(tmp_path):
    x, y, _ = _data()
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer=optimizers.Adam(0.05), metrics=["accuracy"])
    seen = []
    cbs = [
        callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0,
                                restore_best_weights=True),
        callbacks.CSVLogger(tmp_path / "log.csv"),
        callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e)),
    ]
    h = m.fit(x, y, epochs=10, verbose=0, callbacks=cbs)
    assert len(h.history["loss"]) == 2 and seen == [0, 1]  # stopped: no 10.0 improvement
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert len(rows) == 2 and "accuracy" in rows[0]


def test_early_stopping_restores_best_weights():
    x, y, _ = _data()
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer=optimizers.SGD(5.0))
    snaps = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snaps.append(
        (logs["loss"], m.get_weights())))
    es = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    m.fit(x, y, epochs=8, verbose=0, callbacks=[cb, es])
    best = min(snaps, key=lambda s: s[0])[1]
    for a, b in zip(m.get_weights(), best):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_best_only(tmp_path):
    x, y, _ = _data()
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer="adam")
    path = tmp_path / "best.rnnkit"
    ck = callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    h = m.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[ck])
    assert path.exists()
    best = rnnkit.load_model(path)
    assert best.evaluate(x[48:], y[48:], verbose=0) == pytest.approx(min(h.history["val_loss"]),
                                                                     rel=1e-5)


def test_reduce_lr_and_scheduler():
    x, y, _ = _data()
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer=optimizers.Adam(0.01))
    m.fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=100)])
    assert m.optimizer.learning_rate == pytest.approx(0.01 * 0.5 ** 2)  # epoch 1 sets the best
    m.fit(x, y, epochs=2, verbose=0,
          callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert m.optimizer.learning_rate == pytest.approx(0.05)


def test_terminate_on_nan(capsys):
    x, y, _ = _data()
    m = rnnkit.Sequential([layers.SimpleRNN(8, activation="relu"), layers.Dense(3)])
    m.compile(loss="mse", optimizer=optimizers.SGD(1e12))
    with pytest.warns(RuntimeWarning, match="Exploding gradients"):
        h = m.fit(x, y * 1e3, epochs=5, batch_size=8, verbose=0,
                  callbacks=[callbacks.TerminateOnNaN()])
    assert len(h.history.get("loss", [])) <= 1
    out = capsys.readouterr().out
    assert "invalid loss" in out and "clipnorm" in out and m.terminated_on_nan is not None


def test_schedules():
    s = optimizers.schedules
    e = s.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert e(0) == 0.1 and e(10) == pytest.approx(0.05) and e(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    assert s.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)
    c = s.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert c(0) == 1.0 and c(100) == pytest.approx(0.1) and c(50) == pytest.approx(0.55)
    p = s.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert (p(10), p(11), p(25)) == (1.0, 0.5, 0.1)
    opt = optimizers.SGD(learning_rate=e)
    w, g = np.ones(2), np.ones(2)
    for _ in range(3):
        opt.apply([w], [g])
    assert w == pytest.approx(1 - (0.1 + e(1) + e(2)))


def test_clipping():
    g = [np.array([3.0, 4.0]), np.array([0.0, 12.0])]
    o = optimizers.SGD(1.0, clipnorm=1.0)
    c = o.clip(g)
    assert np.linalg.norm(c[0]) == pytest.approx(1.0) and np.linalg.norm(c[1]) == pytest.approx(1.0)
    o = optimizers.SGD(1.0, global_clipnorm=1.0)
    c = o.clip(g)
    assert np.sqrt(sum((x * x).sum() for x in c)) == pytest.approx(1.0)
    assert o.last_grad_norm == pytest.approx(13.0)
    o = optimizers.SGD(1.0, clipvalue=0.5)
    assert np.abs(np.concatenate(o.clip(g))).max() == 0.5


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw", "adagrad"])
def test_optimizers_minimise_quadratic(name):
    opt = optimizers.get(name)
    opt.learning_rate = 1.0 if name == "adagrad" else 0.1
    w = np.array([3.0, -2.0])
    for _ in range(300):
        opt.apply([w], [2 * w])
    assert np.abs(w).max() < 0.1


def test_train_test_predict_on_batch():
    x, y, _ = _data()
    m = _model()
    m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    out = m.train_on_batch(x[:8], y[:8])
    assert isinstance(out, list) and len(out) == 2
    d = m.test_on_batch(x[:8], y[:8], return_dict=True)
    assert set(d) == {"loss", "accuracy"}
    assert m.predict_on_batch(x[:8]).shape == (8, 3)


def test_embedding_model_and_config_roundtrip():
    ids = np.random.default_rng(0).integers(1, 20, size=(16, 7))
    m = rnnkit.Sequential([layers.Embedding(20, 4), layers.LSTM(5), layers.Dense(2, activation="softmax")])
    m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    m.fit(ids, ids[:, 0] % 2, epochs=1, verbose=0)
    clone = rnnkit.Sequential.from_config(m.get_config())
    clone(ids)
    clone.set_weights(m.get_weights())
    np.testing.assert_array_equal(clone.predict(ids), m.predict(ids))


def test_float64_models_run():
    m = rnnkit.Sequential([layers.GRU(3, dtype="float64"), layers.Dense(1, dtype="float64")])
    m.compile(loss="mse", optimizer="adam")
    x = np.random.default_rng(0).normal(size=(4, 3, 2))
    m.fit(x, np.zeros((4, 1)), verbose=0)
    assert m.predict(x).dtype == np.float64


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_recurrent_weights_are_trainable(cls):
    # a constraint passed positionally into add_weight's `trainable` slot once froze them all
    layer = cls(3)
    layer.build((None, 4, 2))
    assert layer.trainable_param_names() == ["kernel", "recurrent_kernel", "bias"]
    assert not layer.non_trainable
