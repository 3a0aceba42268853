"""Shared float64 central-difference gradient checking."""

from __future__ import annotations

import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to array x (perturbed in place)."""
    g = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def rel_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


def assert_close_grad(analytic, numeric, what, tol=1e-6):
    err = rel_error(analytic, numeric)
    assert err < tol, (
        f"{what}: rnnkit vs finite differences relative error {err:.2e} >= {tol:.0e}\n"
        f"rnnkit:\n{np.asarray(analytic).ravel()[:8]}\nreference:\n{np.asarray(numeric).ravel()[:8]}"
    )
