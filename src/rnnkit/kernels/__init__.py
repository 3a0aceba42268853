"""Sequence kernels: a cell run over all T steps, forward and backward (BPTT).

Two implementations with one signature:

* :mod:`rnnkit.kernels.reference` — the pure-NumPy loop over :mod:`rnnkit.cells`, the
  ground truth.
* :mod:`rnnkit.kernels.fast` — compiled (numba) kernels for the default activations.

:func:`forward_sequence` / :func:`backward_sequence` pick the fast path when it supports the
cell, unless ``RNNKIT_KERNELS=reference`` is set in the environment or
:func:`set_kernel_mode` chose ``'reference'``.
"""

from __future__ import annotations

import os

from .. import cells
from . import reference

_MODE = os.environ.get("RNNKIT_KERNELS", "auto")


def set_kernel_mode(mode: str) -> None:
    """Choose 'auto' (fast path where supported) or 'reference' (pure NumPy everywhere)."""
    global _MODE
    if mode not in ("auto", "reference", "fast"):
        raise ValueError(f"kernel mode must be 'auto', 'reference' or 'fast', got {mode!r}.")
    _MODE = mode


def get_kernel_mode() -> str:
    return _MODE


def _impl(cell):
    if _MODE == "reference":
        return reference
    try:
        from . import fast
    except ImportError:  # numba missing: the reference path is always correct
        return reference
    if fast.supports(cell):
        return fast
    if _MODE == "fast":
        raise ValueError(f"The fast kernels do not support {cell!r}; use mode 'auto'.")
    return reference


def lstm_step(cell, x, W, U, b, states):
    """One inference step of an LSTM cell with the compiled kernel, or None when the fast
    path does not serve this cell or dtype (the caller then uses :func:`forward_sequence`).

    Args: x (B, F); W (F, 4H); U (H, 4H); b (4H,) or None; states (h, c) each (B, H).
    Returns: ``(h, c)`` new (B, H) arrays, or None.
    """
    impl = _impl(cell)
    if impl is reference or not isinstance(cell, cells.LSTMMath) or U.dtype not in impl._DTYPES:
        return None
    return impl.lstm_step(x, W, U, b, states)


def infer_sequence(cell, x, W, U, b_in, b_rec, states0, mask=None, go_backwards=False,
                   return_sequences=True):
    """Cache-free inference over a sequence with the compiled kernels, or None when the fast
    path does not serve this cell or dtype (the caller then uses :func:`forward_sequence`).

    Args: x (B, T, F); W (F, G); U (H, G); b_in / b_rec (G,) or None; states0 tuple of
    (B, H); mask (T, B) bool or None. Returns ``(out (B, T, H) or None, final states)``;
    see :func:`rnnkit.kernels.fast.infer_sequence`.
    """
    impl = _impl(cell)
    if impl is reference or not impl.infer_supported(cell) or U.dtype not in impl._DTYPES:
        return None
    return impl.infer_sequence(cell, x, W, U, b_in, b_rec, states0, mask, go_backwards,
                               return_sequences)


def forward_sequence(cell, xw, states0, U, b_rec=None, mask=None, rmask=None, ws=None):
    """Run ``cell`` over time. See :func:`rnnkit.kernels.reference.forward_sequence`.

    ``ws``: optional dict of reusable buffers (:func:`rnnkit.kernels.threads.workspace`),
    used by the compiled path."""
    impl = _impl(cell)
    out = impl.forward_sequence(cell, xw, states0, U, b_rec, mask, rmask, ws=ws)
    return out[0], out[1], (impl, out[2])


def backward_sequence(cell, cache, dhs, dstates, U, b_rec=None, mask=None, rmask=None,
                      ws=None):
    """BPTT through ``cell``. See :func:`rnnkit.kernels.reference.backward_sequence`."""
    impl, inner = cache
    return impl.backward_sequence(cell, inner, dhs, dstates, U, b_rec, mask, rmask, ws=ws)
