"""rnnkit: recurrent neural networks by hand in NumPy, with a Keras-shaped API.

>>> import rnnkit
>>> model = rnnkit.Sequential([rnnkit.layers.LSTM(32), rnnkit.layers.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")

The submodules (``rnnkit.layers``, ``rnnkit.interop``, ``rnnkit.diagnostics``, ...) and the
top-level names load on first use (PEP 562), so ``import rnnkit`` stays fast and
``import rnnkit; rnnkit.interop.to_torch(...)`` works without importing the submodule first.
"""

import importlib

from ._backend import floatx, set_floatx

__version__ = "0.1.0"

#: public submodules, imported on first attribute access
_SUBMODULES = ("activations", "callbacks", "cells", "data", "diagnostics", "initializers",
               "interop", "kernels", "layers", "losses", "metrics", "models", "optimizers",
               "regularizers", "saving", "tasks", "utils")
#: top-level names -> the submodule defining them
_NAMES = {"Sequential": "models", "Model": "models", "Input": "layers", "load_model": "saving",
          "RnnkitFileError": "saving"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_NAMES))


__all__ = [
    "Sequential", "Model", "Input", "layers", "cells", "losses", "metrics", "optimizers",
    "callbacks", "activations", "data", "initializers", "regularizers", "utils", "interop",
    "diagnostics", "tasks", "kernels", "models", "saving", "load_model", "RnnkitFileError",
    "floatx", "set_floatx", "__version__",
]
