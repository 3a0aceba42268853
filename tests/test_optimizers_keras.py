"""Every optimizer's update rule equals Keras 3's, step by step (same gradients in)."""

import os

import numpy as np
import pytest

from rnnkit import optimizers

os.environ.setdefault("KERAS_BACKEND", "torch")

CASES = [
    ("SGD", {"learning_rate": 0.1}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"learning_rate": 0.01}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    ("Adam", {"learning_rate": 0.01}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("Adagrad", {"learning_rate": 0.1}),
    ("Adam", {"learning_rate": 0.01, "clipnorm": 0.5}),
    ("SGD", {"learning_rate": 0.1, "global_clipnorm": 0.5}),
    ("SGD", {"learning_rate": 0.1, "clipvalue": 0.3}),
    ("Nadam", {"learning_rate": 0.01}),
    ("Nadam", {"learning_rate": 0.02, "beta_1": 0.8, "clipnorm": 0.5}),
]


@pytest.mark.parametrize("name,kw", CASES, ids=lambda c: str(c))
def test_update_rule_matches_keras(name, kw):
    import keras

    r = np.random.default_rng(0)
    w0 = [r.normal(size=(3, 4)), r.normal(size=(4,))]
    grads = [[r.normal(size=w.shape) for w in w0] for _ in range(5)]
    ours = getattr(optimizers, name)(**kw)
    w = [a.copy() for a in w0]
    kopt = getattr(keras.optimizers, name)(**kw)
    kvars = [keras.Variable(a.astype("float32")) for a in w0]
    for g in grads:
        ours.apply(w, [x.copy() for x in g])
        kopt.apply_gradients([(keras.ops.convert_to_tensor(x.astype("float32")), v)
                              for x, v in zip(g, kvars)])
    for a, v in zip(w, kvars):
        ref = keras.ops.convert_to_numpy(v)
        assert np.allclose(a, ref, rtol=1e-4, atol=1e-5), (
            f"{name}{kw}: rnnkit vs reference (Keras)\n{a}\n{ref}")
