r"""sLSTM, the scalar-memory cell of xLSTM (Beck, Poeppel, Spanring, Auer, Prudnikova, Kopp,
Klambauer, Brandstetter, Hochreiter 2024, "xLSTM: Extended Long Short-Term Memory").

Exponential input gate, a normaliser state ``n`` and a stabiliser state ``m`` that keeps the
exponentials finite, and block-diagonal (multi-head) recurrent weights. Gate order **i, f,
z, o** (the ``xlstm`` package's)::

    r_t = x_t W + blockdiag(R) h_{t-1} + b           # (B, 4H): i~, f~, z~, o~
    m_t = max(log sigma(f~) + m_{t-1}, i~)           # stabiliser
    i_t = exp(i~ - m_t),  f_t = exp(log sigma(f~) + m_{t-1} - m_t)
    c_t = f_t c_{t-1} + i_t tanh(z~)
    n_t = f_t n_{t-1} + i_t
    h_t = sigma(o~) c_t / n_t

``c`` and ``n`` are the paper's unstabilised cell and normaliser scaled by ``exp(-m_t)``, so
``h_t`` does not depend on ``m`` (both ``exp`` are at most 1). The recurrence is
block-diagonal: with ``num_heads`` heads of ``d = units / num_heads`` units, head k's gates
read only head k's ``h``. ``recurrent_kernel`` is (num_heads, d, 4 d): head k maps its
``h`` (B, d) to its four gate blocks ``[i | f | z | o]`` (each d wide), which land in columns
``g * H + k * d + j`` of the (B, 4H) pre-activation (the ``xlstm`` layout, transposed).
States ``[h, c, n, m]``; the output is ``h``.

Training and inference run the compiled kernel :mod:`rnnkit.kernels.slstm` (one gemm per
head and step), which equals the generic loop over :meth:`sLSTMCell.step` / ``step_backward``.
"""

from __future__ import annotations

import numpy as np

from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_bool, check_positive_int, get_named
from ._dense_input import DenseInputCell
from .lstm import _ForgetBiasOne

_sigmoid = _act.get("sigmoid").forward


