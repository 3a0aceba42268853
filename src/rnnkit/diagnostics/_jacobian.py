r"""Step Jacobians of the recurrent cells and their spectra along a real sequence.

The gradient ``k`` steps back is the last-step gradient times a product of ``k`` step
Jacobians, ``dL/ds_{T-k} = dL/ds_T · J_T J_{T-1} ... J_{T-k+1}`` with ``J_t = ds_t/ds_{t-1}``.
If the spectral norms of the ``J_t`` stay below 1 the product — and the gradient — shrinks
geometrically (vanishing); above 1 it can grow geometrically (exploding).

Matrix convention: ``J[i, j] = d s_t[i] / d s_{t-1}[j]`` for one sample, with the state ``s`` = h
(SimpleRNN, GRU) or the concatenation ``[h, c]`` (LSTM, size 2H). Derivations (Keras layout,
``z = xw_t + h_{t-1} U``, ``U_g`` the columns of gate ``g``, ``D(v)`` = diag(v), ``'`` the
activation derivative at the step's pre-activation):

* SimpleRNN: ``J = D(phi') U^T``.
* LSTM: ``dI = D(sigma'_i) U_i^T`` and likewise ``dF, dG (tanh'), dO``;
  ``dc/dh = D(c_{t-1}) dF + D(g) dI + D(i) dG``, ``dc/dc = D(f)``;
  ``dh/dh = D(tanh(c_t)) dO + D(o * tanh'(c_t)) dc/dh``, ``dh/dc = D(o * tanh'(c_t) * f)``.
* GRU (reset_after=True): ``dZ = D(sigma'_z) U_z^T``, ``dR = D(sigma'_r) U_r^T``,
  ``dHH = D(tanh'_h) (D(h_{t-1} U_h + b'_h) dR + D(r) U_h^T)``,
  ``J = D(z) + D(h_{t-1} - hh) dZ + D(1 - z) dHH``.
* GRU (reset_after=False): as above with ``dHH = D(tanh'_h) U_h^T (D(h_{t-1}) dR + D(r))``.

A masked step carries the state unchanged, so its Jacobian is the identity.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import cells
from ._replay import Replay, check_recurrent_layer


def _d(v):
    return np.diag(v)


def cell_step_jacobian(cell, cache, U, b_rec=None):
    """Analytic Jacobian ``ds_t/ds_{t-1}`` of one step for one sample.

    Args:
        cell: a cell-math object from :mod:`rnnkit.cells`.
        cache: the step cache from ``cell.forward_step`` for a batch of ONE sample.
        U: (H, G) recurrent kernel; b_rec: (G,) recurrent bias (GRU reset_after) or None.

    Returns:
        (S, S) array, ``S = H`` (SimpleRNN, GRU) or ``2H`` (LSTM, state ``[h, c]``).
    """
    H = U.shape[0]
    if isinstance(cell, cells.SimpleRNNMath):
        z, h = cache["z"][0], cache["h"][0]
        return _d(cell.act.grad(z, h)) @ U.T
    if isinstance(cell, cells.LSTMMath):
        z = cache["z"][0]
        i, f, g, o = cache["i"][0], cache["f"][0], cache["g"][0], cache["o"][0]
        c_prev, c, ac = cache["c_prev"][0], cache["c"][0], cache["ac"][0]
        Ui, Uf, Ug, Uo = U[:, :H], U[:, H:2 * H], U[:, 2 * H:3 * H], U[:, 3 * H:]
        dI = _d(cell.ract.grad(z[:H], i)) @ Ui.T
        dF = _d(cell.ract.grad(z[H:2 * H], f)) @ Uf.T
        dG = _d(cell.act.grad(z[2 * H:3 * H], g)) @ Ug.T
        dO = _d(cell.ract.grad(z[3 * H:], o)) @ Uo.T
        dc_dh = _d(c_prev) @ dF + _d(g) @ dI + _d(i) @ dG
        dc_dc = _d(f)
        oa = o * cell.act.grad(c, ac)
        dh_dh = _d(ac) @ dO + _d(oa) @ dc_dh
        dh_dc = _d(oa * f)
        return np.block([[dh_dh, dh_dc], [dc_dh, dc_dc]])
    if isinstance(cell, cells.GRUMath):
        z, r, hh = cache["z"][0], cache["r"][0], cache["hh"][0]
        h_prev = cache["h_prev"][0]
        Uz, Ur, Uh = U[:, :H], U[:, H:2 * H], U[:, 2 * H:]
        dZ = _d(cell.ract.grad(cache["zz"][0], z)) @ Uz.T
        dR = _d(cell.ract.grad(cache["zr"][0], r)) @ Ur.T
        if cell.reset_after:
            rec = cache["rec"][0]                                # h_{t-1} U_h + b'_h
            dzh = _d(rec) @ dR + _d(r) @ Uh.T
        else:
            dzh = Uh.T @ (_d(h_prev) @ dR + _d(r))
        dHH = _d(cell.act.grad(cache["zh"][0], hh)) @ dzh
        return _d(z) + _d(h_prev - hh) @ dZ + _d(1.0 - z) @ dHH
    raise TypeError(
        f"cell_step_jacobian supports SimpleRNNMath, LSTMMath and GRUMath cells, got "
        f"{type(cell).__name__}."
    )


def _one_sequence(x, sample):
    x = np.asarray(x, np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(
            f"x must be one sequence (T, F) or a batch (B, T, F), got shape {x.shape}."
        )
    if not 0 <= sample < x.shape[0]:
        raise ValueError(f"sample must be in [0, {x.shape[0]}), got {sample}.")
    return x[sample:sample + 1]


def step_jacobians(layer, x, sample=0, mask=None):
    """Analytic step Jacobians ``ds_t/ds_{t-1}`` of ``layer`` along one real sequence (float64).

    Args:
        layer: a built SimpleRNN, LSTM or GRU layer (its current weights are used).
        x: (T, F) one sequence, or (B, T, F) a batch from which ``sample`` is taken.
        sample: index of the sequence in the batch.
        mask: optional (T,) or (B, T) bool mask; masked steps get the identity.

    Returns:
        (T, S, S) array, ``S = units`` (2 * units for LSTM), in processing order
        (reversed in time when ``go_backwards``).
    """
    check_recurrent_layer(layer)
    xs = _one_sequence(x, sample)
    m = None
    if mask is not None:
        m = np.asarray(mask, bool)
        m = m[None] if m.ndim == 1 else m[sample:sample + 1]
    rp = Replay(layer, xs, m, dtype=np.float64)
    S = layer.units * layer.n_states
    out = np.empty((len(rp.caches), S, S))
    for t, cache in enumerate(rp.caches):
        if rp.mask is not None and not rp.mask[t, 0]:
            out[t] = np.eye(S)
        else:
            out[t] = cell_step_jacobian(rp.cell, cache, rp.U, rp.b_rec)
    return out


@dataclasses.dataclass
class JacobianSpectrum:
    """Spectra of the recurrent kernel and of the step Jacobians along one sequence.

    Attributes:
        layer: layer name; cell: 'SimpleRNN', 'LSTM' or 'GRU'.
        kernel_singular_values: (H,) singular values of the whole recurrent kernel (H, G).
        gate_singular_values: ``{gate: (H,)}`` singular values of each gate's (H, H) block.
        kernel_spectral_radius: largest |eigenvalue| of the (H, H) recurrent matrix
            (SimpleRNN), or None for gated cells.
        step_singular_values: (T, S) singular values of every step Jacobian, largest first.
        step_spectral_norms: (T,) ``||J_t||_2``.
        product_spectral_norms: (T,) entry ``k-1`` is ``||J_T J_{T-1} ... J_{T-k+1}||_2``, the
            largest possible gain of a gradient travelling ``k`` steps back from the end
            (k = 1..T). Computed with rescaling, so it does not overflow before float64 does.
        log10_product_spectral_norms: (T,) the same in log10 (finite even when the product is
            not representable).
    """

    layer: str
    cell: str
    kernel_singular_values: np.ndarray
    gate_singular_values: dict
    kernel_spectral_radius: float | None
    step_singular_values: np.ndarray
    step_spectral_norms: np.ndarray
    product_spectral_norms: np.ndarray
    log10_product_spectral_norms: np.ndarray

    def summary(self, print_fn=print):
        """Print the main numbers; returns the text."""
        T = len(self.step_spectral_norms)
        lines = [
            f"Jacobian spectrum of {self.layer!r} ({self.cell}), T = {T}",
            f"  recurrent kernel: largest singular value {self.kernel_singular_values[0]:.4g}"
            + ("" if self.kernel_spectral_radius is None
               else f", spectral radius {self.kernel_spectral_radius:.4g}"),
            f"  step Jacobians ||J_t||: min {self.step_spectral_norms.min():.4g}, median "
            f"{np.median(self.step_spectral_norms):.4g}, max {self.step_spectral_norms.max():.4g}",
        ]
        for k in sorted({1, min(10, T), min(50, T), T}):
            lines.append(f"  ||product of the last {k:>4d} Jacobians|| = "
                         f"1e{self.log10_product_spectral_norms[k - 1]:+.2f}")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


_GATES = {"SimpleRNNMath": ("h",), "LSTMMath": ("i", "f", "c", "o"), "GRUMath": ("z", "r", "h")}


def jacobian_spectrum(layer, x, sample=0, mask=None):
    """Singular values of ``layer``'s recurrent kernel and of its step Jacobians along ``x``.

    Args:
        layer: a built SimpleRNN, LSTM or GRU layer.
        x: (T, F) one sequence, or (B, T, F) a batch (``sample`` picks the sequence). For a
            layer that is not the first of a model, pass the input that layer receives.
        sample: index of the sequence in the batch.
        mask: optional (T,) or (B, T) bool mask.

    Returns:
        :class:`JacobianSpectrum`.

    Example:
        >>> import numpy as np, rnnkit
        >>> from rnnkit.diagnostics import jacobian_spectrum
        >>> layer = rnnkit.layers.SimpleRNN(8)
        >>> _ = layer(np.zeros((1, 20, 3)))
        >>> spec = jacobian_spectrum(layer, np.random.rand(20, 3))
        >>> spec.product_spectral_norms.shape
        (20,)
    """
    J = step_jacobians(layer, x, sample, mask)
    U = np.asarray(layer.params["recurrent_kernel"], np.float64)
    H = U.shape[0]
    gates = _GATES[type(layer.cell).__name__]
    gate_sv = {g: np.linalg.svd(U[:, k * H:(k + 1) * H], compute_uv=False)
               for k, g in enumerate(gates)}
    radius = None
    if len(gates) == 1:
        radius = float(np.max(np.abs(np.linalg.eigvals(U))))
    sv = np.linalg.svd(J, compute_uv=False)                               # (T, S)
    T, S = J.shape[0], J.shape[1]
    logp = np.empty(T)
    Q, log_scale = np.eye(S), 0.0
    for k in range(1, T + 1):
        Q = Q @ J[T - k]                       # d s_T / d s_{T-k}, up to the scale
        n = np.linalg.norm(Q, 2)
        if n == 0 or not np.isfinite(n):
            logp[k - 1:] = -np.inf if n == 0 else np.inf
            break
        log_scale += np.log10(n)
        logp[k - 1] = log_scale
        Q = Q / n
    with np.errstate(over="ignore"):
        prod = np.power(10.0, logp)
    return JacobianSpectrum(
        layer=layer.name, cell=type(layer).__name__,
        kernel_singular_values=np.linalg.svd(U, compute_uv=False),
        gate_singular_values=gate_sv, kernel_spectral_radius=radius,
        step_singular_values=sv, step_spectral_norms=sv[:, 0].copy(),
        product_spectral_norms=prod, log10_product_spectral_norms=logp)
