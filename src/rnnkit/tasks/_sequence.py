"""Shared machinery of the many-to-one pipelines (sequence classification and regression).

Input sequences are standardised per channel with statistics from the training data only,
missing values (NaN) become 0 after scaling (the channel's training mean), sequences of
different lengths are passed to the model as a ragged list (padded and masked by the
training engine), and training holds out a validation set for early stopping with
best-weight restore.
"""

from __future__ import annotations

import numpy as np

from .. import callbacks as _cb
from .. import layers as _layers
from ..data import StandardScaler
from ..models import Sequential
from ..saving import load_model
from ._common import (
    PREPROCESSING_FORMAT,
    ProgressBar,
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


def as_sequences(x, what="x"):
    """Normalise sequence input to a list of float32 ``(T_i, C)`` arrays.

    Args:
        x: a ``(N, T, C)`` array, a ``(N, T)`` array (univariate, read as ``C = 1``), or a
            list of ``(T_i, C)`` / ``(T_i,)`` arrays of possibly different lengths.
        what: name used in error messages.

    Returns:
        list of N float32 arrays of shape ``(T_i, C)``.
    """
    if isinstance(x, np.ndarray):
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3:
            raise ValueError(f"{what} must be (N, T, C), (N, T) or a list of (T_i, C) arrays, "
                             f"got an array of shape {x.shape}.")
        seqs = [np.asarray(s, np.float32) for s in x]
    else:
        try:
            seqs = [np.asarray(s, np.float32) for s in x]
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what} must hold numeric sequences: {e}") from None
        seqs = [s[:, None] if s.ndim == 1 else s for s in seqs]
    if not seqs:
        raise ValueError(f"{what} is empty: pass at least one sequence.")
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[0] == 0:
            raise ValueError(f"{what}[{i}] must have shape (T_i, C) with T_i >= 1, got "
                             f"{s.shape}.")
    chans = {s.shape[1] for s in seqs}
    if len(chans) > 1:
        raise ValueError(f"all sequences in {what} must have the same number of channels, got "
                         f"{sorted(chans)}.")
    return seqs


def stratified_split(groups, fraction, seed):
    """Indices ``(train, val)`` holding out about ``fraction`` of each group.

    Args:
        groups: (N,) array of group ids (class ids; all zeros for an unstratified split).
        fraction: share in [0, 1) to hold out; each group with at least 2 members gives at
            least one sample and keeps at least one.
        seed: seed of the shuffle.

    Returns:
        two sorted int arrays.
    """
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    val = []
    if fraction > 0:
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            if len(idx) < 2:
                continue
            rng.shuffle(idx)
            k = min(max(1, int(round(len(idx) * fraction))), len(idx) - 1)
            val.extend(idx[:k].tolist())
    val = np.array(sorted(val), dtype=np.int64)
    train = np.setdiff1d(np.arange(len(groups)), val)
    return train, val


