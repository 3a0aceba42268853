r"""Step Jacobians of a recurrent cell and their spectra along a real sequence.

The gradient ``k`` steps back is the last-step gradient times a product of ``k`` step
Jacobians, ``dL/ds_{T-k} = dL/ds_T · J_T J_{T-1} ... J_{T-k+1}`` with ``J_t = ds_t/ds_{t-1}``.
If the spectral norms of the ``J_t`` stay below 1 the product — and the gradient — shrinks
geometrically (vanishing); above 1 it can grow geometrically (exploding).

Matrix convention: ``J[i, j] = d s_t[i] / d s_{t-1}[j]`` for one sample, with the state ``s``
the concatenation of the cell's states (h for SimpleRNN and GRU, ``[h, c]`` for LSTM, size 2H).

The Jacobian is computed with the cell's OWN backward step, not a copy of its equations: the
step is run on ``S`` copies of the sample and ``step_backward`` is seeded with the ``S`` unit
vectors of ``ds_t``; row ``i`` of ``J`` is the ``dstates_prev`` of seed ``i``. So it works for
every cell following the protocol, built-in or not. A masked step carries the state
unchanged, so its Jacobian is the identity.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._replay import Replay, check_recurrent_layer


def cell_step_jacobian(cell, x_t, states):
    """Analytic Jacobian ``ds_t/ds_{t-1}`` of one step of ``cell`` for one sample.

    Args:
        cell: a built cell (:class:`rnnkit.cells.Cell`).
        x_t: (F,) or (1, F) the step's input.
        states: the states before the step, each (n,) or (1, n).

    Returns:
        (S, S) array, ``S = sum(cell.state_size)``.
    """
    if not callable(getattr(cell, "step_backward", None)) or not hasattr(cell, "state_size"):
        raise TypeError(f"cell_step_jacobian needs a cell following the rnnkit cell protocol "
                        f"(rnnkit.cells.Cell), got {type(cell).__name__}.")
    sizes = list(cell.state_size)
    S = sum(sizes)
    x_t = np.asarray(x_t).reshape(1, -1)
    rep = [np.repeat(np.asarray(s).reshape(1, -1), S, axis=0) for s in states]
    y, _, cache = cell.step(np.repeat(x_t, S, axis=0), rep)
    eye = np.eye(S, dtype=y.dtype)
    seeds = np.split(eye, np.cumsum(sizes)[:-1], axis=1)                 # ds_t = e_i
    _, dprev, _ = cell.step_backward(np.zeros_like(y), list(seeds), cache)
    return np.concatenate([np.asarray(d) for d in dprev], axis=1)


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
        layer: a built recurrent layer (RNN, SimpleRNN, LSTM, GRU; its current weights).
        x: (T, F) one sequence, or (B, T, F) a batch from which ``sample`` is taken.
        sample: index of the sequence in the batch.
        mask: optional (T,) or (B, T) bool mask; masked steps get the identity.

    Returns:
        (T, S, S) array, ``S = sum(cell.state_size)`` (2 * units for LSTM), in processing
        order (reversed in time when ``go_backwards``).
    """
    check_recurrent_layer(layer)
    xs = _one_sequence(x, sample)
    m = None
    if mask is not None:
        m = np.asarray(mask, bool)
        m = m[None] if m.ndim == 1 else m[sample:sample + 1]
    rp = Replay(layer, xs, m, dtype=np.float64)
    S = sum(rp.cell.state_size)
    T = rp.xs.shape[0]
    out = np.empty((T, S, S))
    states = rp.states0
    for t in range(T):
        if rp.mask is not None and not rp.mask[t, 0]:
            out[t] = np.eye(S)
            continue
        out[t] = cell_step_jacobian(rp.cell, rp.xs[t], states)
        states = rp.cell.step(rp.xs[t], states)[1]
    return out


@dataclasses.dataclass
class JacobianSpectrum:
    """Spectra of the recurrent kernel and of the step Jacobians along one sequence.

    Attributes:
        layer: layer name; cell: the layer's class name ('SimpleRNN', 'LSTM', 'RNN', ...).
        kernel_singular_values: (H,) singular values of the whole recurrent kernel (H, G)
            (empty when the cell has no ``recurrent_kernel``).
        gate_singular_values: ``{gate: (H,)}`` singular values of each gate's (H, H) block
            (cells that name their gates, ``cell.gate_names``).
        kernel_spectral_radius: largest |eigenvalue| of a square (H, H) recurrent kernel
            (SimpleRNN), or None.
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
        kernel = ("  recurrent kernel: none" if not len(self.kernel_singular_values) else
                  f"  recurrent kernel: largest singular value "
                  f"{self.kernel_singular_values[0]:.4g}")
        lines = [
            f"Jacobian spectrum of {self.layer!r} ({self.cell}), T = {T}",
            kernel + ("" if self.kernel_spectral_radius is None
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


def jacobian_spectrum(layer, x, sample=0, mask=None):
    """Singular values of ``layer``'s recurrent kernel and of its step Jacobians along ``x``.

    Args:
        layer: a built recurrent layer (RNN, SimpleRNN, LSTM, GRU).
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
    U = layer.cell.params.get("recurrent_kernel")
    gate_sv, radius, kernel_sv = {}, None, np.empty(0)
    if U is not None:
        U = np.asarray(U, np.float64)
        H = U.shape[0]
        kernel_sv = np.linalg.svd(U, compute_uv=False)
        gates = getattr(layer.cell, "gate_names", ())
        if U.shape[1] == len(gates) * H:
            gate_sv = {g: np.linalg.svd(U[:, k * H:(k + 1) * H], compute_uv=False)
                       for k, g in enumerate(gates)}
        if U.shape == (H, H):
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
        kernel_singular_values=kernel_sv,
        gate_singular_values=gate_sv, kernel_spectral_radius=radius,
        step_singular_values=sv, step_spectral_norms=sv[:, 0].copy(),
        product_spectral_norms=prod, log10_product_spectral_norms=logp)
