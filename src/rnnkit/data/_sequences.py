"""Padding of variable-length sequences into one rectangular array."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ._validation import check_int

__all__ = ["pad_sequences"]

_SIDES = ("pre", "post")


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: DTypeLike = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad (and truncate) sequences to a common length, with Keras semantics.

    Behaves like ``keras.utils.pad_sequences``: sequences longer than
    ``maxlen`` are truncated, shorter ones are padded with ``value``, and
    empty sequences become all-``value`` rows.

    Parameters
    ----------
    sequences : sequence of array-like
        ``N`` sequences. Each is either 1-D (a list of token ids, shape
        ``(T_i,)``) or has trailing feature dimensions, e.g. ``(T_i, C)``;
        the trailing shape must be the same for every non-empty sequence.
    maxlen : int, optional
        Length of the output time axis. Defaults to the longest sequence.
    dtype : numpy dtype, default "int32"
        Output dtype. As in Keras the default is ``int32``, which suits token
        ids; pass ``"float32"`` for real-valued features, otherwise they are
        truncated to integers.
    padding : {"pre", "post"}, default "pre"
        Pad at the start (``"pre"``) or the end (``"post"``) of each sequence.
    truncating : {"pre", "post"}, default "pre"
        Drop the first (``"pre"``) or last (``"post"``) time steps of
        sequences longer than ``maxlen``.
    value : scalar, default 0.0
        Padding value (cast to ``dtype``).

    Returns
    -------
    numpy.ndarray
        Shape ``(N, maxlen)`` for 1-D sequences or ``(N, maxlen, *feature_shape)``
        for sequences of shape ``(T_i, *feature_shape)``.

    Raises
    ------
    ValueError
        If ``sequences`` is empty, ``padding``/``truncating`` is not ``"pre"``
        or ``"post"``, an element is not a sequence, the non-empty sequences
        have different trailing shapes, or ``value`` is a string while
        ``dtype`` is numeric.
    TypeError
        If ``maxlen`` is not an integer.

    Examples
    --------
    >>> pad_sequences([[1, 2, 3], [4, 5], [6]])
    array([[1, 2, 3],
           [0, 4, 5],
           [0, 0, 6]], dtype=int32)
    >>> pad_sequences([[1, 2, 3], [4, 5]], maxlen=2, padding="post", truncating="post")
    array([[1, 2],
           [4, 5]], dtype=int32)
    """
    if padding not in _SIDES:
        raise ValueError(
            f"`padding` must be 'pre' or 'post', got {padding!r}; use 'pre' to pad at the "
            "start of each sequence or 'post' to pad at the end."
        )
    if truncating not in _SIDES:
        raise ValueError(
            f"`truncating` must be 'pre' or 'post', got {truncating!r}; use 'pre' to drop "
            "the first time steps of long sequences or 'post' to drop the last ones."
        )
    if not hasattr(sequences, "__len__"):
        raise ValueError(
            f"`sequences` must be a list (or other sized sequence) of sequences, got "
            f"{type(sequences).__name__}; wrap a generator in list(...)."
        )
    if len(sequences) == 0:
        raise ValueError(
            "`sequences` is empty; pass at least one sequence (an empty sequence such as "
            "[[]] is allowed and becomes a row of padding)."
        )
    if maxlen is not None:
        maxlen = check_int(maxlen, "maxlen", minimum=1)

    lengths = []
    sample_shape: tuple[int, ...] | None = None
    for i, seq in enumerate(sequences):
        try:
            n = len(seq)
        except TypeError:
            raise ValueError(
                f"`sequences[{i}]` is not a sequence (got {type(seq).__name__}: {seq!r}); "
                "every element must be a list or array of time steps."
            ) from None
        lengths.append(n)
        if sample_shape is None and n:
            sample_shape = np.asarray(seq).shape[1:]
    if sample_shape is None:  # every sequence is empty
        sample_shape = ()
    if maxlen is None:
        maxlen = max(lengths)

    out_dtype = np.dtype(dtype)
    if isinstance(value, str) and out_dtype.kind not in "OUS":
        raise ValueError(
            f"`dtype` {out_dtype} is not compatible with the string padding value {value!r}; "
            "pass dtype=object or a string dtype, or use a numeric `value`."
        )

    x = np.full((len(sequences), maxlen, *sample_shape), value, dtype=out_dtype)
    for i, seq in enumerate(sequences):
        if not lengths[i]:
            continue  # an empty sequence stays all padding
        trunc = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        trunc = np.asarray(trunc, dtype=out_dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(
                f"`sequences[{i}]` has time-step shape {trunc.shape[1:]}, but the first "
                f"non-empty sequence has {sample_shape}; all sequences must have the same "
                "shape after the time axis (e.g. the same number of channels C in (T_i, C))."
            )
        if padding == "post":
            x[i, : len(trunc)] = trunc
        else:
            x[i, -len(trunc) :] = trunc
    return x
