"""Conv1D: 1-D convolution over time, with Keras' arguments and weight layout.

For input ``x`` (B, T, C), kernel ``W`` (k, C/groups, filters) and bias ``b`` (filters,), the
output at step ``o`` is

    z[:, o] = sum_j  x_pad[:, o*s + j*d] @ W[j] + b          y = activation(z)

(``s`` strides, ``d`` dilation_rate; ``groups`` splits channels and filters into independent
blocks). It is computed as one matrix product: the k taps of every output step are gathered
into a (B*T_out, k*C) matrix ("im2col"). Backward: ``dW`` is one product with that matrix,
``dx`` a product with ``W^T`` scattered back tap by tap.
"""

from __future__ import annotations

import numpy as np

from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from .base import Layer, as_float_array, check_positive_int


def _int_tuple(name, value):
    """Keras accepts ``3`` or ``(3,)`` for 1-D sizes."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {value!r}.")
        value = value[0]
    return check_positive_int(name, value)


def check_data_format(data_format):
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{data_format!r}.")
    return data_format or "channels_last"


def out_length(T, size, stride, dilation, padding):
    """(left pad, right pad, output length) along time, Keras/TensorFlow conventions."""
    span = dilation * (size - 1) + 1
    if padding == "valid":
        n = (T - span) // stride + 1
        return 0, 0, n
    if padding == "causal":
        return span - 1, 0, (T - 1) // stride + 1
    n = -(-T // stride)                                  # same: ceil(T / s)
    total = max((n - 1) * stride + span - T, 0)
    return total // 2, total - total // 2, n


class Conv1D(Layer):
    """1-D convolution over the time axis (``keras.layers.Conv1D``).

    Args:
        filters: number of output channels.
        kernel_size: taps per filter (int or 1-tuple).
        strides: step between output positions.
        padding: 'valid' (no padding), 'same' (output length ceil(T / strides)) or 'causal'
            (left padding only: output t sees inputs up to t).
        data_format: 'channels_last' (B, T, C) (default) or 'channels_first' (B, C, T).
        dilation_rate: spacing between taps.
        groups: split the C input channels and the filters into ``groups`` independent blocks.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer: as in Dense.

    Shapes: (B, T, C) -> (B, T_out, filters). Weights: ``kernel`` (kernel_size, C / groups,
    filters), ``bias`` (filters,) — Keras' layout. Masks are not propagated (as in Keras).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.Conv1D(8, 3, padding="causal")(np.ones((2, 10, 4))).shape
        (2, 10, 8)
    """

    supports_masking = False
    fusable_activation = True

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 data_format="channels_last", dilation_rate=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = _int_tuple("kernel_size", kernel_size)
        self.strides = _int_tuple("strides", strides)
        self.dilation_rate = _int_tuple("dilation_rate", dilation_rate)
        self.groups = check_positive_int("groups", groups)
        padding = str(padding).lower()
        if padding not in ("valid", "same", "causal"):
            raise ValueError(f"padding must be 'valid', 'same' or 'causal', got {padding!r}.")
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(f"Conv1D {self.name!r}: strides > 1 with dilation_rate > 1 is not "
                             f"supported (as in Keras), got strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}.")
        if self.filters % self.groups:
            raise ValueError(f"filters ({self.filters}) must be divisible by groups "
                             f"({self.groups}).")
        self.padding = padding
        self.data_format = check_data_format(data_format)
        self.activation = _act.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = _reg.get(kernel_regularizer)
        self.bias_regularizer = _reg.get(bias_regularizer)
        self._cache = None

    def _channels(self, shape):
        return shape[-1] if self.data_format == "channels_last" else shape[1]

    def build(self, input_shape):
        if len(input_shape) != 3 or self._channels(input_shape) is None:
            raise ValueError(f"Conv1D layer {self.name!r} expects input (batch, timesteps, "
                             f"channels) with known channels, got shape {tuple(input_shape)}.")
        C = self._channels(input_shape)
        if C % self.groups:
            raise ValueError(f"Conv1D layer {self.name!r}: the {C} input channels must be "
                             f"divisible by groups={self.groups}.")
        self.add_weight("kernel", (self.kernel_size, C // self.groups, self.filters),
                        self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer)
        super().build(input_shape)

    def _lengths(self, T):
        pl, pr, n = out_length(T, self.kernel_size, self.strides, self.dilation_rate,
                               self.padding)
        if n <= 0:
            span = self.dilation_rate * (self.kernel_size - 1) + 1
            raise ValueError(f"Conv1D layer {self.name!r}: {T} time steps are fewer than the "
                             f"kernel's span {span} with padding='valid'. Use padding='same' or "
                             "'causal', or longer sequences.")
        return pl, pr, n

    def forward(self, x, training=False, mask=None):
        x = as_float_array(x, f"Conv1D {self.name!r} input", self.dtype)
        W = self.params["kernel"]
        k, Cg, F = W.shape
        if self.data_format == "channels_first":
            x = x.transpose(0, 2, 1)
        if x.ndim != 3 or x.shape[2] != Cg * self.groups:
            raise ValueError(f"Conv1D layer {self.name!r} was built for (batch, timesteps, "
                             f"{Cg * self.groups}) inputs, got shape {x.shape}.")
        B, T, C = x.shape
        pl, pr, n = self._lengths(T)
        xp = x if pl == pr == 0 else np.pad(x, ((0, 0), (pl, pr), (0, 0)))
        s, d = self.strides, self.dilation_rate
        # im2col: cols[b, o, j, c] = xp[b, o*s + j*d, c]
        cols = np.empty((B, n, k, C), self.dtype)
        for j in range(k):
            cols[:, :, j] = xp[:, j * d: j * d + (n - 1) * s + 1: s]
        z = np.empty((B * n, F), self.dtype)
        G, Fg = self.groups, F // self.groups
        cols2 = cols.reshape(B * n, k, C)
        for g in range(G):
            cg = cols2[:, :, g * Cg:(g + 1) * Cg].reshape(B * n, k * Cg)
            wg = W[:, :, g * Fg:(g + 1) * Fg].reshape(k * Cg, Fg)
            z[:, g * Fg:(g + 1) * Fg] = np.matmul(cg, wg)
        if self.use_bias:
            z += self.params["bias"]
        a = self.activation.forward(z)
        self._cache = (cols2, z, a, (B, T, C, n, pl, pr))
        y = a.reshape(B, n, F)
        return y.transpose(0, 2, 1) if self.data_format == "channels_first" else y

    def backward(self, dy, wrt_logits=False):
        """dL/dx (B, T, C) from dL/dy; fills ``grads['kernel']`` and ``grads['bias']``."""
        cols2, z, a, (B, T, C, n, pl, pr) = self._cache
        W = self.params["kernel"]
        k, Cg, F = W.shape
        dy = np.asarray(dy, self.dtype)
        if self.data_format == "channels_first":
            dy = dy.transpose(0, 2, 1)
        dy = dy.reshape(B * n, F)
        dz = dy if wrt_logits else self.activation.backward(dy, z, a)
        G, Fg = self.groups, F // self.groups
        dcols = np.empty((B * n, k, C), self.dtype)
        for g in range(G):
            cg = cols2[:, :, g * Cg:(g + 1) * Cg].reshape(B * n, k * Cg)
            dzg = np.ascontiguousarray(dz[:, g * Fg:(g + 1) * Fg])
            wg = W[:, :, g * Fg:(g + 1) * Fg].reshape(k * Cg, Fg)
            self.grads["kernel"][:, :, g * Fg:(g + 1) * Fg] = \
                np.matmul(cg.T, dzg).reshape(k, Cg, Fg)               # dW = cols^T dz
            dcols[:, :, g * Cg:(g + 1) * Cg] = \
                np.matmul(dzg, np.ascontiguousarray(wg.T)).reshape(B * n, k, Cg)
        if self.use_bias:
            np.sum(dz, axis=0, out=self.grads["bias"])
        dcols = dcols.reshape(B, n, k, C)
        dxp = np.zeros((B, T + pl + pr, C), self.dtype)
        s, d = self.strides, self.dilation_rate
        for j in range(k):                                      # scatter each tap back
            dxp[:, j * d: j * d + (n - 1) * s + 1: s] += dcols[:, :, j]
        dx = dxp[:, pl:pl + T]
        return dx.transpose(0, 2, 1) if self.data_format == "channels_first" else dx

    def compute_mask(self, x, mask):
        return None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv1D layer {self.name!r} expects input (batch, timesteps, "
                             f"channels), got shape {tuple(input_shape)}.")
        T = input_shape[1] if self.data_format == "channels_last" else input_shape[2]
        n = None if T is None else self._lengths(T)[2]
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters, n)
        return (input_shape[0], n, self.filters)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
            padding=self.padding, data_format=self.data_format,
            dilation_rate=self.dilation_rate, groups=self.groups,
            activation=_act.serialize(self.activation), use_bias=self.use_bias,
            kernel_initializer=_init.serialize(self.kernel_initializer),
            bias_initializer=_init.serialize(self.bias_initializer),
            kernel_regularizer=_reg.serialize(self.kernel_regularizer),
            bias_regularizer=_reg.serialize(self.bias_regularizer),
        )
        return cfg
