"""Layers with Keras names, arguments, defaults and weight layouts.

The recurrent cells (:mod:`rnnkit.cells`) are re-exported here as in Keras
(``rnnkit.layers.LSTMCell``), to be run by :class:`RNN`.
"""

from .._keras_names import missing_name_hook as _missing_name_hook
from ..cells import Cell, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from ._symbolic import SymbolicTensor
from .attention import AdditiveAttention, Attention, MultiHeadAttention
from .base import Layer, deserialize, get_layer_class, register_layer
from .conv import Conv1D
from .core import Activation, Dense, Dropout, Embedding, Flatten, Input, InputLayer, Masking
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .pooling import AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from .recurrent import GRU, LSTM, SimpleRNN
from .reshaping import Cropping1D, Permute, RepeatVector, Reshape, UpSampling1D, ZeroPadding1D
from .rnn import RNN
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "RNN", "Cell", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "Input", "InputLayer", "Dense", "Embedding", "Dropout", "Activation",
    "Flatten", "Masking", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
    "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
    "UpSampling1D", "ZeroPadding1D", "Cropping1D", "BatchNormalization", "LayerNormalization",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
    "Reshape", "Permute", "RepeatVector", "Attention", "AdditiveAttention", "MultiHeadAttention",
    "SymbolicTensor",
    "register_layer", "get_layer_class", "deserialize",
]


__getattr__ = _missing_name_hook(__name__, __all__)
