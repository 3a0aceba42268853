"""The cell protocol: user cells through RNN, presets equal to RNN(cell), exact-type dispatch."""

import re
from pathlib import Path

import numpy as np
import pytest
from test_gradients import check_layer

import rnnkit
from rnnkit import cells, kernels, layers

DOC = Path(__file__).resolve().parents[1] / "docs" / "cells.md"


def _doc_example():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[-1]


def test_docs_custom_cell_example_runs():
    ns = {}
    exec(compile(_doc_example(), str(DOC), "exec"), ns)
    assert ns["model"].layers[1].cell.kernel.shape == (16, 8)


class LeakyCell(cells.Cell):
    """The docs' cell (defined here again so the tests do not depend on exec)."""

    def __init__(self, units, leak=0.5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.leak = units, leak
        self.state_size = [units]
        self.output_size = units

    def build(self, input_dim):
        self.add_weight("kernel", (input_dim, self.units), "glorot_uniform")
        self.add_weight("recurrent_kernel", (self.units, self.units), "orthogonal")
        self.add_weight("bias", (self.units,), "zeros")

    def step(self, x_t, states, training=False):
        (h_prev,) = states
        g = np.tanh(x_t @ self.kernel + h_prev @ self.recurrent_kernel + self.bias)
        h = (1 - self.leak) * h_prev + self.leak * g
        return h, [h], (x_t, h_prev, g)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, g = cache
        dh = dy_t + dstates[0]
        dz = dh * self.leak * (1 - g * g)
        dx = dz @ self.kernel.T
        dh_prev = (1 - self.leak) * dh + dz @ self.recurrent_kernel.T
        return dx, [dh_prev], [x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)]

    def get_config(self):
        return {"units": self.units, "leak": self.leak, **super().get_config()}


