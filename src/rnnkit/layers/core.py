"""Non-recurrent layers: Input, Dense, Embedding, Dropout, Activation, Flatten, Masking."""

from __future__ import annotations

import numpy as np

from .. import _backend
from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import (
    check_bool,
    check_positive_int,
    check_rate,
    check_seed,
    check_shape,
    get_named,
)
from ..kernels import threads as _threads
from .base import Layer, as_float_array, unique_name


class InputLayer(Layer):
    """Declares the input shape (without the batch axis) so a model can build eagerly.

    Args:
        shape: tuple of positive ints or None (unknown, e.g. the number of time steps), without
            the batch axis: ``(timesteps, features)`` for a recurrent model.
        dtype: dtype of the data ('float32' by default; integer types for Embedding ids).
        name, trainable: see :class:`Layer`.
        batch_size: None or a positive int: the fixed number of rows per batch (stateful
            models carry one state per row).

    Shapes: the output is the input, (B, *shape).
    """

    def __init__(self, shape, name=None, dtype=None, batch_size=None, **kwargs):
        super().__init__(name=name or unique_name("input_layer"), **kwargs)
        if dtype is not None:
            try:
                dt = np.dtype(dtype)
            except TypeError:
                dt = None
            if dt is None or dt.kind not in "biuf":
                raise ValueError(f"Input dtype must be numeric, e.g. 'float32' (or 'int32' for "
                                 f"Embedding ids), got {dtype!r}.")
            self.dtype = dt.name
        if shape is None or isinstance(shape, int):
            shape = (shape,)
        self.shape = _check_input_shape(shape)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
                batch_size, (int, np.integer)) or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
        #: fixed number of rows per batch (stateful models: one carried state per row), or None
        self.batch_size = None if batch_size is None else int(batch_size)
        self.built = True
        self.input_shape = (self.batch_size,) + self.shape

    def forward(self, x, training=False, mask=None):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        cfg = super().get_config()
        cfg["shape"] = list(self.shape)
        if self.batch_size is not None:
            cfg["batch_size"] = self.batch_size
        return cfg

    @property
    def output(self):
        """The symbolic tensor this layer feeds into a functional model (made once)."""
        if not self.inbound_nodes:
            from ._symbolic import Node, SymbolicTensor
            node = Node(self, [], False, {})
            node.outputs = [SymbolicTensor(self.input_shape, self.dtype, node, 0)]
            self.inbound_nodes.append(node)
        return self.inbound_nodes[0].outputs[0]


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):
    """A symbolic model input, as ``keras.Input``.

    Start a functional model with it (``x = Input((T, F)); y = LSTM(8)(x);
    model = rnnkit.Model(x, y)``), or put it first in a :class:`rnnkit.Sequential` list to
    build the model at once.

    Args:
        shape: shape without the batch axis, e.g. ``(timesteps, features)``; None for unknown.
        batch_size: fix the number of rows per batch (a stateful model carries one state per
            row; batches of another size are refused with a clear error).
        dtype: 'float32' by default; e.g. 'int32' for the ids fed to an Embedding.
        batch_shape: ``(batch_size, *shape)`` in one tuple (Keras 3), instead of both.
        name: input name (used for dict inputs to ``fit``).

    Returns:
        A :class:`rnnkit.layers.SymbolicTensor` of shape ``(batch_size, *shape)``.

    Example:
        >>> import rnnkit
        >>> x = rnnkit.Input(shape=(12, 5))
        >>> rnnkit.layers.LSTM(16)(x).shape
        (None, 16)
    """
    if batch_shape is not None:
        if shape is not None or batch_size is not None:
            raise ValueError("Input: pass batch_shape=(batch, ...) or shape=/batch_size=, not "
                             "both.")
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    if shape is None:
        raise ValueError("Input needs shape=(timesteps, features) (or batch_shape=).")
    return InputLayer(shape, name=name, dtype=dtype, batch_size=batch_size).output


def _check_input_shape(shape):
    try:
        return check_shape("shape", shape)
    except (TypeError, ValueError):
        raise ValueError(f"Input shape must be a tuple of positive ints or None (unknown), "
                         f"e.g. (None, 3) for sequences of 3 features; got {shape!r}.") from None


