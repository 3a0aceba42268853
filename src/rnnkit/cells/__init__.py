"""Recurrent cells: one time step, forward and backward (the protocol is in
:mod:`rnnkit.cells.base` and docs/cells.md).

Built-in cells (Keras names, arguments and weight layouts): :class:`SimpleRNNCell`,
:class:`LSTMCell`, :class:`GRUCell`, and :class:`StackedRNNCells`; beyond Keras
(docs/new_cells.md): :class:`LayerNormLSTMCell`, :class:`LayerNormGRUCell`,
:class:`IndRNNCell`, :class:`MinGRUCell`, :class:`MinLSTMCell`, :class:`LRUCell`,
:class:`sLSTMCell`. Write your own by
subclassing :class:`Cell`; run any cell over sequences with :class:`rnnkit.layers.RNN`.
"""

from .base import Cell, ParamSpec, ProjectedCell, get_cell_class, register_cell
from .gru import GRUCell
from .indrnn import IndRNNCell
from .layernorm import LayerNormGRUCell, LayerNormLSTMCell
from .lru import LRUCell
from .lstm import LSTMCell
from .minrnn import MinGRUCell, MinLSTMCell
from .simple import SimpleRNNCell
from .slstm import sLSTMCell
from .stacked import StackedRNNCells

BUILTIN = {c.__name__: c for c in (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells,
                                   LayerNormLSTMCell, LayerNormGRUCell, IndRNNCell,
                                   MinGRUCell, MinLSTMCell, LRUCell, sLSTMCell)}


def serialize(cell):
    """``{"class_name": ..., "config": {...}}`` for ``cell`` (JSON-ready)."""
    return {"class_name": type(cell).__name__, "config": cell.get_config()}


def clone(cell):
    """A new, unbuilt cell with ``cell``'s configuration (no registry involved, so it works
    for unregistered user cells too)."""
    if isinstance(cell, StackedRNNCells):
        return StackedRNNCells([clone(c) for c in cell.cells])
    return type(cell).from_config(cell.get_config())


def deserialize(spec, custom_objects=None):
    """A cell from :func:`serialize`'s output; only built-in and registered classes (or
    ``custom_objects``) are instantiated, never a class imported by name from a file."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or \
            not isinstance(spec.get("config", {}), dict):
        raise ValueError(f"A cell spec must be a dict with 'class_name' and 'config', got "
                         f"{spec!r}.")
    cls = get_cell_class(spec["class_name"], BUILTIN, custom_objects)
    cfg = dict(spec.get("config", {}))
    if cls is StackedRNNCells:
        return cls.from_config(cfg, custom_objects)
    return cls.from_config(cfg)


__all__ = ["Cell", "ParamSpec", "ProjectedCell", "SimpleRNNCell", "LSTMCell", "GRUCell",
           "StackedRNNCells", "LayerNormLSTMCell", "LayerNormGRUCell", "IndRNNCell",
           "MinGRUCell", "MinLSTMCell", "LRUCell", "sLSTMCell", "register_cell", "serialize",
           "deserialize", "clone"]
