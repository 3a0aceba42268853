"""One time step of each recurrent cell: the tutorial's equations, forward and backward.

A cell holds no weights, no state and no loop. ``forward_step`` maps one step's input
projection and the previous state to the new state and a cache; ``backward_step`` consumes
that cache. The time loop lives in :mod:`rnnkit.kernels` (the pure-NumPy reference loop and
the compiled fast path, which must agree).

Shared notation (Keras layout, batch ``B``, units ``H``, gates ``G = k * H``):

* ``xw_t`` (B, G): the input projection ``x_t @ kernel + bias``, computed for all steps
  before the loop in one matrix product.
* ``U`` (H, G): the recurrent kernel; ``h'`` = ``h_{t-1} * rmask`` is the previous state
  after recurrent dropout (``rmask`` is None when there is no recurrent dropout).
* ``dzrec`` (B, G): the gradient reaching the recurrent matrix product. After the loop,
  ``dU = sum_t rec_in_t^T @ dzrec_t`` is one large product over all T*B rows.
"""

from __future__ import annotations

import numpy as np

from . import activations as _act


def _drop(h, rmask):
    return h if rmask is None else h * rmask


class SimpleRNNMath:
    r"""Elman cell (the tutorial's RNN).

    .. math::
        h_t = \phi(x_t W + h_{t-1} U + b)

    ``phi`` is ``activation`` (tanh by default). Gates: 1, states: (h,).
    """

    n_gates = 1
    n_states = 1

    def __init__(self, activation="tanh"):
        self.act = _act.get(activation)

    def forward_step(self, xw_t, states, U, b_rec=None, rmask=None):
        (h_prev,) = states
        hp = _drop(h_prev, rmask)
        z = xw_t + hp @ U                                   # (B, H)
        h = self.act.forward(z)
        return h, (h,), {"hp": hp, "z": z, "h": h}

    def backward_step(self, dstates, cache, U, b_rec=None, rmask=None):
        (dh,) = dstates
        dz = self.act.backward(dh, cache["z"], cache["h"])    # through phi
        dh_prev = _drop(dz @ U.T, rmask)                    # through h_{t-1} U
        return dz, (dh_prev,), dz

    def rec_inputs(self, cache):
        """[(input to the recurrent product, column slice of U it multiplies)]."""
        return [(cache["hp"], slice(None))]


class LSTMMath:
    r"""Long short-term memory cell, Keras gate order **i, f, c, o**.

    .. math::
        i_t &= \sigma(x_t W_i + h_{t-1} U_i + b_i) \\
        f_t &= \sigma(x_t W_f + h_{t-1} U_f + b_f) \\
        g_t &= \tanh(x_t W_c + h_{t-1} U_c + b_c) \\
        o_t &= \sigma(x_t W_o + h_{t-1} U_o + b_o) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    ``sigma`` is ``recurrent_activation``, ``tanh`` is ``activation``. Gates: 4, states: (h, c).
    """

    n_gates = 4
    n_states = 2

    def __init__(self, activation="tanh", recurrent_activation="sigmoid"):
        self.act = _act.get(activation)
        self.ract = _act.get(recurrent_activation)

    def forward_step(self, xw_t, states, U, b_rec=None, rmask=None):
        h_prev, c_prev = states
        H = h_prev.shape[1]
        hp = _drop(h_prev, rmask)
        z = xw_t + hp @ U                                   # (B, 4H)
        zi, zf, zg, zo = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        i, f, o = self.ract.forward(zi), self.ract.forward(zf), self.ract.forward(zo)
        g = self.act.forward(zg)
        c = f * c_prev + i * g
        ac = self.act.forward(c)
        h = o * ac
        cache = {"hp": hp, "z": z, "i": i, "f": f, "g": g, "o": o,
                 "c_prev": c_prev, "c": c, "ac": ac}
        return h, (h, c), cache

    def backward_step(self, dstates, cache, U, b_rec=None, rmask=None):
        dh, dc = dstates
        H = dh.shape[1]
        z, i, f, g, o = cache["z"], cache["i"], cache["f"], cache["g"], cache["o"]
        do = dh * cache["ac"]                                       # h = o * act(c)
        dc = dc + self.act.backward(dh * o, cache["c"], cache["ac"])
        dz = np.empty_like(z)                                       # (B, 4H)
        dz[:, :H] = self.ract.backward(dc * g, z[:, :H], i)                # c = i*g + ...
        dz[:, H:2 * H] = self.ract.backward(dc * cache["c_prev"], z[:, H:2 * H], f)
        dz[:, 2 * H:3 * H] = self.act.backward(dc * i, z[:, 2 * H:3 * H], g)
        dz[:, 3 * H:] = self.ract.backward(do, z[:, 3 * H:], o)
        dc_prev = dc * f                                            # c = f*c_prev + ...
        dh_prev = _drop(dz @ U.T, rmask)
        return dz, (dh_prev, dc_prev), dz

    def rec_inputs(self, cache):
        return [(cache["hp"], slice(None))]