class Dense(Layer):
    """``output = activation(x @ kernel + bias)`` on the last axis.

    On (B, F) input gives (B, units); on (B, T, F) input it applies the same weights at every
    time step and gives (B, T, units), as Keras does. Weights: ``kernel`` (F, units),
    ``bias`` (units,).

    Args:
        units: positive int, the output size.
        activation: name or instance (default None: linear).
        use_bias: bool.
        kernel_initializer, bias_initializer: names or instances.
        kernel_regularizer, bias_regularizer: names, instances or None.
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.Dense(3, activation="softmax")(np.ones((2, 4))).shape
        (2, 3)
    """

    fusable_activation = True  # backward(dz, wrt_logits=True) skips the activation

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = get_named(_act, "activation", activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = get_named(_init, "kernel_initializer", kernel_initializer)
        self.bias_initializer = get_named(_init, "bias_initializer", bias_initializer)
        self.kernel_regularizer = get_named(_reg, "kernel_regularizer", kernel_regularizer)
        self.bias_regularizer = get_named(_reg, "bias_regularizer", bias_regularizer)
        self._cache = None

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"Dense layer {self.name!r} needs input of rank >= 2 with a known last "
                f"dimension, got shape {tuple(input_shape)}."
            )
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)
        super().build(input_shape)

    def forward(self, x, training=False, mask=None):
        x = as_float_array(x, f"Dense {self.name!r} input", self.dtype)
        F = self.params["kernel"].shape[0]
        if x.ndim < 2 or x.shape[-1] != F:
            raise ValueError(
                f"Dense layer {self.name!r} was built for inputs with last dimension {F}, "
                f"got shape {x.shape}."
            )
        x2 = x.reshape(-1, F)
        z = _threads.matmul(x2, self.params["kernel"],
                            bias=self.params["bias"] if self.use_bias else None)
        a = self.activation.forward(z)
        self._cache = (x2, z, a, x.shape)
        return a.reshape(x.shape[:-1] + (self.units,))

    def backward(self, dy, wrt_logits=False):
        """dL/dx from dL/d(output); with ``wrt_logits=True`` ``dy`` is already dL/dz."""
        x2, z, a, shape = self._cache
        dy = np.asarray(dy, self.dtype).reshape(-1, self.units)
        dz = dy if wrt_logits else self.activation.backward(dy, z, a)
        _threads.matmul(x2.T, dz, out=self.grads["kernel"])
        if self.use_bias:
            np.sum(dz, axis=0, out=self.grads["bias"])
        return _threads.matmul(dz, self.params["kernel"].T).reshape(shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            units=self.units, activation=_act.serialize(self.activation), use_bias=self.use_bias,
            kernel_initializer=_init.serialize(self.kernel_initializer),
            bias_initializer=_init.serialize(self.bias_initializer),
            kernel_regularizer=_reg.serialize(self.kernel_regularizer),
            bias_regularizer=_reg.serialize(self.bias_regularizer),
        )
        return cfg


