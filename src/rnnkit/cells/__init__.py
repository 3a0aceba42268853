"""Recurrent cells: one time step, forward and backward (the protocol is in
:mod:`rnnkit.cells.base` and docs/cells.md).

Built-in cells (Keras names, arguments and weight layouts): :class:`SimpleRNNCell`,
:class:`LSTMCell`, :class:`GRUCell`, and :class:`StackedRNNCells`. Write your own by
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
from .lstm import LSTMCell
from .simple import SimpleRNNCell
from .stacked import StackedRNNCells

__all__ = ["Cell", "ParamSpec", "ProjectedCell", "SimpleRNNCell", "LSTMCell", "GRUCell",
           "StackedRNNCells", "register_cell", "get_cell_class", "serialize", "deserialize"]
