"""rnnkit: recurrent neural networks by hand in NumPy, with a Keras-shaped API.

>>> import rnnkit
>>> model = rnnkit.Sequential([rnnkit.layers.LSTM(32), rnnkit.layers.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")
"""

from . import (
    activations,
    callbacks,
    data,
    initializers,
    layers,
    losses,
    metrics,
    optimizers,
    regularizers,
    utils,
)
from ._backend import floatx, set_floatx
from .callbacks import TrainingDivergedError
from .models import Model, Sequential
from .saving import RnnkitFileError, load_model

__version__ = "0.1.0"

__all__ = [
    "Sequential", "Model", "layers", "losses", "metrics", "optimizers", "callbacks",
    "activations", "data", "initializers", "regularizers", "utils", "load_model", "RnnkitFileError",
    "TrainingDivergedError",
    "floatx", "set_floatx", "__version__",
]
