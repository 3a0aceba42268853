r"""Layer-normalised LSTM and GRU (Ba, Kiros, Hinton 2016, "Layer Normalization"), as in haste.

Layer normalisation of a (B, G) pre-activation ``v``, over its G features, with a gain (and
for the cell state a shift)::

    LN(v; g, b) = g * (v - mean(v)) / sqrt(var(v) + 1e-5) + b

LayerNormLSTM, Keras gate order **i, f, c, o** (haste's is i, g, f, o)::

    v_t = LN(x_t W; gamma[0]) + LN(h_{t-1} U; gamma[1]) + bias        # (B, 4H)
    c_t = sigma(v_f) c_{t-1} + sigma(v_i) tanh(v_c)
    h_t = sigma(v_o) tanh(LN(c_t; gamma_h, beta_h))

LayerNormGRU, Keras gate order **z, r, h**, reset after the product (haste's variant)::

    a_t = LN(x_t W; gamma[0]) + bias[0],   b_t = LN(h_{t-1} U; gamma[1]) + bias[1]
    z_t = sigma(a_z + b_z),  r_t = sigma(a_r + b_r)
    h_t = z_t h_{t-1} + (1 - z_t) tanh(a_h + r_t b_h)

Parameters (haste's names): ``kernel``, ``recurrent_kernel``, ``bias`` ((4H,) LSTM,
(2, 3H) GRU), ``gamma`` (2, G) starting at 1, and for the LSTM ``gamma_h``, ``beta_h`` (H,)
starting at 1 and 0. Both take ``zoneout`` (:mod:`rnnkit.cells._zoneout`) on ``h``.

Layers run these cells over time with the compiled kernel :mod:`rnnkit.kernels.layernorm`
(training and inference, float32 / float64); ``step`` / ``step_backward`` below are the
reference it is tested against (and what a subclass runs).
"""

from __future__ import annotations

import numpy as np

from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_bool, check_rate, get_named
from . import _zoneout
from ._dense_input import DenseInputCell
from .lstm import _ForgetBiasOne

_sigmoid = _act.get("sigmoid").forward
EPS = 1e-5


def layer_norm(v, gain, shift=None):
    """``(LN(v), cache)`` over the last axis of (B, G) ``v``."""
    d = v - v.mean(axis=1, keepdims=True)
    inv = 1.0 / np.sqrt((d * d).mean(axis=1, keepdims=True) + EPS)
    vh = d * inv
    out = vh * gain if shift is None else vh * gain + shift
    return out, (vh, inv)


def layer_norm_backward(dout, cache, gain):
    """``(dv, dgain)`` of :func:`layer_norm` (the shift's gradient is ``dout.sum(0)``)."""
    vh, inv = cache
    dvh = dout * gain
    G = vh.shape[1]
    dv = inv * (dvh - dvh.mean(axis=1, keepdims=True)
                - vh * (dvh * vh).sum(axis=1, keepdims=True) / G)
    return dv, (dout * vh).sum(axis=0)


class _LayerNormCell(DenseInputCell):
    """Shared arguments of the two layer-normalised cells."""

    def __init__(self, units, zoneout=0.0, recurrent_initializer="orthogonal",
                 recurrent_regularizer=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 dropout=0.0, seed=None, **kwargs):
        super().__init__(units, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, dropout, seed, **kwargs)
        self.zoneout = check_rate("zoneout", zoneout)
        #: generator of the zoneout masks (seeded by ``seed``; None: the global one)
        self.zoneout_rng = _zoneout.generator(self.seed)
        self.recurrent_initializer = get_named(_init, "recurrent_initializer",
                                                 recurrent_initializer)
        self.recurrent_regularizer = get_named(_reg, "recurrent_regularizer",
                                                 recurrent_regularizer)

    def build(self, input_dim):
        """``kernel`` (F, G), ``bias``, ``recurrent_kernel`` (H, G), ``gamma`` (2, G)."""
        super().build(input_dim)
        G = self.n_gates * self.units
        self.add_weight("recurrent_kernel", (self.units, G), self.recurrent_initializer,
                        self.recurrent_regularizer)
        self.add_weight("gamma", (2, G), "ones")

    def _zone(self, h_prev, h_new, training):
        if not self.zoneout:
            return h_new, None
        return _zoneout.apply(self.zoneout_rng, self.zoneout, h_prev, h_new, training)

    def _products(self, x_t, h_prev):
        g = self.params["gamma"]
        ax, cx = layer_norm(x_t @ self.params["kernel"], g[0])
        ah, ch = layer_norm(h_prev @ self.params["recurrent_kernel"], g[1])
        return ax, ah, (cx, ch)

    def _products_backward(self, x_t, h_prev, dax, dah, caches):
        g = self.params["gamma"]
        dxw, dg0 = layer_norm_backward(dax, caches[0], g[0])
        dhu, dg1 = layer_norm_backward(dah, caches[1], g[1])
        return (dxw @ self.params["kernel"].T, x_t.T @ dxw, dhu @ self.params["recurrent_kernel"].T,
                h_prev.T @ dhu, np.stack([dg0, dg1]))

    def get_config(self):
        return {**super().get_config(), "zoneout": self.zoneout,
                "recurrent_initializer": _init.serialize(self.recurrent_initializer),
                "recurrent_regularizer": _reg.serialize(self.recurrent_regularizer)}


