"""The Layer base class: weights, build, forward/backward, config, Keras-style weight I/O."""

from __future__ import annotations

import collections
import contextvars
import inspect
import re

import numpy as np

from .. import _backend
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import (  # noqa: F401  (check_rate re-exported)
    check_bool,
    check_positive_int,
    check_rate,
    check_shape,
    no_unknown_kwargs,
)

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


def inference():
    """Run the enclosed forward passes without gradient caches (no ``backward`` after).

    Use as ``with inference(): ...`` (a class rather than a generator: it wraps every
    ``predict_on_batch`` call)."""
    return _Inference()


class _Inference:
    __slots__ = ("_token",)

    def __enter__(self):
        self._token = INFERENCE.set(True)
        return self

    def __exit__(self, *exc):
        INFERENCE.reset(self._token)
        return False


def _snake(name: str) -> str:
    """'SimpleRNN' -> 'simple_rnn', 'LSTM' -> 'lstm', 'TimeDistributed' -> 'time_distributed'."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """Keras-style auto names: 'lstm', 'lstm_1', 'lstm_2', ..."""
    n = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if n == 0 else f"{base}_{n}"


class Layer:
    """Base class of every rnnkit layer.

    Subclasses implement ``build(input_shape)`` (create weights with :meth:`add_weight`),
    ``forward(x, training=False, mask=None)`` (compute outputs, keep a cache) and
    ``backward(dy)`` (consume the cache, fill ``self.grads``, return ``dx``).
    Weight order, names and shapes follow Keras, so ``get_weights()`` / ``set_weights()``
    exchange weights with Keras directly.
    """

    supports_masking = True
    #: True for layers whose ``forward`` takes a list of inputs of equal standing (merging,
    #: attention): they build from, and compute output shapes of, a list of shapes.
    list_inputs = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # rnnkit's own layers are loadable by name; user layers must be registered explicitly
        if cls.__module__.startswith("rnnkit.") and not cls.__name__.startswith("_"):
            _CLASSES[cls.__name__] = cls

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None, **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be None or a non-empty string, got {name!r}.")
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
        self.trainable = check_bool("trainable", trainable)
        try:
            self.dtype = np.dtype(dtype or _backend.floatx()).name
        except TypeError:
            raise ValueError(f"dtype must be a float dtype such as 'float32', got {dtype!r}.") \
                from None
        if np.dtype(self.dtype).kind != "f":
            raise ValueError(f"dtype must be a float dtype such as 'float32', got {dtype!r}.")
        if input_shape is None and input_dim is not None:
            input_shape = (None, check_positive_int("input_dim", input_dim))
        self._input_shape_arg = None if input_shape is None else check_shape("input_shape",
                                                                              input_shape)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.regularizers: dict[str, object] = {}
        self.non_trainable: set[str] = set()  # weights the optimizer leaves alone (BN moving stats)
        self.inbound_nodes: list = []         # calls on symbolic tensors (functional models)
        self.constraints: dict[str, object] = {}
        self.built = False
        self.input_shape = None  # full shape with batch axis, set by build

    # ------------------------------------------------------------------ weights
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, *, trainable=True,
                   constraint=None):
        """Create a weight ``name`` of ``shape`` (initialised now) and its gradient buffer.

        Args:
            name: weight name (key of ``params`` / ``grads``, saved under it).
            shape: tuple of ints.
            initializer: name, instance or callable ``(shape, dtype) -> array``.
            regularizer: name, instance or None (its penalty joins the loss).
            trainable: False marks a weight the layer updates itself (e.g.
                BatchNormalization's moving statistics): it is saved and loaded like any weight
                but the optimizer skips it.
            constraint: None or a callable ``w -> w`` applied after every optimizer update
                (:meth:`apply_constraints`).

        Returns:
            The weight array (live).
        """
        source = WEIGHT_SOURCE.get()
        value = None if source is None else source(self, name, tuple(int(s) for s in shape),
                                                   self.dtype)
        if value is None:
            value = _init.get(initializer)(tuple(shape), self.dtype)
        self.params[name] = np.require(np.asarray(value, dtype=self.dtype),
                                       requirements="C")  # keeps 0-d (scalar) weights 0-d
        self.grads[name] = np.zeros_like(self.params[name])
        reg = _reg.get(regularizer)
        if reg is not None:
            self.regularizers[name] = reg
        if not trainable:
            self.non_trainable.add(name)
        if constraint is not None:
            self.constraints[name] = constraint
        return self.params[name]

    def trainable_param_names(self):
        """Names of the weights the optimizer updates (all but the non-trainable ones)."""
        return [n for n in self.params if n not in self.non_trainable]

    def apply_constraints(self):
        """Project every constrained weight in place: ``w[...] = constraint(w)`` (called by
        the model after each optimizer update)."""
        for n, c in self.constraints.items():
            self.params[n][...] = c(self.params[n])

    @property
    def weights(self):
        """The weight arrays in Keras order (live references)."""
        return list(self.params.values())

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [self.params[n] for n in self.trainable_param_names()]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for n, w in self.params.items() if n in self.non_trainable]

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
            self.build(list(map(tuple, input_shape)) if self.list_inputs else tuple(input_shape))

    def __call__(self, inputs, training=False, mask=None, **kwargs):
        """Build on first use, then run :meth:`forward` (inference mode unless training=True).

        Called on symbolic tensors (from :func:`rnnkit.Input` or another layer's output), it
        records the call for a functional :class:`rnnkit.Model` and returns symbolic output(s).
        """
        from . import _symbolic
        if _symbolic.is_symbolic(inputs) or _symbolic.is_symbolic(kwargs.get("initial_state")):
            return _symbolic.call(self, inputs, kwargs)
        x0 = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        x0 = np.asarray(x0)
        check_finite(x0, f"Input to layer {self.name!r}")
        if self.list_inputs and isinstance(inputs, (list, tuple)):
            self.maybe_build([np.shape(x) for x in inputs])
        else:
            self.maybe_build(x0.shape)
        return self.forward(inputs, training=training, mask=mask, **kwargs)

    def forward(self, x, training=False, mask=None):
        raise NotImplementedError  # abstract

    def backward(self, dy):
        raise NotImplementedError  # abstract

    @property
    def output(self):
        """The symbolic output(s) of this layer's call on symbolic tensors (as Keras'
        ``layer.output``), e.g. to build a model that exposes an inner layer."""
        if len(self.inbound_nodes) != 1:
            raise AttributeError(
                f"Layer {self.name!r} has been called {len(self.inbound_nodes)} times on symbolic "
                "tensors; layer.output needs exactly one call. Keep the tensors its calls "
                "returned instead."
            )
        node = self.inbound_nodes[0]
        return list(node.outputs) if node.output_is_list else node.outputs[0]

    def call_state(self):
        """Everything one call leaves on this layer (and its inner layers) for ``backward``.

        A functional model that calls one layer several times saves this after each forward
        and gives it back (:meth:`restore_call_state`) before that call's backward.
        """
        return [(layer, dict(vars(layer))) for layer in _walk(self)]

    @staticmethod
    def restore_call_state(state):
        """Put back a :meth:`call_state` snapshot."""
        for layer, attrs in state:
            vars(layer).update(attrs)

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
        """``cls(**config)``."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def _walk(layer, seen=None):
    """``layer`` and every Layer held in its attributes (wrappers' inner layers)."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    for value in list(vars(layer).values()):
        if isinstance(value, Layer):
            yield from _walk(value, seen)


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


#: layer classes loadable by name: rnnkit's own (registered when defined) and registered ones
_CLASSES: dict[str, type] = {}


def register_layer(cls):
    """Register a custom Layer subclass so that saved models using it can be loaded.

    Loading never imports or runs code named in a file: only built-in and registered classes
    can be instantiated. Usable as a decorator.

    Args:
        cls: a :class:`Layer` subclass.

    Returns:
        ``cls``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer expects a Layer subclass, got {cls!r}.")
    _CLASSES[cls.__name__] = cls
    return cls


def get_layer_class(name, custom_objects=None):
    """The layer class called ``name``: built-in, registered, or in ``custom_objects``."""
    classes = {**_CLASSES, **(custom_objects or {})}
    if name not in classes:
        raise ValueError(
            f"Unknown layer class {name!r}. Known layers: {sorted(classes)}. Register custom "
            "layers with rnnkit.layers.register_layer."
        )
    return classes[name]


def deserialize(spec, custom_objects=None):
    """Create a layer from ``{"class_name": ..., "config": {...}}`` (no code is executed).

    Args:
        spec: the dict :meth:`Layer.get_config` and the class name make.
        custom_objects: optional ``{name: class}`` of extra layer (or cell) classes.
    """
    if not isinstance(spec, dict) or "class_name" not in spec or not isinstance(
            spec.get("config", {}), dict):
        raise ValueError(f"A layer spec must be a dict with 'class_name' and 'config', got {spec!r}.")
    cls = get_layer_class(spec["class_name"], custom_objects)
    cfg = dict(spec.get("config", {}))
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(cfg, custom_objects=custom_objects)   # holds other layers/cells
    return cls.from_config(cfg)
