"""float64 central-difference gradient checks for every cell, option, layer, loss and model."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad

import rnnkit
from rnnkit import layers, losses

RNG = np.random.default_rng(0)


def _randomize(layer, scale=0.5, seed=0):
    r = np.random.default_rng(seed)
    for w in layer.params.values():
        w[...] = r.normal(0, scale, w.shape)


def check_layer(layer, x, initial_state=None, mask=None, training=False, n_out=None, seed=1):
    """Check dL/dx, dL/d(initial state) and dL/dW for L = sum(r * outputs)."""
    layer.maybe_build(x.shape)
    _randomize(layer)
    r = np.random.default_rng(seed)
    kw = {} if mask is None else {"mask": mask}

    def run():
        if training:  # same dropout masks every call
            layer.reset_dropout_rng()
        out = layer.forward(x if initial_state is None else [x, *initial_state],
                            training=training, **kw)
        return out if isinstance(out, list) else [out]

    outs = run()
    weights = [r.normal(size=o.shape) for o in outs]

    def loss():
        return sum(float((w * o).sum()) for w, o in zip(weights, run()))

    loss()
    grads = layer.backward(weights if len(weights) > 1 else weights[0])
    analytic = {k: v.copy() for k, v in layer.grads.items()}
    if initial_state is not None:
        dx, *dstates = grads
    else:
        dx, dstates = grads, []
    assert_close_grad(dx, numerical_grad(loss, x), f"{layer.name} dL/dx")
    for k, s in enumerate(initial_state or []):
        assert_close_grad(dstates[k], numerical_grad(loss, s), f"{layer.name} dL/dstate{k}")
    for name, w in layer.params.items():
        assert_close_grad(analytic[name], numerical_grad(loss, w), f"{layer.name} dL/d{name}")


def _x(B=3, T=5, F=4, scale=1.0):
    return RNG.normal(0, scale, (B, T, F))


RECURRENT_CASES = [
    ("simple_tanh", lambda **k: layers.SimpleRNN(6, **k)),
    ("simple_relu", lambda **k: layers.SimpleRNN(6, activation="relu", **k)),
    ("lstm", lambda **k: layers.LSTM(5, **k)),
    ("gru_after", lambda **k: layers.GRU(5, **k)),
    ("gru_before", lambda **k: layers.GRU(5, reset_after=False, **k)),
]
OPTIONS = [
    {},
    {"return_sequences": True},
    {"go_backwards": True, "return_sequences": True},
    {"return_state": True},
    {"use_bias": False},
    {"return_sequences": True, "return_state": True, "go_backwards": True},
]


@pytest.mark.parametrize("name,make", RECURRENT_CASES)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "default")
def test_recurrent_gradients(name, make, opts):
    layer = make(dtype="float64", **opts)
    check_layer(layer, _x())


@pytest.mark.parametrize("name,make", RECURRENT_CASES)
def test_recurrent_initial_state_gradients(name, make):
    layer = make(dtype="float64", return_sequences=True, return_state=True)
    x = _x()
    layer.maybe_build(x.shape)
    states = [RNG.normal(0, 0.5, (3, layer.units)) for _ in range(layer.n_states)]
    check_layer(layer, x, initial_state=states)


@pytest.mark.parametrize("name,make", RECURRENT_CASES)
def test_recurrent_saturating_inputs(name, make):
    check_layer(make(dtype="float64", return_sequences=True), _x(scale=3.0))


@pytest.mark.parametrize("name,make", RECURRENT_CASES)
def test_recurrent_mask_gradients(name, make):
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    check_layer(make(dtype="float64", return_sequences=True), _x(), mask=mask)
    check_layer(make(dtype="float64", go_backwards=True), _x(), mask=mask)


@pytest.mark.parametrize("name,make", RECURRENT_CASES)
def test_recurrent_dropout_gradients(name, make):
    layer = make(dtype="float64", dropout=0.3, recurrent_dropout=0.4, seed=7, return_sequences=True)
    check_layer(layer, _x(), training=True)


def test_regularizer_gradients():
    model = rnnkit.Sequential([
        layers.LSTM(4, kernel_regularizer="l2", recurrent_regularizer=rnnkit.regularizers.L1L2(0.01, 0.02),
                    bias_regularizer="l1", dtype="float64"),
        layers.Dense(2, kernel_regularizer="l1", dtype="float64"),
    ])
    model.compile(loss="mse", optimizer="sgd")
    x, y = _x(), RNG.normal(size=(3, 2))
    model(x)
    for layer in model.layers:
        _randomize(layer)

    def loss():
        return model.loss(y, model.forward(x)[0]) + model.regularization_loss()

    model._loss_and_grad(x, y, None, None)
    for layer in model.layers:
        for n, w in layer.params.items():
            g = layer.grads[n].copy()
            assert_close_grad(g, numerical_grad(loss, w), f"{layer.name}/{n} with regularizer")


def test_dense_gradients_2d_and_3d():
    for shape in [(4, 3), (2, 5, 3)]:
        for act in ["linear", "tanh", "sigmoid", "relu", "softmax", "elu", "swish"]:
            layer = layers.Dense(4, activation=act, dtype="float64")
            check_layer(layer, RNG.normal(size=shape))


def test_embedding_gradients():
    layer = layers.Embedding(7, 3, dtype="float64")
    ids = np.array([[1, 2, 2, 0], [6, 5, 1, 1]])
    layer.maybe_build(ids.shape)
    out = layer.forward(ids)
    w = RNG.normal(size=out.shape)
    layer.backward(w)
    num = numerical_grad(lambda: float((layer.forward(ids) * w).sum()), layer.params["embeddings"])
    assert_close_grad(layer.grads["embeddings"], num, "embedding")


LOSS_CASES = [
    ("categorical_crossentropy", {}, "probs"),
    ("categorical_crossentropy", {"from_logits": True}, "logits"),
    ("categorical_crossentropy", {"label_smoothing": 0.1}, "probs"),
    ("sparse_categorical_crossentropy", {}, "probs"),
    ("sparse_categorical_crossentropy", {"from_logits": True}, "logits"),
    ("binary_crossentropy", {}, "sig"),
    ("binary_crossentropy", {"from_logits": True}, "logits"),
    ("mean_squared_error", {}, "logits"),
    ("mean_absolute_error", {}, "logits"),
    ("huber", {"delta": 0.5}, "logits"),
]


@pytest.mark.parametrize("name,kw,kind", LOSS_CASES)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 4)])
def test_loss_gradients(name, kw, kind, shape):
    loss = losses.get({"class_name": name, "config": kw})
    r = np.random.default_rng(3)
    z = r.normal(size=shape)
    if kind == "probs":
        y_pred = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    elif kind == "sig":
        y_pred = 1 / (1 + np.exp(-z))
    else:
        y_pred = z
    if name.startswith("sparse"):
        y = r.integers(0, shape[-1], shape[:-1])
    elif name.startswith("categorical"):
        y = rnnkit.utils.to_categorical(r.integers(0, shape[-1], shape[:-1]), shape[-1])
    elif name.startswith("binary"):
        y = r.integers(0, 2, shape).astype(float)
    else:
        y = r.normal(size=shape)
    sw = r.uniform(0.5, 2.0, shape[:1])
    mask = (r.random(shape[:-1]) > 0.3) if len(shape) == 3 else None
    g = loss.gradient(y, y_pred, sw, mask)
    num = numerical_grad(lambda: loss(y, y_pred, sw, mask), y_pred)
    assert_close_grad(g, num, f"{name} {kw}")


@pytest.mark.parametrize("loss_name,act", [("categorical_crossentropy", "softmax"),
                                           ("binary_crossentropy", "sigmoid")])
def test_fused_logit_gradients(loss_name, act):
    """Final softmax/sigmoid fused with cross-entropy equals the unfused chain rule."""
    loss = losses.get(loss_name)
    r = np.random.default_rng(4)
    z = r.normal(size=(6, 3))
    a = rnnkit.activations.get(act)
    p = a(z)
    y = (rnnkit.utils.to_categorical(r.integers(0, 3, 6), 3) if act == "softmax"
         else r.integers(0, 2, (6, 3)).astype(float))
    fused = loss.gradient_logits(y, p)
    num = numerical_grad(lambda: loss(y, a(z)), z)
    assert_close_grad(fused, num, f"fused {act}+{loss_name}")


@pytest.mark.parametrize("cells", [("lstm", "lstm"), ("gru", "simple"), ("simple", "gru_b")])
def test_stacked_model_gradients(cells):
    make = {"lstm": lambda **k: layers.LSTM(4, **k), "gru": lambda **k: layers.GRU(4, **k),
            "simple": lambda **k: layers.SimpleRNN(4, **k),
            "gru_b": lambda **k: layers.GRU(4, reset_after=False, **k)}
    model = rnnkit.Sequential([
        make[cells[0]](return_sequences=True, dtype="float64"),
        make[cells[1]](dtype="float64"),
        layers.Dense(3, activation="softmax", dtype="float64"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    x = _x()
    y = rnnkit.utils.to_categorical([0, 2, 1], 3)
    model(x)
    for i, layer in enumerate(model.layers):
        _randomize(layer, seed=i)
    model._loss_and_grad(x, y, None, None)
    grads = {(l.name, n): g.copy() for l in model.layers for n, g in l.grads.items()}
    dx = model.backward(model.loss.gradient_logits(y, model.forward(x)[0]), wrt_logits=True)

    def loss():
        return model.loss(y, model.forward(x)[0])

    assert_close_grad(dx, numerical_grad(loss, x), "model dL/dx")
    for l in model.layers:
        for n, w in l.params.items():
            assert_close_grad(grads[(l.name, n)], numerical_grad(loss, w), f"model {l.name}/{n}")
