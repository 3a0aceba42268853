"""Streaming metrics (accumulate over batches, Keras names).

``update(y_true, y_pred, sample_weight=None, mask=None)`` adds a batch; ``result()`` is the
weighted mean so far; ``reset()`` starts over. Masked positions (per-time-step outputs) and
zero sample weights are skipped.
"""

from __future__ import annotations

import numpy as np

from ._keras_names import missing_name_hook as _missing_name_hook


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


class TopKCategoricalAccuracy(Metric):
    """1 when the true class (argmax of a one-hot ``y_true``) is among the ``k`` largest
    predictions (Keras ``top_k_categorical_accuracy``, default ``k=5``).

    Args:
        k: how many of the largest predictions count as a hit.
        name: key in the logs.

    Shapes: y_true one-hot (..., C), y_pred (..., C); one value per row.
    """

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        self.k = int(k)
        super().__init__(name)

    def _labels(self, y_true, y_pred):
        return y_true.argmax(-1)

    def _values(self, y_true, y_pred):
        ids = self._labels(y_true, y_pred).astype(np.int64)
        target = np.take_along_axis(y_pred, ids[..., None], axis=-1)
        # as in_top_k: a hit when fewer than k predictions are strictly larger
        return ((y_pred > target).sum(axis=-1) < self.k).astype(float)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """:class:`TopKCategoricalAccuracy` with integer class ids as ``y_true`` (..., ) ."""

    name = "sparse_top_k_categorical_accuracy"

    def _labels(self, y_true, y_pred):
        return _labels_like(y_true, y_pred)


def _weights_like(v, sample_weight, mask):
    """Per-element weights of shape ``v.shape`` from per-sample (or per-step) weights."""
    w = np.ones(v.shape)
    for extra, dtype in ((sample_weight, float), (mask, bool)):
        if extra is not None:
            e = np.asarray(extra, dtype)
            w = w * e.reshape(e.shape + (1,) * (v.ndim - e.ndim))
    return w


