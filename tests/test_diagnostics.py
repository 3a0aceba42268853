"""Gradient-flow diagnostics: per-step gradients, verdicts, Jacobians, monitor, plots, CLI."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from gradcheck import assert_close_grad

import rnnkit
from rnnkit.data import adding_problem
from rnnkit.diagnostics import (
    GradientMonitor,
    cell_step_jacobian,
    gradient_flow,
    jacobian_spectrum,
    plot_gradient_flow,
    plot_gradient_history,
    plot_history,
    plot_jacobian_spectrum,
    step_jacobians,
)

CELL_CLASSES = {"SimpleRNN": rnnkit.layers.SimpleRNN, "LSTM": rnnkit.layers.LSTM,
                "GRU": rnnkit.layers.GRU}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny matrix products: one BLAS thread avoids hand-off overhead on a busy machine."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        yield


def _perturb(layer, rng, scale=0.4):
    """Random non-zero weights (biases included) so that every path is exercised."""
    layer.set_weights([w + rng.normal(scale=scale, size=w.shape) for w in layer.get_weights()])


def _assert_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG file (starts with {data[:8]!r})"
    assert len(data) > 1024, f"{path} is only {len(data)} bytes"


# --------------------------------------------------------------------------------------------
# per-step gradient norms vs finite differences of the loss w.r.t. a perturbation of h_t
# --------------------------------------------------------------------------------------------
def _manual_loss(model, x, y, inject=None):
    """MSE of the stacked model computed step by step with the cells, independently of the
    layers and kernels. ``inject = (layer index, t, b, i, eps)`` adds ``eps`` to h_t[b, i]
    of that layer right after step t (the perturbed h_t is both output and carried state)."""
    h_in = x
    for li, layer in enumerate(model.layers[:-1]):
        B, T, _ = h_in.shape
        states = tuple(np.zeros((B, layer.units)) for _ in range(layer.n_states))
        outs = []
        for t in range(T):
            _, states, _ = layer.cell.step(h_in[:, t], list(states))
            if inject is not None and inject[0] == li and inject[1] == t:
                h = states[0].copy()
                h[inject[2], inject[3]] += inject[4]
                states = (h,) + tuple(states[1:])
            outs.append(states[0])
        h_in = np.stack(outs, axis=1) if layer.return_sequences else states[0]
    dense = model.layers[-1]
    y_pred = h_in @ dense.params["kernel"] + dense.params["bias"]
    return float(np.mean((y_pred - y) ** 2))


@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU", "GRU_reset_before"])
def test_per_step_norms_match_finite_differences(cell):
    rng = np.random.default_rng(0)
    cls = CELL_CLASSES[cell.split("_")[0]]
    kw = {"reset_after": False} if cell == "GRU_reset_before" else {}
    B, T, F, H = 3, 6, 2, 3
    model = rnnkit.Sequential([cls(H, return_sequences=True, dtype="float64", **kw),
                               cls(H, dtype="float64", **kw),
                               rnnkit.layers.Dense(2, dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 2))
    model(x)
    for layer in model.layers:
        _perturb(layer, rng)
    res = gradient_flow(model, x, y)
    assert abs(res.loss - _manual_loss(model, x, y)) < 1e-12
    eps = 1e-6
    for li, lf in enumerate(res.layers):
        g = np.zeros((T, B, H))
        for t in range(T):
            for b in range(B):
                for i in range(H):
                    lp = _manual_loss(model, x, y, (li, t, b, i, eps))
                    lm = _manual_loss(model, x, y, (li, t, b, i, -eps))
                    g[t, b, i] = (lp - lm) / (2 * eps)
        numeric = np.linalg.norm(g, axis=2).mean(axis=1)            # mean over the batch
        assert_close_grad(lf.norms, numeric, f"{cell} layer {li} ||dL/dh_t||", tol=1e-6)


def test_per_step_norms_under_a_mask_and_go_backwards():
    """Right-padded sequences (Masking) and a go_backwards layer: finite differences agree."""
    rng = np.random.default_rng(1)
    B, T, F, H = 3, 5, 2, 3
    x = rng.normal(size=(B, T, F))
    x[0, 3:] = 0.0                                            # sample 0 has 3 real steps
    y = rng.normal(size=(B, 1))
    layer = rnnkit.layers.LSTM(H, go_backwards=True, dtype="float64")
    model = rnnkit.Sequential([rnnkit.layers.Masking(0.0, dtype="float64"), layer,
                               rnnkit.layers.Dense(1, dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    model(x)
    _perturb(layer, rng)
    lf = gradient_flow(model, x, y).layers[0]
    mask = np.any(x != 0.0, axis=2)

    def loss(t_inj, b, i, eps):
        s = (np.zeros((B, H)), np.zeros((B, H)))
        for t in range(T):                                   # processing order
            src = T - 1 - t
            _, new, _ = layer.cell.step(x[:, src], list(s))
            m = mask[:, src][:, None]
            s = tuple(np.where(m, n, o) for n, o in zip(new, s, strict=True))
            if t == t_inj:
                h = s[0].copy()
                h[b, i] += eps
                s = (h, s[1])
        d = model.layers[-1]
        return float(np.mean((s[0] @ d.params["kernel"] + d.params["bias"] - y) ** 2))

    g = np.zeros((T, B, H))
    for t in range(T):
        for b in range(B):
            for i in range(H):
                g[t, b, i] = (loss(t, b, i, 1e-6) - loss(t, b, i, -1e-6)) / 2e-6
    assert_close_grad(lf.norms, np.linalg.norm(g, axis=2).mean(axis=1), "masked LSTM ||dL/dh_t||")


def test_per_step_norms_inside_bidirectional():
    """Both directions of a Bidirectional wrapper are measured; finite differences agree."""
    rng = np.random.default_rng(4)
    B, T, F, H = 2, 5, 2, 3
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    bi = rnnkit.layers.Bidirectional(rnnkit.layers.GRU(H, dtype="float64"))
    model = rnnkit.Sequential([bi, rnnkit.layers.Dense(1, dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    model(x)
    for inner in (bi.forward_layer, bi.backward_layer):
        _perturb(inner, rng)
    res = gradient_flow(model, x, y)
    assert [lf.name for lf in res.layers] == [f"{bi.name}/{bi.forward_layer.name}",
                                             f"{bi.name}/{bi.backward_layer.name}"]
    assert set(res.param_norms) == {f"{bi.name}/{k}" for k in bi.params} | {
        f"{model.layers[1].name}/kernel", f"{model.layers[1].name}/bias"}

    def final_state(layer, inject):
        h = np.zeros((B, H))
        order = range(T - 1, -1, -1) if layer.go_backwards else range(T)
        for t, src in enumerate(order):
            _, (h,), _ = layer.cell.step(x[:, src], [h])
            if inject is not None and inject[0] == t:
                h = h.copy()
                h[inject[1], inject[2]] += inject[3]
        return h

    def loss(direction, inject):
        hf = final_state(bi.forward_layer, inject if direction == 0 else None)
        hb = final_state(bi.backward_layer, inject if direction == 1 else None)
        d = model.layers[1]
        out = np.concatenate([hf, hb], axis=1) @ d.params["kernel"] + d.params["bias"]
        return float(np.mean((out - y) ** 2))

    for direction, lf in enumerate(res.layers):
        g = np.zeros((T, B, H))
        for t in range(T):
            for b in range(B):
                for i in range(H):
                    g[t, b, i] = (loss(direction, (t, b, i, 1e-6))
                                  - loss(direction, (t, b, i, -1e-6))) / 2e-6
        assert_close_grad(lf.norms, np.linalg.norm(g, axis=2).mean(axis=1),
                          f"Bidirectional direction {direction} ||dL/dh_t||")


def test_parameter_norms_cover_every_weight_and_match_training_gradients():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 7, 2)), rng.normal(size=(4, 1))
    model = rnnkit.Sequential([rnnkit.layers.GRU(3, dtype="float64"),
                               rnnkit.layers.Dense(1, dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    model(x)
    res = gradient_flow(model, x, y)
    expected = {f"{la.name}/{n}" for la in model.layers for n in la.params}
    assert set(res.param_norms) == expected
    model._loss_and_grad(x, y, None, None)                    # the training engine's gradient
    for la in model.layers:
        for n, g in la.grads.items():
            assert abs(res.param_norms[f"{la.name}/{n}"] - np.linalg.norm(g)) < 1e-12, (
                f"{la.name}/{n}: gradient_flow {res.param_norms[f'{la.name}/{n}']} vs "
                f"training {np.linalg.norm(g)}")


# --------------------------------------------------------------------------------------------
# constructed verdicts
# --------------------------------------------------------------------------------------------
def _scaled_orthogonal_rnn(radius, T, H=8, activation="tanh", x_scale=1.0, seed=0):
    """A SimpleRNN whose recurrent kernel is ``radius`` times an orthogonal matrix, so that
    every eigenvalue has modulus ``radius`` (spectral radius = spectral norm = radius)."""
    rng = np.random.default_rng(seed)
    layer = rnnkit.layers.SimpleRNN(H, activation=activation, dtype="float64")
    model = rnnkit.Sequential([layer, rnnkit.layers.Dense(1, dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    x = x_scale * rng.normal(size=(16, T, 2))
    y = rng.normal(size=(16, 1))
    model(x)
    q, _ = np.linalg.qr(rng.normal(size=(H, H)))
    layer.params["recurrent_kernel"][...] = radius * q
    assert abs(np.max(np.abs(np.linalg.eigvals(layer.params["recurrent_kernel"]))) - radius) < 1e-9
    return model, x, y


def test_spectral_radius_half_is_vanishing():
    model, x, y = _scaled_orthogonal_rnn(0.5, T=40)
    lf = gradient_flow(model, x, y).layers[0]
    assert lf.verdict == "vanishing", lf.reason
    assert lf.per_step_factor <= 0.5 + 1e-9, lf.per_step_factor   # tanh' <= 1 only shrinks it
    assert lf.memory_horizon <= 10, lf.memory_horizon              # 0.5**10 ~ 1e-3
    assert "1e-03" in lf.reason and str(lf.memory_horizon) in lf.reason


@pytest.mark.parametrize("activation,x_scale", [("linear", 1.0), ("tanh", 1e-8)])
def test_spectral_radius_two_without_saturation_is_exploding(activation, x_scale):
    """Radius 2 with a linear activation, or tanh kept in its linear range by tiny inputs."""
    model, x, y = _scaled_orthogonal_rnn(2.0, T=15, activation=activation, x_scale=x_scale)
    res = gradient_flow(model, x, y)
    lf = res.layers[0]
    assert res.verdict == lf.verdict == "exploding", lf.reason
    assert 1.9 < lf.per_step_factor <= 2.0 + 1e-9, lf.per_step_factor
    assert lf.max_growth > 1e3


def test_orthogonal_radius_one_linear_is_healthy():
    model, x, y = _scaled_orthogonal_rnn(1.0, T=30, activation="linear")
    lf = gradient_flow(model, x, y).layers[0]
    assert lf.verdict == "healthy", lf.reason
    assert lf.memory_horizon == 29
    np.testing.assert_allclose(lf.ratio, 1.0, rtol=0.5)


def test_lstm_forget_bias_one_has_a_longer_horizon_than_simple_rnn_on_adding():
    """Same recurrent initialisation for both (the classic uniform(+-1/sqrt(H)) of RNN
    tutorials); the LSTM's forget bias 1 keeps dc_t/dc_{t-1} = f ~ sigmoid(1) ~ 0.73 per step,
    while the SimpleRNN's Jacobian diag(tanh') U^T has spectral radius ~ 0.58."""
    x, y = adding_problem(64, 60, seed=0)
    H = 16
    init = rnnkit.initializers.RandomUniform(-1 / np.sqrt(H), 1 / np.sqrt(H))
    horizons = {}
    for name in ("SimpleRNN", "LSTM"):
        rnnkit.utils.set_random_seed(0)
        model = rnnkit.Sequential([CELL_CLASSES[name](H, recurrent_initializer=init),
                                   rnnkit.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        horizons[name] = gradient_flow(model, x, y).layers[0].memory_horizon
    assert model.layers[0].unit_forget_bias
    assert np.all(model.layers[0].params["bias"][H:2 * H] == 1.0)
    assert horizons["LSTM"] > horizons["SimpleRNN"] + 5, horizons


def test_judge_rules_on_synthetic_curves():
    from rnnkit.diagnostics import judge
    T = 50
    assert judge(0.5 ** np.arange(T)[::-1])["verdict"] == "vanishing"
    assert judge(2.0 ** np.arange(T)[::-1])["verdict"] == "exploding"
    assert judge(np.ones(T))["verdict"] == "healthy"
    j = judge(np.r_[np.full(10, 1e-5), np.ones(40)])
    assert j["memory_horizon"] == 39 and j["verdict"] == "vanishing"
    j = judge(np.r_[np.nan, np.ones(5)])
    assert j["verdict"] == "exploding" and "not finite" in j["reason"]


def test_summary_and_json():
    x, y = adding_problem(8, 12, seed=0)
    model = rnnkit.Sequential([rnnkit.layers.LSTM(4), rnnkit.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    res = gradient_flow(model, x, y)
    text = res.summary(print_fn=None)
    assert model.layers[0].name in text and "Verdict:" in text
    assert f"{model.layers[1].name}/kernel" in text
    d = json.loads(res.to_json())
    assert d["verdict"] == res.verdict and len(d["layers"][0]["norms"]) == 12
    assert len(d["layers"][0]["cell_norms"]) == 12


def test_gradient_flow_errors_are_helpful():
    model = rnnkit.Sequential([rnnkit.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="has no recurrent layer"):
        gradient_flow(model, np.ones((2, 3)), np.ones((2, 2)))
    model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(2), rnnkit.layers.Dense(1)])
    with pytest.raises(ValueError, match="not compiled and no loss= was given"):
        gradient_flow(model, np.ones((2, 3, 1)), np.ones((2, 1)))
    assert gradient_flow(model, np.ones((2, 3, 1)), np.ones((2, 1)), loss="mse").verdict


def test_stateful_layer_states_are_left_untouched():
    layer = rnnkit.layers.GRU(3, stateful=True)
    model = rnnkit.Sequential([layer, rnnkit.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.random.rand(2, 4, 1), np.random.rand(2, 1)
    model.predict(x, batch_size=2)
    before = [s.copy() for s in layer.states]
    gradient_flow(model, x, y)
    for a, b in zip(before, layer.states, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "forward" not in layer.__dict__ and "backward" not in layer.__dict__


# --------------------------------------------------------------------------------------------
# Jacobians
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU", "GRU_reset_before"])
def test_step_jacobians_match_finite_differences(cell):
    rng = np.random.default_rng(3)
    cls = CELL_CLASSES[cell.split("_")[0]]
    kw = {"reset_after": False} if cell == "GRU_reset_before" else {}
    H, T = 4, 5
    layer = cls(H, dtype="float64", **kw)
    x = rng.normal(size=(T, 3))
    layer(x[None])
    _perturb(layer, rng, 0.6)
    J = step_jacobians(layer, x)
    S = H * layer.n_states
    assert J.shape == (T, S, S)
    s = np.zeros(S)
    for t in range(T):
        def step(state, x_t=x[t][None]):
            parts = [state[k * H:(k + 1) * H][None] for k in range(layer.n_states)]
            _, new, _ = layer.cell.step(x_t, parts)
            return np.concatenate(new, axis=1)[0]

        numeric = np.zeros((S, S))
        for j in range(S):
            e = np.zeros(S)
            e[j] = 1e-6
            numeric[:, j] = (step(s + e) - step(s - e)) / 2e-6
        assert_close_grad(J[t], numeric, f"{cell} step Jacobian at t={t}", tol=1e-7)
        s = step(s)


def test_jacobian_spectrum_products_and_kernel():
    model, x, _ = _scaled_orthogonal_rnn(0.5, T=20, activation="linear")
    layer = model.layers[0]
    sp = jacobian_spectrum(layer, x, sample=3)
    np.testing.assert_allclose(sp.kernel_singular_values, 0.5, rtol=1e-12)
    np.testing.assert_allclose(sp.kernel_spectral_radius, 0.5, rtol=1e-12)
    np.testing.assert_allclose(sp.step_spectral_norms, 0.5, rtol=1e-12)
    np.testing.assert_allclose(sp.product_spectral_norms, 0.5 ** np.arange(1, 21), rtol=1e-9)
    J = step_jacobians(layer, x, sample=3)
    k = 7
    P = np.eye(8)
    for t in range(19, 19 - k, -1):
        P = P @ J[t]
    np.testing.assert_allclose(sp.product_spectral_norms[k - 1], np.linalg.norm(P, 2), rtol=1e-9)
    assert "spectral radius 0.5" in sp.summary(print_fn=None)
    lstm = rnnkit.layers.LSTM(3)
    lstm(np.zeros((1, 4, 2)))
    sp = jacobian_spectrum(lstm, np.random.rand(4, 2))
    assert sp.step_singular_values.shape == (4, 6) and set(sp.gate_singular_values) == set("ifco")
    with pytest.raises(TypeError, match="RNN, SimpleRNN, LSTM or GRU"):
        jacobian_spectrum(rnnkit.layers.Dense(2), np.zeros((3, 2)))


def test_cell_step_jacobian_rejects_unknown_cells():
    with pytest.raises(TypeError, match="needs a cell following the rnnkit cell protocol"):
        cell_step_jacobian(object(), np.zeros(2), [np.zeros(2)])


# --------------------------------------------------------------------------------------------
# GradientMonitor
# --------------------------------------------------------------------------------------------
def test_gradient_monitor_records_norms_before_and_after_clipping():
    x, y = adding_problem(96, 10, seed=0)
    model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(8, name="simple_rnn"),
                               rnnkit.layers.Dense(1, name="dense")])
    model.compile(optimizer=rnnkit.optimizers.SGD(0.01, clipnorm=0.05), loss="mse")
    mon = GradientMonitor()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[mon], shuffle=False)
    assert len(mon.global_norms) == 6 and set(mon.layer_norms) == {"simple_rnn", "dense"}
    for name in ("simple_rnn", "dense"):
        assert len(mon.layer_norms[name]) == len(mon.layer_norms_clipped[name]) == 6
    # the last batch: pre-clip norms equal the optimizer's and the layers' gradients
    opt = model.optimizer
    assert abs(mon.global_norms[-1] - opt.last_grad_norm) < 1e-6 * opt.last_grad_norm
    assert abs(mon.global_norms_clipped[-1] - opt.last_clipped_grad_norm) < 1e-6
    rnn_pre = np.sqrt(sum(np.vdot(g, g) for g in model.layers[0].grads.values()))
    assert abs(mon.layer_norms["simple_rnn"][-1] - rnn_pre) < 1e-5 * rnn_pre
    per_weight = [min(n, 0.05) for n in opt.last_grad_norms[:3]]
    assert abs(mon.layer_norms_clipped["simple_rnn"][-1] - np.linalg.norm(per_weight)) < 1e-6
    assert mon.clip_rate == 1.0 and all(mon.clipped)
    assert all(post <= pre + 1e-9 for pre, post in zip(mon.global_norms, mon.global_norms_clipped, strict=True))

    model.compile(optimizer=rnnkit.optimizers.SGD(0.01, clipnorm=1e6), loss="mse")
    mon2 = GradientMonitor()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[mon2])
    assert mon2.clip_rate == 0.0
    assert mon2.global_norms == mon2.global_norms_clipped


def test_gradient_monitor_warns_exactly_once_with_advice():
    model, x, y = _scaled_orthogonal_rnn(2.0, T=15, activation="linear")
    model.compile(optimizer=rnnkit.optimizers.SGD(1e-12, clipnorm=1.0), loss="mse")
    mon = GradientMonitor(exploding_threshold=10.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[mon])
    mine = [w for w in caught if "GradientMonitor" in str(w.message)]
    assert len(mon.global_norms) == 8 and min(mon.global_norms) > 10.0
    assert len(mine) == 1, [str(w.message) for w in mine]
    msg = str(mine[0].message)
    assert issubclass(mine[0].category, RuntimeWarning)
    for advice in ("clipnorm", "learning rate", "LSTM or GRU", "orthogonal"):
        assert advice in msg, msg
    assert mon.clip_rate == 1.0


def test_gradient_monitor_probe_warns_vanishing_once():
    model, x, y = _scaled_orthogonal_rnn(0.5, T=40)
    model.compile(optimizer=rnnkit.optimizers.SGD(1e-9), loss="mse")
    mon = GradientMonitor(probe=(x, y))
    with pytest.warns(RuntimeWarning, match="vanishing gradients.*gated cell") as rec:
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[mon])
    assert sum("GradientMonitor" in str(w.message) for w in rec) == 1
    assert [e for e, _ in mon.flow] == [0, 1, 2]
    assert all(r.verdict == "vanishing" for _, r in mon.flow)
    with pytest.raises(ValueError, match="probe must be a tuple"):
        GradientMonitor(probe=x)


# --------------------------------------------------------------------------------------------
# plots and command line
# --------------------------------------------------------------------------------------------
def test_plots_write_png_images(tmp_path):
    x, y = adding_problem(64, 20, seed=0)
    results, hists = {}, {}
    mon = GradientMonitor()
    for name in ("SimpleRNN", "LSTM", "GRU"):
        model = rnnkit.Sequential([CELL_CLASSES[name](8), rnnkit.layers.Dense(1)])
        model.compile(optimizer=rnnkit.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
        hists[name] = model.fit(x, y, batch_size=32, epochs=2, verbose=0,
                                validation_data=(x, y), callbacks=[mon])
        results[name] = gradient_flow(model, x, y)
    p1 = tmp_path / "flow.png"
    plot_gradient_flow(results, p1)
    p2 = tmp_path / "sub" / "hist.png"
    plot_history(hists, p2, baseline=0.167)
    p3 = tmp_path / "mon.png"
    plot_gradient_history(mon, p3)
    p4 = tmp_path / "jac.png"
    plot_jacobian_spectrum({"GRU": jacobian_spectrum(model.layers[0], x)}, p4)
    for p in (p1, p2, p3, p4):
        _assert_png(p)
    with pytest.raises(ValueError, match="none of the keys"):
        plot_history(hists, keys=("accuracy",))


def _cli(module, argv):
    parser = argparse.ArgumentParser(prog="rnnkit")
    sub = parser.add_subparsers()
    module.register(sub)
    args = parser.parse_args([module.__name__.rsplit(".", 1)[-1], *argv])
    return args.func(args)


@pytest.fixture()
def saved_model(tmp_path):
    x, y = adding_problem(64, 30, seed=0)
    model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(8), rnnkit.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.rnnkit"
    model.save(path)
    return path


def test_diagnose_command_writes_png_html_and_prints_verdict(saved_model, tmp_path, capsys):
    from rnnkit.cli import diagnose
    png = tmp_path / "out.png"
    assert _cli(diagnose, [str(saved_model), "--data", "builtin:adding", "--out", str(png),
                           "--samples", "16", "--T", "30"]) == 0
    out = capsys.readouterr().out
    assert "Verdict:" in out and "simple_rnn" in out
    _assert_png(png)
    page = tmp_path / "report.html"
    assert _cli(diagnose, [str(saved_model), "--data", "builtin:adding", "--out", str(page),
                           "--samples", "8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] in ("vanishing", "exploding", "healthy")
    html = page.read_text()
    assert "report_gradient_flow.png" in html and "Verdict" in html
    _assert_png(tmp_path / "report_gradient_flow.png")
    _assert_png(tmp_path / "report_jacobian_spectrum.png")
    npz = tmp_path / "data.npz"
    x, y = adding_problem(8, 12, seed=1)
    np.savez(npz, x=x, y=y)
    assert _cli(diagnose, [str(saved_model), "--data", str(npz), "--out",
                           str(tmp_path / "dir")]) == 0
    _assert_png(tmp_path / "dir" / "gradient_flow.png")
    capsys.readouterr()
    assert _cli(diagnose, [str(saved_model), "--data", "builtin:nope", "--out",
                           str(tmp_path / "x.png")]) == 1
    assert "unknown built-in dataset" in capsys.readouterr().err
    assert _cli(diagnose, [str(tmp_path / "missing.rnnkit"), "--data", "builtin:adding",
                           "--out", str(tmp_path / "x.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_diagnose_japanese_vowels_with_masking(tmp_path, capsys):
    from rnnkit.cli import diagnose
    model = rnnkit.Sequential([rnnkit.layers.GRU(8), rnnkit.layers.Dense(9, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.build((None, None, 12))
    path = tmp_path / "jv.rnnkit"
    model.save(path)
    assert _cli(diagnose, [str(path), "--data", "builtin:japanese_vowels", "--out",
                           str(tmp_path / "jv.png"), "--samples", "20"]) == 0
    assert "Verdict:" in capsys.readouterr().out
    _assert_png(tmp_path / "jv.png")


def test_experiment_adding_quick(tmp_path, capsys):
    from rnnkit.cli import experiment
    assert _cli(experiment, ["adding", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for cell in ("SimpleRNN", "LSTM", "GRU"):
        assert f"| 20 | {cell} |" in out
    data = json.loads((tmp_path / "adding_results.json").read_text())
    assert len(data["rows"]) == 3 and abs(data["baseline_mse"] - 1 / 6) < 1e-12
    assert all(np.isfinite(r["test_mse"]) for r in data["rows"])
    _assert_png(tmp_path / "adding_gradient_flow.png")
    _assert_png(tmp_path / "adding_training.png")


def test_subcommands_through_python_m_rnnkit(saved_model, tmp_path):
    """The real entry point: `python -m rnnkit diagnose|experiment ...` (needs rnnkit.cli)."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-m", "rnnkit", "diagnose", str(saved_model), "--data",
                        "builtin:adding", "--out", str(tmp_path / "m.png"), "--samples", "8"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Verdict:" in r.stdout
    _assert_png(tmp_path / "m.png")
    r = subprocess.run([sys.executable, "-m", "rnnkit", "experiment", "adding", "--quick",
                        "--T", "8", "--out", str(tmp_path / "exp")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| 8 | GRU |" in r.stdout
