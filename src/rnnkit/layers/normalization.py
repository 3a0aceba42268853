"""BatchNormalization and LayerNormalization, with Keras' arguments and weight order.

Both normalise ``x̂ = (x - μ) / sqrt(σ² + ε)`` and return ``γ ⊙ x̂ + β``; they differ in what
μ and σ² are averaged over. With ``r = 1 / sqrt(σ² + ε)`` and ``dx̂ = dy ⊙ γ`` the backward is

    dx = r ⊙ (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂))        (means over the averaged positions)

BatchNormalization averages over every axis but ``axis`` (batch and time), skipping masked
time steps, and keeps moving averages for inference; LayerNormalization averages over ``axis``
within each sample.
"""

from __future__ import annotations

import numpy as np

from .. import initializers as _init
from .. import regularizers as _reg
from .base import Layer, as_float_array


def _check_axis(layer, axis, ndim):
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise ValueError(f"{type(layer).__name__} {layer.name!r}: rnnkit normalises one axis, "
                             f"got axis={axis!r}.")
        axis = axis[0]
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis must be an integer in "
                         f"[-{ndim}, {ndim}) for inputs of rank {ndim}, got {axis!r}.")
    return int(axis) % ndim


class _Normalization(Layer):
    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = float(epsilon)
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = _init.get(beta_initializer)
        self.gamma_initializer = _init.get(gamma_initializer)
        self.beta_regularizer = _reg.get(beta_regularizer)
        self.gamma_regularizer = _reg.get(gamma_regularizer)
        self._cache = None

    def build(self, input_shape):
        ax = _check_axis(self, self.axis, len(input_shape))
        C = input_shape[ax]
        if C is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the size of axis {self.axis} "
                             f"must be known, got input shape {tuple(input_shape)}.")
        self._ax = ax
        if self.scale:
            self.add_weight("gamma", (C,), self.gamma_initializer, self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", (C,), self.beta_initializer, self.beta_regularizer)
        super().build(input_shape)

    def _last(self, x):
        """Input with the normalised axis last, checked against the built size."""
        x = as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype)
        if x.ndim != len(self.input_shape) or x.shape[self._ax] != self.input_shape[self._ax]:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} was built for inputs of "
                             f"shape {tuple(self.input_shape)}, got {x.shape}.")
        return np.moveaxis(x, self._ax, -1)

    def _affine(self, xhat):
        y = xhat * self.params["gamma"] if self.scale else xhat.copy()
        if self.center:
            y += self.params["beta"]
        return y

    def _affine_backward(self, dy, xhat, axes):
        if self.scale:
            self.grads["gamma"][...] = (dy * xhat).sum(axis=axes)
        if self.center:
            self.grads["beta"][...] = dy.sum(axis=axes)
        return dy * self.params["gamma"] if self.scale else dy

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
                   beta_initializer=_init.serialize(self.beta_initializer),
                   gamma_initializer=_init.serialize(self.gamma_initializer),
                   beta_regularizer=_reg.serialize(self.beta_regularizer),
                   gamma_regularizer=_reg.serialize(self.gamma_regularizer))
        return cfg