class TwoStateCell(cells.Cell):
    """Output differs from the states: y = tanh(h) * s, states [h, s] of sizes 3 and 2->3."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_size = [3, 3]
        self.output_size = 3

    def build(self, input_dim):
        self.add_weight("kernel", (input_dim, 3), "glorot_uniform")
        self.add_weight("unused", (2,), "zeros")
        self.add_weight("gate", (3,), "ones")

    def step(self, x_t, states, training=False):
        h, s = states
        hn = np.tanh(x_t @ self.kernel + h)
        sn = s * self.gate + hn
        y = hn * sn
        return y, [hn, sn], (x_t, h, s, hn, sn)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h, s, hn, sn = cache
        dhn = dstates[0] + dy_t * sn
        dsn = dstates[1] + dy_t * hn
        dhn = dhn + dsn
        dz = dhn * (1 - hn * hn)
        return dz @ self.kernel.T, [dz, dsn * self.gate], [x_t.T @ dz, None,
                                                          (dsn * s).sum(axis=0)]


RNG = np.random.default_rng(3)
MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)


def _x(B=3, T=5, F=4):
    return RNG.normal(0, 1.0, (B, T, F))


USER_CELLS = [("leaky", lambda: LeakyCell(4, leak=0.3)), ("two_state", TwoStateCell),
              ("stack", lambda: [LeakyCell(3), rnnkit.layers.LSTMCell(2)])]
OPTIONS = [{}, {"return_sequences": True}, {"go_backwards": True, "return_sequences": True},
           {"return_state": True, "return_sequences": True}]


@pytest.mark.parametrize("name,make", USER_CELLS)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "default")
def test_user_cell_gradients(name, make, opts):
    check_layer(layers.RNN(make(), dtype="float64", **opts), _x())


@pytest.mark.parametrize("name,make", USER_CELLS)
def test_user_cell_mask_gradients(name, make):
    check_layer(layers.RNN(make(), dtype="float64", return_sequences=True), _x(), mask=MASK)
    check_layer(layers.RNN(make(), dtype="float64", go_backwards=True), _x(), mask=MASK)


@pytest.mark.parametrize("name,make", USER_CELLS)
def test_user_cell_initial_state_gradients(name, make):
    layer = layers.RNN(make(), dtype="float64", return_sequences=True, return_state=True)
    x = _x()
    layer.maybe_build(x.shape)
    states = [RNG.normal(0, 0.5, (3, n)) for n in layer.cell.state_size]
    check_layer(layer, x, initial_state=states)


@pytest.mark.parametrize("name,make", USER_CELLS)
def test_user_cell_bidirectional_gradients(name, make):
    bi = layers.Bidirectional(layers.RNN(make(), return_sequences=True), dtype="float64")
    check_layer(bi, _x(), mask=MASK)


def test_user_cell_dropout_gradients():
    check_layer(layers.RNN(LeakyCell(4, dropout=0.3, seed=5), dtype="float64"), _x(),
                training=True)


def test_user_cell_recurrent_dropout_needs_opt_in():
    with pytest.raises(ValueError, match="LeakyCell does not support recurrent_dropout"):
        LeakyCell(3, recurrent_dropout=0.2)


def test_user_cell_stateful_carries_and_gradients():
    """The second call starts from the first call's final states; gradients of that call are
    right (its initial states are constants), and the states equal one pass over both."""
    x = _x(B=2, T=6)
    whole = layers.RNN(LeakyCell(4), dtype="float64")
    stateful = layers.RNN(LeakyCell(4), dtype="float64", stateful=True)
    whole.maybe_build(x.shape)
    stateful.maybe_build(x.shape)
    stateful.set_weights(whole.get_weights())
    stateful(x[:, :3])
    np.testing.assert_allclose(stateful(x[:, 3:]), whole(x), rtol=1e-12, atol=1e-12)
    stateful.reset_states()
    stateful(x[:, :3])
    carried = [s.copy() for s in stateful.states]
    ref = layers.RNN(LeakyCell(4), dtype="float64", return_sequences=True)
    ref.maybe_build(x.shape)
    ref.set_weights(stateful.get_weights())
    # gradients through the stateful call equal those of a call from the same states
    stateful.forward(x[:, 3:], training=True)
    stateful.backward(np.ones((2, 4)))
    ref.forward([x[:, 3:], *carried], training=True)
    ref.backward(np.concatenate([np.zeros((2, 2, 4)), np.ones((2, 1, 4))], 1))
    for k in stateful.grads:
        np.testing.assert_allclose(stateful.grads[k], ref.grads[k], rtol=1e-12, atol=1e-14)


def test_user_cell_trains_and_saves_when_registered(tmp_path):
    cells.register_cell(LeakyCell)
    x = RNG.normal(size=(32, 8, 2)).astype("float32")
    y = x.mean(axis=(1, 2))[:, None]
    model = rnnkit.Sequential([layers.RNN(LeakyCell(8), input_shape=(8, 2)), layers.Dense(1)])
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=0.02), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, batch_size=8, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before, (before, after)
    path = tmp_path / "leaky.rnnkit"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert type(loaded.layers[0].cell) is LeakyCell and loaded.layers[0].cell.leak == 0.5
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_unregistered_user_cell_is_refused_on_load(tmp_path):
    class NotRegistered(LeakyCell):
        pass
    model = rnnkit.Sequential([layers.RNN(NotRegistered(3), input_shape=(4, 2))])
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.rnnkit")
    with pytest.raises(Exception, match="Unknown cell class 'NotRegistered'.*register_cell"):
        rnnkit.load_model(tmp_path / "m.rnnkit")


# -- presets are RNN(cell), bit for bit ---------------------------------------------------------

PRESETS = [
    ("lstm", lambda **k: layers.LSTM(5, **k), lambda: layers.LSTMCell(5)),
    ("gru_after", lambda **k: layers.GRU(5, **k), lambda: layers.GRUCell(5)),
    ("gru_before", lambda **k: layers.GRU(5, reset_after=False, **k),
     lambda: layers.GRUCell(5, reset_after=False)),
    ("simple", lambda **k: layers.SimpleRNN(5, **k), lambda: layers.SimpleRNNCell(5)),
]


@pytest.mark.parametrize("name,preset,cell", PRESETS)
@pytest.mark.parametrize("mode", ["auto", "reference"])
def test_preset_equals_rnn_of_cell_bit_for_bit(name, preset, cell, mode):
    old = kernels.get_kernel_mode()
    kernels.set_kernel_mode(mode)
    try:
        x = RNG.normal(size=(6, 5, 3)).astype("float32")
        y = RNG.normal(size=(6, 5, 2)).astype("float32")
        models = []
        for make in (lambda: preset(return_sequences=True), lambda: layers.RNN(
                cell(), return_sequences=True)):
            m = rnnkit.Sequential([make(), layers.Dense(2)])
            m.build((None, 5, 3))
            models.append(m)
        models[1].set_weights(models[0].get_weights())
        outs, grads = [], []
        for m in models:
            out = m.layers[0].forward(x, training=True, mask=MASK.repeat(2, 0))
            dx = m.layers[0].backward(np.ones_like(out))
            outs.append(out)
            grads.append([dx] + [g.copy() for g in m.layers[0].grads.values()])
        np.testing.assert_array_equal(outs[0], outs[1])
        for a, b in zip(*grads):
            np.testing.assert_array_equal(a, b)
        for m in models:
            m.compile(optimizer="adam", loss="mse")
            m.train_on_batch(x, y)
        for a, b in zip(models[0].get_weights(), models[1].get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(models[0].predict(x, verbose=0),
                                      models[1].predict(x, verbose=0))
    finally:
        kernels.set_kernel_mode(old)


def test_preset_config_is_flat_keras_and_round_trips():
    lstm = layers.LSTM(4, unit_forget_bias=False, return_sequences=True, name="l")
    cfg = lstm.get_config()
    assert "cell" not in cfg and cfg["units"] == 4 and cfg["unit_forget_bias"] is False
    again = layers.LSTM.from_config(cfg)
    assert again.get_config() == cfg
    rnn = layers.RNN(layers.GRUCell(3, reset_after=False), go_backwards=True, name="r")
    cfg = rnn.get_config()
    assert cfg["cell"]["class_name"] == "GRUCell"
    assert layers.RNN.from_config(cfg).get_config() == cfg


# -- exact-type dispatch -------------------------------------------------------------------------

class HalfLSTMCell(layers.LSTMCell):
    """Overrides the protocol: its output is half the LSTM's h (states unchanged)."""

    output_is_state = False

    def step(self, x_t, states, training=False, recurrent_mask=None):
        y, new, cache = super().step(x_t, states, training, recurrent_mask)
        return 0.5 * y, new, cache

    def step_backward(self, dy_t, dstates, cache):
        return super().step_backward(0.5 * dy_t, dstates, cache)


