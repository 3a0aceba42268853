"""The everyday Keras surface a Keras user reaches for: Nadam, the extra losses and metrics,
each equal to Keras 3's numbers; the losses' hand-written gradients against float64 central
differences; to_json, pop, batch_input_shape, the PyTorch-style calls and the errors for
Keras names rnnkit does not have."""

import os

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad

from rnnkit import losses, metrics, optimizers

os.environ.setdefault("KERAS_BACKEND", "torch")


# ------------------------------------------------------------------------------- Nadam
# (its step-by-step parity with Keras is a case of tests/test_optimizers_keras.py)
def test_nadam_resumes_exactly_from_its_state():
    r = np.random.default_rng(1)
    grads = [[r.normal(size=(5,))] for _ in range(6)]
    a, w_a = optimizers.Nadam(0.05), [np.ones(5)]
    for g in grads:
        a.apply(w_a, [g[0].copy()])
    b, w_b = optimizers.Nadam(0.05), [np.ones(5)]
    for g in grads[:3]:
        b.apply(w_b, [g[0].copy()])
    c = optimizers.get({"class_name": "Nadam", "config": b.get_config()})
    c.set_state(b.get_state(), w_b)
    for g in grads[3:]:
        c.apply(w_b, [g[0].copy()])
    assert np.array_equal(w_a[0], w_b[0])
    assert isinstance(optimizers.get("nadam"), optimizers.Nadam)


# ------------------------------------------------------------------------------- losses
NEW_LOSSES = [("kl_divergence", "probs"), ("log_cosh", "any"), ("poisson", "positive"),
              ("cosine_similarity", "any"), ("huber", "any")]


def _pair(kind, r, shape=(4, 3, 5)):
    if kind == "probs":
        y = r.dirichlet(np.ones(shape[-1]), size=shape[:-1])
        p = r.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    elif kind == "positive":
        y = r.poisson(2.0, size=shape).astype(np.float64)
        p = r.uniform(0.2, 4.0, size=shape)
    else:
        y = r.normal(size=shape)
        p = r.normal(size=shape) * 2.0   # errors on both sides of huber's delta
    return y, p