class BatchNormalization(_Normalization):
    """Normalise each channel over the batch (and time) axes (``keras.layers.BatchNormalization``).

    Training (``training=True``, as in ``fit``) uses the batch's mean and (biased) variance
    over every axis but ``axis``, leaving out masked time steps, and updates

        moving_mean = momentum * moving_mean + (1 - momentum) * mean      (same for variance)

    Inference uses the moving statistics. Shapes unchanged; the mask passes through.

    Args:
        axis: the channel axis (default -1).
        momentum: moving-average momentum (default 0.99).
        epsilon: added to the variance (default 1e-3).
        center, scale: learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer, beta_regularizer, gamma_regularizer: as in Keras.

    Weights (Keras order): ``gamma``, ``beta`` (trainable), ``moving_mean``,
    ``moving_variance`` (non-trainable), each (C,).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, **kwargs)
        self.momentum = float(momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}.")
        self.moving_mean_initializer = _init.get(moving_mean_initializer)
        self.moving_variance_initializer = _init.get(moving_variance_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        C = input_shape[self._ax]
        self.add_weight("moving_mean", (C,), self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", (C,), self.moving_variance_initializer,
                        trainable=False)

    def forward(self, x, training=False, mask=None):
        xl = self._last(x)
        C = xl.shape[-1]
        x2 = xl.reshape(-1, C)
        if not training:
            r = 1.0 / np.sqrt(self.params["moving_variance"] + self.epsilon)
            xhat = (x2 - self.params["moving_mean"]) * r
            self._cache = (False, xhat, r, None, xl.shape)
            return np.moveaxis(self._affine(xhat).reshape(xl.shape), -1, self._ax)
        w = None
        if mask is not None and xl.ndim == 3 and self._ax == 2:
            w = np.asarray(mask, bool).reshape(-1).astype(self.dtype)[:, None]   # (B*T, 1)
        n = x2.shape[0] if w is None else max(float(w.sum()), 1.0)
        mean = (x2 if w is None else x2 * w).sum(axis=0) / n
        xc = x2 - mean
        var = ((xc * xc) if w is None else (xc * xc * w)).sum(axis=0) / n
        r = 1.0 / np.sqrt(var + self.epsilon)
        xhat = xc * r
        m = self.momentum
        self.params["moving_mean"][...] = m * self.params["moving_mean"] + (1 - m) * mean
        self.params["moving_variance"][...] = m * self.params["moving_variance"] + (1 - m) * var
        self._cache = (True, xhat, r, (w, n), xl.shape)
        return np.moveaxis(self._affine(xhat).reshape(xl.shape), -1, self._ax)

    def backward(self, dy):
        batch_stats, xhat, r, stats, shape = self._cache
        dyl = np.moveaxis(np.asarray(dy, self.dtype), self._ax, -1).reshape(xhat.shape)
        dxhat = self._affine_backward(dyl, xhat, 0)
        if batch_stats:
            w, n = stats
            ww = 1.0 if w is None else w
            # mean and variance come from the unmasked rows only: dx̂ feeds back through them
            dx = r * (dxhat - ww * ((dxhat.sum(axis=0) + xhat * (dxhat * xhat).sum(axis=0)) / n))
        else:
            dx = dxhat * r
        return np.moveaxis(dx.reshape(shape), -1, self._ax)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(momentum=self.momentum,
                   moving_mean_initializer=_init.serialize(self.moving_mean_initializer),
                   moving_variance_initializer=_init.serialize(self.moving_variance_initializer))
        return cfg


class LayerNormalization(_Normalization):
    """Normalise each sample (and time step) over ``axis`` (``keras.layers.LayerNormalization``).

    Same computation in training and inference. Shapes unchanged; the mask passes through.

    Args:
        axis: the axis normalised over (default -1, the features).
        epsilon: added to the variance (default 1e-3).
        center, scale: learn ``beta`` / ``gamma``.
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer: as in Keras.

    Weights (Keras order): ``gamma``, ``beta``, each of the size of ``axis``.
    """

    def forward(self, x, training=False, mask=None):
        xl = self._last(x)
        mean = xl.mean(axis=-1, keepdims=True)
        xc = xl - mean
        r = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.epsilon)
        xhat = xc * r
        self._cache = (xhat, r)
        return np.moveaxis(self._affine(xhat), -1, self._ax)

    def backward(self, dy):
        xhat, r = self._cache
        dyl = np.moveaxis(np.asarray(dy, self.dtype), self._ax, -1)
        dxhat = self._affine_backward(dyl, xhat, tuple(range(xhat.ndim - 1)))
        dx = r * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                  - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        return np.moveaxis(dx, -1, self._ax)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