class Embedding(Layer):
    """Integer ids (B, T) -> vectors (B, T, output_dim). ``mask_zero=True`` masks id 0.

    Weight: ``embeddings`` (input_dim, output_dim), Keras default init uniform(-0.05, 0.05).

    Args:
        input_dim: positive int, the number of distinct ids (ids are in [0, input_dim)).
        output_dim: positive int, the vector size.
        embeddings_initializer: name or instance (default ``'uniform'``).
        embeddings_regularizer: name, instance or None.
        mask_zero: bool; True makes id 0 padding (the output mask is ``ids != 0``).
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer` (``input_length``,
            a Keras 2 argument, is accepted and ignored).
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, mask_zero=False, **kwargs):
        kwargs.pop("input_length", None)  # Keras 2 argument, not needed
        super().__init__(**kwargs)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        if embeddings_initializer == "uniform":
            embeddings_initializer = "random_uniform"
        self.embeddings_initializer = get_named(_init, "embeddings_initializer",
                                           embeddings_initializer)
        self.embeddings_regularizer = get_named(_reg, "embeddings_regularizer", embeddings_regularizer)
        self.mask_zero = check_bool("mask_zero", mask_zero)
        self._cache = None

    def build(self, input_shape):
        self.add_weight("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer, self.embeddings_regularizer)
        super().build(input_shape)

    def _ids(self, x):
        x = np.asarray(x)
        if x.dtype.kind == "f":
            if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
                raise ValueError(
                    f"Embedding {self.name!r} expects integer ids, got non-integer floats."
                )
        elif x.dtype.kind not in "iub":
            raise TypeError(f"Embedding {self.name!r} expects integer ids, got dtype {x.dtype}.")
        ids = x.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(
                f"Embedding {self.name!r}: ids must be in [0, input_dim={self.input_dim}), got "
                f"values from {ids.min()} to {ids.max()}. Increase input_dim or fix the ids."
            )
        return ids

    def forward(self, x, training=False, mask=None):
        ids = self._ids(x)
        self._cache = ids
        return self.params["embeddings"][ids]

    def backward(self, dy):
        ids = self._cache
        g = self.grads["embeddings"]
        g.fill(0)
        np.add.at(g, ids.reshape(-1), np.asarray(dy, self.dtype).reshape(-1, self.output_dim))
        return None  # ids are not differentiable

    def compute_mask(self, x, mask):
        if not self.mask_zero:
            return mask
        return np.asarray(x) != 0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(input_dim=self.input_dim, output_dim=self.output_dim,
                   embeddings_initializer=_init.serialize(self.embeddings_initializer),
                   embeddings_regularizer=_reg.serialize(self.embeddings_regularizer),
                   mask_zero=self.mask_zero)
        return cfg


class Dropout(Layer):
    """Zero a fraction ``rate`` of inputs during training and scale the rest by 1/(1-rate).

    Args:
        rate: float in [0, 1).
        noise_shape: None (a mask entry per input entry) or a tuple with the input's rank whose
            entries are 1 (share the mask along that axis), None (the input's size) or the size.
        seed: None or a non-negative int seeding this layer's masks.
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.

    Shapes: output = input shape.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.noise_shape = None if noise_shape is None else check_shape("noise_shape",
                                                                        noise_shape)
        self.seed = check_seed("seed", seed)
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._keep = None

    def forward(self, x, training=False, mask=None):
        x = as_float_array(x, f"Dropout {self.name!r} input", self.dtype)
        if not training or self.rate == 0:
            self._keep = None
            return x
        shape = x.shape if self.noise_shape is None else tuple(
            d if n is None else n for d, n in zip(x.shape, self.noise_shape))
        rng = self._rng if self._rng is not None else _backend.rng()
        self._keep = ((rng.random(shape) >= self.rate) / (1.0 - self.rate)).astype(self.dtype)
        return x * self._keep

    def backward(self, dy):
        return dy if self._keep is None else dy * self._keep

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rate=self.rate, noise_shape=None if self.noise_shape is None
                   else list(self.noise_shape), seed=self.seed)
        return cfg


class Activation(Layer):
    """Apply an activation function element-wise (softmax over the last axis).

    Args:
        activation: name or instance (``'relu'``, ``'softmax'``, ...).
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.

    Shapes: output = input shape.
    """

    fusable_activation = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = get_named(_act, "activation", activation)

    def forward(self, x, training=False, mask=None):
        z = as_float_array(x, f"Activation {self.name!r} input", self.dtype)
        a = self.activation.forward(z)
        self._cache = (z, a)
        return a

    def backward(self, dy, wrt_logits=False):
        z, a = self._cache
        return dy if wrt_logits else self.activation.backward(dy, z, a)

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = _act.serialize(self.activation)
        return cfg


class Flatten(Layer):
    """(B, d1, d2, ...) -> (B, d1*d2*...); the mask is dropped.

    Args:
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.
    """

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)

    def compute_mask(self, x, mask):
        return None

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        n = None if any(d is None for d in rest) else int(np.prod(rest))
        return (input_shape[0], n)


class Masking(Layer):
    """Mask time steps whose features all equal ``mask_value``; masked steps are zeroed.

    Input (B, T, F); the output mask (B, T) is ``any(x != mask_value, axis=-1)``.

    Args:
        mask_value: a number; steps whose features all equal it are padding.
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.integer,
                                                                       np.floating)):
            raise TypeError(f"mask_value must be a number, got {mask_value!r}.")
        self.mask_value = float(mask_value)

    def forward(self, x, training=False, mask=None):
        x = as_float_array(x, f"Masking {self.name!r} input", self.dtype)
        if x.ndim != 3:
            raise ValueError(
                f"Masking layer {self.name!r} expects (batch, timesteps, features), got {x.shape}."
            )
        m = self.compute_mask(x, mask)
        self._m = m[..., None]
        return x * self._m

    def backward(self, dy):
        return dy * self._m

    def compute_mask(self, x, mask):
        m = np.any(np.asarray(x) != self.mask_value, axis=-1)
        return m if mask is None else (m & mask)

    def get_config(self):
        cfg = super().get_config()
        cfg["mask_value"] = self.mask_value
        return cfg