@pytest.mark.parametrize("name,kind", NEW_LOSSES)
def test_new_losses_match_keras(name, kind):
    import keras

    r = np.random.default_rng(2)
    y, p = _pair(kind, r, (6, 5))
    sw = r.uniform(0.5, 2.0, size=6)
    ours = losses.get(name)
    ref = getattr(keras.losses, {"kl_divergence": "KLDivergence", "log_cosh": "LogCosh",
                                 "poisson": "Poisson", "cosine_similarity": "CosineSimilarity",
                                 "huber": "Huber"}[name])()
    want = float(keras.ops.convert_to_numpy(ref(y.astype("float32"), p.astype("float32"))))
    assert ours(y, p) == pytest.approx(want, rel=1e-5, abs=1e-6), (name, "rnnkit vs Keras")
    want_w = float(keras.ops.convert_to_numpy(
        ref(y.astype("float32"), p.astype("float32"), sample_weight=sw.astype("float32"))))
    assert ours(y, p, sample_weight=sw) == pytest.approx(want_w, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name,kind", NEW_LOSSES)
def test_new_losses_gradient_float64(name, kind):
    r = np.random.default_rng(3)
    y, p = _pair(kind, r)
    sw = r.uniform(0.5, 2.0, size=4)
    mask = r.uniform(size=(4, 3)) > 0.3
    loss = losses.get(name)
    num = numerical_grad(lambda: loss(y, p, sample_weight=sw, mask=mask), p)
    assert_close_grad(loss.gradient(y, p, sample_weight=sw, mask=mask), num, name, tol=1e-6)


def test_new_losses_gradient_against_torch_autograd_reference():
    """A second opinion on the formulas: torch's autograd of the same Keras definitions."""
    import torch

    r = np.random.default_rng(4)
    eps = 1e-7
    for name, kind in NEW_LOSSES[:4]:
        y, p = _pair(kind, r, (5, 4))
        pt = torch.tensor(p, requires_grad=True)
        yt = torch.tensor(y)
        if name == "kl_divergence":
            yc = yt.clamp(eps, 1)
            v = (yc * torch.log(yc / pt.clamp(eps, 1))).sum(-1)
        elif name == "log_cosh":
            v = torch.log(torch.cosh(pt - yt)).mean(-1)
        elif name == "poisson":
            v = (pt - yt * torch.log(pt + eps)).mean(-1)
        else:
            v = -(torch.nn.functional.normalize(yt, dim=-1, eps=eps)
                  * torch.nn.functional.normalize(pt, dim=-1, eps=eps)).sum(-1)
        v.mean().backward()
        assert np.allclose(losses.get(name).gradient(y, p), pt.grad.numpy(), atol=1e-10), name


def test_loss_names_round_trip_through_config():
    for name in ("kld", "logcosh", "poisson", "cosine_similarity", "KLDivergence"):
        loss = losses.get(name)
        again = losses.get(losses.serialize(loss))
        assert type(again) is type(loss)


# ------------------------------------------------------------------------------- metrics
def _keras_metric(obj, y, p, sw=None, batches=2):
    import keras

    idx = np.array_split(np.arange(len(y)), batches)
    for i in idx:
        obj.update_state(y[i].astype("float32"), p[i].astype("float32"),
                         sample_weight=None if sw is None else sw[i].astype("float32"))
    return keras.ops.convert_to_numpy(obj.result())


def _ours(obj, y, p, sw=None, batches=2):
    for i in np.array_split(np.arange(len(y)), batches):
        obj.update(y[i], p[i], None if sw is None else sw[i])
    return obj.result()


@pytest.mark.parametrize("case", [
    ("AUC", {}, "binary"), ("AUC", {"curve": "PR"}, "binary"),
    ("AUC", {"num_thresholds": 13, "summation_method": "minoring"}, "binary"),
    ("AUC", {"curve": "PR", "summation_method": "majoring"}, "multi"),
    ("Precision", {}, "binary"), ("Precision", {"thresholds": 0.3}, "multi"),
    ("Precision", {"class_id": 1}, "multi"), ("Precision", {"top_k": 2}, "multi"),
    ("Recall", {}, "binary"), ("Recall", {"thresholds": 0.7, "class_id": 2}, "multi"),
    ("F1Score", {}, "onehot"), ("F1Score", {"average": "macro"}, "onehot"),
    ("F1Score", {"average": "micro", "threshold": 0.4}, "multi"),
    ("F1Score", {"average": "weighted"}, "onehot"),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot"),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, "sparse"),
], ids=str)
@pytest.mark.parametrize("weighted", [False, True])
def test_new_metrics_match_keras(case, weighted):
    import keras

    name, kw, kind = case
    r = np.random.default_rng(5)
    n, c = 40, 4
    if kind == "binary":
        y = (r.uniform(size=(n, 1)) > 0.5).astype(float)
        p = np.clip(0.6 * y + r.uniform(size=(n, 1)) * 0.6, 0, 1)
    elif kind == "multi":
        y = (r.uniform(size=(n, c)) > 0.6).astype(float)
        p = r.uniform(size=(n, c))
    else:
        labels = r.integers(0, c, n)
        y = labels.astype(float) if kind == "sparse" else np.eye(c)[labels]
        p = r.dirichlet(np.ones(c), size=n) + 0.3 * np.eye(c)[labels]
    sw = r.uniform(0.2, 2.0, size=n) if weighted else None
    ours = _ours(getattr(metrics, name)(**kw), y, p, sw)
    ref = _keras_metric(getattr(keras.metrics, name)(**kw), y, p, sw)
    assert np.allclose(ours, ref, rtol=1e-4, atol=1e-5), f"{name}{kw}: rnnkit {ours} vs Keras {ref}"


def test_metric_names_in_compile_and_fit():
    import rnnkit

    r = np.random.default_rng(6)
    x = r.normal(size=(32, 5, 2)).astype("float32")
    y = (x[:, :, 0].sum(1) > 0).astype("float32")[:, None]
    model = rnnkit.Sequential([rnnkit.layers.GRU(4), rnnkit.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="nadam", loss="binary_crossentropy",
                  metrics=["auc", "precision", "recall", rnnkit.metrics.F1Score(threshold=0.5)])
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert set(hist.history) >= {"loss", "auc", "precision", "recall", "f1_score"}
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    assert 0.0 <= res["auc"] <= 1.0


# ------------------------------------------------------------------------------- model API
def _model(**first):
    import rnnkit

    rnnkit.utils.set_random_seed(0)
    model = rnnkit.Sequential([rnnkit.layers.LSTM(4, **first), rnnkit.layers.Dropout(0.5),
                               rnnkit.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_to_json_and_model_from_json_round_trip():
    import json

    import rnnkit

    model = _model(input_shape=(None, 3))
    again = rnnkit.models.model_from_json(model.to_json())
    assert json.loads(again.to_json())["config"] == json.loads(model.to_json())["config"]
    assert [w.shape for w in again.get_weights()] == [w.shape for w in model.get_weights()]
    with pytest.raises(ValueError, match="expected a Sequential or functional Model's JSON"):
        rnnkit.models.model_from_json('{"class_name": "Functional", "config": {}}')
    with pytest.raises(ValueError, match="not a JSON string"):
        rnnkit.models.model_from_json("lstm")


def test_pop_removes_the_last_layer():
    model = _model(input_shape=(None, 3))
    last = model.pop()
    assert last.name.startswith("dense") and len(model.layers) == 2
    x = np.ones((2, 5, 3), "float32")
    assert model.predict(x, verbose=0).shape == (2, 4)
    model.pop()
    model.pop()
    with pytest.raises(ValueError, match="has no layers to remove"):
        model.pop()


def test_batch_input_shape_for_a_stateful_model(tmp_path):
    import rnnkit

    model = _model(stateful=True, batch_input_shape=(2, 5, 3))
    assert model._input_layer.batch_size == 2
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")
    model.fit(x, np.zeros((4, 2), "float32"), batch_size=2, shuffle=False, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"batches of exactly 2 rows.*got a batch of 3"):
        model.predict(x[:3], batch_size=3, verbose=0)
    model.save(tmp_path / "s.rnnkit")
    again = rnnkit.load_model(tmp_path / "s.rnnkit")
    assert again._input_layer.batch_size == 2
    assert rnnkit.layers.Input(batch_shape=(2, 5, 3)).shape == (2, 5, 3)  # symbolic, as Keras
    with pytest.raises(ValueError, match="batch_input_shape must be"):
        rnnkit.layers.LSTM(3, batch_input_shape=(0, 5, 3))


def test_state_dict_parameters_train_eval():
    model = _model(input_shape=(None, 3))
    names = [n for n, _ in model.named_parameters()]
    assert names[:3] == [f"{model.layers[0].name}.kernel",
                         f"{model.layers[0].name}.recurrent_kernel",
                         f"{model.layers[0].name}.bias"]
    assert sum(p.size for p in model.parameters()) == model.count_params()
    sd = model.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    other = _model(input_shape=(None, 3))
    other.layers[0].name, other.layers[2].name = model.layers[0].name, model.layers[2].name
    other.load_state_dict({k: v * 1.0 for k, v in sd.items()})
    x = np.random.default_rng(1).normal(size=(3, 5, 3)).astype("float32")
    assert np.allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(KeyError, match="missing"):
        other.load_state_dict({"nope": np.zeros(1)})
    missing, unexpected = other.load_state_dict({"nope": np.zeros(1)}, strict=False)
    assert unexpected == ["nope"] and len(missing) == len(sd)
    bad = dict(sd)
    bad[names[0]] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="has shape"):
        other.load_state_dict(bad)
    # train(): model(x) runs with dropout; eval(): deterministic
    assert model.eval() is model and not model.training
    assert np.array_equal(model(x), model(x))
    model.train()
    assert model.training and not np.array_equal(model(x), model(x))


def test_missing_keras_names_say_what_to_use():
    import rnnkit

    with pytest.raises(AttributeError, match=r"ConvLSTM2D is a Keras name that is not in "
                                             r"rnnkit\. Use instead: .*LSTM"):
        rnnkit.layers.ConvLSTM2D  # noqa: B018
    with pytest.raises(AttributeError, match=r"Lion .*not in rnnkit.*Adam, AdamW or Nadam"):
        rnnkit.optimizers.Lion  # noqa: B018
    with pytest.raises(AttributeError, match=r"not in rnnkit\. Available: .*LSTM"):
        rnnkit.layers.NoSuchLayer  # noqa: B018
    assert not hasattr(rnnkit.layers, "__wrapped__")
