"""Turn what users pass to fit/evaluate/predict into batches ``(x, y, sample_weight, mask)``.

* Arrays: validated once, sliced per batch (shuffled per epoch when asked).
* A list of sequences of different lengths: padded to the longest (post-padding) and masked,
  so masked steps carry state unchanged and do not count in the loss.
* A model with several inputs (or outputs) takes a list or dict with one array per input
  (output); each is sliced alike.
* Any other iterable (a generator, a ``Sequence``-like object): each item is one batch
  ``(x, y)`` or ``(x, y, sample_weight)``, so memory stays bounded by one batch.
"""

from __future__ import annotations

import numpy as np

from . import _backend
from .layers.base import check_finite


def _take(data, sl):
    """Rows ``sl`` of an array, or of every array in a list (several inputs/outputs)."""
    if data is None:
        return None
    if isinstance(data, list):
        return [a[sl] for a in data]
    return data[sl]


def _rows(data):
    return len(data[0]) if isinstance(data, list) else len(data)


def _check_finite(x, what):
    for i, a in enumerate(x if isinstance(x, list) else [x]):
        check_finite(a, what if not isinstance(x, list) else f"{what}[{i}]")


class ArrayAdapter:
    def __init__(self, x, y, sample_weight, mask, batch_size, shuffle):
        self.x, self.y, self.sw, self.mask = x, y, sample_weight, mask
        self.batch_size, self.shuffle = batch_size, shuffle

    @property
    def n(self):
        return _rows(self.x)

    @property
    def num_batches(self):
        return -(-self.n // self.batch_size)

    def split(self, fraction):
        """(train, validation): the last ``fraction`` of samples is validation, as in Keras."""
        n_val = int(round(self.n * fraction))
        if n_val == 0 or n_val >= self.n:
            raise ValueError(
                f"validation_split={fraction} leaves {self.n - n_val} training and {n_val} "
                f"validation samples out of {self.n}; both need at least one."
            )
        cut = self.n - n_val

        def part(sl):
            return ArrayAdapter(_take(self.x, sl), _take(self.y, sl), _take(self.sw, sl),
                                _take(self.mask, sl), self.batch_size, self.shuffle)
        val = part(slice(cut, None))
        val.shuffle = False
        return part(slice(0, cut)), val

    def __iter__(self):
        idx = _backend.rng().permutation(self.n) if self.shuffle else None
        for start in range(0, self.n, self.batch_size):
            sl = slice(start, start + self.batch_size) if idx is None else idx[start:start + self.batch_size]
            yield _take(self.x, sl), _take(self.y, sl), _take(self.sw, sl), _take(self.mask, sl)


class IterableAdapter:
    def __init__(self, model, data, steps):
        self.model, self.data, self.steps = model, data, steps
        self._iterator = None

    @property
    def num_batches(self):
        if self.steps is not None:
            return self.steps
        return len(self.data) if hasattr(self.data, "__len__") else None

    def split(self, fraction):
        raise ValueError(
            "validation_split is not supported when x is an iterable of batches; pass "
            "validation_data=(x_val, y_val) instead."
        )

    def _unpack(self, item):
        if isinstance(item, np.ndarray):  # a bare x batch, as Keras accepts for predict
            item = (item,)
        if not isinstance(item, (tuple, list)) or len(item) not in (1, 2, 3):
            raise ValueError(
                "Each batch from an iterable must be a tuple (x, y) or (x, y, sample_weight) "
                f"(or (x,) for predict), got {type(item).__name__}."
            )
        x = item[0]
        y = item[1] if len(item) > 1 else None
        sw = item[2] if len(item) > 2 else None
        x, mask = self.model._prepare_x(x)
        _check_finite(x, "x of a batch from the iterable")
        y = self.model._prepare_y(y)
        if y is not None:
            self.model._validate_xy(x, y, sw)
        return x, y, sw, mask

    def __iter__(self):
        if self.steps is None:
            for item in self.data:
                yield self._unpack(item)
            return
        # steps_per_epoch with a (possibly infinite) generator: keep one iterator across epochs
        if self._iterator is None:
            self._iterator = iter(self.data)
        for _ in range(self.steps):
            try:
                item = next(self._iterator)
            except StopIteration:
                self._iterator = iter(self.data)
                try:
                    item = next(self._iterator)
                except StopIteration:
                    return
            yield self._unpack(item)


def combine_weights(sample_weight, class_weights):
    """Multiply per-sample (N,) or per-step (N, T) weights; the lower-rank one broadcasts.

    Args:
        sample_weight: None, (N,) or (N, T).
        class_weights: (N,) or (N, T) weights from ``class_weight``.

    Returns:
        (N,) or (N, T) float64 weights.
    """
    cw = np.asarray(class_weights, dtype=np.float64)
    if sample_weight is None:
        return cw
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.shape[:1] != cw.shape[:1]:
        raise ValueError(f"sample_weight has {sw.shape[0]} rows but y has {cw.shape[0]} samples.")
    if sw.ndim < cw.ndim:
        sw = sw.reshape(sw.shape + (1,) * (cw.ndim - sw.ndim))
    elif cw.ndim < sw.ndim:
        cw = cw.reshape(cw.shape + (1,) * (sw.ndim - cw.ndim))
    return sw * cw


def is_array_like(x):
    """An array, or a list/tuple that is not ragged (becomes one array)."""
    return isinstance(x, np.ndarray) or (isinstance(x, (list, tuple)) and not is_ragged(x))


def is_ragged(x):
    """A list of per-sample arrays whose lengths differ (or that are themselves arrays)."""
    if not isinstance(x, (list, tuple)) or len(x) == 0:
        return False
    first = x[0]
    if not hasattr(first, "__len__"):
        return False
    try:
        shapes = {np.shape(s) for s in x}
    except ValueError:
        return True
    return len(shapes) > 1


def make_adapter(model, x, y, sample_weight, batch_size, shuffle, class_weight=None, steps=None):
    """Return an adapter iterating over ``(x, y, sample_weight, mask)`` batches."""
    if x is None:
        raise ValueError("x is required (got None).")
    structured = isinstance(x, dict) or (model._n_inputs > 1 and isinstance(x, (list, tuple)))
    if not (structured or is_array_like(x) or is_ragged(x)) and hasattr(x, "__iter__"):
        if y is not None:
            raise ValueError("When x is an iterable of batches, y must be None (the batches "
                             "carry the targets).")
        return IterableAdapter(model, x, steps)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if is_ragged(x) and y is not None and isinstance(y, (list, tuple)) and len(y) != len(x):
        raise ValueError(f"x and y must contain the same number of samples, got x with "
                         f"{len(x)} sequences and y with {len(y)}.")
    x, mask = model._prepare_x(x)
    if not isinstance(x, (np.ndarray, list)):
        x = np.asarray(x)
    if any(a.dtype == object for a in (x if isinstance(x, list) else [x])):
        raise TypeError("x must be a numeric array (got dtype object). If your sequences have "
                        "different lengths, pass them as a list of arrays or pad them with "
                        "rnnkit.utils.pad_sequences.")
    _check_finite(x, "x")
    if y is not None and model._n_outputs > 1:
        y = model._prepare_y(y)
    elif y is not None:
        if is_ragged(y):
            y, ymask = model._prepare_x(y)
        else:
            y = np.asarray(y)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    model._validate_xy(x, y, sample_weight)
    if class_weight is not None and y is not None:
        sample_weight = combine_weights(sample_weight, model._class_weights(y, class_weight))
    return ArrayAdapter(x, y, sample_weight, mask, batch_size, shuffle)
