"""Optimizers with Keras 3 names, defaults and update rules.

Each optimizer updates parameters in place: ``opt.apply(params, grads)`` with two lists of
arrays. Gradient clipping follows Keras: ``clipnorm`` (per variable), ``global_clipnorm``
(all variables together) or ``clipvalue`` (element-wise). ``learning_rate`` may be a float or
a schedule from :mod:`rnnkit.optimizers.schedules`.

Update rules (``g`` the clipped gradient, ``lr`` the learning rate at this step, ``t`` the
1-based step):

* SGD: ``v = momentum*v - lr*g``; ``w += v`` (Nesterov: ``w += momentum*v - lr*g``).
* RMSprop: ``a = rho*a + (1-rho)*g^2``; ``w -= lr*g/(sqrt(a)+eps)`` (``centered`` subtracts
  the mean gradient squared; ``momentum`` adds a velocity).
* Adam: ``m += (1-b1)(g-m)``; ``v += (1-b2)(g^2-v)``;
  ``w -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)``. AdamW first does ``w -= lr*wd*w``.
* Nadam (Adam with Nesterov momentum, Dozat 2015, Keras' momentum schedule): with
  ``u_t = b1 (1 - 0.5 * 0.96^t)`` and ``P_t = u_1 ... u_t``, ``m`` and ``v`` as Adam;
  ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)``,
  ``v_hat = v / (1 - b2^t)``; ``w -= lr * m_hat / (sqrt(v_hat) + eps)``.
* Adagrad: ``a += g^2``; ``w -= lr*g/sqrt(a+eps)``.
"""

from __future__ import annotations

import math

import numpy as np

from .._keras_names import missing_name_hook as _missing_name_hook
from . import schedules
from .schedules import LearningRateSchedule


