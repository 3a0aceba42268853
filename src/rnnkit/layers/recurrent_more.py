"""Recurrent layers beyond Keras (docs/new_cells.md): :class:`~rnnkit.layers.RNN` with a
preset cell from :mod:`rnnkit.cells`.

``MinGRU(64)`` is ``RNN(MinGRUCell(64))``: the cell's arguments and the RNN arguments
(``return_sequences``, ``return_state``, ``go_backwards``, ``stateful``, ``name``, ...) in one
call, the flat config Keras-style.
"""

from __future__ import annotations

from .. import cells as _cells
from .recurrent import _RNN_ARGS as _LAYER_AND_RNN_ARGS
from .recurrent import _Preset

_DEFAULTS = {"return_sequences": False, "return_state": False, "go_backwards": False,
             "stateful": False, "name": None, "trainable": True, "dtype": None,
             "input_shape": None, "input_dim": None, "batch_input_shape": None}


class _CellPreset(_Preset):
    """Preset whose cell arguments are passed through by keyword (the cell validates them:
    an unknown name is a TypeError naming it)."""

    def __init__(self, units, **kwargs):
        super().__init__({**{k: _DEFAULTS[k] for k in _LAYER_AND_RNN_ARGS}, **kwargs,
                          "units": units})


_RNN_DOC = """
        return_sequences, return_state, go_backwards, stateful: see
            :class:`~rnnkit.layers.RNN`.
        name, trainable, dtype, input_shape, input_dim: see :class:`~rnnkit.layers.Layer`."""


class MinGRU(_CellPreset):
    __doc__ = """minGRU layer (Feng et al. 2024): :class:`~rnnkit.layers.RNN` with a
    :class:`~rnnkit.cells.MinGRUCell`; trained by a compiled scan over time.

    Args:
        units: positive int H.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, dropout, seed: see :class:`~rnnkit.cells.MinGRUCell`.""" + _RNN_DOC + """

    Weights: ``kernel`` (F, 2H) columns z, h; ``bias`` (2H,). Output (B, H) or (B, T, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.MinGRU(8, return_sequences=True)(np.ones((2, 5, 3))).shape
        (2, 5, 8)
    """
    _cell_class = _cells.MinGRUCell


class MinLSTM(_CellPreset):
    __doc__ = """minLSTM layer (Feng et al. 2024): :class:`~rnnkit.layers.RNN` with a
    :class:`~rnnkit.cells.MinLSTMCell`; trained by a compiled scan over time.

    Args:
        units: positive int H.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, dropout, seed: see :class:`~rnnkit.cells.MinLSTMCell`.""" + _RNN_DOC + """

    Weights: ``kernel`` (F, 3H) columns i, f, h; ``bias`` (3H,). Output (B, H) or (B, T, H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.MinLSTM(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """
    _cell_class = _cells.MinLSTMCell


class LRU(_CellPreset):
    __doc__ = """Linear Recurrent Unit layer (Orvieto et al. 2023): :class:`~rnnkit.layers.RNN`
    with an :class:`~rnnkit.cells.LRUCell`; trained by a compiled scan over time.

    Args:
        units: positive int, the output size.
        state_size, r_min, r_max, max_phase, kernel_initializer, output_initializer,
        kernel_regularizer, output_regularizer, dropout, seed: see
            :class:`~rnnkit.cells.LRUCell`.""" + _RNN_DOC + """

    Weights: ``nu_log``, ``theta_log``, ``gamma_log`` (N,), ``kernel`` (F, 2N + units),
    ``output_kernel`` (2N, units). States ``[Re h, Im h]``, each (B, N).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.LRU(8, state_size=16)(np.ones((2, 5, 3))).shape
        (2, 8)
    """
    _cell_class = _cells.LRUCell


class IndRNN(_CellPreset):
    __doc__ = """IndRNN layer (Li et al. 2018): :class:`~rnnkit.layers.RNN` with an
    :class:`~rnnkit.cells.IndRNNCell` (ReLU, ``|u| <= 2 ** (1 / timesteps)``).

    Args:
        units: positive int H.
        activation, recurrent_max_abs, timesteps, recurrent_initializer,
        recurrent_regularizer, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer, dropout, seed: see
            :class:`~rnnkit.cells.IndRNNCell`.""" + _RNN_DOC + """

    Weights: ``kernel`` (F, H), ``bias`` (H,), ``recurrent_kernel`` (H,).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.IndRNN(8, timesteps=1000)(np.ones((2, 5, 3))).shape
        (2, 8)
    """
    _cell_class = _cells.IndRNNCell


class sLSTM(_CellPreset):  # noqa: N801 - the paper's name
    __doc__ = """sLSTM layer (Beck et al. 2024, xLSTM): :class:`~rnnkit.layers.RNN` with an
    :class:`~rnnkit.cells.sLSTMCell`.

    Args:
        units: positive int H.
        num_heads, unit_forget_bias, recurrent_initializer, recurrent_regularizer, use_bias,
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, dropout,
        seed: see :class:`~rnnkit.cells.sLSTMCell`.""" + _RNN_DOC + """

    Weights: ``kernel`` (F, 4H), ``bias`` (4H,), ``recurrent_kernel`` (heads, d, 4d).
    States ``[h, c, n, m]``.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.sLSTM(8, num_heads=2)(np.ones((2, 5, 3))).shape
        (2, 8)
    """
    _cell_class = _cells.sLSTMCell


class LayerNormLSTM(_CellPreset):
    __doc__ = """Layer-normalised LSTM (Ba et al. 2016, as in haste): :class:`~rnnkit.layers.RNN`
    with a :class:`~rnnkit.cells.LayerNormLSTMCell`.

    Args:
        units: positive int H.
        zoneout, unit_forget_bias, recurrent_initializer, recurrent_regularizer, use_bias,
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, dropout,
        seed: see :class:`~rnnkit.cells.LayerNormLSTMCell`.""" + _RNN_DOC + """

    Weights: ``kernel`` (F, 4H), ``bias`` (4H,), ``recurrent_kernel`` (H, 4H), ``gamma``
    (2, 4H), ``gamma_h``, ``beta_h`` (H,).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.LayerNormLSTM(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """
    _cell_class = _cells.LayerNormLSTMCell


class LayerNormGRU(_CellPreset):
    __doc__ = """Layer-normalised GRU (Ba et al. 2016, as in haste): :class:`~rnnkit.layers.RNN`
    with a :class:`~rnnkit.cells.LayerNormGRUCell`.

    Args:
        units: positive int H.
        zoneout, recurrent_initializer, recurrent_regularizer, use_bias, kernel_initializer,
        bias_initializer, kernel_regularizer, bias_regularizer, dropout, seed: see
            :class:`~rnnkit.cells.LayerNormGRUCell`.""" + _RNN_DOC + """

    Weights: ``kernel`` (F, 3H), ``bias`` (2, 3H), ``recurrent_kernel`` (H, 3H), ``gamma``
    (2, 3H).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.LayerNormGRU(8)(np.ones((2, 5, 3))).shape
        (2, 8)
    """
    _cell_class = _cells.LayerNormGRUCell
