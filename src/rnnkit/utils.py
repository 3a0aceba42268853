"""Small helpers: seeding, padding, one-hot encoding."""

from __future__ import annotations

import numpy as np

from ._backend import set_random_seed
from .data import pad_sequences


def to_categorical(y, num_classes=None, dtype="float32"):
    """Integer class ids (N,) -> one-hot (N, num_classes), as ``keras.utils.to_categorical``."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        raise ValueError("to_categorical expects integer class ids, got non-integer floats.")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"to_categorical: labels must be in [0, {num_classes}), got {y.min()}..{y.max()}."
        )
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def pad_ragged(sequences, dtype="float32"):
    """Pad a list of sequences of different lengths at the end and return the mask.

    Args:
        sequences: list of N arrays shaped (T_i,) (token ids) or (T_i, F).

    Returns:
        x: (N, max T_i) or (N, max T_i, F) padded with zeros.
        mask: (N, max T_i) bool, True at real steps.
    """
    seqs = [np.asarray(s) for s in sequences]
    if not seqs:
        raise ValueError("Got an empty list of sequences.")
    trailing = {s.shape[1:] for s in seqs}
    if len(trailing) > 1:
        raise ValueError(
            f"All sequences must have the same feature shape, got {sorted(trailing)}."
        )
    lengths = [len(s) for s in seqs]
    if min(lengths) == 0:
        i = lengths.index(0)
        raise ValueError(
            f"Sequence {i} has length 0; every sequence needs at least one step. Drop empty "
            "sequences, or pad them yourself (rnnkit.utils.pad_sequences) and add a Masking "
            "layer, which turns an empty sequence into a fully masked row."
        )
    kinds = {s.dtype.kind for s in seqs}
    if kinds - set("biuf"):
        raise TypeError(f"Sequences must hold numbers, got dtypes {sorted(str(s.dtype) for s in seqs)[:3]}.")
    is_ids = trailing == {()} and kinds <= set("biu")
    x = pad_sequences(seqs, dtype=np.int64 if is_ids else dtype, padding="post")
    mask = np.arange(x.shape[1]) < np.asarray(lengths)[:, None]
    return x, mask


__all__ = ["set_random_seed", "to_categorical", "pad_ragged", "pad_sequences"]
