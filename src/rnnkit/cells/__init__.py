"""Recurrent cells: one time step, forward and backward (the protocol is in
:mod:`rnnkit.cells.base` and docs/cells.md).

Built-in cells (Keras names, arguments and weight layouts): :class:`SimpleRNNCell`,
:class:`LSTMCell`, :class:`GRUCell`, and :class:`StackedRNNCells`; beyond Keras
(docs/new_cells.md): :class:`LayerNormLSTMCell`, :class:`LayerNormGRUCell`,
:class:`IndRNNCell`, :class:`MinGRUCell`, :class:`MinLSTMCell`, :class:`LRUCell`,
:class:`sLSTMCell`. Write your own by
subclassing :class:`Cell`; run any cell over sequences with :class:`rnnkit.layers.RNN`.
"""

from .base import (
    Cell,
    ParamSpec,
    ProjectedCell,
    deserialize,
    get_cell_class,
    register_cell,
    serialize,
)
from .gru import GRUCell
from .indrnn import IndRNNCell
from .layernorm import LayerNormGRUCell, LayerNormLSTMCell
from .lru import LRUCell
from .lstm import LSTMCell
from .minrnn import MinGRUCell, MinLSTMCell
from .simple import SimpleRNNCell
from .slstm import sLSTMCell
from .stacked import StackedRNNCells

__all__ = ["Cell", "ParamSpec", "ProjectedCell", "SimpleRNNCell", "LSTMCell", "GRUCell",
           "StackedRNNCells", "LayerNormLSTMCell", "LayerNormGRUCell", "IndRNNCell",
           "MinGRUCell", "MinLSTMCell", "LRUCell", "sLSTMCell", "register_cell",
           "get_cell_class", "serialize", "deserialize"]