class PlainLSTMCell(layers.LSTMCell):
    """A subclass that changes nothing: no compiled kernel (exact type), same numbers."""


def test_subclass_overriding_step_gets_its_own_results():
    x = RNG.normal(size=(4, 6, 3)).astype("float32")
    base = layers.RNN(layers.LSTMCell(5), return_sequences=True)
    half = layers.RNN(HalfLSTMCell(5), return_sequences=True)
    base.maybe_build(x.shape)
    half.maybe_build(x.shape)
    half.set_weights(base.get_weights())
    assert kernels.kernel_for(half.cell, np.float32) is None
    assert kernels.kernel_for(base.cell, np.float32) is not None
    yb, yh = base(x), half(x)
    np.testing.assert_allclose(yh, 0.5 * yb, rtol=2e-6, atol=1e-7)
    check_layer(layers.RNN(HalfLSTMCell(3), dtype="float64", return_sequences=True), _x(),
                mask=MASK)


def test_subclass_without_overrides_runs_the_generic_loop_with_the_same_math():
    x = RNG.normal(size=(4, 6, 3)).astype("float64")
    base = layers.RNN(layers.LSTMCell(5), dtype="float64", return_sequences=True)
    plain = layers.RNN(PlainLSTMCell(5), dtype="float64", return_sequences=True)
    base.maybe_build(x.shape)
    plain.maybe_build(x.shape)
    plain.set_weights(base.get_weights())
    assert kernels.kernel_for(plain.cell, np.float64) is None
    np.testing.assert_allclose(plain(x), base(x), rtol=1e-12, atol=1e-13)


