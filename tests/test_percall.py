"""The per-call inference path (``predict_on_batch`` on a stateful model, a few rows): the
compiled kernels' small-row product and the per-cell inference plan equal the reference
loop, and the plan follows weights changed in place or replaced, and new shapes."""

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels
from rnnkit import layers as L

LAYERS = {"lstm": lambda d: L.LSTM(16, stateful=True, dtype=d),
          "gru": lambda d: L.GRU(16, stateful=True, dtype=d),
          "simple": lambda d: L.SimpleRNN(16, stateful=True, dtype=d)}


def _pair(kind, dtype, seed=0):
    """Two stateful models with the same random weights and non-zero biases."""
    rnnkit.utils.set_random_seed(seed)
    models = [rnnkit.Sequential([L.Input((None, 5)), LAYERS[kind](dtype)]) for _ in range(2)]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 1, 5)).astype(dtype)
    for m in models:
        m.predict_on_batch(x)                     # builds
        m.reset_states()
    w = [rng.standard_normal(a.shape).astype(dtype) * 0.3 for a in models[0].get_weights()]
    for m in models:
        m.set_weights(w)
    return models


def _ref(fn, monkeypatch):
    with monkeypatch.context() as mp:
        mp.setattr(kernels, "_MODE", "reference")
        return fn()


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 3, 6])      # 6 rows: the BLAS product
def test_stateful_predict_on_batch_equals_reference(kind, dtype, batch, monkeypatch):
    fast, ref = _pair(kind, dtype)
    rng = np.random.default_rng(1)
    for _ in range(4):                            # the state is carried between calls
        x = rng.standard_normal((batch, 1, 5)).astype(dtype)
        a = fast.predict_on_batch(x)
        b = _ref(lambda x=x: ref.predict_on_batch(x), monkeypatch)
        np.testing.assert_allclose(a, b, **_tol(dtype))
    np.testing.assert_allclose(fast.layers[-1].states[-1], ref.layers[-1].states[-1],
                               **_tol(dtype))


def test_plan_follows_weights_and_shapes(monkeypatch):
    fast, ref = _pair("gru", "float32")
    rng = np.random.default_rng(2)
    cell = fast.layers[-1].cell

    def check(x):
        a = fast.predict_on_batch(x)
        b = _ref(lambda: ref.predict_on_batch(x), monkeypatch)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    x = rng.standard_normal((1, 1, 5)).astype(np.float32)
    check(x)
    planned = cell.__dict__.get("_infer_plan")
    assert planned is not None                    # weights are contiguous float32: planned
    check(x)
    assert cell.__dict__["_infer_plan"] is planned                 # same shapes: reused
    w = [a * 0.5 + 0.1 for a in fast.get_weights()]               # in place (set_weights)
    fast.set_weights(w)
    ref.set_weights(w)
    check(x)
    for m in (fast, ref):                         # replaced arrays: planned again
        m.layers[-1].cell.params["kernel"] = m.layers[-1].cell.params["kernel"] * -1.0
    check(x)
    assert cell.__dict__["_infer_plan"] is not planned
    fast.reset_states()
    ref.reset_states()
    check(rng.standard_normal((2, 3, 5)).astype(np.float32))      # new batch and length


def test_plan_still_refuses_bad_shapes():
    fast, _ = _pair("lstm", "float32")
    fast.predict_on_batch(np.zeros((1, 1, 5), np.float32))
    cell = fast.layers[-1].cell
    cell.params["recurrent_kernel"] = np.zeros((16, 60), np.float32)   # wrong: 4 * 16 = 64
    with pytest.raises(ValueError, match="recurrent_kernel U must have shape"):
        fast.predict_on_batch(np.zeros((1, 1, 5), np.float32))
