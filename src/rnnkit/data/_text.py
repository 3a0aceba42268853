"""Character- and word-level vocabularies for text models.

Both vocabularies reserve two ids:

* ``0`` -- ``"<pad>"``, the padding id. It matches the default ``value`` of
  :func:`pad_sequences`, is never produced by :meth:`encode`, and is skipped
  by :meth:`decode`, so ``decode(padded_row)`` gives back the text.
* ``1`` -- ``"<unk>"``, the unknown id. :meth:`encode` maps every character
  (or word) that was not seen by :meth:`fit` to it, and :meth:`decode` turns
  it into the string ``"<unk>"``.

Real tokens get ids ``2 .. size - 1``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from ._validation import check_int

__all__ = ["CharVocab", "WordVocab"]

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"


def _as_texts(text: str | Iterable[str], where: str) -> list[str]:
    if isinstance(text, str):
        return [text]
    try:
        texts = list(text)
    except TypeError:
        raise TypeError(
            f"{where}: expected a string or an iterable of strings, got {type(text).__name__}."
        ) from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"{where}: element {i} is {type(t).__name__}, not str; pass strings only."
            )
    return texts


class _Vocab:
    """Shared machinery: token <-> id maps, encode/decode and config I/O."""

    pad_token: ClassVar[str] = PAD_TOKEN
    unk_token: ClassVar[str] = UNK_TOKEN
    pad_id: ClassVar[int] = 0
    unk_id: ClassVar[int] = 1

    def __init__(self) -> None:
        self._tokens: list[str] = [PAD_TOKEN, UNK_TOKEN]
        self._index: dict[str, int] = {}

    # -- hooks for subclasses ----------------------------------------------
    def tokenize(self, text: str) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _join(self, tokens: list[str]) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _options(self) -> dict[str, Any]:
        return {}

    # -- building ----------------------------------------------------------
    def _set_tokens(self, tokens: list[str]) -> None:
        self._tokens = [PAD_TOKEN, UNK_TOKEN, *tokens]
        self._index = {tok: i for i, tok in enumerate(self._tokens) if i >= 2}

    @property
    def fitted(self) -> bool:
        """Whether the vocabulary holds any real tokens."""
        return len(self._tokens) > 2

    def _check_fitted(self, method: str) -> None:
        if not self.fitted:
            raise RuntimeError(
                f"{type(self).__name__}.{method}: the vocabulary is empty; call fit(text) "
                f"first or build it with {type(self).__name__}(text)."
            )

    @property
    def size(self) -> int:
        """Number of ids, including ``<pad>`` (0) and ``<unk>`` (1)."""
        return len(self._tokens)

    def __len__(self) -> int:
        return self.size

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order: ``tokens[i]`` is the token with id ``i``."""
        return list(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def token_to_id(self, token: str) -> int:
        """Id of ``token``, or ``unk_id`` (1) if it is not in the vocabulary."""
        return self._index.get(token, UNK_ID)

    def id_to_token(self, token_id: int) -> str:
        """Token with id ``token_id`` (``"<pad>"``/``"<unk>"`` for 0/1)."""
        if not 0 <= token_id < self.size:
            raise ValueError(
                f"{type(self).__name__}.id_to_token: id {token_id} is out of range; valid ids "
                f"are 0 .. {self.size - 1}."
            )
        return self._tokens[token_id]

    # -- encode / decode ---------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """Convert text to ids.

        Parameters
        ----------
        text : str
            Text to encode.

        Returns
        -------
        numpy.ndarray, shape (L,), int32
            One id per token (``L`` tokens); tokens not in the vocabulary map
            to ``unk_id`` (1).
        """
        self._check_fitted("encode")
        if not isinstance(text, str):
            raise TypeError(
                f"{type(self).__name__}.encode: expected a str, got {type(text).__name__}; "
                "encode one string at a time."
            )
        index = self._index
        return np.fromiter((index.get(tok, UNK_ID) for tok in self.tokenize(text)), dtype=np.int32)

    def _check_ids(self, ids: ArrayLike) -> list[int]:
        arr = np.asarray(ids)
        name = type(self).__name__
        if arr.ndim != 1:
            raise ValueError(
                f"{name}.decode: expected a 1-D sequence of ids, got shape {arr.shape}; decode "
                "one row at a time, e.g. [vocab.decode(row) for row in batch]."
            )
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
                raise ValueError(
                    f"{name}.decode: ids must be integers, got dtype {arr.dtype}; for model "
                    "outputs take the argmax over the vocabulary axis first."
                )
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.size)
        if bad.any():
            raise ValueError(
                f"{name}.decode: id {int(arr[bad][0])} is out of range; valid ids are 0 .. "
                f"{self.size - 1} for this vocabulary of size {self.size}."
            )
        return arr.tolist()

    def decode(self, ids: ArrayLike) -> str:
        """Convert ids back to text.

        Parameters
        ----------
        ids : array-like of int, shape (L,)
            Token ids, e.g. the output of :meth:`encode` or a padded row.

        Returns
        -------
        str
            The decoded text. Padding ids (0) are skipped; unknown ids (1)
            become ``"<unk>"``.
        """
        self._check_fitted("decode")
        tokens = self._tokens
        return self._join([tokens[i] for i in self._check_ids(ids) if i != PAD_ID])

    # -- config ------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict from which :meth:`from_config` rebuilds the vocabulary.

        Returns
        -------
        dict
            ``{"class_name": ..., "tokens": [...], **options}``, where
            ``tokens`` lists every token in id order (including ``<pad>`` and
            ``<unk>``).
        """
        self._check_fitted("to_config")
        return {"class_name": type(self).__name__, "tokens": list(self._tokens), **self._options()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """Rebuild a vocabulary from :meth:`to_config` output.

        Raises
        ------
        ValueError
            If the config is for another class, lacks ``tokens``, or its
            tokens do not start with ``<pad>``, ``<unk>`` or repeat a token.
        """
        name = config.get("class_name", cls.__name__)
        if name != cls.__name__:
            raise ValueError(
                f"{cls.__name__}.from_config: the config is for {name!r}; use {name}.from_config."
            )
        if "tokens" not in config:
            raise ValueError(
                f"{cls.__name__}.from_config: the config has no 'tokens' entry; expected the "
                f"dict produced by {cls.__name__}.to_config()."
            )
        tokens = list(config["tokens"])
        if tokens[:2] != [PAD_TOKEN, UNK_TOKEN] or len(tokens) < 3:
            raise ValueError(
                f"{cls.__name__}.from_config: 'tokens' must start with {PAD_TOKEN!r}, "
                f"{UNK_TOKEN!r} and hold at least one real token, got {tokens[:3]!r}..."
            )
        if not all(isinstance(t, str) for t in tokens) or len(set(tokens)) != len(tokens):
            raise ValueError(f"{cls.__name__}.from_config: 'tokens' must be distinct strings.")
        options = {k: v for k, v in config.items() if k not in ("class_name", "tokens")}
        unknown = sorted(set(options) - set(cls()._options()))
        if unknown:
            raise ValueError(
                f"{cls.__name__}.from_config: unexpected config entries {unknown}; expected "
                f"the dict produced by {cls.__name__}.to_config()."
            )
        vocab = cls(**options)
        vocab._set_tokens(tokens[2:])
        return vocab

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._tokens == other._tokens and self._options() == other._options()

    __hash__ = None  # type: ignore[assignment]  # mutable (fit), so unhashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


PAD_ID = _Vocab.pad_id
UNK_ID = _Vocab.unk_id


class CharVocab(_Vocab):
    """Character-level vocabulary.

    Every distinct character of the fitted text becomes a token; ids are
    assigned in sorted character order after the two reserved ids
    (``0 = "<pad>"``, ``1 = "<unk>"``). Characters not seen during
    :meth:`fit` encode to ``unk_id = 1`` and decode to ``"<unk>"``;
    ``decode(encode(text)) == text`` for any text made of known characters.

    Parameters
    ----------
    text : str or iterable of str, optional
        If given, :meth:`fit` is called on it.

    Examples
    --------
    >>> vocab = CharVocab("hello")
    >>> vocab.size, vocab.tokens
    (6, ['<pad>', '<unk>', 'e', 'h', 'l', 'o'])
    >>> vocab.encode("hole!")
    array([3, 5, 4, 2, 1], dtype=int32)
    >>> vocab.decode([3, 2, 4, 4, 5, 1])
    'hello<unk>'
    """

    def __init__(self, text: str | Iterable[str] | None = None) -> None:
        super().__init__()
        if text is not None:
            self.fit(text)

    def fit(self, text: str | Iterable[str]) -> CharVocab:
        """Build the vocabulary from the characters of ``text`` (replacing any previous one).

        Parameters
        ----------
        text : str or iterable of str
            Training text (or several texts).

        Returns
        -------
        CharVocab
            ``self``.

        Raises
        ------
        ValueError
            If ``text`` has no characters.
        """
        chars: set[str] = set()
        for t in _as_texts(text, "CharVocab.fit"):
            chars.update(t)
        if not chars:
            raise ValueError("CharVocab.fit: the text is empty; pass a non-empty training text.")
        self._set_tokens(sorted(chars))
        return self

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into characters."""
        return list(text)

    def _join(self, tokens: list[str]) -> str:
        return "".join(tokens)


class WordVocab(_Vocab):
    """Word-level vocabulary.

    Text is split into tokens with the regular expression ``[\\w']+|[^\\w\\s]``:
    runs of word characters (apostrophes included, so ``"o'er"`` is one
    word) and single punctuation characters; whitespace is dropped. Tokens
    get ids by decreasing frequency (ties: first occurrence) after the two
    reserved ids (``0 = "<pad>"``, ``1 = "<unk>"``). Words not in the
    vocabulary -- unseen, rarer than ``min_freq`` or cut by ``max_size`` --
    encode to ``unk_id = 1`` and decode to ``"<unk>"``.

    :meth:`decode` joins tokens with single spaces, so it returns
    ``" ".join(vocab.tokenize(text))`` rather than the original spacing.

    Parameters
    ----------
    text : str or iterable of str, optional
        If given, :meth:`fit` is called on it.
    lower : bool, default True
        Lower-case text before tokenising (in :meth:`fit` and :meth:`encode`).
    max_size : int, optional
        Keep at most this many ids in total (including the two reserved
        ones), dropping the rarest words.
    min_freq : int, default 1
        Drop words that occur fewer than ``min_freq`` times in the training
        text.

    Examples
    --------
    >>> vocab = WordVocab("The cat saw the dog.")
    >>> vocab.tokens
    ['<pad>', '<unk>', 'the', 'cat', 'saw', 'dog', '.']
    >>> vocab.encode("the bird saw the cat")
    array([2, 1, 4, 2, 3], dtype=int32)
    >>> vocab.decode([2, 3, 4, 2, 5, 6])
    'the cat saw the dog .'
    """

    TOKEN_PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"[\w']+|[^\w\s]")

    def __init__(
        self,
        text: str | Iterable[str] | None = None,
        *,
        lower: bool = True,
        max_size: int | None = None,
        min_freq: int = 1,
    ) -> None:
        super().__init__()
        self.lower = bool(lower)
        self.max_size = None if max_size is None else check_int(max_size, "max_size", minimum=3)
        self.min_freq = check_int(min_freq, "min_freq", minimum=1)
        if text is not None:
            self.fit(text)

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into word and punctuation tokens (lower-cased if ``lower``)."""
        if self.lower:
            text = text.lower()
        return self.TOKEN_PATTERN.findall(text)

    def fit(self, text: str | Iterable[str]) -> WordVocab:
        """Build the vocabulary from the words of ``text`` (replacing any previous one).

        Parameters
        ----------
        text : str or iterable of str
            Training text (or several texts).

        Returns
        -------
        WordVocab
            ``self``.

        Raises
        ------
        ValueError
            If ``text`` has no tokens, or none occurs ``min_freq`` times.
        """
        counts: Counter[str] = Counter()
        for t in _as_texts(text, "WordVocab.fit"):
            counts.update(self.tokenize(t))
        # Counter.most_common keeps first-occurrence order among equal counts.
        words = [w for w, c in counts.most_common() if c >= self.min_freq]
        if self.max_size is not None:
            words = words[: self.max_size - 2]
        if not words:
            raise ValueError(
                f"WordVocab.fit: no word occurs at least min_freq={self.min_freq} time(s) in "
                f"the text ({len(counts)} distinct words); pass more text or lower min_freq."
            )
        self._set_tokens(words)
        return self

    def _join(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def _options(self) -> dict[str, Any]:
        return {"lower": self.lower, "max_size": self.max_size, "min_freq": self.min_freq}
