"""The Layer base class: weights, build, forward/backward, config, Keras-style weight I/O."""

from __future__ import annotations

import collections
import contextlib
import contextvars
import re

import numpy as np

from .. import _backend
from .. import initializers as _init
from .. import regularizers as _reg

_NAME_COUNTS: collections.Counter = collections.Counter()

#: While set (by :mod:`rnnkit.saving` when it rebuilds a model from a file), ``add_weight``
#: asks it for every weight instead of running the initializer:
#: ``source(layer, name, shape, dtype) -> array``, or None to run the initializer as usual
#: (it may refuse by raising).
WEIGHT_SOURCE: contextvars.ContextVar = contextvars.ContextVar("rnnkit_weight_source",
                                                               default=None)

#: True inside :func:`inference`: forward passes with ``training=False`` keep no gradient
#: caches, so recurrent layers take the cache-free kernels (less memory, no transposes).
#: Set by ``Model.predict`` / ``evaluate`` / ``predict_on_batch`` / ``test_on_batch`` and
#: ``model(x)``; a bare ``layer.forward`` keeps its cache so ``backward`` can follow.
INFERENCE: contextvars.ContextVar = contextvars.ContextVar("rnnkit_inference", default=False)


@contextlib.contextmanager
def inference():
    """Run the enclosed forward passes without gradient caches (no ``backward`` after)."""
    token = INFERENCE.set(True)
    try:
        yield
    finally:
        INFERENCE.reset(token)


