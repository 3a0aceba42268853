"""Streaming metrics (accumulate over batches, Keras names).

``update(y_true, y_pred, sample_weight=None, mask=None)`` adds a batch; ``result()`` is the
weighted mean so far; ``reset()`` starts over. Masked positions (per-time-step outputs) and
zero sample weights are skipped.
"""

from __future__ import annotations

import numpy as np


class Metric:
    name = "metric"

    def __init__(self, name=None):
        if name:
            self.name = name
        self.reset()

    def reset(self):
        self._total = 0.0
        self._count = 0.0

    def _values(self, y_true, y_pred):
        raise NotImplementedError  # abstract

    def update(self, y_true, y_pred, sample_weight=None, mask=None):
        v = self._values(np.asarray(y_true), np.asarray(y_pred))
        w = np.ones(v.shape)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, float)
            w = w * sw.reshape(sw.shape + (1,) * (v.ndim - sw.ndim))
        if mask is not None:
            m = np.asarray(mask, bool)
            w = w * m.reshape(m.shape + (1,) * (v.ndim - m.ndim))
        self._total += float((v * w).sum())
        self._count += float(w.sum())

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def get_state(self) -> np.ndarray:
        """The accumulators, a float64 array that adds up across batches and processes.

        Data-parallel training sums it across ranks (:mod:`rnnkit.distributed`). A metric
        with other accumulators overrides this and :meth:`set_state`.
        """
        return np.array([self._total, self._count], dtype=np.float64)

    def set_state(self, state):
        """Restore accumulators returned by :meth:`get_state` (shape (2,))."""
        self._total, self._count = float(state[0]), float(state[1])


class Mean(Metric):
    """Weighted mean of given values (used for the loss)."""

    name = "mean"

    def update_value(self, value, weight=1.0):
        self._total += float(value) * weight
        self._count += weight


def _labels_like(y_true, y_pred):
    y = np.asarray(y_true)
    if y.ndim == y_pred.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    return y


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def _values(self, y_true, y_pred):
        return (_labels_like(y_true, y_pred).astype(np.int64) == y_pred.argmax(-1)).astype(float)


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def _values(self, y_true, y_pred):
        return (y_true.argmax(-1) == y_pred.argmax(-1)).astype(float)


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def _values(self, y_true, y_pred):
        y = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return ((y_pred > self.threshold) == (y > 0.5)).astype(float).mean(axis=-1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def _values(self, y_true, y_pred):
        return np.abs(y_pred - y_true.reshape(y_pred.shape)).mean(axis=-1)


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def _values(self, y_true, y_pred):
        return ((y_pred - y_true.reshape(y_pred.shape)) ** 2).mean(axis=-1)


class RootMeanSquaredError(MeanSquaredError):
    name = "root_mean_squared_error"

    def result(self):
        return float(np.sqrt(super().result()))


_REGISTRY = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError, "rmse": RootMeanSquaredError,
}


def get(identifier, loss=None) -> Metric:
    """Return a :class:`Metric`. 'accuracy'/'acc' picks the variant from the loss, as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"metric must be a name or an rnnkit Metric, got {type(identifier).__name__}.")
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        lname = getattr(loss, "name", "")
        if lname == "sparse_categorical_crossentropy":
            cls = SparseCategoricalAccuracy
        elif lname == "binary_crossentropy":
            cls = BinaryAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    if key not in _REGISTRY:
        raise ValueError(
            f"Unknown metric {identifier!r}. Expected 'accuracy' or one of {sorted(_REGISTRY)}."
        )
    return _REGISTRY[key](name=identifier)