class GRUMath:
    r"""Gated recurrent unit, Keras gate order **z, r, h**.

    ``reset_after=True`` (Keras default, cuDNN and PyTorch compatible)::

        z_t  = sigma(x_t W_z + b_z + h_{t-1} U_z + b'_z)
        r_t  = sigma(x_t W_r + b_r + h_{t-1} U_r + b'_r)
        hh_t = tanh(x_t W_h + b_h + r_t * (h_{t-1} U_h + b'_h))
        h_t  = z_t * h_{t-1} + (1 - z_t) * hh_t

    with a ``(2, 3H)`` bias: row 0 ``b`` (input), row 1 ``b'`` (recurrent).

    ``reset_after=False`` (original Cho et al.)::

        hh_t = tanh(x_t W_h + b_h + (r_t * h_{t-1}) U_h)

    with a ``(3H,)`` bias and no recurrent bias. Gates: 3, states: (h,).
    """

    n_gates = 3
    n_states = 1

    def __init__(self, activation="tanh", recurrent_activation="sigmoid", reset_after=True):
        self.act = _act.get(activation)
        self.ract = _act.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def forward_step(self, xw_t, states, U, b_rec=None, rmask=None):
        (h_prev,) = states
        H = h_prev.shape[1]
        hp = _drop(h_prev, rmask)
        if self.reset_after:
            hU = hp @ U                                            # (B, 3H)
            if b_rec is not None:
                hU = hU + b_rec
            zz = xw_t[:, :H] + hU[:, :H]
            zr = xw_t[:, H:2 * H] + hU[:, H:2 * H]
            z, r = self.ract.forward(zz), self.ract.forward(zr)
            zh = xw_t[:, 2 * H:] + r * hU[:, 2 * H:]
            rec = hU[:, 2 * H:]
        else:
            hU = hp @ U[:, :2 * H]
            zz = xw_t[:, :H] + hU[:, :H]
            zr = xw_t[:, H:2 * H] + hU[:, H:]
            z, r = self.ract.forward(zz), self.ract.forward(zr)
            rec = r * hp                                            # (B, H)
            zh = xw_t[:, 2 * H:] + rec @ U[:, 2 * H:]
        hh = self.act.forward(zh)
        h = z * h_prev + (1.0 - z) * hh
        cache = {"hp": hp, "h_prev": h_prev, "zz": zz, "zr": zr, "zh": zh,
                 "z": z, "r": r, "hh": hh, "rec": rec}
        return h, (h,), cache

    def backward_step(self, dstates, cache, U, b_rec=None, rmask=None):
        (dh,) = dstates
        H = dh.shape[1]
        z, r, hh = cache["z"], cache["r"], cache["hh"]
        dzh = self.act.backward(dh * (1.0 - z), cache["zh"], hh)          # h = ... + (1-z)*hh
        dzz = self.ract.backward(dh * (cache["h_prev"] - hh), cache["zz"], z)
        dxw = np.empty((dh.shape[0], 3 * H), dtype=dh.dtype)
        dxw[:, :H] = dzz
        dxw[:, 2 * H:] = dzh
        if self.reset_after:
            # zh = xw_h + r * (h' U_h + b'_h)
            dzr = self.ract.backward(dzh * cache["rec"], cache["zr"], r)
            dxw[:, H:2 * H] = dzr
            dzrec = dxw.copy()
            dzrec[:, 2 * H:] = dzh * r
            dhp = dzrec @ U.T
        else:
            # zh = xw_h + (r * h') U_h
            drec = dzh @ U[:, 2 * H:].T
            dzr = self.ract.backward(drec * cache["hp"], cache["zr"], r)
            dxw[:, H:2 * H] = dzr
            dzrec = dxw
            dhp = dxw[:, :2 * H] @ U[:, :2 * H].T + drec * r
        dh_prev = dh * z + _drop(dhp, rmask)                               # h = z*h_prev + ...
        return dxw, (dh_prev,), dzrec

    def rec_inputs(self, cache):
        if self.reset_after:
            return [(cache["hp"], slice(None))]
        H = cache["hp"].shape[1]
        return [(cache["hp"], slice(0, 2 * H)), (cache["rec"], slice(2 * H, 3 * H))]