class LayerNormLSTMCell(_LayerNormCell):
    """Layer-normalised LSTM cell (equations in the module docstring).

    Args:
        units: positive int H.
        zoneout: float in [0, 1), zoneout rate on ``h`` (0: none).
        unit_forget_bias: bool; when True (default) the forget-gate bias starts at 1.
        recurrent_initializer, recurrent_regularizer, use_bias, kernel_initializer,
        bias_initializer, kernel_regularizer, bias_regularizer, dropout, seed: as in Keras.

    Shapes: ``step`` maps x_t (B, F) and ``[h, c]`` (each (B, H)) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.LayerNormLSTM(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 4

    def __init__(self, units, zoneout=0.0, unit_forget_bias=True, **kwargs):
        super().__init__(units, zoneout, **kwargs)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        self.state_size = [self.units, self.units]

    def bias_init(self):
        return _ForgetBiasOne(self.bias_initializer, self.units) if self.unit_forget_bias \
            else self.bias_initializer

    def build(self, input_dim):
        """Adds ``gamma_h`` and ``beta_h`` (H,) for the cell-state normalisation."""
        super().build(input_dim)
        self.add_weight("gamma_h", (self.units,), "ones")
        self.add_weight("beta_h", (self.units,), "zeros")

    def step(self, x_t, states, training=False):
        h_prev, c_prev = states
        H, p = self.units, self.params
        ax, ah, lnc = self._products(x_t, h_prev)
        v = ax + ah
        if self.use_bias:
            v = v + p["bias"]
        i, f = _sigmoid(v[:, :H]), _sigmoid(v[:, H:2 * H])
        g, o = np.tanh(v[:, 2 * H:3 * H]), _sigmoid(v[:, 3 * H:])
        c = f * c_prev + i * g
        cn, cc = layer_norm(c, p["gamma_h"], p["beta_h"])
        tc = np.tanh(cn)
        h, zm = self._zone(h_prev, o * tc, training)
        return h, [h, c], (x_t, h_prev, c_prev, lnc, i, f, g, o, cc, tc, zm)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, c_prev, lnc, i, f, g, o, cc, tc, zm = cache
        p = self.params
        dh = dy_t + dstates[0]
        dh_zone = 0.0
        if zm is not None:
            dh, dh_zone = _zoneout.backward(dh, zm)
        dcn = dh * o * (1.0 - tc * tc)                            # h = o tanh(LN(c))
        dc_ln, dgh = layer_norm_backward(dcn, cc, p["gamma_h"])
        dc = dstates[1] + dc_ln
        dv = np.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                             dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)], axis=1)
        dx, dW, dhp, dU, dgamma = self._products_backward(x_t, h_prev, dv, dv, lnc)
        dparams = [dW] + ([dv.sum(0)] if self.use_bias else []) + [dU, dgamma, dgh, dcn.sum(0)]
        return dx, [dhp + dh_zone, dc * f], dparams

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class LayerNormGRUCell(_LayerNormCell):
    """Layer-normalised GRU cell (equations in the module docstring).

    Args:
        units: positive int H.
        zoneout: float in [0, 1), zoneout rate on ``h`` (0: none).
        recurrent_initializer, recurrent_regularizer, use_bias, kernel_initializer,
        bias_initializer, kernel_regularizer, bias_regularizer, dropout, seed: as in Keras.

    Shapes: ``step`` maps x_t (B, F) and ``[h]`` (B, H) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.LayerNormGRU(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 3

    def build(self, input_dim):
        """``kernel`` (F, 3H), ``bias`` (2, 3H), ``recurrent_kernel`` (H, 3H), ``gamma``."""
        G = 3 * self.units
        self.add_weight("kernel", (input_dim, G), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (2, G), self.bias_initializer, self.bias_regularizer)
        self.add_weight("recurrent_kernel", (self.units, G), self.recurrent_initializer,
                        self.recurrent_regularizer)
        self.add_weight("gamma", (2, G), "ones")

    def step(self, x_t, states, training=False):
        (h_prev,) = states
        H = self.units
        ax, ah, lnc = self._products(x_t, h_prev)
        if self.use_bias:
            ax, ah = ax + self.params["bias"][0], ah + self.params["bias"][1]
        z = _sigmoid(ax[:, :H] + ah[:, :H])
        r = _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        hh = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        h, zm = self._zone(h_prev, hh + z * (h_prev - hh), training)
        return h, [h], (x_t, h_prev, lnc, ah, z, r, hh, zm)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, lnc, ah, z, r, hh, zm = cache
        H = self.units
        dh = dy_t + dstates[0]
        dh_zone = 0.0
        if zm is not None:
            dh, dh_zone = _zoneout.backward(dh, zm)
        dzh = dh * (1.0 - z) * (1.0 - hh * hh)                  # h = z h' + (1 - z) hh
        dzz = dh * (h_prev - hh) * z * (1.0 - z)
        dzr = dzh * ah[:, 2 * H:] * r * (1.0 - r)               # hh = tanh(a_h + r b_h)
        dax = np.concatenate([dzz, dzr, dzh], axis=1)
        dah = np.concatenate([dzz, dzr, dzh * r], axis=1)
        dx, dW, dhp, dU, dgamma = self._products_backward(x_t, h_prev, dax, dah, lnc)
        db = [np.stack([dax.sum(0), dah.sum(0)])] if self.use_bias else []
        return dx, [dh * z + dhp + dh_zone], [dW] + db + [dU, dgamma]
