"""The issue-14 cells through the RNN layer: float64 central-difference gradients (options,
masks, initial states, Bidirectional, stateful carry), compiled kernels equal to the generic
loop, scan training equal to step-by-step inference, save/load, zoneout, the IndRNN
constraint, and bad arguments."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad
from test_gradients import check_layer

import rnnkit
from rnnkit import kernels, layers

RNG = np.random.default_rng(0)
MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)

NEW = [
    ("mingru", lambda **k: layers.MinGRU(4, **k)),
    ("minlstm", lambda **k: layers.MinLSTM(4, **k)),
    ("lru", lambda **k: layers.LRU(3, state_size=4, **k)),
    ("indrnn", lambda **k: layers.IndRNN(4, timesteps=5, **k)),
    ("slstm", lambda **k: layers.sLSTM(4, num_heads=2, **k)),
    ("lnlstm", lambda **k: layers.LayerNormLSTM(4, **k)),
    ("lngru", lambda **k: layers.LayerNormGRU(4, **k)),
    ("lstm_peephole", lambda **k: layers.LSTM(4, use_peepholes=True, **k)),
    ("lstm_proj", lambda **k: layers.LSTM(4, proj_size=2, **k)),
    ("lstm_peephole_proj", lambda **k: layers.LSTM(4, use_peepholes=True, proj_size=3, **k)),
    ("lstm_zoneout", lambda **k: layers.LSTM(4, zoneout=0.3, **k)),
    ("gru_zoneout", lambda **k: layers.GRU(4, zoneout=0.3, **k)),
    ("lngru_zoneout", lambda **k: layers.LayerNormGRU(4, zoneout=0.3, **k)),
]
OPTIONS = [{}, {"return_sequences": True}, {"go_backwards": True, "return_sequences": True},
           {"return_state": True, "return_sequences": True}]


def _x(B=3, T=5, F=3):
    return RNG.normal(0, 1.0, (B, T, F))


@pytest.mark.parametrize("name,make", NEW)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "default")
def test_gradients(name, make, opts):
    check_layer(make(dtype="float64", **opts), _x())


@pytest.mark.parametrize("name,make", NEW)
def test_mask_gradients(name, make):
    check_layer(make(dtype="float64", return_sequences=True), _x(), mask=MASK)
    check_layer(make(dtype="float64", go_backwards=True), _x(), mask=MASK)


@pytest.mark.parametrize("name,make", NEW)
def test_initial_state_and_bidirectional_gradients(name, make):
    layer = make(dtype="float64", return_sequences=True, return_state=True)
    x = _x()
    layer.maybe_build(x.shape)
    states = [np.abs(RNG.normal(0, 0.5, (3, n))) + 0.1 for n in layer.cell.state_size]
    check_layer(layer, x, initial_state=states)
    check_layer(layers.Bidirectional(make(return_sequences=True), dtype="float64"), _x(),
                mask=MASK)


@pytest.mark.parametrize("name,make", NEW)
def test_stateful_carry_equals_one_pass(name, make):
    x = _x(B=2, T=6)
    whole = make(dtype="float64", return_sequences=True)
    stateful = make(dtype="float64", return_sequences=True, stateful=True)
    whole.maybe_build(x.shape)
    stateful.maybe_build(x.shape)
    stateful.set_weights(whole.get_weights())
    out = np.concatenate([stateful(x[:, :4]), stateful(x[:, 4:])], axis=1)
    np.testing.assert_allclose(out, whole(x), rtol=1e-12, atol=1e-12)
    # gradients through a carried call equal those of a call from the same initial states
    # (those are finite-difference checked in test_initial_state_and_bidirectional_gradients)
    stateful.reset_states()
    stateful(x[:, :4])
    carried = [s.copy() for s in stateful.states]
    ref = make(dtype="float64", return_sequences=True)
    ref.maybe_build(x.shape)
    ref.set_weights(stateful.get_weights())
    dy = RNG.normal(size=(2, 2, stateful.cell.output_size))
    for layer, inputs in ((stateful, x[:, 4:]), (ref, [x[:, 4:], *carried])):
        if hasattr(layer.cell, "zoneout_rng"):       # the same zoneout masks in both calls
            layer.cell.zoneout_rng = np.random.default_rng(3)
        layer.forward(inputs, training=True)
        layer.backward(dy)
    for k in stateful.grads:
        np.testing.assert_allclose(stateful.grads[k], ref.grads[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,make", [c for c in NEW if "zoneout" in c[0]])
def test_zoneout_gradients_with_fixed_masks(name, make):
    layer = make(dtype="float64", return_sequences=True)
    reset = layer.reset_dropout_rng

    def same_masks():                  # check_layer calls this before every forward pass
        reset()
        layer.cell.zoneout_rng = np.random.default_rng(7)
    layer.reset_dropout_rng = same_masks
    check_layer(layer, _x(), mask=MASK, training=True)


def test_zoneout_training_is_stochastic_inference_is_the_expectation():
    x = _x(B=2, T=4)
    layer = layers.LSTM(3, zoneout=0.4, return_sequences=True, dtype="float64")
    plain = layers.LSTM(3, return_sequences=True, dtype="float64")
    layer.maybe_build(x.shape)
    plain.maybe_build(x.shape)
    plain.set_weights(layer.get_weights())
    a, b = layer.forward(x, training=True), layer.forward(x, training=True)
    assert not np.allclose(a, b)
    # inference: h_t = 0.4 h_{t-1} + 0.6 h~_t, step by step from the plain cell's candidate
    cell, h, c = plain.cell, np.zeros((2, 3)), np.zeros((2, 3))
    want = []
    for t in range(4):
        hn, (_, c), _ = cell.step(x[:, t], [h, c])
        h = 0.4 * h + 0.6 * hn
        want.append(h)
    np.testing.assert_allclose(layer(x), np.stack(want, 1), rtol=1e-12)


SCAN = [("mingru", lambda **k: layers.MinGRU(6, **k)),
        ("minlstm", lambda **k: layers.MinLSTM(6, **k)),
        ("lru", lambda **k: layers.LRU(5, state_size=7, **k)),
        ("indrnn", lambda **k: layers.IndRNN(6, **k))]


@pytest.mark.parametrize("name,make", SCAN)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_kernel_equals_generic_loop(name, make, dtype):
    x = _x(B=5, T=9, F=3).astype(dtype)
    mask = RNG.random((5, 9)) > 0.3
    layer = make(dtype=dtype, return_sequences=True)
    layer.maybe_build(x.shape)
    assert kernels.kernel_for(layer.cell, np.dtype(dtype)) is not None
    dy = RNG.normal(size=(5, 9, layer.cell.output_size)).astype(dtype)
    res = {}
    for mode in ("auto", "reference"):
        kernels.set_kernel_mode(mode)
        try:
            out = layer.forward(x, training=True, mask=mask)
            dx = layer.backward(dy)
            res[mode] = [out, dx] + [layer.grads[k].copy() for k in layer.params]
        finally:
            kernels.set_kernel_mode("auto")
    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(res["auto"], res["reference"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,make", SCAN)
def test_scan_training_equals_step_by_step_streaming(name, make):
    """Training runs the compiled scan over the whole sequence; streaming runs the cell's step
    one input at a time: equal to float32 rounding."""
    x = _x(B=4, T=30, F=3).astype("float32")
    layer = make(return_sequences=True)
    layer.maybe_build(x.shape)
    whole = layer.forward(x, training=True)
    states, outs = None, []
    for t in range(x.shape[1]):
        y, states = layer.step(x[:, t], states)
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, 1), whole, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name,make", NEW)
def test_save_load_round_trip(name, make, tmp_path):
    x = _x(B=4, T=6).astype("float32")
    model = rnnkit.Sequential([layers.Input((None, 3)), make(), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, RNG.normal(size=(4, 2)).astype("float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "m.rnnkit")
    assert type(loaded.layers[0]) is type(model.layers[0])
    assert loaded.layers[0].cell.get_config() == model.layers[0].cell.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_indrnn_constraint_holds_after_updates_and_long_sequences_stay_finite():
    T = 1000
    layer = layers.IndRNN(8, timesteps=T)
    bound = 2 ** (1 / T)
    assert layer.cell.bound == pytest.approx(bound)
    model = rnnkit.Sequential([layers.Input((None, 2)), layer, layers.Dense(1)])
    model.compile(optimizer=rnnkit.optimizers.SGD(learning_rate=100.0), loss="mse")
    x, y = rnnkit.data.adding_problem(16, T, seed=0)
    model.fit(x, y * 50, epochs=1, batch_size=8, verbose=0)
    u = layer.cell.recurrent_kernel
    assert np.all(np.abs(u) <= bound + 1e-7) and np.any(np.abs(u) > 0.999 * bound)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


def test_proj_lstm_shapes_and_state_sizes():
    out, h, c = layers.LSTM(6, proj_size=2, return_state=True)(np.ones((3, 4, 5)))
    assert out.shape == (3, 2) and h.shape == (3, 2) and c.shape == (3, 6)
    cell = layers.LSTMCell(6, proj_size=2)
    assert cell.state_size == [2, 6] and cell.output_size == 2


@pytest.mark.parametrize("make,match", [
    (lambda: layers.LSTM(4, proj_size=-1), r"proj_size must be an integer in \[0, units\) = "
                                           r"\[0, 4\) \(0: no projection\), got -1"),
    (lambda: layers.LSTM(4, proj_size=4), r"proj_size must be .*got 4"),
    (lambda: layers.LSTM(4, proj_size=2.5), r"proj_size must be .*got 2.5"),
    (lambda: layers.LSTM(4, zoneout=1.0), r"zoneout must be a float in \[0, 1\), got 1.0"),
    (lambda: layers.GRU(4, zoneout=-0.1), r"zoneout must be a float in \[0, 1\), got -0.1"),
    (lambda: layers.LayerNormLSTM(4, zoneout=2), r"zoneout must be a float in \[0, 1\), got 2"),
    (lambda: layers.LRU(4, r_min=0.0), r"r_min must be a radius in the open interval \(0, 1\), "
                                       r"got 0.0"),
    (lambda: layers.LRU(4, r_max=1.0), r"r_max must be a radius .*got 1.0"),
    (lambda: layers.LRU(4, r_min=0.9, r_max=0.5), r"r_min must be <= r_max"),
    (lambda: layers.LRU(4, max_phase=0), r"max_phase must be a positive number, got 0"),
    (lambda: layers.sLSTM(10, num_heads=4), r"num_heads must divide units: got num_heads=4 "
                                            r"for units=10"),
    (lambda: layers.sLSTM(8, num_heads=0), r"num_heads must be a positive integer, got 0"),
    (lambda: layers.IndRNN(4, recurrent_max_abs=-1), r"recurrent_max_abs must be a positive"),
    (lambda: layers.IndRNN(4, timesteps=0), r"timesteps must be a positive integer, got 0"),
    (lambda: layers.MinGRU(0), r"units must be a positive integer, got 0"),
])
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_argument_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="unexpected keyword argument.*recurent_dropout"):
        layers.MinGRU(4, recurent_dropout=0.1)


def test_mingru_and_lru_learn_the_adding_problem():
    """Known answer: predicting 1 scores MSE 0.167. The LRU is linear in its input, so (as in
    the paper's blocks) a non-linear layer before it forms value * marker."""
    x, y = rnnkit.data.adding_problem(1024, 30, seed=0)
    xt, yt = rnnkit.data.adding_problem(256, 30, seed=1)
    for make in (lambda: [layers.MinGRU(16)],
                 lambda: [layers.Dense(16, activation="relu"),
                          layers.LRU(16, r_min=0.9, r_max=0.999)]):
        rnnkit.utils.set_random_seed(0)
        model = rnnkit.Sequential([layers.Input((None, 2)), *make(), layers.Dense(1)])
        model.compile(optimizer=rnnkit.optimizers.Adam(2e-2), loss="mse")
        model.fit(x, y, epochs=8, batch_size=32, verbose=0)
        mse = float(model.evaluate(xt, yt, verbose=0))
        assert mse < 0.05, (model.layers[-2].name, mse)


def test_numerical_check_through_the_scan_at_longer_sequences():
    """A float64 finite-difference check of the compiled scans over 40 steps."""
    for make in (lambda: layers.MinGRU(3, dtype="float64"),
                 lambda: layers.LRU(2, state_size=3, dtype="float64")):
        layer = make()
        x = _x(B=2, T=40, F=2)
        layer.maybe_build(x.shape)
        assert kernels.kernel_for(layer.cell, np.dtype("float64")) is not None
        w = RNG.normal(size=(2, layer.cell.output_size))

        def loss(layer=layer, x=x, w=w):
            return float((layer.forward(x, training=True) * w).sum())
        loss()
        layer.backward(w)
        for k, v in layer.params.items():
            assert_close_grad(layer.grads[k], numerical_grad(loss, v), k)


@pytest.mark.parametrize("cell", ["mingru", "lru", "slstm"])
def test_cli_train_with_a_new_cell_and_reload(cell, tmp_path, capsys):
    from test_cli import TINY, last_json, run_cli, write_ts
    train = write_ts(tmp_path / "train.ts")
    test = write_ts(tmp_path / "test.ts", n_per_class=3, seed=1)
    model = tmp_path / "m.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", train, "--test", test, "--out", model,
                             "--cell", cell, *TINY)
    assert code == 0, err
    assert 0.0 <= last_json(out)["test"]["accuracy"] <= 1.0
    # the classify defaults may put a per-step Dense before, and Bidirectional around, the cell
    layers = rnnkit.load_model(model).layers
    names = {type(la).__name__ for la in layers} | {
        type(la.forward_layer).__name__ for la in layers if hasattr(la, "forward_layer")}
    assert {"mingru": "MinGRU", "lru": "LRU", "slstm": "sLSTM"}[cell] in names