def _snake(name: str) -> str:
    """'SimpleRNN' -> 'simple_rnn', 'LSTM' -> 'lstm', 'TimeDistributed' -> 'time_distributed'."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """Keras-style auto names: 'lstm', 'lstm_1', 'lstm_2', ..."""
    n = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if n == 0 else f"{base}_{n}"


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
        0.0 <= float(value) < 1.0
    ):
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}.")
    return float(value)


class Layer:
    """Base class of every rnnkit layer.

    Subclasses implement ``build(input_shape)`` (create weights with :meth:`add_weight`),
    ``forward(x, training=False, mask=None)`` (compute outputs, keep a cache) and
    ``backward(dy)`` (consume the cache, fill ``self.grads``, return ``dx``).
    Weight order, names and shapes follow Keras, so ``get_weights()`` / ``set_weights()``
    exchange weights with Keras directly.
    """

    supports_masking = True

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None):
        self.name = name or unique_name(_snake(type(self).__name__))
        self._batch_size_arg = None
        if batch_input_shape is not None:
            if input_shape is not None or input_dim is not None:
                raise ValueError(f"layer {self.name!r}: pass batch_input_shape=(batch, ...) or "
                                 "input_shape=(...), not both.")
            batch_input_shape = tuple(batch_input_shape)
            b = batch_input_shape[0] if batch_input_shape else None
            if len(batch_input_shape) < 2 or (b is not None and (
                    isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0)):
                raise ValueError(f"batch_input_shape must be (batch_size, ...) with a positive "
                                 f"batch size (or None), got {batch_input_shape!r}.")
            self._batch_size_arg = None if b is None else int(b)
            input_shape = batch_input_shape[1:]
        self.trainable = bool(trainable)
        self.dtype = np.dtype(dtype or _backend.floatx()).name
        if np.dtype(self.dtype).kind != "f":
            raise ValueError(f"dtype must be a float dtype such as 'float32', got {dtype!r}.")
        if input_shape is None and input_dim is not None:
            input_shape = (None, input_dim)
        self._input_shape_arg = None if input_shape is None else tuple(input_shape)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.regularizers: dict[str, object] = {}
        self.built = False
        self.input_shape = None  # full shape with batch axis, set by build

    # ------------------------------------------------------------------ weights
    def add_weight(self, name, shape, initializer="zeros", regularizer=None):
        """Create a weight ``name`` of ``shape`` (initialised now) and its gradient buffer."""
        source = WEIGHT_SOURCE.get()
        value = None if source is None else source(self, name, tuple(int(s) for s in shape),
                                                   self.dtype)
        if value is None:
            value = _init.get(initializer)(tuple(shape), self.dtype)
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])
        reg = _reg.get(regularizer)
        if reg is not None:
            self.regularizers[name] = reg
        return self.params[name]

    @property
    def weights(self):
        """The weight arrays in Keras order (live references)."""
        return list(self.params.values())

    @property
    def trainable_weights(self):
        return self.weights if self.trainable else []

    def get_weights(self):
        """Copies of the weights, in Keras order and layout."""
        return [w.copy() for w in self.params.values()]

    def set_weights(self, weights):
        """Set weights from a list in Keras order; shapes must match exactly."""
        if not self.built:
            raise RuntimeError(
                f"Layer {self.name!r} is not built yet, so it has no weights to set. "
                "Call it on data (or build the model with an input shape) first."
            )
        names = list(self.params)
        if len(weights) != len(names):
            raise ValueError(
                f"Layer {self.name!r} expects {len(names)} weight arrays {names}, "
                f"got {len(weights)}."
            )
        for n, w in zip(names, weights):
            w = np.asarray(w)
            if w.shape != self.params[n].shape:
                raise ValueError(
                    f"set_weights: weight {self.name}/{n} expects shape "
                    f"{self.params[n].shape}, got {w.shape}."
                )
            if not np.all(np.isfinite(w)):
                raise ValueError(f"set_weights: weight {self.name}/{n} contains NaN or Inf.")
            self.params[n][...] = w.astype(self.dtype)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.params.values()))

    def zero_grads(self):
        for g in self.grads.values():
            g.fill(0)

    def regularization_loss(self) -> float:
        return float(sum(r.penalty(self.params[n]) for n, r in self.regularizers.items()))

    def add_regularization_grads(self):
        for n, r in self.regularizers.items():
            self.grads[n] += r.grad(self.params[n])

    # ------------------------------------------------------------------ build & call
    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.built = True

    def maybe_build(self, input_shape):
        if not self.built:
            self.build(tuple(input_shape))

    def __call__(self, inputs, training=False, mask=None, **kwargs):
        """Build on first use, then run :meth:`forward` (inference mode unless training=True)."""
        x0 = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        x0 = np.asarray(x0)
        check_finite(x0, f"Input to layer {self.name!r}")
        self.maybe_build(x0.shape)
        return self.forward(inputs, training=training, mask=mask, **kwargs)

    def forward(self, x, training=False, mask=None):
        raise NotImplementedError  # abstract

    def backward(self, dy):
        raise NotImplementedError  # abstract

    def compute_mask(self, x, mask):
        """The mask this layer's output carries, given the input mask (default: unchanged)."""
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._input_shape_arg is not None:
            if self._batch_size_arg is not None:
                cfg["batch_input_shape"] = [self._batch_size_arg] + list(self._input_shape_arg)
            else:
                cfg["input_shape"] = list(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def as_float_array(x, name, dtype):
    """Convert ``x`` to a float array of ``dtype``, rejecting non-numeric data. Finiteness is
    checked where user data enters (:func:`check_finite` in ``Layer.__call__`` and the model's
    data adapter), not between layers, so NaN weights are reported as a training fault rather
    than as bad data."""
    if isinstance(x, np.ndarray) and x.dtype == dtype:
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except ValueError as e:
            raise ValueError(
                f"{name} could not be converted to an array ({e}). If your sequences have "
                "different lengths, pad them with rnnkit.utils.pad_sequences."
            ) from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(
                f"{name} must hold numbers (bool, int or float), got dtype {arr.dtype}. "
                "If your sequences have different lengths, pad them with "
                "rnnkit.utils.pad_sequences."
            )
        arr = arr.astype(dtype)
    return arr


def check_finite(arr, what, advice="Clean or impute the data first."):
    """Raise a ValueError naming ``what`` and the first index when a float array holds NaN/Inf."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "fc" and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{what} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}). {advice}"
        )
