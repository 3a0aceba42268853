r"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio, Hajimirsadeghi 2024, "Were RNNs All We
Needed?"): gates that read only the input, so the state update is linear in the state and a
whole sequence trains by a scan over time.

minGRU, ``kernel`` (F, 2H) columns **z, h**::

    z_t  = sigma(x_t W_z + b_z)
    hh_t = g(x_t W_h + b_h)
    h_t  = (1 - z_t) * h_{t-1} + z_t * hh_t

minLSTM, ``kernel`` (F, 3H) columns **i, f, h** (Keras LSTM order without the output gate)::

    i_t = sigma(x_t W_i + b_i),  f_t = sigma(x_t W_f + b_f)
    f'_t = f_t / (f_t + i_t),    i'_t = i_t / (f_t + i_t)
    h_t = f'_t * h_{t-1} + i'_t * g(x_t W_h + b_h)

``g(v) = v + 1/2`` for ``v >= 0`` and ``sigmoid(v)`` below (the paper's log-space variant,
appendix B.3): candidates are positive, so from a non-negative initial state every state is
positive. Both are ``h_t = a_t * h_{t-1} + b_t`` with ``a_t, b_t`` functions of ``x_t`` only:
an associative scan. Training runs the compiled scan of :mod:`rnnkit.kernels.minrnn`
(batch rows split across threads, or for long narrow batches a chunked time-parallel scan
with the decays in log space);
the paper evaluates the same recurrence in log space (``log h_t = logaddexp(log a_t +
log h_{t-1}, log b_t)``, the Heinsen scan) to run it in parallel over time on a GPU, which is
equal up to rounding (the tests check it against ``minGRU-pytorch``'s log-space scan).
Inference and streaming run :meth:`step`. States ``[h]``; the output is ``h``.
"""

from __future__ import annotations

import numpy as np

from .. import activations as _act
from ._dense_input import DenseInputCell

_sigmoid = _act.get("sigmoid").forward


def g(v):
    """``v + 1/2`` for ``v >= 0``, ``sigmoid(v)`` below: positive and continuous."""
    return np.where(v >= 0, v + 0.5, _sigmoid(v)).astype(v.dtype, copy=False)


def g_grad(v, gv):
    """``g'(v)`` given ``gv = g(v)``."""
    return np.where(v >= 0, 1.0, gv * (1.0 - gv)).astype(v.dtype, copy=False)


class MinGRUCell(DenseInputCell):
    """minGRU cell (equations in the module docstring).

    Args:
        units: positive int H.
        use_bias: bool (default True; ``minGRU-pytorch`` has no bias).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as in
            Keras.
        dropout, seed: input dropout (one mask per sequence), see :class:`rnnkit.cells.Cell`.

    Shapes: ``step`` maps x_t (B, F) and ``[h]`` (B, H) to y_t = h_t (B, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.MinGRU(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 2

    def step(self, x_t, states, training=False):
        (h_prev,) = states
        H = self.units
        k = self.project(x_t)                                   # (B, 2H)
        z = _sigmoid(k[:, :H])
        hh = g(k[:, H:])
        h = h_prev + z * (hh - h_prev)                          # (1 - z) h_prev + z hh
        return h, [h], (x_t, h_prev, k, z, hh)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, k, z, hh = cache
        H = self.units
        dh = dy_t + dstates[0]
        dk = np.empty_like(k)
        dk[:, :H] = dh * (hh - h_prev) * z * (1.0 - z)         # through z
        dk[:, H:] = dh * z * g_grad(k[:, H:], hh)               # through hh = g(.)
        dx, dparams = self.project_backward(x_t, dk)
        return dx, [dh * (1.0 - z)], dparams


class MinLSTMCell(DenseInputCell):
    """minLSTM cell (equations in the module docstring).

    Args: as :class:`MinGRUCell`; ``kernel`` is (F, 3H) with columns i, f, h.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.MinLSTM(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 3

    def step(self, x_t, states, training=False):
        (h_prev,) = states
        H = self.units
        k = self.project(x_t)                                   # (B, 3H)
        i, f = _sigmoid(k[:, :H]), _sigmoid(k[:, H:2 * H])
        fp = f / (f + i)                                        # f' (and i' = 1 - f')
        hh = g(k[:, 2 * H:])
        h = hh + fp * (h_prev - hh)                             # f' h_prev + i' hh
        return h, [h], (x_t, h_prev, k, i, f, fp, hh)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, k, i, f, fp, hh = cache
        H = self.units
        dh = dy_t + dstates[0]
        w = dh * (h_prev - hh) / ((f + i) * (f + i))            # dL/df' / (f + i)^2
        dk = np.empty_like(k)
        dk[:, :H] = -w * f * i * (1.0 - i)                      # f' = f / (f + i)
        dk[:, H:2 * H] = w * i * f * (1.0 - f)
        dk[:, 2 * H:] = dh * (1.0 - fp) * g_grad(k[:, 2 * H:], hh)
        dx, dparams = self.project_backward(x_t, dk)
        return dx, [dh * fp], dparams
