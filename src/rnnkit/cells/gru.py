r"""Gated recurrent unit (Cho et al. 2014), Keras gate order **z, r, h**.

``reset_after=True`` (Keras default, cuDNN and PyTorch compatible)::

    z_t  = sigma(x_t W_z + b_z + h_{t-1} U_z + b'_z)
    r_t  = sigma(x_t W_r + b_r + h_{t-1} U_r + b'_r)
    hh_t = tanh(x_t W_h + b_h + r_t * (h_{t-1} U_h + b'_h))
    h_t  = z_t * h_{t-1} + (1 - z_t) * hh_t

with a ``(2, 3H)`` bias: row 0 ``b`` (input), row 1 ``b'`` (recurrent).

``reset_after=False`` (original Cho et al.)::

    hh_t = tanh(x_t W_h + b_h + (r_t * h_{t-1}) U_h)

with a ``(3H,)`` bias and no recurrent bias. Keras layout: ``kernel`` (F, 3H),
``recurrent_kernel`` (H, 3H). One state ``[h]``; the output is ``h``.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_bool, check_rate, no_unknown_kwargs
from . import _zoneout
from ._common import KerasCell, drop, keras_args


class GRUCell(KerasCell):
    """GRU cell, as ``keras.layers.GRUCell`` (equations in the module docstring).

    Args:
        units: positive int H.
        activation: name or instance (default ``'tanh'``).
        recurrent_activation: gate activation (default ``'sigmoid'``).
        reset_after: bool (default True): apply the reset gate after the recurrent product,
            with a separate recurrent bias (bias (2, 3H)); False: before it (bias (3H,)).
        zoneout: float in [0, 1) (default 0): zoneout rate on ``h`` (Krueger et al. 2016,
            :mod:`rnnkit.cells._zoneout`; the layer then runs :mod:`rnnkit.kernels.gru_zoneout`).
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
        recurrent_dropout, seed: as in Keras (see :class:`rnnkit.cells.Cell`).

    Shapes: ``step`` maps x_t (B, F) and ``[h]`` (B, H) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.RNN(rnnkit.layers.GRUCell(8))(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 3
    gate_names = ("z", "r", "h")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 reset_after=True, zoneout=0.0, **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        super().__init__(**keras_args(locals(), "reset_after", "zoneout"))
        self.reset_after = check_bool("reset_after", reset_after)
        self.zoneout = check_rate("zoneout", zoneout)
        #: generator of the zoneout masks (seeded by ``seed``; None: the global one)
        self.zoneout_rng = _zoneout.generator(self.seed)

    recurrent_step_takes_training = True

    def projected_path(self):
        """False with zoneout (the compiled kernel serves the GRU without it)."""
        return not self.zoneout

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def split_bias(self):
        b = self.params.get("bias")
        if b is None or not self.reset_after:
            return b, None
        return b[0], b[1]

    def collect_grads(self, dW, db_in, dU, db_rec):
        db = db_in
        if db_in is not None and self.reset_after:
            db = np.stack([db_in, db_rec])
        return super().collect_grads(dW, db, dU, None)

    def recurrent_step(self, xw_t, states, recurrent_mask=None, training=False):
        (h_prev,) = states
        H = h_prev.shape[1]
        U = self.params["recurrent_kernel"]
        ract = self.recurrent_activation
        hp = drop(h_prev, recurrent_mask)
        if self.reset_after:
            hU = hp @ U                                               # (B, 3H)
            b_rec = self.split_bias()[1]
            if b_rec is not None:
                hU = hU + b_rec
            zz = xw_t[:, :H] + hU[:, :H]
            zr = xw_t[:, H:2 * H] + hU[:, H:2 * H]
            z, r = ract.forward(zz), ract.forward(zr)
            rec = hU[:, 2 * H:]                                       # h' U_h + b'_h
            zh = xw_t[:, 2 * H:] + r * rec
        else:
            hU = hp @ U[:, :2 * H]
            zz = xw_t[:, :H] + hU[:, :H]
            zr = xw_t[:, H:2 * H] + hU[:, H:]
            z, r = ract.forward(zz), ract.forward(zr)
            rec = r * hp                                              # (B, H), times U_h
            zh = xw_t[:, 2 * H:] + rec @ U[:, 2 * H:]
        hh = self.activation.forward(zh)
        h = z * h_prev + (1.0 - z) * hh
        zm = None
        if self.zoneout:
            h, zm = _zoneout.apply(self.zoneout_rng, self.zoneout, h_prev, h, training)
        return h, [h], (hp, h_prev, zz, zr, zh, z, r, hh, rec, recurrent_mask, zm)

    def recurrent_step_backward(self, dy_t, dstates, cache):
        hp, h_prev, zz, zr, zh, z, r, hh, rec, rmask, zm = cache
        dh = dy_t + dstates[0]
        dh_zone = 0.0
        if zm is not None:
            dh, dh_zone = _zoneout.backward(dh, zm)
        H = dh.shape[1]
        U = self.params["recurrent_kernel"]
        ract = self.recurrent_activation
        dzh = self.activation.backward(dh * (1.0 - z), zh, hh)       # h = ... + (1-z)*hh
        dxw = np.empty((dh.shape[0], 3 * H), dtype=dh.dtype)
        dxw[:, :H] = ract.backward(dh * (h_prev - hh), zz, z)        # h = z*h_prev + ...
        dxw[:, 2 * H:] = dzh
        if self.reset_after:                                          # zh = xw_h + r * rec
            dxw[:, H:2 * H] = ract.backward(dzh * rec, zr, r)
            dzrec = dxw.copy()
            dzrec[:, 2 * H:] = dzh * r
            dhp = dzrec @ U.T
            dU = hp.T @ dzrec
            db_rec = None if self.split_bias()[1] is None else dzrec.sum(axis=0)
        else:                                                         # zh = xw_h + (r*h') U_h
            drec = dzh @ U[:, 2 * H:].T
            dxw[:, H:2 * H] = ract.backward(drec * hp, zr, r)
            dhp = dxw[:, :2 * H] @ U[:, :2 * H].T + drec * r
            dU = np.empty_like(U)
            dU[:, :2 * H] = hp.T @ dxw[:, :2 * H]
            dU[:, 2 * H:] = rec.T @ dzh
            db_rec = None
        dh_prev = dh * z + drop(dhp, rmask) + dh_zone
        return dxw, [dh_prev], (dU, db_rec)

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after, "zoneout": self.zoneout}
