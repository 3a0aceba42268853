r"""The Elman cell (SimpleRNN).

.. math::
    h_t = \phi(x_t W + h_{t-1} U + b)

``phi`` is ``activation`` (tanh by default). Keras layout: ``kernel`` W (F, H),
``recurrent_kernel`` U (H, H), ``bias`` b (H,). One state: ``[h]``; the output is ``h``.
"""

from __future__ import annotations

from .._validate import no_unknown_kwargs
from ._common import KerasCell, drop, keras_args


class SimpleRNNCell(KerasCell):
    """Fully-connected recurrent cell, as ``keras.layers.SimpleRNNCell``.

    Args:
        units: positive int H.
        activation: name or instance (default ``'tanh'``).
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
        recurrent_dropout, seed: as in Keras (see :class:`rnnkit.cells.Cell`).

    Shapes: ``step`` maps x_t (B, F) and ``[h]`` (B, H) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnn = rnnkit.layers.RNN(rnnkit.layers.SimpleRNNCell(4))
        >>> rnn(np.zeros((2, 5, 3))).shape
        (2, 4)
    """

    n_gates = 1
    _has_recurrent_activation = False

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        super().__init__(**keras_args(locals()))

    def recurrent_step(self, xw_t, states, recurrent_mask=None):
        (h_prev,) = states
        hp = drop(h_prev, recurrent_mask)
        z = xw_t + hp @ self.params["recurrent_kernel"]               # (B, H)
        h = self.activation.forward(z)
        return h, [h], (hp, z, h, recurrent_mask)

    def recurrent_step_backward(self, dy_t, dstates, cache):
        hp, z, h, rmask = cache
        dz = self.activation.backward(dy_t + dstates[0], z, h)        # through phi
        U = self.params["recurrent_kernel"]
        dh_prev = drop(dz @ U.T, rmask)                                # through h_{t-1} U
        return dz, [dh_prev], (hp.T @ dz, None)