class _HeadOrthogonal(_init.Initializer):
    """Orthogonal (d, d) blocks, one per head and gate."""

    def __call__(self, shape, dtype="float32"):
        K, d, G = shape
        orth = _init.Orthogonal()
        return np.stack([np.concatenate([orth((d, d), "float64") for _ in range(G // d)], axis=1)
                         for _ in range(K)]).astype(dtype)


class sLSTMCell(DenseInputCell):  # noqa: N801 - the paper's name
    """sLSTM cell (equations and layout in the module docstring).

    Args:
        units: positive int H.
        num_heads: positive int dividing ``units`` (default 1: one full recurrent matrix).
        unit_forget_bias: bool; when True (default) the forget-gate bias starts at 1.
        recurrent_initializer: initializer of ``recurrent_kernel`` (default orthogonal per
            head and gate block).
        recurrent_regularizer: regularizer or None.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, dropout, seed: as in :class:`~rnnkit.cells.MinGRUCell`.

    Shapes: ``step`` maps x_t (B, F) and ``[h, c, n, m]`` (each (B, H)) to y_t = h_t.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.sLSTM(8, num_heads=2)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    n_gates = 4

    def __init__(self, units, num_heads=1, unit_forget_bias=True, recurrent_initializer=None,
                 recurrent_regularizer=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(units, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, dropout, seed, **kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        if self.units % self.num_heads:
            raise ValueError(f"num_heads must divide units: got num_heads={num_heads!r} for "
                             f"units={units!r} ({units} % {num_heads} = "
                             f"{self.units % self.num_heads}); pick a divisor of units.")
        self.head_size = self.units // self.num_heads
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        self.recurrent_initializer = None if recurrent_initializer is None else get_named(
            _init, "recurrent_initializer", recurrent_initializer)
        self.recurrent_regularizer = get_named(_reg, "recurrent_regularizer",
                                                 recurrent_regularizer)
        self.state_size = [self.units] * 4

    def bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        return _ForgetBiasOne(self.bias_initializer, self.units)   # f is gate 2 of 4

    def build(self, input_dim):
        """``kernel`` (F, 4H), ``bias`` (4H,), ``recurrent_kernel`` (num_heads, d, 4d)."""
        super().build(input_dim)
        d = self.head_size
        self.add_weight("recurrent_kernel", (self.num_heads, d, 4 * d),
                        self.recurrent_initializer or _HeadOrthogonal(),
                        self.recurrent_regularizer)

    # block-diagonal recurrent product and its two transposes ------------------------------
    def _heads(self, r):
        """(B, 4H) in gate-major layout -> (B, K, 4d) per head."""
        B, K, d = r.shape[0], self.num_heads, self.head_size
        return r.reshape(B, 4, K, d).transpose(0, 2, 1, 3).reshape(B, K, 4 * d)

    def recurrent(self, h):
        """``blockdiag(R) h``: (B, H) -> (B, 4H)."""
        B, K, d = h.shape[0], self.num_heads, self.head_size
        r = np.matmul(h.reshape(B, K, d).transpose(1, 0, 2), self.params["recurrent_kernel"])
        return r.reshape(K, B, 4, d).transpose(1, 2, 0, 3).reshape(B, 4 * K * d)   # (B, 4H)

    def step(self, x_t, states, training=False):
        h_prev, c_prev, n_prev, m_prev = states
        H = self.units
        r = self.project(x_t) + self.recurrent(h_prev)           # (B, 4H)
        ir, fr, zr, orr = r[:, :H], r[:, H:2 * H], r[:, 2 * H:3 * H], r[:, 3 * H:]
        a = -np.logaddexp(0.0, -fr) + m_prev                      # log sigma(f~) + m_{t-1}
        m = np.maximum(a, ir)
        i, f = np.exp(ir - m), np.exp(a - m)
        z, o = np.tanh(zr), _sigmoid(orr)
        c = f * c_prev + i * z
        n = f * n_prev + i
        h = o * c / n
        return h, [h, c, n, m], (x_t, h_prev, c_prev, n_prev, fr, a, ir, i, f, z, o, c, n)

    def step_backward(self, dy_t, dstates, cache):
        x_t, h_prev, c_prev, n_prev, fr, a, ir, i, f, z, o, c, n = cache
        dh, dc, dn, dm = dstates
        dh = dh + dy_t
        do = dh * c / n                                          # h = o c / n
        dc = dc + dh * o / n
        dn = dn - dh * o * c / (n * n)
        df = dc * c_prev + dn * n_prev                           # c = f c' + i z, n = f n' + i
        di = dc * z + dn
        dir_, da = di * i, df * f                                # i = exp(i~ - m), f = exp(a - m)
        dm = dm - dir_ - da
        sel = a >= ir                                            # m = max(a, i~)
        da = da + np.where(sel, dm, 0.0)
        dir_ = dir_ + np.where(sel, 0.0, dm)
        dr = np.concatenate([dir_, da * _sigmoid(-fr),          # d log sigma(f~) = sigma(-f~)
                             dc * i * (1.0 - z * z), do * o * (1.0 - o)], axis=1)
        dx, dparams = self.project_backward(x_t, dr)
        B, K, d = h_prev.shape[0], self.num_heads, self.head_size
        drh = self._heads(dr).transpose(1, 0, 2)                 # (K, B, 4d)
        R = self.params["recurrent_kernel"]
        dh_prev = np.matmul(drh, R.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(B, K * d)
        dR = np.matmul(h_prev.reshape(B, K, d).transpose(1, 2, 0), drh)   # (K, d, 4d)
        return dx, [dh_prev, dc * f, dn * f, da], dparams + [dR]

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "unit_forget_bias": self.unit_forget_bias,
                "recurrent_initializer": None if self.recurrent_initializer is None else
                _init.serialize(self.recurrent_initializer),
                "recurrent_regularizer": _reg.serialize(self.recurrent_regularizer)}
