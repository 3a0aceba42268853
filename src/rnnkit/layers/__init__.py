"""Layers with Keras names, arguments, defaults and weight layouts."""

from .._keras_names import missing_name_hook as _missing_name_hook
from .base import Layer
from .core import Activation, Dense, Dropout, Embedding, Flatten, Input, InputLayer, Masking
from .recurrent import GRU, LSTM, RNNBase, SimpleRNN
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
        if isinstance(obj, type) and issubclass(obj, Layer) and obj not in (Layer, RNNBase):
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
    "Layer", "RNNBase", "Input", "InputLayer", "Dense", "Embedding", "Dropout", "Activation",
    "Flatten", "Masking", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
    "register_layer", "deserialize",
]


__getattr__ = _missing_name_hook(__name__, __all__)
