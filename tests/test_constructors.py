"""Every layer and cell class refuses bad constructor arguments with a message naming the
argument, what was expected and what was received (one test per class)."""

import numpy as np
import pytest

from rnnkit import cells, layers

L = layers


def _check(cases):
    for make, exc, match in cases:
        with pytest.raises(exc, match=match):
            make()


COMMON = [  # every layer: the Layer arguments and unknown keywords
    (lambda cls, req: cls(*req, bogus=1), TypeError,
     r"unexpected keyword argument.*bogus"),
    (lambda cls, req: cls(*req, name=""), ValueError, "name must be None or a non-empty string"),
    (lambda cls, req: cls(*req, trainable="yes"), TypeError, "trainable must be True or False"),
    (lambda cls, req: cls(*req, dtype="int32"), ValueError, "dtype must be a float dtype"),
    (lambda cls, req: cls(*req, input_shape=(0, 3)), ValueError,
     r"input_shape must be a tuple of positive ints"),
    (lambda cls, req: cls(*req, input_dim=-2), ValueError, "input_dim must be a positive integer"),
]


def _common(cls, *req, skip=()):
    _check([(lambda m=m: m(cls, req), e, r) for m, e, r in COMMON
            if not any(k in r for k in skip)])


def test_dense_arguments():
    _common(L.Dense, 3)
    _check([(lambda: L.Dense(0), ValueError, "units must be a positive integer, got 0"),
            (lambda: L.Dense(2.5), ValueError, "units must be a positive integer, got 2.5"),
            (lambda: L.Dense(2, activation="nope"), ValueError, "activation: Unknown activation"),
            (lambda: L.Dense(2, use_bias="no"), TypeError, "use_bias must be True or False"),
            (lambda: L.Dense(2, kernel_initializer="zero_ish"), ValueError,
             "kernel_initializer: Unknown initializer"),
            (lambda: L.Dense(2, bias_regularizer=3), TypeError, "bias_regularizer: regularizer")])


def test_embedding_arguments():
    _common(L.Embedding, 10, 3, skip=("input_dim",))   # its own input_dim is checked below
    _check([(lambda: L.Embedding(0, 3), ValueError, "input_dim must be a positive integer"),
            (lambda: L.Embedding(10, -1), ValueError, "output_dim must be a positive integer"),
            (lambda: L.Embedding(10, 3, mask_zero=1), TypeError, "mask_zero must be True or"),
            (lambda: L.Embedding(10, 3, embeddings_initializer="x"), ValueError,
             "embeddings_initializer")])


def test_dropout_arguments():
    _common(L.Dropout, 0.5)
    _check([(lambda: L.Dropout(1.0), ValueError, r"rate must be a float in \[0, 1\), got 1.0"),
            (lambda: L.Dropout("half"), ValueError, "rate must be a float"),
            (lambda: L.Dropout(0.5, seed=-1), ValueError, "seed must be None or a non-negative"),
            (lambda: L.Dropout(0.5, noise_shape=(0, 1)), ValueError,
             "noise_shape must be a tuple of positive ints")])


def test_activation_arguments():
    _common(L.Activation, "relu")
    _check([(lambda: L.Activation("relux"), ValueError, "activation: Unknown activation"),
            (lambda: L.Activation(5), TypeError, "activation: activation must be")])


def test_flatten_arguments():
    _common(L.Flatten)


def test_masking_arguments():
    _common(L.Masking)
    _check([(lambda: L.Masking("zero"), TypeError, "mask_value must be a number, got 'zero'")])


def test_input_arguments():
    _check([(lambda: L.Input((0, 3)), ValueError, "Input shape must be a tuple of positive"),
            (lambda: L.Input(("a", 3)), ValueError, "Input shape must be a tuple of positive"),
            (lambda: L.InputLayer((None, 3), bogus=2), TypeError, "bogus"),
            (lambda: L.Input((3,), dtype="int8"), ValueError, "dtype must be a float dtype")])


