"""Layers with Keras names, arguments, defaults and weight layouts.

The recurrent cells (:mod:`rnnkit.cells`) are re-exported here as in Keras
(``rnnkit.layers.LSTMCell``), to be run by :class:`RNN`.
"""

from .._keras_names import missing_name_hook as _missing_name_hook
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
from .base import Layer, deserialize, get_layer_class, register_layer
from .core import Activation, Dense, Dropout, Embedding, Flatten, Input, InputLayer, Masking
from .recurrent import GRU, LSTM, SimpleRNN
from .recurrent_more import LRU, IndRNN, LayerNormGRU, LayerNormLSTM, MinGRU, MinLSTM, sLSTM
from .rnn import RNN
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "RNN", "Cell", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "Input", "InputLayer", "Dense", "Embedding", "Dropout", "Activation",
    "Flatten", "Masking", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
    "register_layer", "get_layer_class", "deserialize", "MinGRU", "MinLSTM", "LRU",
    "IndRNN", "sLSTM", "LayerNormLSTM", "LayerNormGRU", "MinGRUCell", "MinLSTMCell",
    "LRUCell", "IndRNNCell", "sLSTMCell", "LayerNormLSTMCell", "LayerNormGRUCell",
]


__getattr__ = _missing_name_hook(__name__, __all__)