class SequencePipeline:
    """Base class of :class:`SequenceClassifier` and :class:`SequenceRegressor`.

    Subclasses set ``task``, ``loss``, ``metrics`` and ``defaults`` and implement
    ``_output_layer``, ``_encode_y`` / ``_decode`` and the preprocessing record of their
    targets. A setting left at None (``units``, ``dropout``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``validation_split``, ``patience``) takes its value from ``defaults``.
    """

    task = ""
    loss = ""
    metrics: tuple = ()
    #: Default settings (``CLASSIFY_DEFAULTS`` / ``REGRESS_DEFAULTS`` in the subclasses).
    defaults = dict(units=(64,), dropout=0.0, epochs=60, batch_size=32, learning_rate=1e-3,
                    validation_split=0.2, patience=10)
    #: The settings saved in the preprocessing record and restored by :meth:`from_model`.
    param_names = ("cell", "units", "bidirectional", "dropout", "epochs", "batch_size",
                   "learning_rate", "clipnorm", "validation_split", "patience", "seed")

    def __init__(self, cell="lstm", units=None, layers=None, bidirectional=False, dropout=None,
                 epochs=None, batch_size=None, learning_rate=None, clipnorm=1.0,
                 validation_split=None, patience=None, standardize=True, seed=0, verbose=1):
        d = self.defaults
        dropout = d["dropout"] if dropout is None else dropout
        epochs = d["epochs"] if epochs is None else epochs
        batch_size = d["batch_size"] if batch_size is None else batch_size
        learning_rate = d["learning_rate"] if learning_rate is None else learning_rate
        validation_split = d["validation_split"] if validation_split is None else \
            validation_split
        patience = d["patience"] if patience is None else patience
        self.cell = cell
        self.units = units_list(units, layers, d["units"])
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.clipnorm = clipnorm
        self.validation_split = check_validation_split(validation_split)
        self.patience = int(patience)
        self.standardize = bool(standardize)
        self.seed = seed
        self.verbose = int(verbose)
        self.model = None
        self.scaler = None
        self.n_features = None
        self.history_ = None
        self.best_epoch_ = None
        self.info = {}

    # -- hooks -------------------------------------------------------------------------------
    def _fit_targets(self, y):
        raise NotImplementedError  # abstract

    def _encode_y(self, y):
        raise NotImplementedError  # abstract

    def _output_layer(self):
        raise NotImplementedError  # abstract

    def _groups(self, y_enc):
        """Group ids for the validation split (classes for classification)."""
        return np.zeros(len(y_enc), dtype=np.int64)

    def _targets_record(self):
        raise NotImplementedError  # abstract

    def _restore_targets(self, record):
        raise NotImplementedError  # abstract

    # -- inputs -----------------------------------------------------------------------------
    def _prepare_x(self, x, what="x"):
        seqs = as_sequences(x, what)
        if self.n_features is not None and seqs[0].shape[1] != self.n_features:
            raise ValueError(
                f"{what} has {seqs[0].shape[1]} channel(s) per time step, but the model was "
                f"trained on {self.n_features}; pass data with the training data's channels."
            )
        if self.scaler is not None:
            seqs = self.scaler.transform(seqs)
        return [np.nan_to_num(s, nan=0.0).astype(np.float32) for s in seqs]

    @staticmethod
    def _model_input(seqs):
        """A ragged list when lengths differ (masked), else one (N, T, C) array."""
        if len({len(s) for s in seqs}) == 1:
            return np.stack(seqs)
        return seqs

    # -- training ---------------------------------------------------------------------------
    def build_model(self, n_features):
        """A fresh Sequential: the recurrent stack and the task's output layer."""
        model = Sequential(
            [_layers.Input((None, n_features))]
            + recurrent_stack(self.cell, self.units, bidirectional=self.bidirectional,
                              dropout=self.dropout, seed=self.seed)
            + [self._output_layer()])
        model.compile(optimizer=make_optimizer(self.learning_rate, self.clipnorm),
                      loss=self.loss, metrics=list(self.metrics))
        return model

    def fit(self, x, y, validation_data=None, callbacks=None):
        """Fit the scaler and the network.

        Args:
            x: training sequences (see :func:`as_sequences`): ``(N, T, C)``, ``(N, T)`` or a
                list of ``(T_i, C)`` arrays.
            y: (N,) targets (class labels of any type for classification; numbers for
                regression, or (N, K)).
            validation_data: optional ``(x_val, y_val)``; by default a (stratified) share
                ``validation_split`` of the training data is held out.
            callbacks: extra :class:`rnnkit.callbacks.Callback` objects.

        Returns:
            self (``model``, ``history_``, ``best_epoch_`` are set).
        """
        seed_everything(self.seed)
        seqs = as_sequences(x, "x")
        if len(seqs) != len(y):
            raise ValueError(f"x has {len(seqs)} sequences but y has {len(y)} targets; they "
                             "must match one to one.")
        self.n_features = int(seqs[0].shape[1])
        if self.standardize:
            self.scaler = StandardScaler().fit(seqs)
        self._fit_targets(y)
        y_enc = self._encode_y(y)
        xs = self._prepare_x(seqs)
        if validation_data is not None:
            tr = np.arange(len(xs))
            x_val = self._prepare_x(validation_data[0], "x_val")
            y_val = self._encode_y(validation_data[1])
        elif self.validation_split > 0:
            tr, va = stratified_split(self._groups(y_enc), self.validation_split,
                                      0 if self.seed is None else self.seed)
            if len(va) == 0:
                raise ValueError(
                    f"validation_split={self.validation_split} holds out no sample from "
                    f"{len(xs)} training sequences; use more data or validation_split=0.")
            x_val, y_val = [xs[i] for i in va], y_enc[va]
        else:
            tr, x_val, y_val = np.arange(len(xs)), None, None
        x_tr = [xs[i] for i in tr]
        self.model = self.build_model(self.n_features)
        cbs = list(callbacks or [])
        stopper = None
        if x_val is not None:
            stopper = _cb.EarlyStopping(monitor="val_loss", patience=self.patience,
                                        restore_best_weights=True)
            cbs.append(stopper)
        bar = ProgressBar(self.epochs, desc=self.task, enabled=self.verbose == 1)
        self.history_ = self.model.fit(
            self._model_input(x_tr), y_enc[tr], batch_size=self.batch_size, epochs=self.epochs,
            validation_data=None if x_val is None else (self._model_input(x_val), y_val),
            callbacks=cbs + [bar], verbose=2 if self.verbose >= 2 else 0)
        bar.close()
        self.best_epoch_ = (stopper.best_epoch + 1) if stopper is not None and \
            stopper.best is not None else len(self.history_.epoch)
        return self

    def _check_fitted(self):
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(x, y) first, or "
                               f"load a saved one with {type(self).__name__}.load(path).")

    def _raw_predict(self, x):
        self._check_fitted()
        return self.model.predict(self._model_input(self._prepare_x(x)),
                                  batch_size=max(self.batch_size, 64), verbose=0)

    def transform(self, x, y=None):
        """What the network is fed for raw ``(x, y)``: the saved preprocessing applied.

        Args:
            x: raw sequences, as for :meth:`fit`.
            y: raw targets (labels or numbers), or None.

        Returns:
            ``(x_model, y_model)``: scaled sequences (one ``(N, T, C)`` float32 array when
            the lengths are equal, else a ragged list the model pads and masks) and the
            encoded targets (one-hot (N, K) for a classifier; None when ``y`` is None).
        """
        self._check_fitted()
        return (self._model_input(self._prepare_x(x)),
                None if y is None else self._encode_y(y))

    def evaluate(self, x, y):
        """Loss and metrics on ``(x, y)``; returns a dict such as ``{"loss": .., ...}``."""
        self._check_fitted()
        res = self.model.evaluate(self._model_input(self._prepare_x(x)), self._encode_y(y),
                                  batch_size=max(self.batch_size, 64), verbose=0,
                                  return_dict=True)
        return {k: float(v) for k, v in res.items()}

    # -- saving ------------------------------------------------------------------------------
    def preprocessing_record(self):
        """The JSON-able dict stored as ``model.preprocessing``."""
        return jsonable({
            "format": PREPROCESSING_FORMAT,
            "task": self.task,
            "n_features": self.n_features,
            "scaler": None if self.scaler is None else self.scaler.to_config(),
            **self._targets_record(),
            "params": params_record(self, self.param_names),
            "info": self.info,
        })

    def save(self, path):
        """Save the network with its scaler and target encoding (one ``.rnnkit`` file)."""
        save_pipeline(self, self.model, path)

    @classmethod
    def from_model(cls, model):
        """Rebuild the pipeline around a loaded model (reads ``model.preprocessing``)."""
        check_task(model, cls.task)
        pre = model.preprocessing
        obj = cls(**saved_params(pre, cls.param_names), verbose=0)
        obj.model = model
        obj.n_features = pre.get("n_features")
        obj.scaler = None if not pre.get("scaler") else StandardScaler.from_config(pre["scaler"])
        obj._restore_targets(pre)
        obj.info = dict(pre.get("info") or {})
        return obj

    @classmethod
    def load(cls, path):
        """Load a pipeline saved with :meth:`save` (or by ``rnnkit train``)."""
        return cls.from_model(load_model(path))
