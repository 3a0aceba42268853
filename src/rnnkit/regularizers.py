"""Weight penalties added to the loss: ``L1``, ``L2``, ``L1L2`` (Keras names and defaults)."""

from __future__ import annotations

import numpy as np


class Regularizer:
    """``penalty(w) -> float`` and its gradient ``grad(w) -> array like w``."""

    def __init__(self, l1=0.0, l2=0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {v!r}.")
        self.l1, self.l2 = float(l1), float(l2)

    def penalty(self, w: np.ndarray) -> float:
        """``l1 * sum(|w|) + l2 * sum(w**2)``."""
        out = 0.0
        if self.l1:
            out += self.l1 * float(np.abs(w).sum())
        if self.l2:
            out += self.l2 * float((w * w).sum())
        return out

    def grad(self, w: np.ndarray) -> np.ndarray:
        """d penalty / d w = ``l1 * sign(w) + 2 * l2 * w``."""
        g = np.zeros_like(w)
        if self.l1:
            g += self.l1 * np.sign(w)
        if self.l2:
            g += 2.0 * self.l2 * w
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        super().__init__(l1=l1, l2=l2)


_REGISTRY = {"l1": L1, "l2": L2, "l1_l2": L1L2}
_NAMES = {L1: "l1", L2: "l2", L1L2: "l1_l2", Regularizer: "l1_l2"}


def get(identifier):
    """Return a :class:`Regularizer` (or None) from a name, a config dict or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _REGISTRY:
            raise ValueError(f"Unknown regularizer {name!r}. Expected one of {sorted(_REGISTRY)}.")
        return _REGISTRY[name](**identifier.get("config", {}))
    if isinstance(identifier, str):
        if identifier.lower() not in _REGISTRY:
            raise ValueError(
                f"Unknown regularizer {identifier!r}. Expected one of {sorted(_REGISTRY)}."
            )
        return _REGISTRY[identifier.lower()]()
    raise TypeError(f"regularizer must be a name, a dict or a Regularizer, got {type(identifier).__name__}.")


def serialize(reg):
    if reg is None:
        return None
    return {"class_name": _NAMES[type(reg)], "config": reg.get_config()}
