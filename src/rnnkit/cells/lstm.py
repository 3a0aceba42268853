r"""Long short-term memory (Hochreiter & Schmidhuber 1997), Keras gate order **i, f, c, o**.

.. math::
    i_t &= \sigma(x_t W_i + h_{t-1} U_i + b_i) \\
    f_t &= \sigma(x_t W_f + h_{t-1} U_f + b_f) \\
    g_t &= \tanh(x_t W_c + h_{t-1} U_c + b_c) \\
    o_t &= \sigma(x_t W_o + h_{t-1} U_o + b_o) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    h_t &= o_t \odot \tanh(c_t)

``sigma`` is ``recurrent_activation``, ``tanh`` is ``activation``. Keras layout: ``kernel``
(F, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,). States ``[h, c]``; the output is ``h``.
"""

from __future__ import annotations

import numpy as np

from .. import initializers as _init
from .._validate import check_bool, no_unknown_kwargs
from ._common import KerasCell, drop, keras_args


class _ForgetBiasOne(_init.Initializer):
    """``base`` for the (4H,) LSTM bias, then the forget-gate block set to 1."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype="float32"):
        b = self.base(shape, dtype)
        b[self.units:2 * self.units] = 1.0
        return b


class LSTMCell(KerasCell):
    """LSTM cell, as ``keras.layers.LSTMCell`` (equations in the module docstring).

    Args:
        units: positive int H.
        activation: name or instance (default ``'tanh'``).
        recurrent_activation: gate activation (default ``'sigmoid'``).
        unit_forget_bias: bool; when True (default) the forget-gate bias starts at 1.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
        recurrent_dropout, seed: as in Keras (see :class:`rnnkit.cells.Cell`).

    Shapes: ``step`` maps x_t (B, F) and ``[h, c]`` (each (B, H)) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.RNN(rnnkit.layers.LSTMCell(8))(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 4
    n_states = 2
    gate_names = ("i", "f", "c", "o")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        super().__init__(**keras_args(locals(), "unit_forget_bias"))
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)

    def bias_initializer_for_build(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _ForgetBiasOne(self.bias_initializer, self.units)

    def recurrent_step(self, xw_t, states, recurrent_mask=None):
        h_prev, c_prev = states
        H = h_prev.shape[1]
        hp = drop(h_prev, recurrent_mask)
        z = xw_t + hp @ self.params["recurrent_kernel"]            # (B, 4H)
        ract, act = self.recurrent_activation, self.activation
        i, f = ract.forward(z[:, :H]), ract.forward(z[:, H:2 * H])
        g, o = act.forward(z[:, 2 * H:3 * H]), ract.forward(z[:, 3 * H:])
        c = f * c_prev + i * g
        ac = act.forward(c)
        h = o * ac
        return h, [h, c], (hp, z, i, f, g, o, c_prev, c, ac, recurrent_mask)

    def recurrent_step_backward(self, dy_t, dstates, cache):
        hp, z, i, f, g, o, c_prev, c, ac, rmask = cache
        dh = dy_t + dstates[0]
        H = dh.shape[1]
        ract, act = self.recurrent_activation, self.activation
        do = dh * ac                                                   # h = o * act(c)
        dc = dstates[1] + act.backward(dh * o, c, ac)
        dz = np.empty_like(z)                                          # (B, 4H)
        dz[:, :H] = ract.backward(dc * g, z[:, :H], i)                 # c = i*g + ...
        dz[:, H:2 * H] = ract.backward(dc * c_prev, z[:, H:2 * H], f)  # c = f*c_prev + ...
        dz[:, 2 * H:3 * H] = act.backward(dc * i, z[:, 2 * H:3 * H], g)
        dz[:, 3 * H:] = ract.backward(do, z[:, 3 * H:], o)
        U = self.params["recurrent_kernel"]
        dh_prev = drop(dz @ U.T, rmask)                                # z = ... + h' U
        return dz, [dh_prev, dc * f], (hp.T @ dz, None)

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
