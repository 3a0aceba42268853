r"""Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu, De 2023,
"Resurrecting Recurrent Neural Networks for Long Sequences").

A complex diagonal linear recurrence over ``N`` channels (``state_size``) with a real output::

    lambda = exp(-exp(nu_log) + i exp(theta_log))            # (N,) complex, |lambda| < 1
    gamma  = exp(gamma_log)                                   # (N,) normalisation
    h_t    = lambda * h_{t-1} + gamma * (x_t B)               # (B, N) complex
    y_t    = Re(h_t C) + x_t D                                # (B, units) real

* Exponential parameterisation: ``nu_log``, ``theta_log`` are trained, so ``|lambda| =
  exp(-exp(nu_log))`` stays inside the unit disc whatever the update.
* Ring initialisation: ``|lambda|`` uniform on the ring ``r_min <= |lambda| <= r_max`` (by
  area) and phase uniform in ``[0, max_phase]``.
* Normalisation: ``gamma`` starts at ``sqrt(1 - |lambda|^2)``, so a white-noise input gives
  a state of the same variance whatever the radius.

Layout (real arrays): ``kernel`` (F, 2N + units) holds ``[Re B | Im B | D]`` (so the
layer computes every step's ``x_t B`` and ``x_t D`` in one product); ``output_kernel`` (2N,
units) holds ``[Re C; Im C]``, so ``y_t = Re(h_t) Re(C) - Im(h_t) Im(C) + x_t D``. ``D`` is a
full (F, units) matrix because F may differ from ``units`` (the paper's diagonal ``D`` is
the case F = units). States ``[Re h, Im h]``, each (B, N). Training runs the compiled scan
of :mod:`rnnkit.kernels.lru`; inference and streaming run :meth:`LRUCell.step`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_positive_int, get_named
from .base import Cell


class _Given(_init.Initializer):
    """Returns a fixed array (values computed in ``build`` from other parameters)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return np.array(self.value, dtype=dtype).reshape(shape)


class _InputInit(_init.Initializer):
    """``[Re B | Im B | D]``: B ~ N(0, 1/(2F)) per part (unit-variance complex), D ~ N(0, 1/F)."""

    def __init__(self, n):
        self.n = n

    def __call__(self, shape, dtype="float32"):
        F = shape[0]
        w = self._rng().standard_normal(shape)
        w[:, :2 * self.n] /= math.sqrt(2 * F)
        w[:, 2 * self.n:] /= math.sqrt(F)
        return w.astype(dtype)