@pytest.mark.parametrize("name,make", NEW)
def test_diagnostics_run_on_every_new_cell(name, make):
    from rnnkit.diagnostics import gradient_flow, jacobian_spectrum
    x, y = rnnkit.data.adding_problem(8, 12, seed=0)
    model = rnnkit.Sequential([layers.Input((None, 2)), make(), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    flow = gradient_flow(model, x, y)
    assert flow.layers[0].norms.shape == (12,) and np.all(np.isfinite(flow.layers[0].norms))
    spec = jacobian_spectrum(model.layers[0], x)
    assert np.all(np.isfinite(spec.step_singular_values))
    if name == "indrnn":
        u = model.layers[0].cell.recurrent_kernel
        assert spec.kernel_spectral_radius == pytest.approx(np.abs(u).max())


def test_long_memory_tasks_and_experiment_smoke(tmp_path):
    from rnnkit.diagnostics import run_long_memory
    from rnnkit.diagnostics._longmemory import make_task
    for name, kind, steps in (("copy100", "seq", 120), ("selective", "seq", 104),
                              ("digits", "cls", 64), ("mnist1d", "cls", 40),
                              ("adding500", "mse", 500)):
        task = make_task(name, 8, 4)
        assert task.kind == kind and task.data[0].shape[:2] == (8, steps)
        assert len(task.data[2]) == 4
    res = run_long_memory(tasks=("adding100", "selective"), cells=("MinGRU", "LRU"), units=4,
                          epochs=1, n_train=16, n_test=8, batch_size=8, out_dir=tmp_path,
                          verbose=0)
    assert len(res.rows) == 4 and (tmp_path / "long_memory.md").exists()
    assert "| MinGRU |" in res.table()
