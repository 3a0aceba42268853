"""Synthetic benchmark tasks for recurrent networks."""

from __future__ import annotations

import numpy as np

from ._validation import check_int

__all__ = ["adding_problem"]


def adding_problem(
    n_samples: int,
    T: int,
    seed: int | np.random.SeedSequence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the adding problem, a long-range memory benchmark.

    Each input sequence has two channels. Channel 0 holds values drawn
    uniformly from ``[0, 1)``; channel 1 is a marker that is 1 at exactly two
    time steps, one in the first half (``t < T // 2``) and one in the second
    half (``t >= T // 2``), and 0 elsewhere. The target is the sum of the two
    marked values. This is the variant of Hochreiter & Schmidhuber (1997)
    used by Le, Jaitly & Hinton (2015) and Arjovsky, Shah & Bengio (2016).

    Predicting the constant 1 (the mean target) gives a mean squared error
    of ``Var(U1 + U2) = 2/12 ≈ 0.167``; a model must beat this to show it
    has learned to remember the marked values.

    Parameters
    ----------
    n_samples : int
        Number of sequences ``N`` (>= 1).
    T : int
        Sequence length (>= 2). Larger ``T`` puts the markers further apart
        and makes the task harder.
    seed : int, numpy.random.SeedSequence or None, optional
        Seed for :func:`numpy.random.default_rng`; the same seed always gives
        the same data. ``None`` draws fresh entropy.

    Returns
    -------
    x : numpy.ndarray, shape (N, T, 2), float32
        Inputs: ``x[..., 0]`` the values, ``x[..., 1]`` the 0/1 markers.
    y : numpy.ndarray, shape (N, 1), float32
        Targets, ``y[i, 0] = sum_t x[i, t, 0] * x[i, t, 1]``.

    References
    ----------
    S. Hochreiter, J. Schmidhuber (1997). Long Short-Term Memory. Neural
    Computation 9(8):1735-1780.
    Q. V. Le, N. Jaitly, G. E. Hinton (2015). A Simple Way to Initialize
    Recurrent Networks of Rectified Linear Units. arXiv:1504.00941.
    M. Arjovsky, A. Shah, Y. Bengio (2016). Unitary Evolution Recurrent
    Neural Networks. ICML.

    Examples
    --------
    >>> x, y = adding_problem(4, 10, seed=0)
    >>> x.shape, y.shape
    ((4, 10, 2), (4, 1))
    >>> x[..., 1].sum(axis=1)
    array([2., 2., 2., 2.], dtype=float32)
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    T = check_int(T, "T", minimum=2)
    rng = np.random.default_rng(seed)

    values = rng.random((n_samples, T), dtype=np.float32)
    half = T // 2
    first = rng.integers(0, half, size=n_samples)
    second = rng.integers(half, T, size=n_samples)

    rows = np.arange(n_samples)
    markers = np.zeros((n_samples, T), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0

    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second]).reshape(n_samples, 1)
    return x, y.astype(np.float32, copy=False)