def _check_radius(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a radius in the open interval (0, 1), got {value!r}.")
    return float(value)


class LRUCell(Cell):
    """Linear Recurrent Unit cell (equations and layout in the module docstring).

    Args:
        units: positive int, the output size.
        state_size: positive int N, the number of complex channels (default ``units``).
        r_min, r_max: ring of the initial ``|lambda|``, ``0 < r_min <= r_max < 1`` (default
            0.4, 0.99; the paper uses up to 0.9, 0.999 for its longest tasks).
        max_phase: initial phases are uniform in ``[0, max_phase]`` (default 2 pi; the
            paper uses pi / 10 for its longest tasks), positive.
        kernel_initializer: initializer of ``kernel`` (default the paper's: B complex normal
            of variance 1/F, D normal of variance 1/F).
        output_initializer: initializer of ``output_kernel`` (default normal, variance 1/N).
        kernel_regularizer, output_regularizer: names, instances or None.
        dropout, seed: see :class:`rnnkit.cells.Cell`.

    Shapes: ``step`` maps x_t (B, F) and ``[Re h, Im h]`` (each (B, N)) to y_t (B, units).

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.LRU(8, state_size=16)(np.ones((2, 5, 3))).shape
        (2, 8)
    """

    def __init__(self, units, state_size=None, r_min=0.4, r_max=0.99, max_phase=2 * math.pi,
                 kernel_initializer=None, output_initializer=None, kernel_regularizer=None,
                 output_regularizer=None, dropout=0.0, seed=None, **kwargs):
        super().__init__(dropout=dropout, seed=seed, **kwargs)
        self.units = check_positive_int("units", units)
        self.n = self.units if state_size is None else check_positive_int("state_size",
                                                                           state_size)
        self.r_min = _check_radius("r_min", r_min)
        self.r_max = _check_radius("r_max", r_max)
        if self.r_min > self.r_max:
            raise ValueError(f"r_min must be <= r_max, got r_min={r_min!r} > r_max={r_max!r}.")
        if isinstance(max_phase, bool) or not isinstance(
                max_phase, (int, float, np.integer, np.floating)) or not 0 < max_phase < math.inf:
            raise ValueError(f"max_phase must be a positive number, got {max_phase!r}.")
        self.max_phase = float(max_phase)
        self.kernel_initializer = None if kernel_initializer is None else get_named(
            _init, "kernel_initializer", kernel_initializer)
        self.output_initializer = None if output_initializer is None else get_named(
            _init, "output_initializer", output_initializer)
        self.kernel_regularizer = get_named(_reg, "kernel_regularizer", kernel_regularizer)
        self.output_regularizer = get_named(_reg, "output_regularizer", output_regularizer)
        self.state_size = [self.n, self.n]
        self.output_size = self.units

    def build(self, input_dim):
        """``nu_log``, ``theta_log``, ``gamma_log`` (N,), ``kernel`` (F, 2N + units),
        ``output_kernel`` (2N, units)."""
        N = self.n
        rng = _backend_rng()
        u1, u2 = rng.random(N), rng.random(N)
        # |lambda|^2 uniform in [r_min^2, r_max^2]: uniform by area on the ring
        nu_log = np.log(-0.5 * np.log(u1 * (self.r_max ** 2 - self.r_min ** 2) +
                                      self.r_min ** 2))
        theta_log = np.log(self.max_phase * u2 + 1e-12)
        nu = self.add_weight("nu_log", (N,), _Given(nu_log))
        self.add_weight("theta_log", (N,), _Given(theta_log))
        mod = np.exp(-np.exp(nu.astype(np.float64)))
        self.add_weight("gamma_log", (N,), _Given(np.log(np.sqrt(1.0 - mod ** 2))))
        self.add_weight("kernel", (input_dim, 2 * N + self.units),
                        self.kernel_initializer or _InputInit(N), self.kernel_regularizer)
        self.add_weight("output_kernel", (2 * N, self.units),
                        self.output_initializer or _init.RandomNormal(0.0, 1.0 / math.sqrt(N)),
                        self.output_regularizer)

    def eigenvalues(self):
        """``(Re lambda, Im lambda, gamma)``, each (N,), from the current parameters."""
        p = self.params
        r = np.exp(-np.exp(p["nu_log"]))
        ph = np.exp(p["theta_log"])
        return r * np.cos(ph), r * np.sin(ph), np.exp(p["gamma_log"])

    def step(self, x_t, states, training=False):
        hr_p, hi_p = states
        N = self.n
        lr, li, gam = self.eigenvalues()
        k = x_t @ self.params["kernel"]                         # (B, 2N + units)
        ur, ui = k[:, :N], k[:, N:2 * N]                        # x_t B
        hr = lr * hr_p - li * hi_p + gam * ur                   # lambda h_{t-1} + gamma x_t B
        hi = li * hr_p + lr * hi_p + gam * ui
        C = self.params["output_kernel"]
        y = hr @ C[:N] - hi @ C[N:] + k[:, 2 * N:]              # Re(h C) + x_t D
        return y, [hr, hi], (x_t, hr_p, hi_p, hr, hi, k, lr, li, gam)

    def step_backward(self, dy_t, dstates, cache):
        x_t, hr_p, hi_p, hr, hi, k, lr, li, gam = cache
        N, p = self.n, self.params
        C = p["output_kernel"]
        dC = np.concatenate([hr.T @ dy_t, -(hi.T @ dy_t)])      # y = hr C_re - hi C_im
        dhr = dstates[0] + dy_t @ C[:N].T
        dhi = dstates[1] - dy_t @ C[N:].T
        dk = np.empty_like(k)
        dk[:, :N] = dhr * gam                                   # h = ... + gamma u
        dk[:, N:2 * N] = dhi * gam
        dk[:, 2 * N:] = dy_t                                    # y = ... + x D
        dgam = (dhr * k[:, :N] + dhi * k[:, N:2 * N]).sum(0)
        dlr = (dhr * hr_p + dhi * hi_p).sum(0)                  # dL/dlambda = sum G conj(h_prev)
        dli = (dhi * hr_p - dhr * hi_p).sum(0)
        dparams = lambda_grads(p, lr, li, gam, dlr, dli, dgam)
        dhr_p = lr * dhr + li * dhi                             # conj(lambda) * G
        dhi_p = lr * dhi - li * dhr
        return dk @ p["kernel"].T, [dhr_p, dhi_p], dparams + [x_t.T @ dk, dC]

    def get_config(self):
        return {"units": self.units, "state_size": self.n, "r_min": self.r_min,
                "r_max": self.r_max, "max_phase": self.max_phase,
                "kernel_initializer": None if self.kernel_initializer is None else
                _init.serialize(self.kernel_initializer),
                "output_initializer": None if self.output_initializer is None else
                _init.serialize(self.output_initializer),
                "kernel_regularizer": _reg.serialize(self.kernel_regularizer),
                "output_regularizer": _reg.serialize(self.output_regularizer),
                **super().get_config()}

    def __repr__(self):
        return f"<LRUCell units={self.units} state_size={self.n}>"


def lambda_grads(p, lr, li, gam, dlr, dli, dgam):
    """``[dnu_log, dtheta_log, dgamma_log]`` from dL/d(Re lambda), dL/d(Im lambda), dL/dgamma."""
    e_nu, ph = np.exp(p["nu_log"]), np.exp(p["theta_log"])
    r = np.exp(-e_nu)
    dr = dlr * np.cos(ph) + dli * np.sin(ph)                    # lambda = r e^{i ph}
    dph = dli * lr - dlr * li
    return [dr * r * -e_nu, dph * ph, dgam * gam]


def _backend_rng():
    from .. import _backend
    return _backend.rng()
