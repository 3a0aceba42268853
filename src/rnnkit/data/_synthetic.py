"""Synthetic benchmark tasks for recurrent networks."""

from __future__ import annotations

import numpy as np

from ._validation import check_int

__all__ = ["adding_problem", "copy_memory", "selective_copying"]


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


def copy_memory(
    n_samples: int,
    delay: int,
    length: int = 10,
    n_symbols: int = 8,
    seed: int | np.random.SeedSequence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the copy-memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    A sequence of ``length`` random symbols from ``1..n_symbols`` is followed by ``delay - 1``
    blanks (symbol 0), a cue (symbol ``n_symbols + 1``) and ``length`` more blanks. The model
    must output blanks everywhere except the last ``length`` steps, where it must reproduce
    the symbols in order: it has to hold them for ``delay + length`` steps.

    Args:
        n_samples: number of sequences N (>= 1).
        delay: blanks between the symbols and the cue, plus one (>= 1).
        length: symbols to copy (>= 1).
        n_symbols: alphabet size (>= 2); guessing a symbol scores ``1 / n_symbols``.
        seed: seed for :func:`numpy.random.default_rng`.

    Returns:
        x: (N, T, n_symbols + 2) float32 one-hot inputs, ``T = delay + 2 * length``.
        y: (N, T) int64 target symbols per step (0 = blank).

    Example:
        >>> x, y = copy_memory(2, delay=5, length=3, seed=0)
        >>> x.shape, y.shape, int(x[0, 7].argmax())          # the cue at step delay + length - 1
        ((2, 11, 10), (2, 11), 9)
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    delay = check_int(delay, "delay", minimum=1)
    length = check_int(length, "length", minimum=1)
    n_symbols = check_int(n_symbols, "n_symbols", minimum=2)
    rng = np.random.default_rng(seed)
    T = delay + 2 * length
    sym = rng.integers(1, n_symbols + 1, size=(n_samples, length))
    seq = np.zeros((n_samples, T), np.int64)
    seq[:, :length] = sym
    seq[:, delay + length - 1] = n_symbols + 1
    y = np.zeros((n_samples, T), np.int64)
    y[:, -length:] = sym
    x = np.eye(n_symbols + 2, dtype=np.float32)[seq]
    return x, y


def selective_copying(
    n_samples: int,
    T: int,
    n_memorize: int = 4,
    n_symbols: int = 8,
    seed: int | np.random.SeedSequence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the selective-copying task (Gu & Dao 2023, the Mamba paper).

    ``n_memorize`` symbols from ``1..n_symbols`` are scattered at random positions (in order)
    among ``T`` blanks; then ``n_memorize`` cue steps (symbol ``n_symbols + 1``) ask for the
    symbols in the order they appeared. Unlike copy memory the positions vary, so a model
    cannot count steps: it has to select by content.

    Args:
        n_samples: number of sequences N (>= 1).
        T: length of the scattered part (>= n_memorize).
        n_memorize: symbols to recall (>= 1).
        n_symbols: alphabet size (>= 2); guessing scores ``1 / n_symbols``.
        seed: seed for :func:`numpy.random.default_rng`.

    Returns:
        x: (N, T + n_memorize, n_symbols + 2) float32 one-hot inputs.
        y: (N, n_memorize) int64: the symbols in order of appearance, to be read from the
            outputs at the last ``n_memorize`` steps.

    Example:
        >>> x, y = selective_copying(2, T=12, n_memorize=3, seed=0)
        >>> x.shape, y.shape
        ((2, 15, 10), (2, 3))
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_memorize = check_int(n_memorize, "n_memorize", minimum=1)
    T = check_int(T, "T", minimum=n_memorize)
    n_symbols = check_int(n_symbols, "n_symbols", minimum=2)
    rng = np.random.default_rng(seed)
    seq = np.zeros((n_samples, T + n_memorize), np.int64)
    y = rng.integers(1, n_symbols + 1, size=(n_samples, n_memorize))
    for i in range(n_samples):
        pos = np.sort(rng.choice(T, n_memorize, replace=False))
        seq[i, pos] = y[i]
    seq[:, T:] = n_symbols + 1
    return np.eye(n_symbols + 2, dtype=np.float32)[seq], y