def test_registering_a_kernel_for_a_subclass_is_exact():
    calls = []

    class Spy:
        @staticmethod
        def supports(cell, dtype):
            return True

        @staticmethod
        def forward(cell, xw, states0, mask=None, rmask=None, ws=None):
            calls.append(type(cell))
            return kernels.reference.forward(cell, xw, states0, mask, rmask)

        backward = staticmethod(kernels.reference.backward)

    class Registered(layers.LSTMCell):
        pass

    class Child(Registered):
        pass

    kernels.register(Registered, Spy)
    x = np.ones((2, 3, 4), np.float32)
    layers.RNN(Registered(3))(x)
    layers.RNN(Child(3))(x)
    assert calls == [Registered]


def test_cell_constructor_errors():
    with pytest.raises(TypeError, match="LSTMCell.*unexpected keyword argument.*bogus"):
        layers.LSTMCell(3, bogus=1)
    with pytest.raises(TypeError, match="reset_after must be True or False, got 'no'"):
        layers.GRUCell(3, reset_after="no")
    with pytest.raises(ValueError, match="units must be a positive integer, got 0"):
        layers.SimpleRNNCell(0)
    with pytest.raises(ValueError, match="dropout must be a float in"):
        layers.LSTMCell(3, dropout=1.5)
    with pytest.raises(TypeError, match="RNN expects a cell"):
        layers.RNN(layers.Dense(3))
    with pytest.raises(ValueError, match="state_size must be a non-empty list"):
        layers.RNN(cells.Cell())
    with pytest.raises(ValueError, match="already declared a parameter named 'kernel'"):
        class Twice(LeakyCell):
            def build(self, input_dim):
                super().build(input_dim)
                self.add_weight("kernel", (1,))
        layers.RNN(Twice(2))(np.zeros((1, 2, 2)))


def test_parameters_read_as_attributes_and_are_the_layer_weights():
    layer = layers.RNN(layers.GRUCell(3))
    layer(np.zeros((1, 2, 4)))
    assert layer.cell.kernel is layer.params["kernel"]
    assert layer.cell.bias.shape == (2, 9)
    assert [s.name for s in layer.cell.param_specs] == ["kernel", "recurrent_kernel", "bias"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = layer.cell.nope


# -- RNN(cell) with built-in cells works wherever the presets do ------------------------------

def _twin_models(mask_zero=False):
    """The same network built from presets and from RNN(cell), with the same weights."""
    def build(lstm, gru):
        return rnnkit.Sequential([
            layers.Input((7,)), layers.Embedding(20, 3, mask_zero=mask_zero),
            layers.Bidirectional(lstm), gru, layers.TimeDistributed(layers.Dense(2))])
    a = build(layers.LSTM(4, return_sequences=True), layers.GRU(3, return_sequences=True))
    b = build(layers.RNN(layers.LSTMCell(4), return_sequences=True),
              layers.RNN(layers.GRUCell(3), return_sequences=True))
    r = np.random.default_rng(0)
    b.set_weights([w + r.normal(0, 0.3, w.shape).astype(w.dtype) for w in a.get_weights()])
    a.set_weights(b.get_weights())
    ids = r.integers(1, 20, size=(5, 7))
    ids[1, 4:] = 0
    return a, b, ids


def test_rnn_of_cell_bidirectional_timedistributed_save_load(tmp_path):
    a, b, ids = _twin_models(mask_zero=True)
    np.testing.assert_array_equal(a.predict(ids, verbose=0), b.predict(ids, verbose=0))
    b.save(tmp_path / "b.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "b.rnnkit")
    assert type(loaded.layers[1].forward_layer) is layers.RNN
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), b.predict(ids, verbose=0))


def test_rnn_of_cell_exports_to_torch_keras_and_onnx(tmp_path):
    import keras
    import onnxruntime as ort
    import torch

    from rnnkit.interop import export_onnx, to_keras, to_torch
    _, b, ids = _twin_models()
    want = b.predict(ids, verbose=0)
    got = to_torch(b)(torch.tensor(ids)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg="rnnkit vs torch")
    to_keras(b, tmp_path / "b.keras")
    got = np.asarray(keras.saving.load_model(tmp_path / "b.keras").predict(ids, verbose=0))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg="rnnkit vs keras")
    export_onnx(b, tmp_path / "b.onnx")
    got = ort.InferenceSession(str(tmp_path / "b.onnx")).run(None, {"input": ids})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg="rnnkit vs onnx")