class _Confusion(Metric):
    """Weighted true/false positive/negative counts of thresholded predictions.

    Every element of ``y_pred`` (..., C) is one binary decision against the same element of
    ``y_true`` (read as positive when > 0.5); ``class_id`` keeps only column ``class_id``;
    ``top_k`` keeps only each row's ``k`` largest predictions as candidates (then, as in
    Keras, the default threshold is minus infinity: every top-k prediction is positive).
    """

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        t = (0.5 if top_k is None else 0.0) if thresholds is None else thresholds
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not 0 <= t <= 1:
            raise ValueError(f"thresholds must be one number in [0, 1] (or None for 0.5), got "
                             f"{thresholds!r}.")
        for arg, v in (("top_k", top_k), ("class_id", class_id)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v < (1 if arg == "top_k" else 0)):
                raise ValueError(f"{arg} must be a {'positive' if arg == 'top_k' else 'non-negative'} "
                                 f"integer or None, got {v!r}.")
        self.thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self._t = -np.inf if thresholds is None and top_k is not None else float(t)
        super().__init__(name)

    def reset(self):
        self.tp = self.fp = self.fn = 0.0

    def update(self, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = np.asarray(y_pred, np.float64)
        y_true = np.asarray(y_true, np.float64).reshape(y_pred.shape)
        w = _weights_like(y_pred[..., 0], sample_weight, mask)[..., None] * np.ones(y_pred.shape)
        pos = y_pred > self._t
        if self.top_k is not None:
            kth = -np.sort(-y_pred, axis=-1)[..., min(self.top_k, y_pred.shape[-1]) - 1:][..., :1]
            pos &= y_pred >= kth
        if self.class_id is not None:
            if self.class_id >= y_pred.shape[-1]:
                raise ValueError(f"class_id {self.class_id} is out of range for a model with "
                                 f"{y_pred.shape[-1]} outputs.")
            pos, y_true, w = (a[..., self.class_id] for a in (pos, y_true, w))
        true = y_true > 0.5
        self.tp += float((w * (pos & true)).sum())
        self.fp += float((w * (pos & ~true)).sum())
        self.fn += float((w * (~pos & true)).sum())


class Precision(_Confusion):
    """``TP / (TP + FP)`` of predictions above ``thresholds`` (Keras ``Precision``; 0 when
    nothing was predicted positive).

    Args:
        thresholds: decision threshold in [0, 1] (None: 0.5, or minus infinity with top_k).
        top_k: count only each row's ``k`` largest predictions as positive candidates.
        class_id: score only this output column.
        name: key in the logs.
    """

    name = "precision"

    def result(self):
        d = self.tp + self.fp
        return self.tp / d if d else 0.0


class Recall(_Confusion):
    """``TP / (TP + FN)`` of predictions above ``thresholds`` (Keras ``Recall``; 0 when there
    is no positive target). Arguments as :class:`Precision`."""

    name = "recall"

    def result(self):
        d = self.tp + self.fn
        return self.tp / d if d else 0.0


class F1Score(Metric):
    """Per-class F1 score ``2 P R / (P + R)`` (Keras ``F1Score``).

    Args:
        average: None (one score per class, an array of shape (C,)), 'micro' (counts
            pooled over the classes), 'macro' (mean of the per-class scores) or 'weighted'
            (mean weighted by each class's number of true instances).
        threshold: a prediction above it is positive; None marks each row's largest
            prediction as its one positive (for softmax outputs).
        name: key in the logs.

    Shapes: y_true one-hot or multi-hot (N, C), y_pred (N, C).
    """

    name = "f1_score"
    _EPS = 1e-7   # Keras backend.epsilon(), in the same places

    def __init__(self, average=None, threshold=None, name=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"average must be None, 'micro', 'macro' or 'weighted', got "
                             f"{average!r}.")
        if threshold is not None and not (isinstance(threshold, (int, float))
                                          and 0 < threshold <= 1):
            raise ValueError(f"threshold must be a number in (0, 1] or None, got {threshold!r}.")
        self.average, self.threshold = average, threshold
        super().__init__(name)

    def reset(self):
        self.tp = self.fp = self.fn = self.support = 0.0

    def update(self, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = np.asarray(y_pred, np.float64)
        y_true = np.asarray(y_true, np.float64).reshape(y_pred.shape)
        if self.threshold is None:
            pos = (y_pred >= y_pred.max(axis=-1, keepdims=True)) & (np.abs(y_pred) > 1e-9)
        else:
            pos = y_pred > self.threshold
        pos = pos.astype(np.float64)
        w = _weights_like(y_pred[..., 0], sample_weight, mask)[..., None]
        axes = None if self.average == "micro" else tuple(range(y_pred.ndim - 1))
        self.tp = self.tp + (w * pos * y_true).sum(axis=axes)
        self.fp = self.fp + (w * pos * (1 - y_true)).sum(axis=axes)
        self.fn = self.fn + (w * (1 - pos) * y_true).sum(axis=axes)
        self.support = self.support + (w * y_true).sum(axis=axes)

    def result(self):
        e = self._EPS
        p = self.tp / (self.tp + self.fp + e)
        r = self.tp / (self.tp + self.fn + e)
        f1 = 2.0 * p * r / (p + r + e)
        if self.average == "weighted":
            return float(np.sum(f1 * self.support / (np.sum(self.support) + e)))
        if self.average is not None:
            return float(np.mean(f1))
        return np.asarray(f1, dtype=np.float64)


class AUC(Metric):
    """Area under the ROC or precision-recall curve (Keras ``AUC``, single label).

    Predictions are compared with ``num_thresholds`` thresholds spread evenly over [0, 1]
    (the first just below 0, the last just above 1); true/false positive counts at each
    threshold give the curve, and a Riemann sum its area.

    Args:
        num_thresholds: number of thresholds (> 1; default 200).
        curve: 'ROC' or 'PR'.
        summation_method: 'interpolation' (trapezoids; for PR the Davis-Goadrich
            interpolation Keras uses), 'minoring' or 'majoring'.
        thresholds: explicit thresholds in [0, 1] instead of ``num_thresholds``.
        from_logits: apply a sigmoid to the predictions first.
        name: key in the logs.

    Shapes: y_true (..., C) in {0, 1}, y_pred (..., C); every element is one decision.
    """

    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 thresholds=None, from_logits=False, name=None):
        if str(curve).upper() not in ("ROC", "PR"):
            raise ValueError(f"curve must be 'ROC' or 'PR', got {curve!r}.")
        if str(summation_method).lower() not in ("interpolation", "minoring", "majoring"):
            raise ValueError("summation_method must be 'interpolation', 'minoring' or "
                             f"'majoring', got {summation_method!r}.")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) or \
                    num_thresholds <= 1:
                raise ValueError(f"num_thresholds must be an integer > 1, got "
                                 f"{num_thresholds!r}.")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds = len(inner) + 2
        self.curve, self.summation_method = str(curve).upper(), str(summation_method).lower()
        self.from_logits = bool(from_logits)
        self._thresholds = np.array([-1e-7] + inner + [1.0 + 1e-7])
        super().__init__(name)

    def reset(self):
        n = len(self._thresholds) if hasattr(self, "_thresholds") else 0
        self.tp, self.fp, self.tn, self.fn = (np.zeros(n) for _ in range(4))

    def update(self, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = np.asarray(y_pred, np.float64)
        if self.from_logits:
            y_pred = 1.0 / (1.0 + np.exp(-y_pred))
        y_true = np.asarray(y_true, np.float64).reshape(y_pred.shape) > 0.5
        w = (_weights_like(y_pred[..., 0], sample_weight, mask)[..., None]
             * np.ones(y_pred.shape)).reshape(-1)
        p, t = y_pred.reshape(-1), y_true.reshape(-1)
        above = p[None, :] > self._thresholds[:, None]              # (thresholds, elements)
        self.tp += (above * (w * t)).sum(axis=1)
        self.fp += (above * (w * ~t)).sum(axis=1)
        self.fn += (~above * (w * t)).sum(axis=1)
        self.tn += (~above * (w * ~t)).sum(axis=1)

    @staticmethod
    def _ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b != 0)

    def result(self):
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            pp = tp + fp
            dp = np.maximum(pp[:-1] - pp[1:], 0)
            slope = self._ratio(dtp, dp)
            intercept = tp[1:] - slope * pp[1:]
            both = (pp[:-1] > 0) & (pp[1:] > 0)
            ratio = np.where(both, self._ratio(pp[:-1], np.maximum(pp[1:], 0)), 1.0)
            inc = self._ratio(slope * (dtp + intercept * np.log(np.where(ratio > 0, ratio, 1))),
                              np.maximum(tp[1:] + fn[1:], 0))
            return float(inc.sum())
        recall = self._ratio(tp, tp + fn)
        if self.curve == "ROC":
            x, y = self._ratio(fp, fp + tn), recall
        else:
            x, y = recall, self._ratio(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(((x[:-1] - x[1:]) * heights).sum())


def format_value(value):
    """A metric result for a log line: ``0.1234``, or ``[0.1, 0.2]`` for per-class arrays."""
    if np.ndim(value):
        return "[" + ", ".join(f"{float(v):.4f}" for v in np.ravel(value)) + "]"
    return f"{float(value):.4f}"


_REGISTRY = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError, "rmse": RootMeanSquaredError,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "auc": AUC, "precision": Precision, "recall": Recall, "f1_score": F1Score,
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


__getattr__ = _missing_name_hook(__name__, [n for n, v in dict(globals()).items()
                                             if not n.startswith("_")
                                             and getattr(v, "__module__", None) == __name__])
