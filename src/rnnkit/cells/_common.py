"""What the three Keras cells share: units, activations, initializers, regularizers, the
Keras weight layout (``kernel`` (F, G), ``recurrent_kernel`` (H, G), ``bias``) and config."""

from __future__ import annotations

from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_bool, check_positive_int, get_named
from .base import ProjectedCell


def keras_args(local_vars, *own):
    """The :class:`KerasCell` arguments among a subclass constructor's ``locals()`` (without
    ``self``, ``kwargs`` and the subclass's ``own`` arguments)."""
    skip = {"self", "__class__", "kwargs", *own}
    return {k: v for k, v in local_vars.items() if k not in skip}


def drop(h, rmask):
    """``h * rmask`` (recurrent dropout), or ``h`` when there is no mask."""
    return h if rmask is None else h * rmask


class KerasCell(ProjectedCell):
    """Base of SimpleRNNCell, LSTMCell and GRUCell (not used directly).

    Args:
        units: positive int H, the size of the state and of the output.
        activation: activation of the candidate / output (name or instance).
        recurrent_activation: activation of the gates (LSTM, GRU).
        use_bias: bool.
        kernel_initializer, recurrent_initializer, bias_initializer: names or instances.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: names, instances or None.
        dropout, recurrent_dropout, seed: see :class:`rnnkit.cells.Cell`.
    """

    _abstract = True     # not loadable by name
    n_gates = 1
    supports_recurrent_dropout = True
    #: names of the gate blocks of the (H, G) recurrent kernel, in column order
    gate_names: tuple = ("h",)
    _has_recurrent_activation = True

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
                         **kwargs)
        self.units = check_positive_int("units", units)
        self.activation = get_named(_act, "activation", activation)
        self.recurrent_activation = get_named(_act, "recurrent_activation", recurrent_activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = get_named(_init, "kernel_initializer", kernel_initializer)
        self.recurrent_initializer = get_named(_init, "recurrent_initializer", recurrent_initializer)
        self.bias_initializer = get_named(_init, "bias_initializer", bias_initializer)
        self.kernel_regularizer = get_named(_reg, "kernel_regularizer", kernel_regularizer)
        self.recurrent_regularizer = get_named(_reg, "recurrent_regularizer", recurrent_regularizer)
        self.bias_regularizer = get_named(_reg, "bias_regularizer", bias_regularizer)
        self.state_size = [self.units] * self.n_states
        self.output_size = self.units

    n_states = 1

    def bias_shape(self):
        """Shape of the ``bias`` parameter."""
        return (self.n_gates * self.units,)

    def bias_initializer_for_build(self):
        """The initializer ``build`` uses for ``bias`` (LSTM adds the unit forget bias)."""
        return self.bias_initializer

    def build(self, input_dim):
        """``kernel`` (F, G), ``recurrent_kernel`` (H, G), ``bias`` (see :meth:`bias_shape`)."""
        G = self.n_gates * self.units
        self.add_weight("kernel", (input_dim, G), self.kernel_initializer,
                        self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (self.units, G), self.recurrent_initializer,
                        self.recurrent_regularizer)
        if self.use_bias:
            self.add_weight("bias", self.bias_shape(), self.bias_initializer_for_build(),
                            self.bias_regularizer)

    def get_config(self):
        cfg = {
            "units": self.units,
            "activation": _act.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _init.serialize(self.kernel_initializer),
            "recurrent_initializer": _init.serialize(self.recurrent_initializer),
            "bias_initializer": _init.serialize(self.bias_initializer),
            "kernel_regularizer": _reg.serialize(self.kernel_regularizer),
            "recurrent_regularizer": _reg.serialize(self.recurrent_regularizer),
            "bias_regularizer": _reg.serialize(self.bias_regularizer),
            **super().get_config(),
        }
        if self._has_recurrent_activation:
            cfg["recurrent_activation"] = _act.serialize(self.recurrent_activation)
        return cfg

    def __repr__(self):
        return f"<{type(self).__name__} units={self.units}>"
