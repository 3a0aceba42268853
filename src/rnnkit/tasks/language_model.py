"""Character-level language model: train on text, score text, generate text.

:class:`CharLanguageModel`:

* builds a :class:`rnnkit.data.CharVocab` from the training text (saved with the model);
* cuts the text into sequences of ``seq_len`` characters and trains many-to-many:
  ``Embedding -> LSTM(return_sequences=True) [-> LSTM ...] -> Dense(vocab, softmax)`` with
  sparse categorical cross-entropy on the (B, T) next-character targets (``Dense`` applies
  at every time step);
* holds out the last ``validation_split`` of the text for early stopping (best weights
  restored) and reports losses in nats per character (also bits per character and
  perplexity) beside a unigram baseline (:func:`unigram_cross_entropy`);
* generates text one character at a time with carried recurrent state (the prime is read
  once, then every step feeds a single character), sampling with ``temperature`` and
  ``top_k`` (:func:`sample_from_probs`).

Example:
    >>> from rnnkit.tasks import CharLanguageModel
    >>> lm = CharLanguageModel(units=32, seq_len=20, epochs=1, verbose=0)
    >>> lm = lm.fit("to be or not to be, that is the question. " * 20)
    >>> len(lm.generate(10, seed=0))
    10
"""

from __future__ import annotations

import math

import numpy as np

from .. import callbacks as _cb
from .. import layers as _layers
from ..data import CharVocab
from ..models import Sequential
from ..saving import load_model
from ._common import (
    PREPROCESSING_FORMAT,
    ProgressBar,
    check_file_fits,
    check_positive_ints,
    check_task,
    check_validation_split,
    jsonable,
    make_optimizer,
    params_record,
    recurrent_stack,
    save_pipeline,
    saved_params,
    seed_everything,
    units_list,
)

__all__ = ["CharLanguageModel", "sample_from_probs", "unigram_cross_entropy", "LM_DEFAULTS"]

#: Defaults of :class:`CharLanguageModel` (also those of ``rnnkit train --task lm``).
LM_DEFAULTS = dict(cell="lstm", units=(128,), embedding_dim=32, seq_len=100, epochs=20,
                   batch_size=32, learning_rate=3e-3, clipnorm=1.0, validation_split=0.1,
                   patience=3, dropout=0.0)


