"""Bad input gets a clear error naming the argument, what was expected and what was received."""

import numpy as np
import pytest

import rnnkit
from rnnkit import layers, optimizers


@pytest.fixture
def model():
    m = rnnkit.Sequential([layers.LSTM(4), layers.Dense(3, activation="softmax")])
    m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    m(np.zeros((2, 5, 6), "float32"))
    return m


X = np.zeros((8, 5, 6), "float32")
Y = rnnkit.utils.to_categorical(np.arange(8) % 3, 3)


def test_wrong_rank(model):
    with pytest.raises(ValueError, match=r"expects input of rank 3 \(batch, timesteps, features\), got shape \(8, 6\)"):
        model.fit(X[:, 0], Y, verbose=0)


def test_feature_count_differs_from_built_model(model):
    with pytest.raises(ValueError, match=r"was built for 6 features, got input with 4 features"):
        model.predict(np.zeros((8, 5, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_in_x_and_y(model, bad):
    x = X.copy()
    x[3, 2, 1] = bad
    with pytest.raises(ValueError, match=r"x contains NaN or Inf \(first at index \(3, 2, 1\)\)"):
        model.fit(x, Y, verbose=0)
    y = Y.copy()
    y[5, 0] = bad
    with pytest.raises(ValueError, match=r"y contains NaN or Inf \(first at index \(5, 0\)\)"):
        model.fit(X, y, verbose=0)


def test_sparse_labels_out_of_range():
    m = rnnkit.Sequential([layers.GRU(4), layers.Dense(3, activation="softmax")])
    m.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\) for a model with 3 outputs, got labels from 0 to 7"):
        m.fit(X, np.arange(8), verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*from -1"):
        m.fit(X, -np.ones(8), verbose=0)


def test_x_y_length_mismatch(model):
    with pytest.raises(ValueError, match=r"same number of samples, got x with 8 and y with 7"):
        model.fit(X, Y[:7], verbose=0)


def test_targets_shape_mismatch(model):
    with pytest.raises(ValueError, match=r"y has shape \(8, 4\) but the model outputs shape \(8, 3\)"):
        model.fit(X, np.zeros((8, 4)), verbose=0)


def test_unknown_names_list_valid_ones():
    m = rnnkit.Sequential([layers.LSTM(2)])
    with pytest.raises(ValueError, match=r"Unknown loss 'msee'. Expected one of \[.*'mse'.*\]"):
        m.compile(loss="msee", optimizer="adam")
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamm'. Expected one of \[.*'adam'.*\]"):
        m.compile(loss="mse", optimizer="adamm")
    with pytest.raises(ValueError, match=r"Unknown activation 'tanhh'. Expected one of \[.*'tanh'.*\]"):
        layers.SimpleRNN(3, activation="tanhh")
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'"):
        m.compile(loss="mse", optimizer="adam", metrics=["acuracy"])
    with pytest.raises(ValueError, match=r"Unknown initializer 'glorot'"):
        layers.LSTM(3, kernel_initializer="glorot")


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True])
def test_units_must_be_positive_int(units):
    for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN, layers.Dense):
        with pytest.raises(ValueError, match=rf"units must be a positive integer, got {units!r}"):
            cls(units)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_outside_unit_interval(rate):
    with pytest.raises(ValueError, match=rf"dropout must be a float in \[0, 1\), got {rate}"):
        layers.LSTM(3, dropout=rate)
    with pytest.raises(ValueError, match=rf"recurrent_dropout must be a float in \[0, 1\), got {rate}"):
        layers.GRU(3, recurrent_dropout=rate)
    with pytest.raises(ValueError, match=rf"rate must be a float in \[0, 1\), got {rate}"):
        layers.Dropout(rate)


def test_set_weights_wrong_shapes(model):
    w = model.layers[0].get_weights()
    with pytest.raises(ValueError, match=r"weight lstm(_\d+)?/kernel expects shape \(6, 16\), got \(5, 16\)"):
        model.layers[0].set_weights([np.zeros((5, 16))] + w[1:])
    with pytest.raises(ValueError, match=r"expects 3 weight arrays \['kernel', 'recurrent_kernel', 'bias'\], got 2"):
        model.layers[0].set_weights(w[:2])
    with pytest.raises(ValueError, match=r"has 5 weight arrays, got 4"):
        model.set_weights(model.get_weights()[:4])


def test_misc_argument_errors(model):
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got 0"):
        model.fit(X, Y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\), got 1.5"):
        model.fit(X, Y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match=r"Adam: learning_rate must be a number in \(0.0, inf\), got -1"):
        optimizers.Adam(learning_rate=-1)
    with pytest.raises(ValueError, match=r"at most one of clipnorm and global_clipnorm"):
        optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(RuntimeError, match=r"must compile the model before training"):
        rnnkit.Sequential([layers.Dense(1)]).fit(X, Y)
    with pytest.raises(TypeError, match=r"must hold numbers \(bool, int or float\), got dtype <U1"):
        model.fit(np.array([["a"] * 6] * 5 * 8).reshape(8, 5, 6), Y, verbose=0)
    with pytest.raises(ValueError, match=r"zero-length sequences"):
        model.predict(np.zeros((2, 0, 6)))
    with pytest.raises(ValueError, match=r"x is empty"):
        model.fit(np.zeros((0, 5, 6)), np.zeros((0, 3)), verbose=0)
