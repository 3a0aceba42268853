"""Parity with Keras 3 (KERAS_BACKEND=torch): forward, final states and every gradient.

rnnkit's layout is Keras's, so the same random weights (non-zero biases) go into both with
``set_weights``. Keras on the torch backend returns torch tensors, so gradients come from
torch autograd through the real Keras layer. Keras and rnnkit both carry state AND output
over masked steps, so masked outputs are compared at every step, for right, left and interior
padding.
"""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import layers as L  # noqa: E402
from rnnkit.interop import from_keras, to_keras  # noqa: E402

FWD_TOL = 1e-5
GRAD_TOL = 1e-4
B, T, F, H = 4, 7, 3, 5
CASES = [  # (class name, extra config)
    ("SimpleRNN", {"activation": "tanh"}),
    ("SimpleRNN", {"activation": "relu"}),
    ("LSTM", {}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False}),
]
IDS = ["simple_tanh", "simple_relu", "lstm", "gru_reset_after", "gru_reset_before"]


def assert_fwd(what, ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{what}: rnnkit vs reference shapes {ours.shape} vs {ref.shape}"
    err = np.max(np.abs(ours - ref)) / max(1.0, np.max(np.abs(ref)))
    assert err <= FWD_TOL, f"{what}: rnnkit vs reference differ by {err:.3g}\nrnnkit:\n{ours}\nreference:\n{ref}"


def assert_grad(what, ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{what}: rnnkit vs reference shapes {ours.shape} vs {ref.shape}"
    err = np.max(np.abs(ours - ref)) / max(1e-6, np.max(np.abs(ref)))
    assert err <= GRAD_TOL, (f"{what}: rnnkit vs reference relative error {err:.3g}\n"
                             f"rnnkit:\n{ours}\nreference:\n{ref}")


def random_weights(shapes, scale, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) * scale).astype(np.float32) for s in shapes]


def make_pair(cls_name, cfg, bidirectional=False, **opts):
    """(keras layer, rnnkit layer) with identical configs and random non-zero weights."""
    cfg = {**cfg, **opts}
    klayer = getattr(keras.layers, cls_name)(H, **cfg)
    rlayer = getattr(L, cls_name)(H, **cfg)
    if bidirectional:
        klayer, rlayer = keras.layers.Bidirectional(klayer), L.Bidirectional(rlayer)
    klayer.build((None, T, F))
    rlayer.build((None, T, F))
    scale = 0.3 if cfg.get("activation") == "relu" else 0.6
    ws = random_weights([w.shape for w in rlayer.get_weights()], scale)
    klayer.set_weights(ws)
    rlayer.set_weights(ws)
    return klayer, rlayer


def data(padding=None, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(B, T, F)) * 3).astype(np.float32)     # saturating inputs
    masks = {
        None: None,
        "right": np.arange(T)[None, :] < np.array([T, 5, 2, 1])[:, None],
        "left": np.arange(T)[None, :] >= np.array([0, 2, 5, 6])[:, None],
        "interior": np.array([[1, 1, 0, 1, 0, 1, 1], [1, 0, 0, 1, 1, 1, 0],
                              [0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]], bool),
    }
    return x, masks[padding]


def run_case(cls_name, cfg, bidirectional=False, go_backwards=False, padding=None,
             with_init=False, return_sequences=True):
    klayer, rlayer = make_pair(cls_name, cfg, bidirectional, return_sequences=return_sequences,
                               return_state=True, go_backwards=go_backwards)
    x, mask = data(padding)
    rng = np.random.default_rng(1)
    init = ([rng.normal(size=(B, H)).astype(np.float32) for _ in range(rlayer.n_states)]
            if with_init else None)
    outs = rlayer.forward(x, mask=mask, initial_state=init)
    R = [rng.normal(size=np.shape(o)).astype(np.float32) for o in outs]
    g = rlayer.backward(R)
    dx, d_init = (g[0], g[1:]) if with_init else (g, [])
    xt = torch.tensor(x, requires_grad=True)
    kw = {}
    if mask is not None:
        kw["mask"] = torch.tensor(mask)
    if with_init:
        init_t = [torch.tensor(s, requires_grad=True) for s in init]
        kw["initial_state"] = init_t
    kouts = klayer(xt, **kw)
    loss = sum((o * torch.tensor(r)).sum() for o, r in zip(kouts, R))
    loss.backward()
    what = (f"{cls_name}{cfg} bidir={bidirectional} go_backwards={go_backwards} "
            f"padding={padding} init={with_init} return_sequences={return_sequences}")
    for i, (o, k) in enumerate(zip(outs, kouts)):
        assert_fwd(f"{what} output {i}", o, k.detach().numpy())
    assert_grad(f"{what} dL/dx", dx, xt.grad.numpy())
    if with_init:
        for i, (d, p) in enumerate(zip(d_init, init_t)):
            assert_grad(f"{what} dL/dinitial_state[{i}]", d, p.grad.numpy())
    for (name, ours), kw_ in zip(rlayer.grads.items(), klayer.trainable_weights):
        assert_grad(f"{what} dL/d{name}", ours, kw_.value.grad.numpy())


@pytest.mark.parametrize("cls_name,cfg", CASES, ids=IDS)
def test_layer(cls_name, cfg):
    run_case(cls_name, cfg)


@pytest.mark.parametrize("cls_name,cfg", CASES, ids=IDS)
def test_last_output_and_initial_states(cls_name, cfg):
    run_case(cls_name, cfg, return_sequences=False, with_init=True)


