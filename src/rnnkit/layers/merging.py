"""Layers that merge a list of tensors: Concatenate, Add, Subtract, Multiply, Average, Maximum,
Minimum, Dot (Keras names, arguments and mask rules).

They are called on a list, e.g. ``Concatenate()([h_lstm, h_conv])``. Element-wise layers
broadcast like NumPy (a size-1 axis stretches) and sum the gradient back over stretched axes.
Masks: element-wise layers AND the given masks; Concatenate follows Keras (missing masks count
as all-True, masks are joined along ``axis`` and reduced with ``any`` over the last axis);
Dot drops the mask.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, as_float_array


def _unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting stretched to reach ``g.shape`` from ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def _broadcast_shape(layer, shapes):
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(out):
            raise ValueError(f"{type(layer).__name__} layer {layer.name!r} needs inputs of the "
                             f"same rank, got shapes {[tuple(v) for v in shapes]}.")
        for i, (a, b) in enumerate(zip(out, s)):
            if a is None or b is None:
                out[i] = a if b in (None, 1) else b
            elif a != b and 1 not in (a, b):
                raise ValueError(f"{type(layer).__name__} layer {layer.name!r} needs inputs of "
                                 "the same shape (or size 1 where they differ), got shapes "
                                 f"{[tuple(v) for v in shapes]}.")
            else:
                out[i] = max(a, b)
    return tuple(out)


class _Merge(Layer):
    list_inputs = True
    _min_inputs = 2

    def _inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} must be called on a list "
                             f"of at least {self._min_inputs} tensors, got "
                             f"{type(inputs).__name__}.")
        xs = [as_float_array(x, f"{type(self).__name__} {self.name!r} input {i}", self.dtype)
              for i, x in enumerate(inputs)]
        self._shapes = [x.shape for x in xs]
        _broadcast_shape(self, self._shapes)
        return xs

    def build(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} must be called on a list "
                             f"of at least {self._min_inputs} tensors, got {input_shape!r}.")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return _broadcast_shape(self, list(input_shape))

    def compute_mask(self, x, mask):
        if not isinstance(mask, (list, tuple)):
            return mask
        given = [np.asarray(m, bool) for m in mask if m is not None]
        if not given:
            return None
        return np.logical_and.reduce(given)


class Add(_Merge):
    """Element-wise sum of a list of tensors: ``Add()([a, b, ...])``."""

    def forward(self, inputs, training=False, mask=None):
        xs = self._inputs(inputs)
        return sum(xs[1:], xs[0].copy())

    def backward(self, dy):
        return [_unbroadcast(dy, s) for s in self._shapes]


class Subtract(_Merge):
    """``Subtract()([a, b])`` = a - b (exactly two inputs)."""

    def forward(self, inputs, training=False, mask=None):
        xs = self._inputs(inputs)
        if len(xs) != 2:
            raise ValueError(f"Subtract layer {self.name!r} needs exactly 2 inputs, got {len(xs)}.")
        return xs[0] - xs[1]

    def backward(self, dy):
        return [_unbroadcast(dy, self._shapes[0]), -_unbroadcast(dy, self._shapes[1])]


class Multiply(_Merge):
    """Element-wise product of a list of tensors."""

    def forward(self, inputs, training=False, mask=None):
        xs = self._inputs(inputs)
        self._xs = xs
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out

    def backward(self, dy):
        grads = []
        for i, s in enumerate(self._shapes):
            g = dy
            for j, x in enumerate(self._xs):
                if j != i:
                    g = g * x
            grads.append(_unbroadcast(g, s))
        return grads


class Average(_Merge):
    """Element-wise mean of a list of tensors."""

    def forward(self, inputs, training=False, mask=None):
        xs = self._inputs(inputs)
        return sum(xs[1:], xs[0].copy()) / len(xs)

    def backward(self, dy):
        return [_unbroadcast(dy / len(self._shapes), s) for s in self._shapes]


class Maximum(_Merge):
    """Element-wise maximum of a list of tensors (ties: the gradient goes to the first)."""

    _pick = staticmethod(np.argmax)

    def forward(self, inputs, training=False, mask=None):
        xs = self._inputs(inputs)
        stacked = np.stack(np.broadcast_arrays(*xs))
        self._arg = self._pick(stacked, axis=0)
        return np.take_along_axis(stacked, self._arg[None], axis=0)[0]

    def backward(self, dy):
        return [_unbroadcast(dy * (self._arg == i), s) for i, s in enumerate(self._shapes)]


class Minimum(Maximum):
    """Element-wise minimum of a list of tensors (ties: the gradient goes to the first)."""

    _pick = staticmethod(np.argmin)


class Concatenate(_Merge):
    """Join a list of tensors along ``axis`` (default -1): ``Concatenate()([a, b])``.

    All other axes must match. Shapes: e.g. (B, F1), (B, F2) -> (B, F1 + F2).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be an integer, got {axis!r}.")
        self.axis = int(axis)

    def _axis(self, ndim):
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"Concatenate layer {self.name!r}: axis={self.axis} is not a "
                             f"non-batch axis of inputs of rank {ndim}.")
        return self.axis % ndim

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        ndim = len(shapes[0])
        ax = self._axis(ndim)
        for s in shapes:
            if len(s) != ndim or any(a is not None and b is not None and a != b
                                     for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
                raise ValueError(f"Concatenate layer {self.name!r} needs inputs that match "
                                 f"except along axis {self.axis}, got shapes {shapes}.")
        sizes = [s[ax] for s in shapes]
        out = list(shapes[0])
        out[ax] = None if None in sizes else sum(sizes)
        return tuple(out)

    def forward(self, inputs, training=False, mask=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"Concatenate layer {self.name!r} must be called on a list of at "
                             f"least 2 tensors, got {type(inputs).__name__}.")
        xs = [as_float_array(x, f"Concatenate {self.name!r} input {i}", self.dtype)
              for i, x in enumerate(inputs)]
        self._shapes = [x.shape for x in xs]
        self.compute_output_shape(self._shapes)
        return np.concatenate(xs, axis=self._axis(xs[0].ndim))

    def backward(self, dy):
        ax = self._axis(len(self._shapes[0]))
        cuts = np.cumsum([s[ax] for s in self._shapes])[:-1]
        return np.split(dy, cuts, axis=ax)

    def compute_mask(self, x, mask):
        if not isinstance(mask, (list, tuple)) or all(m is None for m in mask):
            return None
        full = []
        for xi, m in zip(x, mask):
            xi = np.asarray(xi)
            if m is None:
                full.append(np.ones(xi.shape, bool))
            else:
                m = np.asarray(m, bool)
                full.append(np.broadcast_to(m[..., None], xi.shape) if m.ndim < xi.ndim else m)
        return np.any(np.concatenate(full, axis=self._axis(full[0].ndim)), axis=-1)

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


class Dot(_Merge):
    """Dot product of two tensors along ``axes`` for each sample (``keras.layers.Dot``).

    Args:
        axes: int, or a pair ``(axis of the first, axis of the second)``.
        normalize: L2-normalise both inputs along those axes first (cosine similarity).

    Shapes: (B, D), (B, D) -> (B, 1); (B, M, D), (B, N, D) with axes=2 -> (B, M, N) (the
    attention-score product); (B, D, M), (B, D, N) with axes=1 -> (B, M, N).
    The mask is dropped.
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        ax = list(axes) if isinstance(axes, (list, tuple)) else [axes, axes]
        if len(ax) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                               for a in ax):
            raise ValueError(f"axes must be an int or a pair of ints, got {axes!r}.")
        self.axes = axes if not isinstance(axes, (list, tuple)) else [int(a) for a in axes]
        self._ax = [int(a) for a in ax]
        self.normalize = bool(normalize)

    def _resolve(self, shapes):
        if len(shapes) != 2:
            raise ValueError(f"Dot layer {self.name!r} needs exactly 2 inputs, got {len(shapes)}.")
        r = len(shapes[0])
        if len(shapes[1]) != r or r not in (2, 3):
            raise ValueError(f"Dot layer {self.name!r} supports two inputs of rank 2 or 3 of the "
                             f"same rank, got shapes {[tuple(s) for s in shapes]}.")
        a = [x % r for x in self._ax]
        if 0 in a:
            raise ValueError(f"Dot layer {self.name!r}: axes {self.axes} include the batch axis.")
        k1, k2 = shapes[0][a[0]], shapes[1][a[1]]
        if k1 is not None and k2 is not None and k1 != k2:
            raise ValueError(f"Dot layer {self.name!r}: axis {a[0]} of the first input ({k1}) "
                             f"and axis {a[1]} of the second ({k2}) must have the same size; "
                             f"shapes {[tuple(s) for s in shapes]}.")
        return a

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        a = self._resolve(shapes)
        if len(shapes[0]) == 2:
            return (shapes[0][0], 1)
        m = [d for i, d in enumerate(shapes[0]) if i not in (0, a[0])]
        n = [d for i, d in enumerate(shapes[1]) if i not in (0, a[1])]
        return (shapes[0][0], *m, *n)

    @staticmethod
    def _l2(x, axis):
        norm = np.sqrt(np.maximum((x * x).sum(axis=axis, keepdims=True), 1e-12))
        return x / norm, norm

    def forward(self, inputs, training=False, mask=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"Dot layer {self.name!r} must be called on a list of 2 tensors, "
                             f"got {type(inputs).__name__}.")
        x1, x2 = (as_float_array(x, f"Dot {self.name!r} input {i}", self.dtype)
                  for i, x in enumerate(inputs))
        a = self._resolve([x1.shape, x2.shape])
        norms = None
        if self.normalize:
            (x1, n1), (x2, n2) = self._l2(x1, a[0]), self._l2(x2, a[1])
            norms = (n1, n2)
        self._cache = (x1, x2, a, norms)
        if x1.ndim == 2:
            return (x1 * x2).sum(axis=1, keepdims=True)
        A = np.moveaxis(x1, a[0], -1)         # (B, M, K)
        Bm = np.moveaxis(x2, a[1], 1)         # (B, K, N)
        return A @ Bm

    def backward(self, dy):
        x1, x2, a, norms = self._cache
        if x1.ndim == 2:
            d1, d2 = dy * x2, dy * x1
        else:
            A, Bm = np.moveaxis(x1, a[0], -1), np.moveaxis(x2, a[1], 1)
            d1 = np.moveaxis(dy @ Bm.transpose(0, 2, 1), -1, a[0])
            d2 = np.moveaxis(A.transpose(0, 2, 1) @ dy, 1, a[1])
        if norms is not None:  # through y = x / |x|: dx = (dy - y <dy, y>) / |x|
            d1 = (d1 - x1 * (d1 * x1).sum(axis=a[0], keepdims=True)) / norms[0]
            d2 = (d2 - x2 * (d2 * x2).sum(axis=a[1], keepdims=True)) / norms[1]
        return [d1, d2]

    def compute_mask(self, x, mask):
        return None

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axes=self.axes, normalize=self.normalize)
        return cfg
