"""Pooling over time: MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D.

Windowed pooling gathers each output step's ``pool_size`` inputs into a (B, n, pool, C) array
(padded positions of ``padding='same'`` are left out of the max and the average, as in Keras),
reduces it, and scatters the gradient back window by window. The global poolings reduce the
whole time axis and skip masked steps.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, as_float_array
from .conv import _int_tuple, check_data_format, out_length


def _to_last(x, data_format):
    return x.transpose(0, 2, 1) if data_format == "channels_first" else x


def _check_rank3(layer, shape):
    if len(shape) != 3:
        raise ValueError(f"{type(layer).__name__} layer {layer.name!r} expects (batch, "
                         f"timesteps, channels), got shape {tuple(shape)}.")


class _Pooling1D(Layer):
    supports_masking = False
    _kind = ""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last",
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _int_tuple("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _int_tuple("strides", strides)
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}.")
        self.padding = padding
        self.data_format = check_data_format(data_format)

    def _lengths(self, T):
        pl, pr, n = out_length(T, self.pool_size, self.strides, 1, self.padding)
        if n <= 0:
            raise ValueError(f"{type(self).__name__} layer {self.name!r}: {T} time steps are "
                             f"fewer than pool_size={self.pool_size} with padding='valid'.")
        return pl, pr, n

    def forward(self, x, training=False, mask=None):
        x = _to_last(as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype),
                     self.data_format)
        _check_rank3(self, x.shape)
        B, T, C = x.shape
        pl, pr, n = self._lengths(T)
        p, s = self.pool_size, self.strides
        fill = -np.inf if self._kind == "max" else 0.0
        xp = np.full((B, T + pl + pr, C), fill, self.dtype)
        xp[:, pl:pl + T] = x
        win = np.empty((B, n, p, C), self.dtype)
        for j in range(p):
            win[:, :, j] = xp[:, j: j + (n - 1) * s + 1: s]
        if self._kind == "max":
            arg = win.argmax(axis=2)                                        # (B, n, C)
            y = np.take_along_axis(win, arg[:, :, None], axis=2)[:, :, 0]
            self._cache = (arg, None, (B, T, C, n, pl, pr))
        else:
            valid = np.zeros(T + pl + pr, self.dtype)
            valid[pl:pl + T] = 1
            count = np.array([valid[o * s: o * s + p].sum() for o in range(n)], self.dtype)
            y = win.sum(axis=2) / count[None, :, None]
            self._cache = (None, count, (B, T, C, n, pl, pr))
        return _to_last(y, self.data_format)

    def backward(self, dy):
        arg, count, (B, T, C, n, pl, pr) = self._cache
        dy = _to_last(np.asarray(dy, self.dtype), self.data_format)
        p, s = self.pool_size, self.strides
        dxp = np.zeros((B, T + pl + pr, C), self.dtype)
        for j in range(p):
            part = dy * (arg == j) if self._kind == "max" else dy / count[None, :, None]
            dxp[:, j: j + (n - 1) * s + 1: s] += part
        return _to_last(dxp[:, pl:pl + T], self.data_format)

    def compute_mask(self, x, mask):
        return None

    def compute_output_shape(self, input_shape):
        _check_rank3(self, input_shape)
        last = self.data_format == "channels_last"
        T = input_shape[1] if last else input_shape[2]
        n = None if T is None else self._lengths(T)[2]
        return (input_shape[0], n, input_shape[2]) if last else (input_shape[0],
                                                                  input_shape[1], n)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                   data_format=self.data_format)
        return cfg


class MaxPooling1D(_Pooling1D):
    """Maximum over windows of ``pool_size`` steps, every ``strides`` steps (Keras defaults:
    pool_size=2, strides=pool_size, padding='valid').

    Shapes: (B, T, C) -> (B, n, C); n = (T - pool_size) // strides + 1 ('valid') or
    ceil(T / strides) ('same', padding left out of the max). The gradient goes to the first
    maximum of each window.
    """

    _kind = "max"


class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps, every ``strides`` steps (Keras defaults).

    Shapes as :class:`MaxPooling1D`; with padding='same' the padded positions are left out of
    the mean (as in Keras).
    """

    _kind = "avg"


class _GlobalPooling1D(Layer):
    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        self.keepdims = bool(keepdims)

    def _input(self, x, mask):
        x = _to_last(as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype),
                     self.data_format)
        _check_rank3(self, x.shape)
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != x.shape[:2]:
                raise ValueError(f"{type(self).__name__} layer {self.name!r}: mask of shape "
                                 f"{mask.shape} does not match the input {x.shape[:2]}.")
        return x, mask

    def _output(self, y):
        if not self.keepdims:
            return y
        return y[:, :, None] if self.data_format == "channels_first" else y[:, None, :]

    def _dy(self, dy):
        dy = np.asarray(dy, self.dtype)
        if self.keepdims:
            dy = dy[:, :, 0] if self.data_format == "channels_first" else dy[:, 0, :]
        return dy

    def compute_mask(self, x, mask):
        return None

    def compute_output_shape(self, input_shape):
        _check_rank3(self, input_shape)
        C = input_shape[2] if self.data_format == "channels_last" else input_shape[1]
        if not self.keepdims:
            return (input_shape[0], C)
        return (input_shape[0], C, 1) if self.data_format == "channels_first" else (
            input_shape[0], 1, C)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(data_format=self.data_format, keepdims=self.keepdims)
        return cfg


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the time axis: (B, T, C) -> (B, C) (or (B, 1, C) with ``keepdims``).

    Masked steps are left out of the mean (as in Keras); a row with every step masked gives
    zeros.
    """

    def forward(self, x, training=False, mask=None):
        x, mask = self._input(x, mask)
        B, T, C = x.shape
        w = np.ones((B, T), self.dtype) if mask is None else mask.astype(self.dtype)
        count = np.maximum(w.sum(axis=1), 1)[:, None]                        # (B, 1)
        self._cache = (w, count, x.shape)
        return self._output(np.einsum("btc,bt->bc", x, w) / count)

    def backward(self, dy):
        w, count, _ = self._cache
        dx = (self._dy(dy) / count)[:, None, :] * w[:, :, None]
        return _to_last(dx, self.data_format)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Maximum over the time axis: (B, T, C) -> (B, C) (or (B, 1, C) with ``keepdims``).

    Masked steps are left out of the maximum (Keras ignores the mask here; rnnkit follows the
    mask so padding never wins); a row with every step masked gives zeros.
    """

    def forward(self, x, training=False, mask=None):
        x, mask = self._input(x, mask)
        xm = x if mask is None else np.where(mask[:, :, None], x, -np.inf)
        arg = xm.argmax(axis=1)                                              # (B, C)
        y = np.take_along_axis(xm, arg[:, None, :], axis=1)[:, 0]
        empty = ~np.isfinite(y)
        y = np.where(empty, 0, y).astype(self.dtype)
        self._cache = (arg, empty, x.shape)
        return self._output(y)

    def backward(self, dy):
        arg, empty, (B, T, C) = self._cache
        dy = np.where(empty, 0, self._dy(dy))
        dx = np.zeros((B, T, C), self.dtype)
        np.put_along_axis(dx, arg[:, None, :], dy[:, None, :], axis=1)
        return _to_last(dx, self.data_format)