@pytest.mark.parametrize("cls_name,cfg", CASES, ids=IDS)
def test_go_backwards_masked(cls_name, cfg):
    run_case(cls_name, cfg, go_backwards=True, padding="right")


@pytest.mark.parametrize("padding", ["right", "left", "interior"])
@pytest.mark.parametrize("cls_name,cfg", CASES, ids=IDS)
def test_masks(cls_name, cfg, padding):
    run_case(cls_name, cfg, padding=padding)


@pytest.mark.parametrize("cls_name,cfg", CASES, ids=IDS)
def test_bidirectional(cls_name, cfg):
    run_case(cls_name, cfg, bidirectional=True, with_init=True)


@pytest.mark.parametrize("cls_name,cfg", CASES[2:], ids=IDS[2:])
def test_bidirectional_masked(cls_name, cfg):
    run_case(cls_name, cfg, bidirectional=True, padding="interior")


def keras_stack(go_backwards=False):
    return keras.Sequential([
        keras.Input((T, F)),
        keras.layers.Masking(),
        keras.layers.LSTM(H, return_sequences=True),
        keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True, reset_after=False)),
        keras.layers.SimpleRNN(3, activation="relu", go_backwards=go_backwards),
        keras.layers.Dense(2, activation="softmax"),
    ])


def test_stacked_model_from_keras_file(tmp_path):
    """A real Keras .keras file -> rnnkit: output, dL/dx and every weight gradient match."""
    kmodel = keras_stack()
    ws = random_weights([w.shape for w in kmodel.get_weights()], 0.5)
    kmodel.set_weights(ws)
    kmodel.save(tmp_path / "m.keras")
    model = from_keras(tmp_path / "m.keras")
    x, mask = data("right")
    y, _ = model.forward(x, training=False)
    R = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
    dx = model.backward(R)
    xt = torch.tensor(x, requires_grad=True)
    yk = kmodel(xt)
    (yk * torch.tensor(R)).sum().backward()
    assert_fwd("stacked model output", y, yk.detach().numpy())
    assert_grad("stacked model dL/dx", dx, xt.grad.numpy())
    ours = [g for layer in model.layers for g in layer.grads.values()]
    assert len(ours) == len(kmodel.trainable_weights)
    for i, (a, w) in enumerate(zip(ours, kmodel.trainable_weights)):
        assert_grad(f"stacked model weight grad {i} ({w.path})", a, w.value.grad.numpy())


# ----------------------------------------------------------------------------- training
def _train_curves(opt_name, clip, steps=20):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(16, T, F)) * 3).astype(np.float32)
    y = rng.normal(size=(16, 1)).astype(np.float32)
    kmodel = keras.Sequential([keras.Input((T, F)), keras.layers.GRU(H),
                               keras.layers.Dense(1)])
    ws = random_weights([w.shape for w in kmodel.get_weights()], 0.5)
    kmodel.set_weights(ws)
    model = rnnkit.Sequential([L.Input((T, F)), L.GRU(H), L.Dense(1)])
    model.set_weights(ws)
    opts = {"sgd": dict(learning_rate=0.05, momentum=0.9), "adam": dict(learning_rate=0.01)}[opt_name]
    opts.update(clip)
    kopt = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[opt_name](**opts)
    ropt = {"sgd": rnnkit.optimizers.SGD, "adam": rnnkit.optimizers.Adam}[opt_name](**opts)
    kmodel.compile(optimizer=kopt, loss="mse")
    model.compile(optimizer=ropt, loss="mse")
    ours, ref = [], []
    for step in range(steps):
        xb, yb = x[(step % 2) * 8:(step % 2) * 8 + 8], y[(step % 2) * 8:(step % 2) * 8 + 8]
        ours.append(float(model.train_on_batch(xb, yb)))
        ref.append(float(kmodel.train_on_batch(xb, yb)))
    return np.array(ours), np.array(ref)


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("clip", [{}, {"clipnorm": 0.1}, {"global_clipnorm": 0.1}],
                         ids=["noclip", "clipnorm", "global_clipnorm"])
def test_training_loss_curve_matches_keras(opt_name, clip):
    ours, ref = _train_curves(opt_name, clip)
    assert np.max(np.abs(ours - ref)) <= 1e-4, (
        f"{opt_name} {clip}: rnnkit vs reference loss curves\nrnnkit:    {ours}\nreference: {ref}")
    assert ours[-2:].mean() < ours[:2].mean(), f"training did not lower the loss: {ours}"


# ----------------------------------------------------------------------------- export
def test_to_keras_file_loads_and_predicts_the_same(tmp_path):
    model = rnnkit.Sequential([
        L.Input((T, F)), L.Masking(), L.LSTM(H, return_sequences=True),
        L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum"),
        L.TimeDistributed(L.Dense(3, activation="tanh")), L.Dropout(0.2),
        L.SimpleRNN(3, go_backwards=True), L.Dense(2, activation="softmax", kernel_regularizer="l2"),
    ])
    model.set_weights(random_weights([w.shape for w in model.get_weights()], 0.5))
    x, mask = data("right")
    to_keras(model, tmp_path / "out.keras")
    kmodel = keras.saving.load_model(tmp_path / "out.keras")
    assert_fwd("to_keras predictions", model.predict(x), kmodel.predict(x, verbose=0))
    back = from_keras(tmp_path / "out.keras")
    assert_fwd("to_keras -> from_keras predictions", back.predict(x), model.predict(x))
