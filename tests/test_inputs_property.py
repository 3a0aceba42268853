"""Property-based input tests over the public API (layers, models, losses, fit, predict).

For any shape / dtype / value thrown at it, rnnkit must either return a correct result (the
right shape, finite where it should be) or raise ValueError / TypeError *from rnnkit's own
checks* with a message that names what was wrong. Never a wrong-shaped result, and never a
bare NumPy/Python error from deep inside (IndexError, AxisError, broadcasting errors...).
"""

import os
import traceback
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit import layers, losses

PKG = os.path.dirname(rnnkit.__file__)
SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

DTYPES = ["bool", "int8", "int64", "uint8", "float16", "float32", "float64", "object",
          "complex64", "U3"]


@st.composite
def arrays(draw, min_rank=0, max_rank=4, max_dim=4, dtypes=DTYPES, huge=True):
    rank = draw(st.integers(min_rank, max_rank))
    shape = tuple(draw(st.integers(0, max_dim)) for _ in range(rank))
    dtype = draw(st.sampled_from(dtypes))
    scale = draw(st.sampled_from([1.0, 1e4, 1e30] if huge else [1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    base = np.asarray(rng.standard_normal(shape) * scale)
    if dtype == "object":
        return base.astype(object)
    if dtype == "U3":
        return base.astype("U3")
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "bool":
            return base > 0
        if dtype.startswith(("int", "uint")):
            return np.clip(base, -100, 100).astype(dtype)
        return base.astype(dtype)


def _raised_by_rnnkit(exc):
    """The frame that raised is rnnkit code (an explicit check), not NumPy internals."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(PKG)


def check_error(exc, *words):
    """A clear error: ValueError/TypeError raised by rnnkit naming one of ``words``."""
    assert isinstance(exc, (ValueError, TypeError)), f"{type(exc).__name__}: {exc}"
    assert _raised_by_rnnkit(exc), ("error raised inside a dependency, not by an rnnkit "
                                    f"check:\n{''.join(traceback.format_exception(exc))}")
    msg = str(exc).lower()
    words = words + ("numeric",)
    assert any(w.lower() in msg for w in words), f"message names none of {words}: {exc}"


def outcome(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return fn(), None
        except Exception as e:  # judged by the caller
            return None, e


# ------------------------------------------------------------------------- layers
RNNS = [layers.SimpleRNN, layers.LSTM, layers.GRU]


@SETTINGS
@given(x=arrays(), cls=st.sampled_from(RNNS), seq=st.booleans())
def test_recurrent_layer_inputs(x, cls, seq):
    layer = cls(3, return_sequences=seq)
    y, err = outcome(lambda: layer(x))
    ok = x.ndim == 3 and x.shape[1] > 0 and x.dtype.kind in "biuf"  # 0 features: bias only
    if err is not None:
        check_error(err, layer.name, "input", "shape", "rank", "dtype", "numbers", "feature")
        return
    assert ok, f"accepted input of shape {x.shape} dtype {x.dtype}"
    B, T = x.shape[:2]
    assert y.shape == ((B, T, 3) if seq else (B, 3))
    assert np.all(np.isfinite(y)), "tanh-bounded outputs must be finite, even for huge inputs"


@SETTINGS
@given(x=arrays(), units=st.integers(1, 3))
def test_dense_layer_inputs(x, units):
    layer = layers.Dense(units, activation="tanh")
    y, err = outcome(lambda: layer(x))
    if err is not None:
        check_error(err, layer.name, "input", "shape", "rank", "dtype", "numbers", "dimension")
        return
    assert x.ndim >= 2 and x.dtype.kind in "biuf", (x.shape, x.dtype)
    assert y.shape == x.shape[:-1] + (units,)
    assert np.all(np.isfinite(y))


@SETTINGS
@given(x=arrays(dtypes=["int64", "int8", "uint8", "bool", "float32", "float64", "object"],
                huge=False))
def test_embedding_inputs(x):
    x = np.abs(x) if x.dtype.kind == "i" else x
    layer = layers.Embedding(10, 2)
    y, err = outcome(lambda: layer(x))
    if err is not None:
        check_error(err, layer.name, "ids", "integer", "input", "shape")
        return
    assert y.shape == x.shape + (2,)


@pytest.mark.parametrize("cls", RNNS + [layers.Dense])
@pytest.mark.parametrize("units", [0, -3, 2.5, "4", None, True, np.nan])
def test_bad_units_name_the_argument(cls, units):
    with pytest.raises((ValueError, TypeError), match="units must be a positive integer"):
        cls(units)


@pytest.mark.parametrize("arg,value", [("dropout", 1.0), ("dropout", -0.1),
                                       ("recurrent_dropout", 2), ("dropout", "0.5")])
def test_bad_rates_name_the_argument(arg, value):
    with pytest.raises(ValueError, match=f"{arg} must be a float in \\[0, 1\\)"):
        layers.LSTM(2, **{arg: value})


# ------------------------------------------------------------------------- losses
LOSSES = ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
          "sparse_categorical_crossentropy"]


@SETTINGS
@given(name=st.sampled_from(LOSSES), y_true=arrays(max_rank=3, huge=False),
       y_pred=arrays(min_rank=1, max_rank=3, dtypes=["float32", "float64", "int64", "object"],
                     huge=False))
def test_loss_inputs(name, y_true, y_pred):
    assume(y_pred.size > 0)  # empty predictions: see test_loss_empty_prediction
    loss = losses.get(name)
    if name.endswith("crossentropy") and y_pred.dtype != object:
        y_pred = 1 / (1 + np.exp(-y_pred.astype("float64")))  # the contract: probabilities
    v, err = outcome(lambda: loss(y_true, y_pred))
    if err is not None:
        check_error(err, "y_true", "y_pred", "shape", "dtype", "label", "class", "target",
                    "numbers", "empty")
        return
    assert isinstance(v, float) and np.isfinite(v), v


# ------------------------------------------------------------------------- models
def _model(out=2):
    m = rnnkit.Sequential([layers.GRU(3), layers.Dense(out)])
    m.compile(optimizer="sgd", loss="mse")
    return m


@SETTINGS
@given(x=arrays(min_rank=1, max_rank=4))
def test_predict_inputs(x):
    m = _model()
    m(np.zeros((1, 2, 2), "float32"))  # built for 2 features
    y, err = outcome(lambda: m.predict(x, verbose=0))
    if err is not None:
        check_error(err, "input", "x", "shape", "rank", "dtype", "numbers", "features",
                    "samples", "empty", "data")
        return
    assert x.ndim == 3 and x.shape[2] == 2 and x.shape[1] > 0, (x.shape, x.dtype)
    assert y.shape == (x.shape[0], 2) and np.all(np.isfinite(y))


@SETTINGS
@given(x=arrays(min_rank=1, max_rank=4, dtypes=["float32", "float64", "int64", "bool",
                                                 "float16", "object"]),
       y=arrays(min_rank=0, max_rank=3, dtypes=["float32", "float64", "int64", "object"],
                huge=False),
       batch_size=st.sampled_from([1, 3, 32]))
def test_fit_inputs(x, y, batch_size):
    m = _model()
    h, err = outcome(lambda: m.fit(x, y, batch_size=batch_size, epochs=1, verbose=0))
    if err is not None:
        check_error(err, "input", "x", "y", "shape", "rank", "dtype", "numbers", "samples",
                    "empty", "target", "features", "nan")
        return
    assert x.ndim == 3 and len(x) == len(y) > 0, (x.shape, y.shape)
    assert len(h.history["loss"]) == 1
    assert m.predict(x[:1].astype("float32"), verbose=0).shape == (1, 2)


@pytest.mark.parametrize("kw,word", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": "8"}, "batch_size"), ({"epochs": -1}, "epochs"), ({"epochs": 1.5}, "epochs"),
    ({"validation_split": 1.0}, "validation_split"), ({"validation_split": -0.1},
                                                      "validation_split"),
    ({"validation_data": (np.zeros((2, 4, 2)),)}, "validation_data"),
    ({"sample_weight": np.ones(3)}, "sample_weight"), ({"callbacks": [print]}, "callbacks"),
])
def test_bad_fit_arguments_name_the_argument(kw, word):
    m = _model()
    x, y = np.zeros((8, 4, 2), "float32"), np.zeros((8, 2), "float32")
    with pytest.raises((ValueError, TypeError), match=word) as ei:
        m.fit(x, y, verbose=0, **kw)
    assert _raised_by_rnnkit(ei.value)


def test_huge_but_finite_values_train_to_a_finite_or_reported_result():
    m = _model()
    x = np.full((4, 3, 2), 1e30, "float32")
    y = np.zeros((4, 2), "float32")
    m.fit(x, y, epochs=2, verbose=0)
    assert np.all(np.isfinite(m.predict(x, verbose=0)))


@pytest.mark.parametrize("x,word", [
    (np.zeros((0, 3, 2), "float32"), "empty"),
    (np.zeros((2, 0, 2), "float32"), "zero-length"),
    ([np.zeros((3, 2)), np.zeros((0, 2))], "length 0"),
    ([], "empty"),
    (np.array([[1.0, "a"]], dtype=object), "numbers|numeric"),
])
def test_empty_batches_and_zero_length_sequences(x, word):
    m = _model()
    m(np.zeros((1, 2, 2), "float32"))
    for call in (lambda: m.predict(x, verbose=0),
                 lambda: m.fit(x, np.zeros((len(x), 2)), verbose=0)):
        with pytest.raises((ValueError, TypeError), match=word) as ei:
            call()
        assert _raised_by_rnnkit(ei.value)


# ---- Scalars (rank 0) and empty predictions are the gaps the property tests above found, in code owned by others
# ---- (losses.py, models/model.py); fixes proposed as diffs in the issue-5 report.
@pytest.mark.parametrize("name", LOSSES)
def test_loss_scalar_prediction(name):
    with pytest.raises(ValueError, match="y_pred") as ei:
        losses.get(name)(np.ones(3), np.float32(0.5))
    assert _raised_by_rnnkit(ei.value)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_empty_prediction(name):
    with pytest.raises(ValueError, match="empty"):
        losses.get(name)(np.zeros((0, 2)), np.zeros((0, 2), "float32"))


def test_predict_scalar_input():
    m = _model()
    m(np.zeros((1, 2, 2), "float32"))
    with pytest.raises(ValueError, match="x must .*batch axis"):
        m.predict(np.float32(1.0), verbose=0)


def test_scalar_sample_weight():
    m = _model()
    with pytest.raises(ValueError, match="sample_weight must have one entry per sample"):
        m.fit(np.zeros((4, 3, 2)), np.zeros((4, 2)), sample_weight=np.float32(2.0), verbose=0)


def test_class_weight_keys_must_be_class_ids():
    m = _model()
    with pytest.raises(TypeError, match="class_weight keys must be integer class ids"):
        m.fit(np.zeros((4, 3, 2)), np.eye(2)[[0, 1, 0, 1]], class_weight={"a": 2.0}, verbose=0)