def test_cells_without_a_counterpart_are_refused_by_exporters(tmp_path):
    from rnnkit.interop import export_onnx, to_torch
    for cell in (LeakyCell(3), HalfLSTMCell(3)):
        m = rnnkit.Sequential([layers.Input((4, 2)), layers.RNN(cell)])
        with pytest.raises(ValueError, match="has no counterpart in other frameworks"):
            to_torch(m)
        with pytest.raises(ValueError, match="has no counterpart in other frameworks"):
            export_onnx(m, tmp_path / "m.onnx")


@pytest.mark.parametrize("cell", [lambda: layers.LSTMCell(4), lambda: layers.GRUCell(4),
                                  lambda: LeakyCell(4)])
def test_rnn_of_cell_streams(cell):
    x = RNG.normal(size=(2, 6, 3)).astype("float32")
    model = rnnkit.Sequential([layers.RNN(cell(), return_sequences=True), layers.Dense(2)])
    whole = model.predict(x, verbose=0)
    stream = model.stream(batch_size=2)
    got = np.stack([stream.step(x[:, t]) for t in range(6)], axis=1)
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-6, err_msg="stream vs predict")


def test_rnn_of_cell_diagnostics_equal_the_preset_and_use_the_cells_step():
    from gradcheck import assert_close_grad

    from rnnkit.diagnostics import gradient_flow, jacobian_spectrum, step_jacobians
    x = RNG.normal(size=(2, 5, 3))
    preset = layers.LSTM(4, dtype="float64")
    rnn = layers.RNN(layers.LSTMCell(4), dtype="float64")
    preset(x)
    rnn(x)
    rnn.set_weights(preset.get_weights())
    np.testing.assert_array_equal(step_jacobians(rnn, x), step_jacobians(preset, x))
    assert set(jacobian_spectrum(rnn, x).gate_singular_values) == set("ifco")
    # a user cell: Jacobians against finite differences of its own step
    leaky = layers.RNN(LeakyCell(3), dtype="float64")
    leaky(x)
    J = step_jacobians(leaky, x[0])
    s = [np.zeros((1, 3))]
    for t in range(5):
        def f(h, t=t):
            return leaky.cell.step(x[0, t][None], [h[None]])[1][0][0]
        num = np.stack([(f(s[0][0] + e) - f(s[0][0] - e)) / 2e-6 for e in np.eye(3) * 1e-6], 1)
        assert_close_grad(J[t], num, f"user cell step Jacobian t={t}", tol=1e-7)
        s = leaky.cell.step(x[0, t][None], s)[1]
    model = rnnkit.Sequential([layers.RNN(LeakyCell(3), return_sequences=True),
                               layers.RNN(layers.GRUCell(2)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    res = gradient_flow(model, x.astype("float32"), np.zeros((2, 1), "float32"))
    assert len(res.layers) == 2 and all(np.isfinite(lf.norms).all() for lf in res.layers)


def test_a_sequence_kernel_registered_for_a_user_cell_runs_and_trains():
    """A whole-sequence kernel (e.g. a parallel scan) registered for a non-projected cell gets
    the (T, B, F) inputs and returns dparams in declaration order; here one that runs the
    cell's own loop, so its gradients must pass the float64 check."""
    calls = []

    class ScanLeaky(LeakyCell):
        pass

    class Kernel:
        @staticmethod
        def supports(cell, dtype):
            return True

        @staticmethod
        def forward(cell, xs, states0, mask=None, rmask=None):
            calls.append(xs.shape)
            return kernels.reference.forward_steps(cell, xs, states0, mask, rmask)

        @staticmethod
        def backward(cell, cache, dys, dstates, mask=None, rmask=None):
            return kernels.reference.backward_steps(cell, cache, dys, dstates, mask)

    kernels.register(ScanLeaky, Kernel)
    check_layer(layers.RNN(ScanLeaky(3), dtype="float64", return_sequences=True), _x(), mask=MASK)
    assert calls and all(c == (5, 3, 4) for c in calls)       # whole sequences, time-major
