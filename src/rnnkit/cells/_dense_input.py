"""Base of the cells whose input enters through one projection ``x_t @ kernel + bias``
(minGRU, minLSTM, IndRNN, sLSTM, the layer-normalised cells, LRU): units, the projection's
parameters, their arguments and config, and the projection's forward and backward."""

from __future__ import annotations

from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_bool, check_positive_int, get_named
from .base import Cell


class DenseInputCell(Cell):
    """A cell with ``kernel`` (F, n_gates * units) and, when ``use_bias``, ``bias``.

    Args:
        units: positive int H (state and output size unless a subclass says otherwise).
        use_bias: bool.
        kernel_initializer, bias_initializer: names or instances.
        kernel_regularizer, bias_regularizer: names, instances or None.
        dropout, seed: see :class:`rnnkit.cells.Cell`.

    Subclasses set ``n_gates`` and extend :meth:`build` (declaring their own parameters
    after ``kernel`` and ``bias``) and :meth:`get_config`.
    """

    _abstract = True     # a base class, not loadable by name
    n_gates = 1
    output_is_state = True

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 dropout=0.0, seed=None, **kwargs):
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        self.units = check_positive_int("units", units)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = get_named(_init, "kernel_initializer", kernel_initializer)
        self.bias_initializer = get_named(_init, "bias_initializer", bias_initializer)
        self.kernel_regularizer = get_named(_reg, "kernel_regularizer", kernel_regularizer)
        self.bias_regularizer = get_named(_reg, "bias_regularizer", bias_regularizer)
        self.state_size = [self.units]
        self.output_size = self.units

    def bias_init(self):
        """The initializer of ``bias`` (override to start some gates elsewhere)."""
        return self.bias_initializer

    def build(self, input_dim):
        """``kernel`` (F, n_gates * H), then ``bias`` (n_gates * H,) when ``use_bias``."""
        G = self.n_gates * self.units
        self.add_weight("kernel", (input_dim, G), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (G,), self.bias_init(), self.bias_regularizer)

    def project(self, x_t):
        """``x_t @ kernel + bias``: (B, F) -> (B, n_gates * H) (any leading shape)."""
        k = x_t @ self.params["kernel"]
        if self.use_bias:
            k = k + self.params["bias"]
        return k

    def project_backward(self, x_t, dk):
        """``(dx_t, [dkernel, dbias])`` of :meth:`project` given ``dk`` = dL/d(projection)."""
        grads = [x_t.T @ dk]
        if self.use_bias:
            grads.append(dk.sum(axis=0))
        return dk @ self.params["kernel"].T, grads

    def get_config(self):
        return {"units": self.units, "use_bias": self.use_bias,
                "kernel_initializer": _init.serialize(self.kernel_initializer),
                "bias_initializer": _init.serialize(self.bias_initializer),
                "kernel_regularizer": _reg.serialize(self.kernel_regularizer),
                "bias_regularizer": _reg.serialize(self.bias_regularizer),
                **super().get_config()}

    def __repr__(self):
        return f"<{type(self).__name__} units={self.units}>"
