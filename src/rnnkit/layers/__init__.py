"""Layers with Keras names, arguments, defaults and weight layouts.

The recurrent cells (:mod:`rnnkit.cells`) are re-exported here as in Keras
(``rnnkit.layers.LSTMCell``), to be run by :class:`RNN`.
"""

from ..cells import (
    Cell,
    GRUCell,
    IndRNNCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LRUCell,
    LSTMCell,
    MinGRUCell,
    MinLSTMCell,
    SimpleRNNCell,
    StackedRNNCells,
    sLSTMCell,
)
from .base import Layer
from .core import Activation, Dense, Dropout, Embedding, Flatten, Input, InputLayer, Masking
from .recurrent import GRU, LSTM, SimpleRNN
from .recurrent_more import LRU, IndRNN, LayerNormGRU, LayerNormLSTM, MinGRU, MinLSTM, sLSTM
from .rnn import RNN
from .wrappers import Bidirectional, TimeDistributed

_CUSTOM: dict[str, type] = {}


def register_layer(cls):
    """Register a custom Layer subclass so that saved models using it can be loaded.

    Loading never imports or runs code named in a file: only built-in and registered classes
    can be instantiated. Usable as a decorator.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer expects a Layer subclass, got {cls!r}.")
    _CUSTOM[cls.__name__] = cls
    return cls


def _builtin():
    import sys
    mod = sys.modules[__name__]
    out = {}
    for name in __all__:
        obj = getattr(mod, name)
        if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer:
            out[name] = obj
    return out


def get_layer_class(name, custom_objects=None):
    classes = {**_builtin(), **_CUSTOM, **(custom_objects or {})}
    if name not in classes:
        raise ValueError(
            f"Unknown layer class {name!r}. Known layers: {sorted(classes)}. Register custom "
            "layers with rnnkit.layers.register_layer."
        )
    return classes[name]


def deserialize(spec, custom_objects=None):
    """Create a layer from ``{"class_name": ..., "config": {...}}`` (no code is executed)."""
    if not isinstance(spec, dict) or "class_name" not in spec or not isinstance(
            spec.get("config", {}), dict):
        raise ValueError(f"A layer spec must be a dict with 'class_name' and 'config', got {spec!r}.")
    cls = get_layer_class(spec["class_name"], custom_objects)
    return cls.from_config(dict(spec.get("config", {})))


__all__ = [
    "Layer", "RNN", "Cell", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "Input", "InputLayer", "Dense", "Embedding", "Dropout", "Activation",
    "Flatten", "Masking", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
    "register_layer", "deserialize", "MinGRU", "MinLSTM", "LRU", "IndRNN", "sLSTM",
    "LayerNormLSTM", "LayerNormGRU", "MinGRUCell", "MinLSTMCell", "LRUCell", "IndRNNCell",
    "sLSTMCell", "LayerNormLSTMCell", "LayerNormGRUCell",
]
