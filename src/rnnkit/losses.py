"""Losses with Keras names, arguments and reduction, each with its hand-written gradient.

A loss computes a per-position value ``l`` (shape ``y_pred.shape[:-1]``: per sample, or per
sample and time step) and reduces it Keras-style ("sum_over_batch_size"):

    L = sum(l * w) / n          w = sample_weight * mask (1 where absent)

where ``n`` counts the positions, or only the unmasked positions when a mask is given.
:meth:`Loss.gradient` returns ``dL/dy_pred``; :meth:`Loss.gradient_logits` returns
``dL/dz`` for a final softmax/sigmoid fused with cross-entropy — numerically stable and
free of the ``1/p`` blow-up.
"""

from __future__ import annotations

import numpy as np

from ._keras_names import missing_name_hook as _missing_name_hook

EPSILON = 1e-7  # Keras backend.epsilon()


def _as_pred(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 0:
        raise ValueError(f"y_pred must have a batch axis, e.g. (batch, outputs), got a scalar "
                         f"{y_pred!r}.")
    if y_pred.size == 0:
        raise ValueError(f"y_pred is empty (shape {y_pred.shape}); a loss needs at least one "
                         "prediction.")
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float32)
    return y_pred


class Loss:
    """Base class. Subclasses implement ``_values`` and ``_grad`` (per position)."""

    name = "loss"
    #: final activation that :meth:`gradient_logits` can fuse with, or None
    fused_activation = None

    def __init__(self, from_logits=False, name=None):
        self.from_logits = bool(from_logits)
        if name:
            self.name = name

    # -- per-position values and gradients --------------------------------------------
    def _values(self, y_true, y_pred):
        raise NotImplementedError  # abstract

    def _grad(self, y_true, y_pred):
        raise NotImplementedError  # abstract

    def prepare_targets(self, y_true, y_pred):
        """Validate and reshape ``y_true`` to match ``y_pred`` (Keras broadcasting rules)."""
        y_true = np.asarray(y_true)
        if y_true.dtype == object or y_true.dtype.kind not in "biuf":
            raise TypeError(f"y must hold numbers, got dtype {y_true.dtype}.")
        y_true = y_true.astype(y_pred.dtype)
        if y_true.shape != y_pred.shape:
            if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
                y_true = y_true[..., None]
            if y_true.shape != y_pred.shape:
                raise ValueError(
                    f"{self.name}: y has shape {y_true.shape} but the model outputs shape "
                    f"{y_pred.shape}. Targets must match the output shape"
                    + (" (one-hot encode labels, or use 'sparse_categorical_crossentropy' "
                       "for integer labels)." if "categorical" in self.name else ".")
                )
        if not np.all(np.isfinite(y_true)):
            raise ValueError(f"{self.name}: y contains NaN or Inf.")
        return y_true

    # -- reduction -----------------------------------------------------------------------
    @staticmethod
    def _weights(shape, sample_weight, mask, dtype):
        """Per-position weights w and the normaliser n."""
        w = np.ones(shape, dtype)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype)
            if sw.shape != shape[: sw.ndim]:
                raise ValueError(
                    f"sample_weight has shape {sw.shape}, expected {shape[:1]} (per sample) "
                    f"or {shape} (per time step)."
                )
            w = w * sw.reshape(sw.shape + (1,) * (len(shape) - sw.ndim))
        n = float(np.prod(shape)) if len(shape) else 1.0
        if mask is not None:
            m = np.asarray(mask, bool)
            if m.shape != shape:
                m = m.reshape(m.shape + (1,) * (len(shape) - m.ndim))
                m = np.broadcast_to(m, shape)
            w = w * m
            n = float(m.sum())
        return w, max(n, 1.0)

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        """The reduced loss, a float."""
        y_pred = _as_pred(y_pred)
        y_true = self.prepare_targets(y_true, y_pred)
        v = self._values(y_true, y_pred)
        w, n = self._weights(v.shape, sample_weight, mask, y_pred.dtype)
        return float((v * w).sum() / n)

    def gradient(self, y_true, y_pred, sample_weight=None, mask=None):
        """dL/dy_pred, shape of ``y_pred``."""
        y_pred = _as_pred(y_pred)
        y_true = self.prepare_targets(y_true, y_pred)
        w, n = self._weights(y_pred.shape[:-1], sample_weight, mask, y_pred.dtype)
        return self._grad(y_true, y_pred) * (w / n)[..., None]

    def gradient_logits(self, y_true, y_act, sample_weight=None, mask=None):
        """dL/dz where ``y_act = fused_activation(z)``; valid only when ``fused_activation`` is set."""
        y_act = _as_pred(y_act)
        y_true = self.prepare_targets(y_true, y_act)
        w, n = self._weights(y_act.shape[:-1], sample_weight, mask, y_act.dtype)
        return self._grad_logits(y_true, y_act) * (w / n)[..., None]

    def get_config(self):
        return {"from_logits": self.from_logits}


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class CategoricalCrossentropy(Loss):
    """``-sum(y_true * log(y_pred))`` over the last axis; one-hot (or soft) targets."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, name=None):
        super().__init__(from_logits, name)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)
        self.fused_activation = None if from_logits else "softmax"

    def prepare_targets(self, y_true, y_pred):
        y_true = super().prepare_targets(y_true, y_pred)
        if self.label_smoothing:
            C = y_pred.shape[-1]
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / C
        return y_true

    def _values(self, y, p):
        if self.from_logits:
            return -(y * _log_softmax(p)).sum(axis=-1)
        q = p / p.sum(axis=-1, keepdims=True)
        return -(y * np.log(np.clip(q, EPSILON, 1.0 - EPSILON))).sum(axis=-1)

    def _grad(self, y, p):
        if self.from_logits:
            e = np.exp(_log_softmax(p))
            return y.sum(axis=-1, keepdims=True) * e - y
        s = p.sum(axis=-1, keepdims=True)
        q = p / s
        inside = (q > EPSILON) & (q < 1.0 - EPSILON)
        dq = np.where(inside, -y / np.clip(q, EPSILON, None), 0.0)   # d/dq of -y log q
        return (dq - (dq * q).sum(axis=-1, keepdims=True)) / s      # through q = p / sum(p)

    def _grad_logits(self, y, p):
        # softmax + cross-entropy: dL/dz = p * sum(y) - y
        return p * y.sum(axis=-1, keepdims=True) - y

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy with integer class ids: y_true (B,) or (B, T) (or with a trailing 1)."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, name=None):
        super().__init__(from_logits=from_logits, name=name)
        self.ignore_class = ignore_class

    def prepare_targets(self, y_true, y_pred):
        y = np.asarray(y_true)
        if y.dtype == object or y.dtype.kind not in "biuf":
            raise TypeError(f"{self.name}: y must hold integer class ids, got dtype {y.dtype}.")
        if y.ndim == y_pred.ndim and y.shape[-1] == 1:
            y = y[..., 0]
        if y.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"{self.name}: y has shape {np.asarray(y_true).shape} but the model outputs "
                f"{y_pred.shape}; expected integer ids of shape {y_pred.shape[:-1]}."
            )
        if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.round(y))):
            raise ValueError(f"{self.name}: y must hold integer class ids, got non-integers.")
        ids = y.astype(np.int64)
        C = y_pred.shape[-1]
        valid = ids != self.ignore_class if self.ignore_class is not None else None
        check = ids if valid is None else ids[valid]
        if check.size and (check.min() < 0 or check.max() >= C):
            raise ValueError(
                f"{self.name}: labels must be in [0, {C}) for a model with {C} outputs, got "
                f"labels from {check.min()} to {check.max()}. Check the labels, or the size "
                "of the final Dense layer."
            )
        onehot = np.zeros(y_pred.shape, y_pred.dtype)
        safe = np.where(ids < 0, 0, np.minimum(ids, C - 1))
        np.put_along_axis(onehot, safe[..., None], 1.0, axis=-1)
        if valid is not None:
            onehot *= valid[..., None]
        return onehot

    def get_config(self):
        return {"from_logits": self.from_logits, "ignore_class": self.ignore_class}


class BinaryCrossentropy(Loss):
    """Mean over the last axis of ``-(y log p + (1-y) log(1-p))``."""

    name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, name=None):
        super().__init__(from_logits, name)
        self.label_smoothing = float(label_smoothing)
        self.fused_activation = None if from_logits else "sigmoid"

    def prepare_targets(self, y_true, y_pred):
        y = super().prepare_targets(y_true, y_pred)
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y

    def _values(self, y, p):
        if self.from_logits:
            v = np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))
        else:
            q = np.clip(p, EPSILON, 1.0 - EPSILON)
            v = -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))
        return v.mean(axis=-1)

    def _grad(self, y, p):
        n = p.shape[-1]
        if self.from_logits:
            e = np.exp(-np.abs(p))
            sig = np.where(p >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            return (sig - y) / n
        inside = (p > EPSILON) & (p < 1.0 - EPSILON)
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        return np.where(inside, (q - y) / (q * (1.0 - q)), 0.0) / n

    def _grad_logits(self, y, p):
        return (p - y) / p.shape[-1]

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """``mean((y_true - y_pred)**2)`` over the last axis."""

    name = "mean_squared_error"

    def _values(self, y, p):
        return ((p - y) ** 2).mean(axis=-1)

    def _grad(self, y, p):
        return 2.0 * (p - y) / p.shape[-1]

    def get_config(self):
        return {}


class MeanAbsoluteError(Loss):
    """``mean(|y_true - y_pred|)`` over the last axis."""

    name = "mean_absolute_error"

    def _values(self, y, p):
        return np.abs(p - y).mean(axis=-1)

    def _grad(self, y, p):
        return np.sign(p - y) / p.shape[-1]

    def get_config(self):
        return {}


class Huber(Loss):
    """``0.5 e^2`` for ``|e| <= delta``, else ``delta (|e| - 0.5 delta)``; mean over last axis."""

    name = "huber"

    def __init__(self, delta=1.0, name=None):
        super().__init__(False, name)
        if delta <= 0:
            raise ValueError(f"delta must be positive, got {delta}.")
        self.delta = float(delta)

    def _values(self, y, p):
        e = np.abs(p - y)
        return np.where(e <= self.delta, 0.5 * e * e, self.delta * (e - 0.5 * self.delta)).mean(-1)

    def _grad(self, y, p):
        e = p - y
        return np.clip(e, -self.delta, self.delta) / p.shape[-1]

    def get_config(self):
        return {"delta": self.delta}


def _softplus(z):
    """``log(1 + exp(z))`` without overflow."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


