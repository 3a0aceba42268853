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

Options (docs/new_cells.md):

* ``use_peepholes`` (Gers & Schmidhuber 2000; ONNX's ``P``): three (H,) weights
  ``input_peephole``, ``forget_peephole``, ``output_peephole`` add ``p_i * c_{t-1}``,
  ``p_f * c_{t-1}`` and ``p_o * c_t`` to the i, f and o pre-activations.
* ``proj_size = p`` (Sak et al. 2014; PyTorch's ``proj_size``): ``h_t = (o_t * tanh(c_t)) P``
  with ``projection_kernel`` P (H, p); ``h`` and the output have p features,
  ``recurrent_kernel`` is (p, 4H), states ``[h (B, p), c (B, H)]``.
* ``zoneout`` (Krueger et al. 2016, on ``h`` as in haste, :mod:`rnnkit.cells._zoneout`).

The compiled kernel (:mod:`rnnkit.kernels.lstm`) serves the cell without options; with any
option the cell leaves the projected path (:meth:`LSTMCell.projected_path`) and the layer runs
:mod:`rnnkit.kernels.lstm_options` (tanh / sigmoid; else the generic loop over this step).
"""

from __future__ import annotations

import numpy as np

from .. import initializers as _init
from .._validate import check_bool, check_rate, no_unknown_kwargs
from . import _zoneout
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
        use_peepholes: bool (default False): peephole connections (module docstring).
        proj_size: int in [0, units) (default 0: no projection): size of the projected
            hidden state and output, as ``torch.nn.LSTM(proj_size=)``.
        zoneout: float in [0, 1) (default 0): zoneout rate on ``h``.
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
                 recurrent_dropout=0.0, seed=None, use_peepholes=False, proj_size=0,
                 zoneout=0.0, **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        super().__init__(**keras_args(locals(), "unit_forget_bias", "use_peepholes", "proj_size",
                                      "zoneout"))
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        self.use_peepholes = check_bool("use_peepholes", use_peepholes)
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) or \
                not 0 <= proj_size < self.units:
            raise ValueError(f"proj_size must be an integer in [0, units) = [0, {self.units}) "
                             f"(0: no projection), got {proj_size!r}.")
        self.proj_size = int(proj_size)
        self.zoneout = check_rate("zoneout", zoneout)
        #: generator of the zoneout masks (seeded by ``seed``; None: the global one)
        self.zoneout_rng = _zoneout.generator(self.seed)
        out = self.proj_size or self.units
        self.state_size = [out, self.units]
        self.output_size = out

    recurrent_step_takes_training = True

    def projected_path(self):
        """False with any option (peepholes, projection, zoneout): the compiled kernel and the
        projected path serve the plain LSTM only."""
        return not (self.use_peepholes or self.proj_size or self.zoneout)

    def build(self, input_dim):
        """Keras' ``kernel``, ``recurrent_kernel`` ((p, 4H) with a projection), ``bias``; then
        the peephole weights and ``projection_kernel`` (H, p) when those options are on."""
        G, H = 4 * self.units, self.units
        self.add_weight("kernel", (input_dim, G), self.kernel_initializer,
                        self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (self.state_size[0], G), self.recurrent_initializer,
                        self.recurrent_regularizer)
        if self.use_bias:
            self.add_weight("bias", self.bias_shape(), self.bias_initializer_for_build(),
                            self.bias_regularizer)
        if self.use_peepholes:
            for gate in ("input", "forget", "output"):
                self.add_weight(f"{gate}_peephole", (H,), "glorot_uniform")
        if self.proj_size:
            self.add_weight("projection_kernel", (H, self.proj_size), self.kernel_initializer,
                            self.kernel_regularizer)

    def bias_initializer_for_build(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _ForgetBiasOne(self.bias_initializer, self.units)

    def recurrent_step(self, xw_t, states, recurrent_mask=None, training=False):
        h_prev, c_prev = states
        H, p = self.units, self.params
        hp = drop(h_prev, recurrent_mask)
        z = xw_t + hp @ p["recurrent_kernel"]                        # (B, 4H)
        if self.use_peepholes:                                         # i, f read c_{t-1}
            z[:, :H] += p["input_peephole"] * c_prev
            z[:, H:2 * H] += p["forget_peephole"] * c_prev
        ract, act = self.recurrent_activation, self.activation
        i, f = ract.forward(z[:, :H]), ract.forward(z[:, H:2 * H])
        g = act.forward(z[:, 2 * H:3 * H])
        c = f * c_prev + i * g
        if self.use_peepholes:                                         # o reads c_t
            z[:, 3 * H:] += p["output_peephole"] * c
        o = ract.forward(z[:, 3 * H:])
        ac = act.forward(c)
        h = o * ac
        hn = h
        if self.proj_size:
            h = hn @ p["projection_kernel"]                            # (B, p)
        zm = None
        if self.zoneout:
            h, zm = _zoneout.apply(self.zoneout_rng, self.zoneout, h_prev, h, training)
        return h, [h, c], (hp, z, i, f, g, o, c_prev, c, ac, recurrent_mask, hn, zm)

    def recurrent_step_backward(self, dy_t, dstates, cache):
        hp, z, i, f, g, o, c_prev, c, ac, rmask, hn, zm = cache
        H, p = self.units, self.params
        dh = dy_t + dstates[0]
        extra = {}
        dh_zone = 0.0
        if zm is not None:
            dh, dh_zone = _zoneout.backward(dh, zm)
        if self.proj_size:                                             # h = hn P
            extra["projection_kernel"] = hn.T @ dh
            dh = dh @ p["projection_kernel"].T
        ract, act = self.recurrent_activation, self.activation
        dz = np.empty_like(z)                                          # (B, 4H)
        dz[:, 3 * H:] = ract.backward(dh * ac, z[:, 3 * H:], o)        # h = o * act(c)
        dc = dstates[1] + act.backward(dh * o, c, ac)
        if self.use_peepholes:                                         # o reads c_t
            dc = dc + dz[:, 3 * H:] * p["output_peephole"]
        dz[:, :H] = ract.backward(dc * g, z[:, :H], i)                 # c = i*g + ...
        dz[:, H:2 * H] = ract.backward(dc * c_prev, z[:, H:2 * H], f)  # c = f*c_prev + ...
        dz[:, 2 * H:3 * H] = act.backward(dc * i, z[:, 2 * H:3 * H], g)
        dc_prev = dc * f
        if self.use_peepholes:                                         # i, f read c_{t-1}
            dc_prev = dc_prev + dz[:, :H] * p["input_peephole"] + \
                dz[:, H:2 * H] * p["forget_peephole"]
            extra["input_peephole"] = (dz[:, :H] * c_prev).sum(0)
            extra["forget_peephole"] = (dz[:, H:2 * H] * c_prev).sum(0)
            extra["output_peephole"] = (dz[:, 3 * H:] * c).sum(0)
        U = p["recurrent_kernel"]
        dh_prev = drop(dz @ U.T, rmask) + dh_zone                      # z = ... + h' U
        rec = (hp.T @ dz, None)
        return dz, [dh_prev, dc_prev], (rec + (extra,) if extra else rec)

    def collect_grads(self, dW, db_in, dU, db_rec, extra=None):
        """Keras' three gradients, then the options' (``extra``: name -> gradient)."""
        out = super().collect_grads(dW, db_in, dU, db_rec)
        return [extra[n] if extra and n in extra else g for n, g in zip(self.param_names, out)]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias,
                "use_peepholes": self.use_peepholes, "proj_size": self.proj_size,
                "zoneout": self.zoneout}