def sample_from_probs(probs, temperature=1.0, top_k=None, rng=None):
    """Draw one index from a probability vector, reshaped by temperature and top-k.

    The distribution used is ``softmax(log(p) / temperature)`` restricted to the ``top_k``
    most likely entries (all when None). ``temperature=0`` picks the most likely entry.

    Args:
        probs: (V,) non-negative weights (need not sum to 1).
        temperature: > 0 sharpens (< 1) or flattens (> 1) the distribution; 0 is greedy.
        top_k: keep only the k most likely entries (None or 0: keep all).
        rng: ``numpy.random.Generator`` (None: a fresh unseeded one).

    Returns:
        int index.

    Example:
        >>> import numpy as np
        >>> sample_from_probs(np.array([0.1, 0.7, 0.2]), temperature=0)
        1
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("probs must be a non-empty vector of non-negative finite weights "
                         "with a positive sum.")
    if temperature is None or temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 0):
        raise ValueError(f"top_k must be a non-negative integer or None, got {top_k!r}.")
    if temperature == 0:
        return int(np.argmax(p))
    with np.errstate(divide="ignore"):
        logits = np.log(p) / float(temperature)
    if top_k:
        k = min(int(top_k), p.size)
        cut = np.partition(logits, -k)[-k]
        logits = np.where(logits >= cut, logits, -np.inf)
    logits -= logits.max()
    w = np.exp(logits)
    w /= w.sum()
    rng = rng if rng is not None else np.random.default_rng()
    return int(rng.choice(p.size, p=w))


def unigram_cross_entropy(train_ids, eval_ids, vocab_size):
    """Cross-entropy (nats per token) of ``eval_ids`` under the training unigram distribution.

    Add-one (Laplace) smoothing over the ``vocab_size - 2`` real tokens (ids 0 and 1 are
    ``<pad>`` and ``<unk>``; an ``<unk>`` in ``eval_ids`` gets the smoothed mass of an unseen
    token). This is the loss of a model that ignores context: the baseline an LM must beat.
    """
    train_ids = np.asarray(train_ids, dtype=np.int64).reshape(-1)
    eval_ids = np.asarray(eval_ids, dtype=np.int64).reshape(-1)
    if eval_ids.size == 0:
        raise ValueError("eval_ids is empty.")
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64)
    counts[:2] = 0.0
    counts[2:] += 1.0
    p = counts / counts.sum()
    p[1] = 1.0 / counts.sum()  # <unk>: one pseudo-count
    return float(-np.mean(np.log(p[eval_ids])))


class CharLanguageModel:
    """Character-level recurrent language model with its vocabulary.

    Args:
        cell, units, layers: the recurrent stack (see :class:`rnnkit.tasks.SequenceClassifier`).
        embedding_dim: size of the character embedding.
        seq_len: characters per training sequence (truncated BPTT length).
        dropout: input dropout of every recurrent layer.
        epochs, batch_size, learning_rate, clipnorm: training settings (Adam).
        validation_split: share of the text (its end) held out for early stopping.
        patience: early-stopping patience in epochs.
        seed: seed (None: not seeded).
        verbose: 0 silent, 1 one progress bar, 2 one line per epoch.

    Attributes:
        vocab: the :class:`rnnkit.data.CharVocab`.
        model: the trained :class:`rnnkit.Sequential`.
        baseline_: unigram cross-entropy of the validation text (nats/char) after ``fit``.
    """

    task = "lm"
    #: The settings saved in the preprocessing record and restored by :meth:`from_model`.
    param_names = ("cell", "units", "embedding_dim", "seq_len", "dropout", "epochs",
                   "batch_size", "learning_rate", "clipnorm", "validation_split", "patience",
                   "seed")

    def __init__(self, cell="lstm", units=None, layers=None,
                 embedding_dim=LM_DEFAULTS["embedding_dim"], seq_len=LM_DEFAULTS["seq_len"],
                 dropout=LM_DEFAULTS["dropout"], epochs=LM_DEFAULTS["epochs"],
                 batch_size=LM_DEFAULTS["batch_size"],
                 learning_rate=LM_DEFAULTS["learning_rate"], clipnorm=LM_DEFAULTS["clipnorm"],
                 validation_split=LM_DEFAULTS["validation_split"],
                 patience=LM_DEFAULTS["patience"], seed=0, verbose=1):
        self.cell = cell
        self.units = units_list(units, layers, LM_DEFAULTS["units"])
        check_positive_ints(embedding_dim=embedding_dim, seq_len=seq_len)
        validation_split = check_validation_split(validation_split)
        self.embedding_dim, self.seq_len = int(embedding_dim), int(seq_len)
        self.dropout = float(dropout)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.clipnorm = float(learning_rate), clipnorm
        self.validation_split, self.patience = validation_split, int(patience)
        self.seed, self.verbose = seed, int(verbose)
        self.vocab = None
        self.model = None
        self.history_ = None
        self.baseline_ = None
        self.unigram_counts = None
        self.info = {}

    # -- data ------------------------------------------------------------------------------------
    def _sequences(self, ids):
        """Non-overlapping (x, y) sequences: y is x shifted by one character."""
        L = self.seq_len
        n = (len(ids) - 1) // L
        if n == 0:
            raise ValueError(
                f"the text has {len(ids)} characters, fewer than seq_len + 1 = {L + 1}; use a "
                "longer text or a smaller seq_len.")
        x = ids[: n * L].reshape(n, L)
        y = ids[1: n * L + 1].reshape(n, L)
        return x.astype(np.int64), y.astype(np.int64)

    def _check_text(self, text, what):
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a str, got {type(text).__name__}.")
        if len(text) < 2:
            raise ValueError(f"{what} has {len(text)} character(s); a language model needs at "
                             "least 2.")

    def build_model(self):
        """Embedding -> recurrent stack (sequences) -> Dense(vocab, softmax)."""
        V = self.vocab.size
        model = Sequential(
            [_layers.Input((None,)), _layers.Embedding(V, self.embedding_dim)]
            + recurrent_stack(self.cell, self.units, return_sequences=True,
                              dropout=self.dropout, seed=self.seed)
            + [_layers.Dense(V, activation="softmax")])
        model.compile(optimizer=make_optimizer(self.learning_rate, self.clipnorm),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, text, validation_text=None, callbacks=None):
        """Build the vocabulary and train.

        Args:
            text: training text.
            validation_text: held-out text for early stopping; None takes the last
                ``validation_split`` of ``text`` (0: no validation, no early stopping).
            callbacks: extra callbacks.

        Returns:
            self (``baseline_`` is the unigram loss of the validation text, if any).
        """
        self._check_text(text, "text")
        seed_everything(self.seed)
        if validation_text is None and self.validation_split > 0:
            cut = int(len(text) * (1 - self.validation_split))
            text, validation_text = text[:cut], text[cut:]
            if len(validation_text) < 2 or len(text) < 2:
                raise ValueError("validation_split leaves fewer than 2 characters for training "
                                 "or validation; use a longer text or validation_split=0.")
        self.vocab = CharVocab(text)
        ids = self.vocab.encode(text)
        self.unigram_counts = np.bincount(ids, minlength=self.vocab.size).tolist()
        x, y = self._sequences(ids)
        val = None
        if validation_text is not None:
            self._check_text(validation_text, "validation_text")
            vids = self.vocab.encode(validation_text)
            L = min(self.seq_len, len(vids) - 1)
            n = (len(vids) - 1) // L
            val = (vids[: n * L].reshape(n, L).astype(np.int64),
                   vids[1: n * L + 1].reshape(n, L).astype(np.int64))
            self.baseline_ = unigram_cross_entropy(ids, vids[1:], self.vocab.size)
        self.model = self.build_model()
        check_file_fits(self, self.model)
        cbs = list(callbacks or [])
        if val is not None:
            cbs.append(_cb.EarlyStopping(monitor="val_loss", patience=self.patience,
                                         restore_best_weights=True))
        bar = ProgressBar(self.epochs, desc="lm", enabled=self.verbose == 1)
        self.history_ = self.model.fit(x, y, batch_size=self.batch_size, epochs=self.epochs,
                                       validation_data=val, callbacks=cbs + [bar],
                                       verbose=2 if self.verbose >= 2 else 0)
        bar.close()
        return self

    def _check_fitted(self):
        if self.model is None:
            raise RuntimeError("CharLanguageModel is not fitted: call fit(text) first, or load "
                               "one with CharLanguageModel.load(path).")

    # -- scoring ----------------------------------------------------------------------------------
    def evaluate(self, text):
        """Score ``text`` in chunks of ``seq_len`` characters (each chunk from a zero state).

        Returns:
            dict with ``loss`` (nats per character), ``bits_per_char``, ``perplexity``,
            ``accuracy`` (top-1 next character), ``baseline_unigram`` (nats per character of
            the training unigram distribution on the same text) and ``chars`` (scored).
        """
        self._check_fitted()
        self._check_text(text, "text")
        ids = self.vocab.encode(text)
        L = min(self.seq_len, len(ids) - 1)
        n = (len(ids) - 1) // L
        total, correct, count = 0.0, 0, 0
        pieces = [(ids[: n * L].reshape(n, L), ids[1: n * L + 1].reshape(n, L))]
        rest = len(ids) - 1 - n * L
        if rest > 0:
            pieces.append((ids[n * L: n * L + rest][None], ids[n * L + 1:][None]))
        for xs, ys in pieces:
            for start in range(0, len(xs), 64):
                p = self.model.predict(xs[start:start + 64].astype(np.int64), verbose=0)
                yb = ys[start:start + 64]
                py = np.take_along_axis(p, yb[..., None], axis=-1)[..., 0]
                total += float(-np.log(np.maximum(py, 1e-12)).sum())
                correct += int((p.argmax(-1) == yb).sum())
                count += yb.size
        loss = total / count
        counts = np.asarray(self.unigram_counts, dtype=np.int64)
        train_ids = np.repeat(np.arange(len(counts)), counts)
        return {"loss": loss, "bits_per_char": loss / math.log(2), "perplexity": math.exp(loss),
                "accuracy": correct / count,
                "baseline_unigram": unigram_cross_entropy(train_ids, ids[1:], self.vocab.size),
                "chars": count}

    # -- streaming ------------------------------------------------------------------------------
    def step(self, ids, stream=None):
        """Feed characters with carried recurrent state: the streaming primitive.

        Uses :meth:`rnnkit.Sequential.stream`: each recurrent layer advances from the states
        left by the previous call, so feeding a text in pieces gives exactly the
        probabilities of one pass over the whole text.

        Args:
            ids: (t,) character ids, t >= 1.
            stream: what a previous call returned, or None to start from zero state.

        Returns:
            ``(probs, stream)``: (t, V) next-character probabilities after each input
            character, and the stream to pass to the next call.
        """
        self._check_fitted()
        x = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        if x.shape[1] == 0:
            raise ValueError("step needs at least one character id.")
        if stream is None:
            stream = self.model.stream(batch_size=1)
        probs = stream.step(x)                                 # (1, t, V)
        return np.asarray(probs)[0], stream

    #: Characters fed per call when reading a long text (memory independent of its length).
    STREAM_WINDOW = 4096

    def next_char_probs(self, prime):
        """Probabilities of the character after ``prime``: dict char -> probability.

        ``prime`` is read in windows of :attr:`STREAM_WINDOW` characters with the recurrent
        state carried between them (the same probabilities as one pass over the whole text),
        so memory does not grow with its length. ``<pad>`` and ``<unk>`` are left out and the
        rest renormalised, as in sampling.

        Args:
            prime: non-empty text.

        Returns:
            dict character -> probability of being next.
        """
        self._check_fitted()
        if not prime:
            raise ValueError("prime must be a non-empty string.")
        stream = None
        for start in range(0, len(prime), self.STREAM_WINDOW):
            probs, stream = self.step(self.vocab.encode(prime[start:start + self.STREAM_WINDOW]),
                                      stream)
        p = probs[-1].astype(np.float64)
        p[:2] = 0.0
        p /= p.sum()
        return {self.vocab.id_to_token(i): float(p[i]) for i in range(2, self.vocab.size)}

    def stream(self, length, temperature=1.0, top_k=None, seed=None, prime=None):
        """Yield ``length`` generated characters one at a time (state carried between steps).

        Args:
            length: number of characters to generate.
            temperature, top_k: see :func:`sample_from_probs`.
            seed: seed of the sampling generator (None: unseeded).
            prime: text read before generating (default: a newline, or the most frequent
                character when the vocabulary has no newline).
        """
        self._check_fitted()
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}.")
        rng = np.random.default_rng(seed)
        if not prime:
            counts = np.asarray(self.unigram_counts)
            prime = "\n" if "\n" in self.vocab else self.vocab.id_to_token(
                int(np.argmax(counts[2:]) + 2))
        probs, stream = self.step(self.vocab.encode(prime))
        p = probs[-1]
        for i in range(int(length)):
            q = np.asarray(p, dtype=np.float64).copy()
            q[:2] = 0.0  # never emit <pad> or <unk>
            nxt = sample_from_probs(q, temperature, top_k, rng)
            yield self.vocab.id_to_token(nxt)
            if i + 1 < length:
                probs, stream = self.step([nxt], stream)
                p = probs[-1]

    def generate(self, length, temperature=1.0, top_k=None, seed=None, prime=None):
        """``length`` generated characters as one string (see :meth:`stream`)."""
        return "".join(self.stream(length, temperature, top_k, seed, prime))

    # -- saving ----------------------------------------------------------------------------------
    def preprocessing_record(self):
        """The JSON-able dict saved as ``model.preprocessing``."""
        return jsonable({
            "format": PREPROCESSING_FORMAT,
            "task": self.task,
            "vocab": self.vocab.to_config(),
            "unigram_counts": self.unigram_counts,
            "seq_len": self.seq_len,
            "baseline_unigram": self.baseline_,
            "params": params_record(self, self.param_names),
            "info": self.info,
        })

    def save(self, path):
        """Save the network with its vocabulary in one ``.rnnkit`` file."""
        save_pipeline(self, self.model, path)

    @classmethod
    def from_model(cls, model):
        """Rebuild the pipeline around a loaded model (reads ``model.preprocessing``)."""
        check_task(model, cls.task)
        pre = model.preprocessing
        obj = cls(verbose=0, **saved_params(pre, cls.param_names))
        obj.model = model
        obj.vocab = CharVocab.from_config(pre["vocab"])
        obj.unigram_counts = list(pre.get("unigram_counts") or [1] * obj.vocab.size)
        obj.baseline_ = pre.get("baseline_unigram")
        obj.info = dict(pre.get("info") or {})
        return obj

    @classmethod
    def load(cls, path):
        """Load a language model saved with :meth:`save` (or by ``rnnkit train``)."""
        return cls.from_model(load_model(path))