class KLDivergence(Loss):
    """``sum(y_true * log(y_true / y_pred))`` over the last axis (Keras ``kl_divergence``).

    Both arguments are clipped to ``[EPSILON, 1]`` first, as Keras does; the gradient is
    ``-y_true / y_pred`` where ``y_pred`` lies inside that range and 0 where it was clipped.
    Shapes: y_true, y_pred (..., C) probability distributions.
    """

    name = "kl_divergence"

    def __init__(self, name=None):
        super().__init__(False, name)

    def _values(self, y, p):
        yc = np.clip(y, EPSILON, 1.0)
        return (yc * np.log(yc / np.clip(p, EPSILON, 1.0))).sum(axis=-1)

    def _grad(self, y, p):
        yc = np.clip(y, EPSILON, 1.0)
        inside = (p >= EPSILON) & (p <= 1.0)
        return np.where(inside, -yc / np.clip(p, EPSILON, 1.0), 0.0)   # d/dp of -y log p

    def get_config(self):
        return {}


class LogCosh(Loss):
    """``mean(log(cosh(y_pred - y_true)))`` over the last axis (Keras ``log_cosh``).

    Computed as ``x + softplus(-2x) - log 2`` so that large errors do not overflow; the
    gradient is ``tanh(x) / C``. Shapes: y_true, y_pred (..., C).
    """

    name = "log_cosh"

    def __init__(self, name=None):
        super().__init__(False, name)

    def _values(self, y, p):
        x = p - y
        return (x + _softplus(-2.0 * x) - np.log(2.0)).mean(axis=-1)

    def _grad(self, y, p):
        return np.tanh(p - y) / p.shape[-1]          # d/dx log cosh x = tanh x

    def get_config(self):
        return {}


