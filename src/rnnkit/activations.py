"""Element-wise activations with their derivatives.

Each activation is a pair: ``forward(z) -> a`` and ``grad(z, a) -> da/dz`` (element-wise).
The derivative gets both the input and the output so that tanh and sigmoid can use the
cheap forms ``1 - a**2`` and ``a * (1 - a)``.
``softmax`` is the one non-element-wise activation; its backward is a vector-Jacobian product.
"""

from __future__ import annotations

import numpy as np


class Activation:
    """An element-wise activation ``a = f(z)`` with derivative ``f'(z)``."""

    name = "activation"

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # abstract

    def grad(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # abstract

    def backward(self, da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Vector-Jacobian product: dL/dz given dL/da (element-wise activations)."""
        return da * self.grad(z, a)

    def __call__(self, z):
        return self.forward(z)

    def __repr__(self):
        return f"<activation {self.name}>"


class Linear(Activation):
    name = "linear"

    def forward(self, z):
        return z

    def grad(self, z, a):
        return np.ones_like(z)

    def backward(self, da, z, a):
        return da


class Tanh(Activation):
    name = "tanh"

    def forward(self, z):
        return np.tanh(z)

    def grad(self, z, a):
        return 1.0 - a * a


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z):
        # exp of a non-positive number only: stable for any z.
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)

    def grad(self, z, a):
        return a * (1.0 - a)


class HardSigmoid(Activation):
    """Keras 3 hard_sigmoid: ``relu6(z + 3) / 6``."""

    name = "hard_sigmoid"

    def forward(self, z):
        return np.clip(z / 6.0 + 0.5, 0.0, 1.0).astype(z.dtype, copy=False)

    def grad(self, z, a):
        return ((z > -3.0) & (z < 3.0)).astype(z.dtype) / 6.0


class ReLU(Activation):
    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0)

    def grad(self, z, a):
        return (z > 0).astype(z.dtype)


class ELU(Activation):
    name = "elu"

    def forward(self, z):
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)

    def grad(self, z, a):
        return np.where(z > 0, 1.0, a + 1.0).astype(z.dtype, copy=False)


class Softplus(Activation):
    name = "softplus"

    def forward(self, z):
        return (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))).astype(z.dtype, copy=False)

    def grad(self, z, a):
        return Sigmoid().forward(z)


class Softsign(Activation):
    name = "softsign"

    def forward(self, z):
        return z / (1.0 + np.abs(z))

    def grad(self, z, a):
        return 1.0 / (1.0 + np.abs(z)) ** 2


class Swish(Activation):
    name = "swish"

    def forward(self, z):
        return z * Sigmoid().forward(z)

    def grad(self, z, a):
        s = Sigmoid().forward(z)
        return s * (1.0 + z * (1.0 - s))


class Softmax(Activation):
    """Softmax over the last axis (not element-wise)."""

    name = "softmax"

    def forward(self, z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def grad(self, z, a):
        raise TypeError("softmax is not element-wise; use Softmax.backward(da, z, a).")

    def backward(self, da, z, a):
        # dz_i = a_i * (da_i - sum_j da_j a_j)
        return a * (da - (da * a).sum(axis=-1, keepdims=True))


_REGISTRY = {
    cls.name: cls
    for cls in (Linear, Tanh, Sigmoid, HardSigmoid, ReLU, ELU, Softplus, Softsign, Swish, Softmax)
}
_REGISTRY["silu"] = Swish


def get(identifier) -> Activation:
    """Return an :class:`Activation` from a name, an instance, or ``None`` (linear).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _REGISTRY:
            raise ValueError(
                f"Unknown activation {identifier!r}. Expected one of {sorted(_REGISTRY)}."
            )
        return _REGISTRY[key]()
    raise TypeError(
        f"activation must be a string name, an rnnkit Activation or None, "
        f"got {type(identifier).__name__}."
    )


def serialize(act: Activation) -> str:
    """Return the activation's registry name (used in layer configs)."""
    return act.name
