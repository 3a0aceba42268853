"""Loaders for the small datasets shipped in ``rnnkit/data/builtin``.

See ``builtin/LICENSES.md`` for each dataset's source, licence and citation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ._csvfile import load_csv
from ._synthetic import adding_problem
from ._ts import load_ts

__all__ = [
    "BUILTIN_DATASETS",
    "load_airline",
    "load_builtin",
    "load_japanese_vowels",
    "load_shakespeare",
]


def _builtin_file(*parts: str) -> AbstractContextManager[Path]:
    """Context manager giving a real filesystem path to a shipped data file."""
    return resources.as_file(resources.files(__package__).joinpath("builtin", *parts))


def load_japanese_vowels() -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Load the Japanese Vowels speaker-recognition dataset (UCI / UEA archive).

    Nine male speakers uttered the Japanese vowels /ae/; each utterance is a
    sequence of 12 LPC cepstrum coefficients with 7 to 29 frames. The task is
    to identify the speaker. The training set has 30 utterances per speaker;
    the test set has 24 to 88.

    Returns
    -------
    x_train : list of numpy.ndarray
        270 float32 arrays of shape ``(T_i, 12)``, ``7 <= T_i <= 29``.
    y_train : numpy.ndarray, shape (270,), int64
        Speaker ids ``0..8`` (the file's labels ``1..9`` minus 1).
    x_test : list of numpy.ndarray
        370 float32 arrays of shape ``(T_i, 12)``.
    y_test : numpy.ndarray, shape (370,), int64
        Speaker ids ``0..8``.

    Notes
    -----
    Licence CC BY 4.0. Cite: M. Kudo, J. Toyama, M. Shimbo (1999).
    Multidimensional Curve Classification Using Passing-Through Regions.
    Pattern Recognition Letters 20(11-13):1103-1111. Batch series of unequal
    length with :func:`pad_sequences` (``dtype="float32"``).

    Examples
    --------
    >>> x_train, y_train, x_test, y_test = load_japanese_vowels()
    >>> len(x_train), x_train[0].shape, y_train[:3]
    (270, (20, 12), array([0, 0, 0]))
    """
    splits = []
    for split in ("TRAIN", "TEST"):
        with _builtin_file("japanese_vowels", f"JapaneseVowels_{split}.ts") as path:
            x, labels = load_ts(path)
        splits.append((x, labels.astype(np.int64) - 1))
    (x_train, y_train), (x_test, y_test) = splits
    return x_train, y_train, x_test, y_test


def load_airline(
    return_dates: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[str]]:
    """Load the Box & Jenkins monthly airline passenger series (1949-1960).

    Monthly totals of international airline passengers, in thousands, from
    January 1949 to December 1960: a classic series with trend and
    multiplicative yearly seasonality.

    Parameters
    ----------
    return_dates : bool, default False
        Also return the month of each value.

    Returns
    -------
    passengers : numpy.ndarray, shape (144,), float32
        Passengers (thousands); ``passengers[0] == 112``, ``passengers[-1] == 432``.
    dates : list of str, length 144
        Only if ``return_dates``: months as ``"YYYY-MM"``, ``"1949-01"`` to
        ``"1960-12"``.

    Notes
    -----
    Source: G. E. P. Box, G. M. Jenkins, G. C. Reinsel, *Time Series
    Analysis: Forecasting and Control* (series G). Public-domain data.

    Examples
    --------
    >>> y, months = load_airline(return_dates=True)
    >>> y.shape, months[0], float(y[0])
    ((144,), '1949-01', 112.0)
    """
    with _builtin_file("airline", "airline.csv") as path:
        series = load_csv(path, columns=["Passengers"], date_column="Date")
    passengers = series.values[:, 0].copy()
    if return_dates:
        return passengers, list(series.dates or [])
    return passengers


def load_shakespeare() -> str:
    """Load the full text of Shakespeare's *The Tempest* (about 98 KB).

    The public-domain Project Gutenberg text, with the Project Gutenberg
    header, footer and trademarks removed. A standard corpus for
    character-level language models (see :class:`CharVocab`).

    Returns
    -------
    str
        The play, with ``"\\n"`` line endings (about 98,000 characters).

    Examples
    --------
    >>> text = load_shakespeare()
    >>> text.splitlines()[0]
    'THE TEMPEST'
    """
    with _builtin_file("shakespeare", "tempest.txt") as path:
        return path.read_text(encoding="utf-8")


def _load_adding(
    n_samples: int = 10_000, T: int = 100, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem with reproducible defaults; see :func:`adding_problem`.

    Returns
    -------
    x : numpy.ndarray, shape (n_samples, T, 2), float32
    y : numpy.ndarray, shape (n_samples, 1), float32
    """
    return adding_problem(n_samples, T, seed=seed)


_LOADERS: dict[str, Callable[..., Any]] = {
    "japanese_vowels": load_japanese_vowels,
    "adding": _load_adding,
    "airline": load_airline,
    "shakespeare": load_shakespeare,
}

#: Names accepted by :func:`load_builtin`.
BUILTIN_DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load_builtin(name: str, **kwargs: Any) -> Any:
    """Load a built-in dataset by name.

    Parameters
    ----------
    name : {"japanese_vowels", "adding", "airline", "shakespeare"}
        Dataset name (case-insensitive; ``-`` and spaces are read as ``_``).
    **kwargs
        Passed to the loader: :func:`load_japanese_vowels` and
        :func:`load_shakespeare` take none; :func:`load_airline` takes
        ``return_dates``; ``"adding"`` takes ``n_samples`` (default 10000),
        ``T`` (default 100) and ``seed`` (default 0) -- see
        :func:`adding_problem`.

    Returns
    -------
    object
        Whatever the loader returns:

        * ``"japanese_vowels"``: ``(x_train, y_train, x_test, y_test)``, lists
          of ``(T_i, 12)`` float32 arrays and int64 labels ``0..8``;
        * ``"adding"``: ``(x, y)`` of shapes ``(n_samples, T, 2)`` and
          ``(n_samples, 1)``;
        * ``"airline"``: ``(144,)`` float32 array (plus dates if
          ``return_dates=True``);
        * ``"shakespeare"``: ``str``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the names above (the message lists them).

    Examples
    --------
    >>> x, y = load_builtin("adding", n_samples=8, T=20, seed=1)
    >>> x.shape, y.shape
    ((8, 20, 2), (8, 1))
    """
    key = (
        name.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(name, str) else None
    )
    if key not in _LOADERS:
        raise ValueError(
            f"unknown built-in dataset {name!r}; valid names are: {', '.join(BUILTIN_DATASETS)}."
        )
    return _LOADERS[key](**kwargs)