class Poisson(Loss):
    """``mean(y_pred - y_true * log(y_pred + EPSILON))`` over the last axis (Keras ``poisson``).

    ``y_pred`` is a predicted rate (make it positive, e.g. with a softplus or exp output).
    Shapes: y_true, y_pred (..., C).
    """

    name = "poisson"

    def __init__(self, name=None):
        super().__init__(False, name)

    def _values(self, y, p):
        return (p - y * np.log(p + EPSILON)).mean(axis=-1)

    def _grad(self, y, p):
        return (1.0 - y / (p + EPSILON)) / p.shape[-1]

    def get_config(self):
        return {}


def _l2_normalize(x):
    """``x / max(||x||, EPSILON)`` over the last axis, and the norm used: Keras' normalize."""
    n = np.maximum(np.sqrt((x * x).sum(axis=-1, keepdims=True)), EPSILON)
    return x / n, n


class CosineSimilarity(Loss):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred))`` over the last axis.

    Keras ``cosine_similarity``: -1 when the vectors point the same way, 0 when orthogonal.
    With ``q = y_pred / n`` and ``n = max(||y_pred||, EPSILON)`` the gradient is
    ``-(a - (a.q) q) / n`` (``a`` the normalised target), or ``-a / EPSILON`` where the norm
    was clamped. Shapes: y_true, y_pred (..., C).
    """

    name = "cosine_similarity"

    def __init__(self, name=None):
        super().__init__(False, name)

    def _values(self, y, p):
        return -(_l2_normalize(y)[0] * _l2_normalize(p)[0]).sum(axis=-1)

    def _grad(self, y, p):
        a = _l2_normalize(y)[0]
        q, n = _l2_normalize(p)
        clamped = n <= EPSILON
        projected = a - (a * q).sum(axis=-1, keepdims=True) * q     # through q = p / ||p||
        return -np.where(clamped, a, projected) / n

    def get_config(self):
        return {}


_REGISTRY = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence":
    KLDivergence,
    "log_cosh": LogCosh, "logcosh": LogCosh,
    "poisson": Poisson,
    "cosine_similarity": CosineSimilarity,
}
_CLASS_NAMES = {c.__name__: c for c in set(_REGISTRY.values())}


def get(identifier) -> Loss:
    """Return a :class:`Loss` from a name ('mse', 'categorical_crossentropy', ...) or instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        cls = _REGISTRY.get(identifier.get("class_name")) or _CLASS_NAMES.get(
            identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown loss {identifier.get('class_name')!r}. "
                             f"Expected one of {sorted(_REGISTRY)}.")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _REGISTRY:
            return _REGISTRY[key]()
        if identifier in _CLASS_NAMES:
            return _CLASS_NAMES[identifier]()
        raise ValueError(f"Unknown loss {identifier!r}. Expected one of {sorted(_REGISTRY)}.")
    raise TypeError(f"loss must be a name or an rnnkit Loss, got {type(identifier).__name__}.")


def serialize(loss: Loss) -> dict:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


__getattr__ = _missing_name_hook(__name__, [n for n, v in dict(globals()).items()
                                             if not n.startswith("_")
                                             and getattr(v, "__module__", None) == __name__])