@pytest.mark.parametrize("cls", [L.SimpleRNN, L.LSTM, L.GRU])
def test_recurrent_preset_arguments(cls):
    _common(cls, 3)
    _check([(lambda: cls(0), ValueError, "units must be a positive integer, got 0"),
            (lambda: cls(3, dropout=1.5), ValueError, r"dropout must be a float in \[0, 1\)"),
            (lambda: cls(3, recurrent_dropout=-0.1), ValueError, "recurrent_dropout must be"),
            (lambda: cls(3, return_sequences="yes"), TypeError, "return_sequences must be True"),
            (lambda: cls(3, stateful=1), TypeError, "stateful must be True or False"),
            (lambda: cls(3, go_backwards=None), TypeError, "go_backwards must be True or False"),
            (lambda: cls(3, seed=1.5), ValueError, "seed must be None or a non-negative"),
            (lambda: cls(3, activation="tanhh"), ValueError, "activation: Unknown activation"),
            (lambda: cls(3, unroll=True), TypeError, "unexpected keyword argument.*unroll")])
    if cls is L.SimpleRNN:   # no recurrent activation in Keras's SimpleRNN: not dropped silently
        _check([(lambda: cls(3, recurrent_activation="sigmoid"), TypeError,
                 "unexpected keyword argument.*recurrent_activation")])
    if cls is L.GRU:
        _check([(lambda: cls(3, reset_after="no"), TypeError,
                 "reset_after must be True or False, got 'no'")])
    if cls is L.LSTM:
        _check([(lambda: cls(3, unit_forget_bias="yes"), TypeError,
                 "unit_forget_bias must be True or False")])


def test_rnn_arguments():
    _common(L.RNN, L.LSTMCell(2))
    _check([(lambda: L.RNN(L.Dense(2)), TypeError, "RNN expects a cell"),
            (lambda: L.RNN([]), TypeError, "non-empty list of Cell"),
            (lambda: L.RNN(L.GRUCell(2), return_state="x"), TypeError, "return_state must be")])


@pytest.mark.parametrize("cls", [cells.SimpleRNNCell, cells.LSTMCell, cells.GRUCell])
def test_builtin_cell_arguments(cls):
    _check([(lambda: cls(0), ValueError, "units must be a positive integer"),
            (lambda: cls(2, bogus=1), TypeError, rf"{cls.__name__}\(\) got unexpected keyword"),
            (lambda: cls(2, use_bias=None), TypeError, "use_bias must be True or False"),
            (lambda: cls(2, dropout=2), ValueError, "dropout must be a float"),
            (lambda: cls(2, recurrent_initializer="nope"), ValueError,
             "recurrent_initializer: Unknown initializer"),
            (lambda: cls(2, kernel_regularizer="l3"), ValueError,
             "kernel_regularizer: Unknown regularizer")])


def test_cell_base_and_stack_arguments():
    _check([(lambda: cells.Cell(recurrent_dropout=0.3), ValueError,
             "Cell does not support recurrent_dropout"),
            (lambda: cells.Cell(seed="s"), ValueError, "seed must be None"),
            (lambda: cells.StackedRNNCells([]), TypeError, "non-empty list of Cell"),
            (lambda: cells.StackedRNNCells([cells.LSTMCell(2, dropout=0.1)]), ValueError,
             r"dropout inside a stack of cells is not supported")])


def test_bidirectional_arguments():
    _common(L.Bidirectional, L.LSTM(2))
    _check([(lambda: L.Bidirectional(L.Dense(2)), TypeError, "wraps a recurrent layer"),
            (lambda: L.Bidirectional(L.LSTM(2), merge_mode="max"), ValueError,
             "merge_mode must be one of"),
            (lambda: L.Bidirectional(L.LSTM(2), weights=np.zeros(3)), TypeError,
             "weights must be None or a list"),
            (lambda: L.Bidirectional(L.LSTM(2), backward_layer=L.LSTM(2)), ValueError,
             "backward_layer must read the sequence in the opposite direction")])


def test_time_distributed_arguments():
    _common(L.TimeDistributed, L.Dense(2))
    _check([(lambda: L.TimeDistributed("dense"), TypeError, "wraps an rnnkit layer"),
            (lambda: L.TimeDistributed(L.Dense(2, input_shape=(3,))), ValueError,
             "give input_shape=")])