class Optimizer:
    """Base class: learning rate, clipping, slot storage and the step counter."""

    def __init__(self, learning_rate=0.001, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        if isinstance(learning_rate, dict):
            learning_rate = schedules.deserialize(learning_rate)
        if not isinstance(learning_rate, LearningRateSchedule):
            if not (isinstance(learning_rate, (int, float)) and learning_rate > 0
                    and math.isfinite(learning_rate)):
                raise ValueError(
                    f"learning_rate must be a positive finite number or a schedule, got "
                    f"{learning_rate!r}."
                )
            learning_rate = float(learning_rate)
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("Set at most one of clipnorm and global_clipnorm, got both.")
        for n, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                     ("global_clipnorm", global_clipnorm)):
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{n} must be a positive finite number or None, got {v!r}.")
        self._learning_rate = learning_rate
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.slots: dict[str, list[np.ndarray]] = {}
        # gradient-flow bookkeeping (read by rnnkit.diagnostics.GradientMonitor)
        self.last_grad_norm = None
        self.last_clipped_grad_norm = None
        self.last_grad_norms = None

    # -- learning rate -------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate at the current step (schedules evaluated at ``iterations``)."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if isinstance(lr, LearningRateSchedule) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        value = float(value)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"learning_rate must be positive and finite, got {value!r}.")
        self._learning_rate = value

    # -- slots -----------------------------------------------------------------------------
    def _slot(self, name, params, init=0.0):
        if name not in self.slots:
            self.slots[name] = [np.full_like(p, init) for p in params]
        return self.slots[name]

    def build(self, params):
        """Create slots now (also happens on the first :meth:`apply`)."""

    # -- clipping ------------------------------------------------------------------------------
    def clip(self, grads):
        """Return clipped gradients (new arrays only where clipping changed them)."""
        norms = [float(np.sqrt(np.vdot(g, g))) for g in grads]
        total = math.sqrt(sum(n * n for n in norms))
        self.last_grad_norms = norms
        self.last_grad_norm = total
        if self.clipnorm:
            grads = [g * (self.clipnorm / n) if n > self.clipnorm else g
                     for g, n in zip(grads, norms)]
        elif self.global_clipnorm and total > self.global_clipnorm:
            grads = [g * (self.global_clipnorm / total) for g in grads]
        if self.clipvalue:
            grads = [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        self.last_clipped_grad_norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        return grads

    def apply(self, params, grads):
        """One update of every array in ``params`` (in place) from ``grads``."""
        if len(params) != len(grads):
            raise ValueError(f"apply: got {len(params)} params but {len(grads)} gradients.")
        grads = self.clip(grads)
        lr = self.learning_rate
        self.build(params)
        self.iterations += 1
        self._update(params, grads, lr)

    def _update(self, params, grads, lr):
        raise NotImplementedError  # abstract

    # -- config and state ---------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        return {
            "learning_rate": schedules.serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
            "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm, "name": self.name,
        }

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def get_state(self) -> dict:
        """Arrays to save for an exact resume: every slot plus the step counter."""
        out = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for name, arrs in self.slots.items():
            for i, a in enumerate(arrs):
                out[f"{name}/{i}"] = a
        return out

    def set_state(self, state: dict, params):
        self.iterations = int(state["iterations"])
        self.slots = {}
        names = sorted({k.split("/")[0] for k in state if "/" in k})
        for name in names:
            arrs = []
            for i, p in enumerate(params):
                key = f"{name}/{i}"
                if key not in state or np.shape(state[key]) != p.shape:
                    raise ValueError(
                        f"Optimizer state {key!r} is missing or has the wrong shape for "
                        f"parameter {i} of shape {p.shape}."
                    )
                arrs.append(np.array(state[key], dtype=p.dtype))
            self.slots[name] = arrs


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum. Keras default lr 0.01."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}.")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def build(self, params):
        if self.momentum:
            self._slot("momentum", params)

    def _update(self, params, grads, lr):
        mu = self.momentum
        for i, (w, g) in enumerate(zip(params, grads)):
            if not mu:
                w -= lr * g
                continue
            v = self.slots["momentum"][i]
            v *= mu
            v -= lr * g
            if self.nesterov:
                w += mu * v - lr * g
            else:
                w += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def build(self, params):
        self._slot("velocity", params)
        if self.momentum:
            self._slot("momentum", params)
        if self.centered:
            self._slot("average_gradient", params)

    def _update(self, params, grads, lr):
        rho = self.rho
        for i, (w, g) in enumerate(zip(params, grads)):
            a = self.slots["velocity"][i]
            a *= rho
            a += (1.0 - rho) * g * g
            denom = a
            if self.centered:
                mg = self.slots["average_gradient"][i]
                mg *= rho
                mg += (1.0 - rho) * g
                denom = a - mg * mg
            step = lr * g / (np.sqrt(denom) + self.epsilon)
            if self.momentum:
                m = self.slots["momentum"][i]
                m *= self.momentum
                m += step
                step = m
            w -= step

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def build(self, params):
        self._slot("m", params)
        self._slot("v", params)
        if self.amsgrad:
            self._slot("v_hat", params)

    def _decay(self, params, lr):
        """Hook for AdamW's decoupled weight decay."""

    def _update(self, params, grads, lr):
        self._decay(params, lr)
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        alpha = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        for i, (w, g) in enumerate(zip(params, grads)):
            m, v = self.slots["m"][i], self.slots["v"][i]
            # Same operations in the same order as the formulas above, written into two
            # reusable scratch arrays instead of a fresh temporary per operation.
            s1, s2 = self._scratch(i, w)
            np.subtract(g, m, out=s1)
            s1 *= 1.0 - b1
            m += s1                                        # m += (1-b1)(g-m)
            np.multiply(g, g, out=s1)
            s1 -= v
            s1 *= 1.0 - b2
            v += s1                                        # v += (1-b2)(g^2-v)
            if self.amsgrad:
                vh = self.slots["v_hat"][i]
                np.maximum(vh, v, out=vh)
                v = vh
            np.sqrt(v, out=s1)
            s1 += self.epsilon
            np.multiply(m, alpha, out=s2)
            s2 /= s1
            w -= s2                                        # w -= alpha m / (sqrt(v)+eps)

    def _scratch(self, i, w):
        """Two work arrays shaped like parameter ``i`` (not optimizer state; never saved)."""
        store = self.__dict__.setdefault("_work", {})
        pair = store.get(i)
        if pair is None or pair[0].shape != w.shape or pair[0].dtype != w.dtype:
            pair = store[i] = (np.empty_like(w), np.empty_like(w))
        return pair

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (``w -= lr * weight_decay * w`` before the Adam step)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay}.")
        self.weight_decay = float(weight_decay)

    def _decay(self, params, lr):
        for w in params:
            w -= (lr * self.weight_decay) * w

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Keras ``Nadam``: same defaults and momentum schedule).

    Args:
        learning_rate: float or schedule (default 0.001).
        beta_1: decay of the first moment (default 0.9).
        beta_2: decay of the second moment (default 0.999).
        epsilon: added to ``sqrt(v_hat)`` (default 1e-7).
        **kwargs: ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``.

    The momentum-schedule product ``P_t`` is a function of the step counter alone, so it is
    recomputed from ``iterations`` and a resumed run continues exactly.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._u_product = (0, 1.0)   # (step t, P_t) cache

    def build(self, params):
        self._slot("m", params)
        self._slot("v", params)

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _product(self, t):
        """``P_t = u_1 u_2 ... u_t`` (cached for the last step)."""
        k, p = self._u_product
        if k > t:
            k, p = 0, 1.0
        while k < t:
            k += 1
            p *= self._u(k)
        self._u_product = (k, p)
        return p

    def _update(self, params, grads, lr):
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        u_t, u_next = self._u(t), self._u(t + 1)
        p_t = self._product(t)
        p_next = p_t * u_next
        c_m = u_next / (1.0 - p_next)          # weight of the moment in m_hat
        c_g = (1.0 - u_t) / (1.0 - p_t)        # weight of the gradient in m_hat
        c_v = 1.0 / (1.0 - b2 ** t)            # v_hat = v / (1 - b2^t)
        for i, (w, g) in enumerate(zip(params, grads)):
            m, v = self.slots["m"][i], self.slots["v"][i]
            m += (1.0 - b1) * (g - m)
            v += (1.0 - b2) * (g * g - v)
            m_hat = c_m * m + c_g * g
            w -= lr * m_hat / (np.sqrt(v * c_v) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def build(self, params):
        self._slot("accumulator", params, self.initial_accumulator_value)

    def _update(self, params, grads, lr):
        for i, (w, g) in enumerate(zip(params, grads)):
            a = self.slots["accumulator"][i]
            a += g * g
            w -= lr * g / np.sqrt(a + self.epsilon)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_REGISTRY = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad,
             "nadam": Nadam}


def get(identifier) -> Optimizer:
    """Return an optimizer from a name ('adam', 'sgd', ...), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cls = _REGISTRY.get(str(identifier.get("class_name", "")).lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer {identifier.get('class_name')!r}. "
                             f"Expected one of {sorted(_REGISTRY)}.")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        if identifier.lower() not in _REGISTRY:
            raise ValueError(
                f"Unknown optimizer {identifier!r}. Expected one of {sorted(_REGISTRY)}."
            )
        return _REGISTRY[identifier.lower()]()
    raise TypeError(f"optimizer must be a name or an rnnkit Optimizer, got {type(identifier).__name__}.")


def serialize(opt: Optimizer) -> dict:
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Nadam", "schedules", "get",
           "serialize"]


__getattr__ = _missing_name_hook(__name__, __all__)
