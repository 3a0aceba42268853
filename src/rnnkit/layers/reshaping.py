"""Shape-changing layers: Reshape, Permute, RepeatVector, UpSampling1D, ZeroPadding1D,
Cropping1D (Keras names, arguments and defaults). None of them has weights; none propagates a
mask (as in Keras)."""

from __future__ import annotations

import numpy as np

from .base import Layer, as_float_array, check_positive_int


class _NoMask(Layer):
    supports_masking = False

    def compute_mask(self, x, mask):
        return None

    def _x(self, x, rank=None):
        x = np.asarray(x) if isinstance(x, np.ndarray) and x.dtype.kind in "iub" else \
            as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype)
        if rank is not None and x.ndim != rank:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects input of rank "
                             f"{rank} (batch, timesteps, features), got shape {x.shape}.")
        return x


class Reshape(_NoMask):
    """Reshape each sample to ``target_shape`` (no batch axis; one entry may be -1).

    Example: ``Reshape((T, 1))`` turns (B, T) into (B, T, 1).
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_shape, int):
            target_shape = (target_shape,)
        self.target_shape = tuple(int(s) for s in target_shape)
        if sum(s == -1 for s in self.target_shape) > 1 or any(
                s <= 0 and s != -1 for s in self.target_shape):
            raise ValueError(f"target_shape must hold positive sizes and at most one -1, got "
                             f"{target_shape!r}.")

    def _resolve(self, in_shape):
        known = [s for s in in_shape[1:]]
        if any(s is None for s in known):
            return tuple(None if s == -1 else s for s in self.target_shape)
        n = int(np.prod(known))
        fixed = int(np.prod([s for s in self.target_shape if s != -1]))
        if -1 in self.target_shape:
            if n % fixed:
                raise ValueError(f"Reshape layer {self.name!r} cannot reshape {tuple(in_shape)} "
                                 f"to {self.target_shape}: {n} values per sample.")
            return tuple(n // fixed if s == -1 else s for s in self.target_shape)
        if fixed != n:
            raise ValueError(f"Reshape layer {self.name!r}: target_shape {self.target_shape} holds "
                             f"{fixed} values per sample, the input {tuple(in_shape)} has {n}.")
        return self.target_shape

    def forward(self, x, training=False, mask=None):
        x = self._x(x)
        self._shape = x.shape
        return x.reshape((x.shape[0],) + self._resolve(x.shape))

    def backward(self, dy):
        return np.asarray(dy).reshape(self._shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = list(self.target_shape)
        return cfg


class Permute(_NoMask):
    """Permute the non-batch axes: ``dims`` is 1-based, e.g. ``Permute((2, 1))`` swaps time
    and features, (B, T, F) -> (B, F, T)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"dims must be a permutation of 1..{len(self.dims)}, got {dims!r}.")

    def _check(self, ndim):
        if ndim != len(self.dims) + 1:
            raise ValueError(f"Permute layer {self.name!r} with dims={self.dims} expects input of "
                             f"rank {len(self.dims) + 1}, got rank {ndim}.")

    def forward(self, x, training=False, mask=None):
        x = self._x(x)
        self._check(x.ndim)
        return x.transpose((0,) + self.dims)

    def backward(self, dy):
        return np.asarray(dy).transpose(np.argsort((0,) + self.dims))

    def compute_output_shape(self, input_shape):
        self._check(len(input_shape))
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        cfg = super().get_config()
        cfg["dims"] = list(self.dims)
        return cfg


class RepeatVector(_NoMask):
    """Repeat a vector ``n`` times along a new time axis: (B, F) -> (B, n, F).

    The usual bridge from an encoder's final state to a decoder's input sequence.
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = check_positive_int("n", n)

    def forward(self, x, training=False, mask=None):
        x = self._x(x, 2)
        return np.repeat(x[:, None, :], self.n, axis=1)

    def backward(self, dy):
        return np.asarray(dy).sum(axis=1)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector layer {self.name!r} expects (batch, features), got "
                             f"{tuple(input_shape)}.")
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        cfg = super().get_config()
        cfg["n"] = self.n
        return cfg


class UpSampling1D(_NoMask):
    """Repeat each time step ``size`` times: (B, T, F) -> (B, T * size, F)."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = check_positive_int("size", size)

    def forward(self, x, training=False, mask=None):
        return np.repeat(self._x(x, 3), self.size, axis=1)

    def backward(self, dy):
        B, T, F = np.shape(dy)
        return np.asarray(dy).reshape(B, T // self.size, self.size, F).sum(axis=2)

    def compute_output_shape(self, input_shape):
        T = input_shape[1]
        return (input_shape[0], None if T is None else T * self.size, *input_shape[2:])

    def get_config(self):
        cfg = super().get_config()
        cfg["size"] = self.size
        return cfg


def _pair(name, value):
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0
                          for a in v):
        raise ValueError(f"{name} must be a non-negative int or a pair (left, right), got "
                         f"{value!r}.")
    return int(v[0]), int(v[1])


class ZeroPadding1D(_NoMask):
    """Add zero steps at the start and end: ``padding`` int or (left, right).
    (B, T, F) -> (B, left + T + right, F)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pair("padding", padding)

    def forward(self, x, training=False, mask=None):
        x = self._x(x, 3)
        self._T = x.shape[1]
        return np.pad(x, ((0, 0), self.padding, (0, 0)))

    def backward(self, dy):
        a = self.padding[0]
        return np.asarray(dy)[:, a:a + self._T]

    def compute_output_shape(self, input_shape):
        T = input_shape[1]
        return (input_shape[0], None if T is None else T + sum(self.padding), *input_shape[2:])

    def get_config(self):
        cfg = super().get_config()
        cfg["padding"] = list(self.padding)
        return cfg


class Cropping1D(_NoMask):
    """Drop steps at the start and end: ``cropping`` int or (left, right) (default (1, 1)).
    (B, T, F) -> (B, T - left - right, F)."""

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pair("cropping", cropping)

    def _check(self, T):
        if T is not None and T - sum(self.cropping) <= 0:
            raise ValueError(f"Cropping1D layer {self.name!r}: cropping {self.cropping} leaves no "
                             f"steps of {T}.")

    def forward(self, x, training=False, mask=None):
        x = self._x(x, 3)
        self._check(x.shape[1])
        self._shape = x.shape
        a, b = self.cropping
        return x[:, a:x.shape[1] - b]

    def backward(self, dy):
        dx = np.zeros(self._shape, np.asarray(dy).dtype)
        a, b = self.cropping
        dx[:, a:self._shape[1] - b] = dy
        return dx

    def compute_output_shape(self, input_shape):
        T = input_shape[1]
        self._check(T)
        return (input_shape[0], None if T is None else T - sum(self.cropping), *input_shape[2:])

    def get_config(self):
        cfg = super().get_config()
        cfg["cropping"] = list(self.cropping)
        return cfg
