"""SimpleRNN, LSTM, GRU: :class:`~rnnkit.layers.RNN` with a preset built-in cell.

Each preset takes the Keras layer's arguments (cell arguments and RNN arguments in one flat
signature), builds the cell (:mod:`rnnkit.cells`) and is otherwise the generic RNN layer, so
``LSTM(64)`` and ``RNN(LSTMCell(64))`` compute the same numbers. ``get_config()`` is the
flat Keras config (files saved by earlier versions load unchanged).
"""

from __future__ import annotations

from .. import cells as _cells
from .rnn import RNN

_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "name",
             "trainable", "dtype", "input_shape", "input_dim", "batch_input_shape")


class _Preset(RNN):
    """RNN with a cell built from flat Keras arguments (not used directly)."""

    _cell_class = None

    def __init__(self, args):
        """``args``: the subclass constructor's ``locals()``; the RNN and Layer arguments go to
        :class:`RNN`, the rest to the cell."""
        args = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        rnn = {k: args.pop(k) for k in _RNN_ARGS}
        super().__init__(self._cell_class(**args), **rnn)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(cfg.pop("cell")["config"])
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


class SimpleRNN(_Preset):
    r"""Fully-connected RNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    ``keras.layers.SimpleRNN``: :class:`~rnnkit.layers.RNN` with a
    :class:`~rnnkit.cells.SimpleRNNCell`.

    Args:
        units: positive int, size of the state and of the output.
        activation: name or instance (default ``'tanh'``).
        use_bias: bool.
        kernel_initializer, recurrent_initializer, bias_initializer: names or instances.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: names, instances or None.
        dropout, recurrent_dropout: rates in [0, 1) (one mask per sequence, training only).
        seed: None or int, seeds the dropout masks.
        return_sequences, return_state, go_backwards, stateful: see
            :class:`~rnnkit.layers.RNN`.
        name, trainable, dtype, input_shape, input_dim, batch_input_shape: see
            :class:`~rnnkit.layers.Layer`.

    Weights (Keras layout): ``kernel`` (F, units), ``recurrent_kernel`` (units, units),
    ``bias`` (units,). Input (B, T, F); output (B, units), or (B, T, units) with
    ``return_sequences=True``.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.SimpleRNN(4)(np.zeros((2, 5, 3))).shape
        (2, 4)
    """

    _cell_class = _cells.SimpleRNNCell

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None):
        super().__init__(locals())


class LSTM(_Preset):
    r"""Long short-term memory layer (Hochreiter & Schmidhuber 1997), Keras gate order i, f, c, o.

    ``keras.layers.LSTM``: :class:`~rnnkit.layers.RNN` with an
    :class:`~rnnkit.cells.LSTMCell` (equations in :mod:`rnnkit.cells.lstm`).

    Args:
        units: positive int, size of the states and of the output.
        activation: candidate / output activation (default ``'tanh'``).
        recurrent_activation: gate activation (default ``'sigmoid'``).
        use_bias: bool.
        kernel_initializer, recurrent_initializer, bias_initializer: names or instances.
        unit_forget_bias: bool; when True (default) the forget-gate bias starts at 1.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: names, instances or None.
        dropout, recurrent_dropout: rates in [0, 1) (one mask per sequence, training only).
        seed: None or int, seeds the dropout masks.
        return_sequences, return_state, go_backwards, stateful: see
            :class:`~rnnkit.layers.RNN`.
        name, trainable, dtype, input_shape, input_dim, batch_input_shape: see
            :class:`~rnnkit.layers.Layer`.

    Weights (Keras layout): ``kernel`` (F, 4u), ``recurrent_kernel`` (u, 4u), ``bias`` (4u,).
    States: ``[h, c]``, each (B, u).

    Example:
        >>> import numpy as np, rnnkit
        >>> out, h, c = rnnkit.layers.LSTM(8, return_state=True)(np.ones((2, 5, 3)))
        >>> out.shape, c.shape
        ((2, 8), (2, 8))
    """

    _cell_class = _cells.LSTMCell

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, name=None, trainable=True, dtype=None,
                 input_shape=None, input_dim=None, batch_input_shape=None):
        super().__init__(locals())

class GRU(_Preset):
    r"""Gated recurrent unit (Cho et al. 2014), Keras gate order z, r, h.

    ``keras.layers.GRU``: :class:`~rnnkit.layers.RNN` with a :class:`~rnnkit.cells.GRUCell`
    (equations in :mod:`rnnkit.cells.gru`).

    Args:
        units: positive int, size of the state and of the output.
        activation: candidate activation (default ``'tanh'``).
        recurrent_activation: gate activation (default ``'sigmoid'``).
        use_bias: bool.
        kernel_initializer, recurrent_initializer, bias_initializer: names or instances.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: names, instances or None.
        dropout, recurrent_dropout: rates in [0, 1) (one mask per sequence, training only).
        seed: None or int, seeds the dropout masks.
        reset_after: bool (default True): reset gate after the recurrent product, bias
            (2, 3u) (row 0 input, row 1 recurrent); False: before it, bias (3u,).
        return_sequences, return_state, go_backwards, stateful: see
            :class:`~rnnkit.layers.RNN`.
        name, trainable, dtype, input_shape, input_dim, batch_input_shape: see
            :class:`~rnnkit.layers.Layer`.

    Weights (Keras layout): ``kernel`` (F, 3u), ``recurrent_kernel`` (u, 3u), ``bias``.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.GRU(8, return_sequences=True)(np.ones((2, 5, 3))).shape
        (2, 5, 8)
    """

    _cell_class = _cells.GRUCell

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, reset_after=True, name=None, trainable=True, dtype=None,
                 input_shape=None, input_dim=None, batch_input_shape=None):
        super().__init__(locals())
