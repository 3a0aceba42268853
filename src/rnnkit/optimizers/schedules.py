"""Learning-rate schedules (Keras names): ``schedule(step) -> learning rate``."""

from __future__ import annotations

import math

from .. import _validate as _v


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``; ``get_config()`` returns the
    constructor arguments (``from_config(cfg)`` is ``cls(**cfg)``)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError  # abstract

    def get_config(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored if staircase).

    Args:
        initial_learning_rate: positive finite learning rate at step 0.
        decay_steps: positive integer: steps per factor of ``decay_rate``.
        decay_rate: positive finite factor (below 1 decays, above 1 grows).
        staircase: decay in discrete steps (integer division).

    Example:
        >>> ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)(200)
        0.025
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        o = "ExponentialDecay"
        self.initial_learning_rate = _v.number(o, "initial_learning_rate",
                                               initial_learning_rate, 0.0, lo_open=True)
        self.decay_steps = _v.number(o, "decay_steps", decay_steps, 1, integer=True)
        self.decay_rate = _v.number(o, "decay_rate", decay_rate, 0.0, lo_open=True)
        self.staircase = _v.check_bool("staircase", staircase, o)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up, then cosine decay to ``alpha * initial`` over ``decay_steps``.

    Args:
        initial_learning_rate: positive finite learning rate at step 0.
        decay_steps: positive integer: length of the cosine decay.
        alpha: floor as a fraction of the peak learning rate, in [0, 1].
        warmup_target: peak learning rate reached after the warm-up (None: no warm-up).
        warmup_steps: non-negative integer length of the linear warm-up (0 with a
            ``warmup_target``: the decay starts from the target, as in Keras).

    Example:
        >>> CosineDecay(0.1, decay_steps=100)(100)
        0.0
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        o = "CosineDecay"
        self.initial_learning_rate = _v.number(o, "initial_learning_rate",
                                               initial_learning_rate, 0.0, lo_open=True)
        self.decay_steps = _v.number(o, "decay_steps", decay_steps, 1, integer=True)
        self.alpha = _v.number(o, "alpha", alpha, 0.0, 1.0)
        self.warmup_target = _v.number(o, "warmup_target", warmup_target, 0.0, lo_open=True,
                                       allow_none=True)
        self.warmup_steps = _v.number(o, "warmup_steps", warmup_steps, 0, integer=True)

    def __call__(self, step):
        if self.warmup_target is not None and step < self.warmup_steps:
            frac = step / self.warmup_steps
            return self.initial_learning_rate + frac * (
                self.warmup_target - self.initial_learning_rate)
        top = self.initial_learning_rate if self.warmup_target is None else self.warmup_target
        s = min(step - (self.warmup_steps if self.warmup_target is not None else 0),
                self.decay_steps)
        cos = 0.5 * (1.0 + math.cos(math.pi * s / self.decay_steps))
        return top * ((1.0 - self.alpha) * cos + self.alpha)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``.

    Args:
        boundaries: strictly increasing non-negative integer steps.
        values: positive finite learning rates, one more than ``boundaries``.

    Example:
        >>> PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])(150)
        0.01
    """

    def __init__(self, boundaries, values):
        o = "PiecewiseConstantDecay"
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise TypeError(f"{o}: boundaries and values must be lists, got "
                            f"{type(boundaries).__name__} and {type(values).__name__}.")
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"{o}: values must have one more entry than boundaries, got "
                f"{len(boundaries)} boundaries and {len(values)} values."
            )
        self.boundaries = [_v.number(o, f"boundaries[{i}]", b, 0, integer=True)
                           for i, b in enumerate(boundaries)]
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"{o}: boundaries must be strictly increasing, got "
                             f"{self.boundaries}.")
        self.values = [_v.number(o, f"values[{i}]", v, 0.0, lo_open=True)
                       for i, v in enumerate(values)]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]


_REGISTRY = {c.__name__: c for c in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)}


def serialize(s):
    """``{"class_name", "config"}`` of a schedule (what :func:`deserialize` accepts)."""
    return {"class_name": type(s).__name__, "config": s.get_config()}


def deserialize(d):
    """The schedule described by ``{"class_name", "config"}``.

    Raises:
        ValueError: unknown class name. TypeError: malformed description.
    """
    name = d.get("class_name")
    if name not in _REGISTRY:
        raise ValueError(f"Unknown schedule {name!r:.80}; expected one of {sorted(_REGISTRY)}.")
    config = d.get("config")
    if not isinstance(config, dict):
        raise TypeError(f"schedule {name} needs a 'config' dict of arguments, got "
                        f"{type(config).__name__}.")
    return _REGISTRY[name].from_config(config)
