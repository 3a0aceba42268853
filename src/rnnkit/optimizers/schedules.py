"""Learning-rate schedules (Keras names): ``schedule(step) -> learning rate``."""

from __future__ import annotations

import math


class LearningRateSchedule:
    def __call__(self, step: int) -> float:
        raise NotImplementedError  # abstract

    def get_config(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored if staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive, got {decay_steps}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up, then cosine decay to ``alpha * initial`` over ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive, got {decay_steps}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.warmup_target = warmup_target
        self.warmup_steps = int(warmup_steps)

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
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``."""

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have one more entry than boundaries, got {len(boundaries)} "
                f"boundaries and {len(values)} values."
            )
        self.boundaries = list(boundaries)
        self.values = [float(v) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]


_REGISTRY = {c.__name__: c for c in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)}


def serialize(s):
    return {"class_name": type(s).__name__, "config": s.get_config()}


def deserialize(d):
    if d["class_name"] not in _REGISTRY:
        raise ValueError(f"Unknown schedule {d['class_name']!r}; expected one of {sorted(_REGISTRY)}.")
    return _REGISTRY[d["class_name"]].from_config(d["config"])
