r"""Independently recurrent neural network (Li, Li, Cook, Zhu, Gao 2018, "IndRNN: Building a
Longer and Deeper RNN").

.. math::
    h_t = \mathrm{relu}(x_t W + u \odot h_{t-1} + b)

Each unit has one recurrent weight ``u_j`` (``recurrent_kernel`` (H,)), so the gradient through
time of unit j is a product of ``u_j`` and ReLU slopes: ``dh_T/dh_t = prod u_j 1[z > 0]``.
The paper keeps it from exploding or vanishing by constraining ``|u_j|``: with ReLU, over
``T`` steps ``|u_j| <= gamma^{1/T}`` bounds the growth by ``gamma``. rnnkit clips
``|u_j| <= recurrent_max_abs`` after every optimizer update; by default
``2 ** (1 / timesteps)`` (the paper's choice, a gradient growth of at most 2) when
``timesteps`` is given, else 1. ``recurrent_kernel`` starts uniform in ``[0, bound]``.
States ``[h]``; the output is ``h``.
"""

from __future__ import annotations

import numpy as np

from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_positive_int, get_named
from ._dense_input import DenseInputCell


class ClipAbs:
    """Constraint ``w -> clip(w, -bound, bound)`` (in place)."""

    def __init__(self, bound):
        self.bound = float(bound)

    def __call__(self, w):
        np.clip(w, -self.bound, self.bound, out=w)
        return w


class IndRNNCell(DenseInputCell):
    """IndRNN cell (equations and constraint in the module docstring).

    Args:
        units: positive int H.
        activation: name or instance (default ``'relu'``, as in the paper).
        recurrent_max_abs: positive float bound on ``|u_j|``, or None for the default
            (``2 ** (1 / timesteps)``, or 1 without ``timesteps``).
        timesteps: positive int, the sequence length the bound is made for, or None.
        recurrent_initializer: initializer of ``u`` (default uniform in ``[0, bound]``).
        recurrent_regularizer: regularizer of ``u`` or None.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, dropout, seed: as in :class:`~rnnkit.cells.MinGRUCell`.

    Shapes: ``step`` maps x_t (B, F) and ``[h]`` (B, H) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.IndRNN(8, timesteps=1000)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    def __init__(self, units, activation="relu", recurrent_max_abs=None, timesteps=None,
                 recurrent_initializer=None, recurrent_regularizer=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(units, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, dropout, seed, **kwargs)
        self.activation = get_named(_act, "activation", activation)
        if timesteps is not None:
            timesteps = check_positive_int("timesteps", timesteps)
        self.timesteps = timesteps
        if recurrent_max_abs is not None:
            if isinstance(recurrent_max_abs, bool) or not isinstance(
                    recurrent_max_abs, (int, float, np.integer, np.floating)) or \
                    not np.isfinite(recurrent_max_abs) or recurrent_max_abs <= 0:
                raise ValueError(f"recurrent_max_abs must be a positive finite number (or None "
                                 f"for the paper's 2 ** (1 / timesteps)), got "
                                 f"{recurrent_max_abs!r}.")
            recurrent_max_abs = float(recurrent_max_abs)
        self.recurrent_max_abs = recurrent_max_abs
        self.bound = recurrent_max_abs if recurrent_max_abs is not None else (
            2.0 ** (1.0 / timesteps) if timesteps else 1.0)
        self.recurrent_initializer = (
            None if recurrent_initializer is None else
            get_named(_init, "recurrent_initializer", recurrent_initializer))
        self.recurrent_regularizer = get_named(_reg, "recurrent_regularizer",
                                                 recurrent_regularizer)

    def build(self, input_dim):
        """``kernel`` (F, H), ``bias`` (H,), ``recurrent_kernel`` (H,) with the |u| clip."""
        super().build(input_dim)
        init = self.recurrent_initializer or _init.RandomUniform(0.0, self.bound)
        self.add_weight("recurrent_kernel", (self.units,), init, self.recurrent_regularizer,
                        constraint=ClipAbs(self.bound))

    def step(self, x_t, states, training=False):
        (h_prev,) = states
        z = self.project(x_t) + self.params["recurrent_kernel"] * h_prev
        h = self.activation.forward(z)
        return h, [h], (x_t, h_prev, z, h)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, z, h = cache
        dz = self.activation.backward(dy_t + dstates[0], z, h)
        dx, dparams = self.project_backward(x_t, dz)
        return dx, [dz * self.params["recurrent_kernel"]], dparams + [(dz * h_prev).sum(0)]

    def get_config(self):
        return {**super().get_config(), "activation": _act.serialize(self.activation),
                "recurrent_max_abs": self.recurrent_max_abs, "timesteps": self.timesteps,
                "recurrent_initializer": None if self.recurrent_initializer is None else
                _init.serialize(self.recurrent_initializer),
                "recurrent_regularizer": _reg.serialize(self.recurrent_regularizer)}
