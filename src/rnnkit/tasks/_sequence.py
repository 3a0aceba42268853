"""Shared machinery of the many-to-one pipelines (sequence classification and regression).

Input sequences are normalised (per channel with statistics from the training data only, or
each series by its own mean and standard deviation, optionally keeping each series' level
and scale as extra inputs at every step), missing values (NaN) become 0 after scaling, long series are cut into patches of ``patch`` time steps (one recurrent step per
patch), sequences of different lengths are passed to the model as a ragged list (padded and
masked by the training engine; with ``crop``, the network is trained on a fresh random
window of every series each epoch and predicts by averaging the windows covering a series),
and training either holds out a validation set for early
stopping with best-weight restore or runs a fixed epoch budget under a warm-up + cosine
learning-rate schedule. Several networks (an ensemble, seeds ``seed, seed+1000, ...``) may be
trained; their predictions are averaged.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import callbacks as _cb
from .. import layers as _layers
from .. import optimizers as _opt
from ..data import StandardScaler
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


#: Seed distance between the networks of an ensemble (``seed + MEMBER_SEED_STEP * k``).
MEMBER_SEED_STEP = 1000

NORMALIZE_MODES = ("channel", "series", "series+level", "none")


def series_stats(seqs):
    """Per-series, per-channel mean and standard deviation (NaN ignored).

    Args:
        seqs: list of ``(T_i, C)`` arrays.

    Returns:
        ``(mean, std)``: two ``(N, C)`` float64 arrays; a constant channel has std 1.
    """
    means, stds = [], []
    for s in seqs:
        s = np.asarray(s, np.float64)
        finite = ~np.isnan(s)
        n = np.maximum(finite.sum(0), 1)
        mean = np.where(finite, s, 0.0).sum(0) / n
        std = np.sqrt((np.where(finite, s - mean, 0.0) ** 2).sum(0) / n)
        means.append(mean)
        stds.append(np.where(std > 1e-8 * np.maximum(np.abs(mean), 1.0), std, 1.0))
    return np.array(means), np.array(stds)


def normalize_series(seqs):
    """Each sequence minus its own per-channel mean, divided by its own standard deviation.

    Args:
        seqs: list of ``(T_i, C)`` arrays (NaN ignored in the statistics).

    Returns:
        list of float32 ``(T_i, C)`` arrays; a constant channel becomes 0, NaN stays NaN.
    """
    mean, std = series_stats(seqs)
    return [((np.asarray(s, np.float64) - m) / d).astype(np.float32)
            for s, m, d in zip(seqs, mean, std)]


def series_level(seqs):
    """The level and scale of every series: ``(N, 2C)`` = its channels' means, log stds."""
    mean, std = series_stats(seqs)
    return np.concatenate([mean, np.log(std)], axis=1)


def to_patches(seqs, patch):
    """Group every ``patch`` consecutive time steps into one step of ``patch * C`` features.

    A series of T steps becomes ``ceil(T / patch)`` steps; the last patch is zero-padded.
    Row k of the result holds steps ``k*patch .. k*patch+patch-1``, channel-minor (the
    reshape of the ``(patch, C)`` block).

    Args:
        seqs: list of ``(T_i, C)`` arrays.
        patch: positive int (1 returns the input unchanged).

    Returns:
        list of ``(ceil(T_i / patch), patch * C)`` float32 arrays.

    Example:
        >>> to_patches([np.arange(5.0)[:, None]], 2)[0].tolist()
        [[0.0, 1.0], [2.0, 3.0], [4.0, 0.0]]
    """
    if patch == 1:
        return seqs
    out = []
    for s in seqs:
        t, c = s.shape
        n = -(-t // patch)
        block = np.zeros((n * patch, c), np.float32)
        block[:t] = s
        out.append(block.reshape(n, patch * c))
    return out


#: How a sequence is shown to the network: its values over time, or its magnitude spectrum.
VIEWS = ("time", "spectrum")


def spectrum_view(seqs):
    """Each series as its log magnitude spectrum: ``log(1 + |rfft(s - mean(s))|)`` per channel.

    The spectrum is a sequence over frequency (low to high) that the recurrent network reads
    like a time series; it does not depend on where in the series a rhythm sits (phase), which
    helps where the class is in the rhythms rather than in the shape at a position. The
    series' amplitude stays in the spectrum; its mean level does not. NaN counts as the
    series' mean.

    Args:
        seqs: list of ``(T_i, C)`` arrays.

    Returns:
        list of ``(T_i // 2 + 1, C)`` float32 arrays.

    Example:
        >>> spectrum_view([np.ones((6, 1))])[0].shape
        (4, 1)
    """
    out = []
    for s in seqs:
        s = np.asarray(s, np.float64)
        mean = np.nanmean(s, axis=0) if np.isnan(s).any() else s.mean(axis=0)
        s = np.nan_to_num(s - mean, nan=0.0)
        out.append(np.log1p(np.abs(np.fft.rfft(s, axis=0))).astype(np.float32))
    return out


def patch_spectra(seqs, patch, channels):
    """Log magnitude spectrum of every patch: ``log(1 + |rfft|)`` over its ``patch`` steps.

    Args:
        seqs: list of ``(n_i, patch * C)`` patched arrays (see :func:`to_patches`).
        patch: time steps per patch.
        channels: C.

    Returns:
        list of ``(n_i, (patch // 2 + 1) * C)`` float32 arrays (channel-minor).
    """
    out = []
    for s in seqs:
        blocks = s.reshape(len(s), patch, channels)
        mag = np.abs(np.fft.rfft(blocks.astype(np.float64), axis=1))
        out.append(np.log1p(mag).reshape(len(s), -1).astype(np.float32))
    return out


#: Fewest windows per series whose probabilities are averaged at prediction (see
#: :func:`covering_windows`).
CROP_WINDOWS = 5


def crop_length(length, crop):
    """Steps of a window that covers the share ``crop`` of a ``length``-step series:
    ``ceil(crop * length)`` (the whole series when ``crop`` is 0: no cropping).

    Args:
        length: steps of the series.
        crop: share of the series a window covers (0 < crop < 1), or 0 (whole series).

    Returns:
        int in ``[1, length]``.

    Example:
        >>> crop_length(2000, 0.25)
        500
    """
    if not crop:
        return int(length)
    return int(min(length, max(1, math.ceil(crop * length - 1e-9))))


def random_windows(seqs, crop, rng):
    """One random contiguous window of every series (window slicing, Le Guennec et al. 2016).

    Args:
        seqs: list of ``(T_i, C)`` arrays.
        crop: share of each series a window covers: ``crop_length(T_i, crop)`` steps.
        rng: a ``numpy.random.Generator`` that draws the starts (uniform over the positions).

    Returns:
        list of ``(crop_length(T_i, crop), C)`` views into ``seqs``.
    """
    out = []
    for s in seqs:
        w = crop_length(len(s), crop)
        start = int(rng.integers(0, len(s) - w + 1))
        out.append(s[start:start + w])
    return out


def covering_windows(seqs, crop):
    """Evenly spaced windows that together cover every series, for prediction.

    A series of T steps gives ``min(T - w + 1, max(CROP_WINDOWS, ceil(2T / w) - 1))``
    windows of ``w = crop_length(T, crop)`` steps, the first at the start, the last at the end
    (neighbours overlap by at least half a window).

    Args:
        seqs: list of ``(T_i, C)`` arrays.
        crop: share of each series a window covers.

    Returns:
        ``(windows, owner)``: a list of ``(w_i, C)`` arrays and an (M,) int array, the series
        each window comes from (ascending).

    Example:
        >>> w, owner = covering_windows([np.arange(8.0)[:, None]], 0.5)
        >>> [int(a[0, 0]) for a in w], owner.tolist()
        ([0, 1, 2, 3, 4], [0, 0, 0, 0, 0])
    """
    windows, owner = [], []
    for i, s in enumerate(seqs):
        t = len(s)
        w = crop_length(t, crop)
        count = min(t - w + 1, max(CROP_WINDOWS, -(-2 * t // w) - 1))
        for start in np.unique(np.round(np.linspace(0, t - w, count)).astype(np.int64)):
            windows.append(s[start:start + w])
            owner.append(i)
    return windows, np.asarray(owner, dtype=np.int64)


def check_crop(crop, what="crop"):
    """``crop`` as a float: the share of each series a training window covers, in
    (0, 0.999], or 0.0 for whole series (no cropping).

    Accepts a number in [0, 0.999] and False / 'off' (0.0). Raises ValueError naming ``what``
    for anything else (None and 'auto' are handled by the caller).
    """
    if crop is False or (isinstance(crop, str) and crop.strip().lower() == "off"):
        return 0.0
    if isinstance(crop, bool) or not isinstance(crop, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(crop) <= 0.999:
        raise ValueError(f"{what} must be a number in (0, 0.999] (the share of each series a "
                         f"training window covers), or 0 or 'off' for whole series; got "
                         f"{crop!r}.")
    return float(crop)


def warmup_cosine(learning_rate, total_steps, warmup_fraction=0.1, floor=0.01):
    """Linear warm-up from ``learning_rate / 10`` over the first ``warmup_fraction`` of the
    updates, then cosine decay to ``floor * learning_rate`` at ``total_steps``."""
    warm = int(round(total_steps * warmup_fraction))
    return _opt.schedules.CosineDecay(learning_rate / 10.0, max(1, total_steps - warm),
                                      alpha=floor, warmup_target=learning_rate,
                                      warmup_steps=warm)


def cpu_seconds():
    """CPU seconds used by this process so far (all threads).

    The time budget counts CPU time: on a dedicated machine it bounds the wall time from
    above (the process never uses less than one core while it trains), and on a shared
    machine it does not shrink because other jobs take the cores.
    """
    return time.process_time()


class _Deadline(_cb.Callback):
    """Stop training (after the current epoch) once :func:`cpu_seconds` passes ``deadline``."""

    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline
        self.hit = False

    def on_epoch_end(self, epoch, logs=None):
        if self.deadline is not None and cpu_seconds() > self.deadline:
            self.hit = True
            self.model.stop_training = True



class _CropBatches:
    """Training batches of random windows: every pass (epoch) draws one fresh window of
    every series (:func:`random_windows`), prepares it as the pipeline does, shuffles and
    yields ``(x_batch, y_batch)`` (the engine's iterable-of-batches input).

    Args:
        pipe: the fitted-preprocessing :class:`SequencePipeline` (``_prepare_x``).
        seqs: list of ``(T_i, C)`` whole training series.
        y_enc: (N, ...) encoded targets.
        batch_size: series per batch.
        seed: seed of the windows and the order (None: not seeded).
    """

    def __init__(self, pipe, seqs, y_enc, batch_size, seed):
        self.pipe, self.seqs, self.y = pipe, seqs, y_enc
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return -(-len(self.seqs) // self.batch_size)

    def __iter__(self):
        xs = self.pipe._prepare_x(random_windows(self.seqs, self.pipe.crop, self.rng))
        order = self.rng.permutation(len(xs))
        for start in range(0, len(xs), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.pipe._model_input([xs[i] for i in idx]), self.y[idx]


class SequencePipeline:
    """Base class of :class:`SequenceClassifier` and :class:`SequenceRegressor`.

    Subclasses set ``task``, ``loss``, ``metrics`` and ``defaults`` and implement
    ``_output_layer``, ``_encode_y`` / ``_decode`` and the preprocessing record of their
    targets. A setting left at None (``units``, ``dropout``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``validation_split``, ``patience``) takes its value from ``defaults``;
    a subclass may instead decide it from the training data in :meth:`plan`.
    """

    task = ""
    loss = ""
    metrics: tuple = ()
    #: Default settings (``CLASSIFY_DEFAULTS`` / ``REGRESS_DEFAULTS`` in the subclasses).
    defaults = dict(units=(64,), dropout=0.0, epochs=60, batch_size=32, learning_rate=1e-3,
                    validation_split=0.2, patience=10)
    #: The settings saved in the preprocessing record and restored by :meth:`from_model`.
    param_names = ("cell", "units", "bidirectional", "dropout", "epochs", "batch_size",
                   "learning_rate", "clipnorm", "validation_split", "patience", "seed",
                   "normalize", "patch", "spectrum", "embed", "ensemble", "schedule",
                   "weight_decay", "view", "crop")

    def __init__(self, cell="lstm", units=None, layers=None, bidirectional=False, dropout=None,
                 epochs=None, batch_size=None, learning_rate=None, clipnorm=1.0,
                 validation_split=None, patience=None, standardize=True, seed=0, verbose=1,
                 normalize=None, patch=1, embed=0, ensemble=1, schedule="constant",
                 weight_decay=0.0, time_budget=None, spectrum=False, view="time", crop=0.0):
        d = self.defaults
        dropout = d["dropout"] if dropout is None else dropout
        epochs = d["epochs"] if epochs is None else epochs
        batch_size = d["batch_size"] if batch_size is None else batch_size
        learning_rate = d["learning_rate"] if learning_rate is None else learning_rate
        validation_split = d["validation_split"] if validation_split is None else \
            validation_split
        patience = d["patience"] if patience is None else patience
        if normalize is None:
            normalize = "channel" if standardize else "none"
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"normalize must be one of {list(NORMALIZE_MODES)}, got "
                             f"{normalize!r}.")
        if view not in VIEWS:
            raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}.")
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}.")
        check_positive_ints(patch=patch, ensemble=ensemble)
        if isinstance(embed, bool) or not isinstance(embed, (int, np.integer)) or embed < 0:
            raise ValueError(f"embed must be a non-negative integer (0: no per-step Dense "
                             f"layer), got {embed!r}.")
        if time_budget is not None and not float(time_budget) > 0:
            raise ValueError(f"time_budget must be a positive number of seconds or None, got "
                             f"{time_budget!r}.")
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
        self.normalize = normalize
        self.patch = int(patch)
        self.spectrum = bool(spectrum)
        self.view = view
        self.crop = check_crop(crop)
        self.embed = int(embed)
        self.ensemble = int(ensemble)
        self.schedule = schedule
        self.weight_decay = float(weight_decay)
        self.time_budget = None if time_budget is None else float(time_budget)
        self.seed = seed
        self.verbose = int(verbose)
        self.members = []
        self.scaler = None
        self.n_features = None
        self.history_ = None
        self.best_epoch_ = None
        self.histories_, self.best_epochs_ = [], []
        self.info = {}

    @property
    def standardize(self):
        """True when inputs are standardised per channel with training statistics."""
        return self.normalize == "channel"

    @property
    def model(self):
        """The first trained network (None before ``fit``); ``members`` holds all of them."""
        return self.members[0] if self.members else None

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

    def plan(self, x, y):
        """Decide the data-dependent settings before training (none in the base class)."""
        return []

    # -- inputs -----------------------------------------------------------------------------
    def _view(self, seqs):
        """The sequences the network reads: as they are, or their spectra (``view``)."""
        return spectrum_view(seqs) if self.view == "spectrum" else seqs

    def _prepare_x(self, x, what="x"):
        seqs = as_sequences(x, what)
        if self.n_features is not None and seqs[0].shape[1] != self.n_features:
            raise ValueError(
                f"{what} has {seqs[0].shape[1]} channel(s) per time step, but the model was "
                f"trained on {self.n_features}; pass data with the training data's channels."
            )
        seqs = self._view(seqs)
        level = None
        if self.normalize == "series+level":
            level = self.scaler.transform(series_level(seqs)).astype(np.float32)
        if self.normalize in ("series", "series+level"):
            seqs = normalize_series(seqs)
        elif self.scaler is not None:
            seqs = self.scaler.transform(seqs)
        seqs = [np.nan_to_num(s, nan=0.0).astype(np.float32) for s in seqs]
        seqs = to_patches(seqs, self.patch)
        if self.spectrum:  # each patch's magnitude spectrum joins its values
            spectra = patch_spectra(seqs, self.patch, seqs[0].shape[1] // self.patch)
            seqs = [np.concatenate([s, f], axis=1) for s, f in zip(seqs, spectra)]
        if level is not None:  # the series' level and scale joins every step
            seqs = [np.concatenate([s, np.broadcast_to(lv, (len(s), len(lv)))], axis=1)
                    for s, lv in zip(seqs, np.nan_to_num(level))]
        return seqs

    @staticmethod
    def _model_input(seqs):
        """A ragged list when lengths differ (masked), else one (N, T, C) array."""
        if len({len(s) for s in seqs}) == 1:
            return np.stack(seqs)
        return seqs

    # -- training ---------------------------------------------------------------------------
    def _optimizer(self, total_steps):
        lr = self.learning_rate
        if self.schedule == "cosine":
            lr = warmup_cosine(lr, total_steps)
        clip = None if not self.clipnorm else float(self.clipnorm)
        if self.weight_decay:
            return _opt.AdamW(learning_rate=lr, weight_decay=self.weight_decay, clipnorm=clip)
        return _opt.Adam(learning_rate=lr, clipnorm=clip)

    def build_model(self, n_features, total_steps=1, seed=None):
        """A fresh Sequential: [per-step Dense(embed, relu)], the recurrent stack, the output.

        Args:
            n_features: inputs per recurrent step (``patch * channels``).
            total_steps: optimizer updates the run will make (for the cosine schedule).
            seed: seed of the dropout generators (default: the pipeline's seed).
        """
        seed = self.seed if seed is None else seed
        front = []
        if self.embed:
            front = [_layers.TimeDistributed(_layers.Dense(self.embed, activation="relu"))]
        model = Sequential(
            [_layers.Input((None, n_features))] + front
            + recurrent_stack(self.cell, self.units, bidirectional=self.bidirectional,
                              dropout=self.dropout, seed=seed)
            + [self._output_layer()])
        model.compile(optimizer=self._optimizer(total_steps), loss=self.loss,
                      metrics=list(self.metrics))
        return model

    def fit(self, x, y, validation_data=None, callbacks=None):
        """Fit the preprocessing and the network(s).

        Args:
            x: training sequences (see :func:`as_sequences`): ``(N, T, C)``, ``(N, T)`` or a
                list of ``(T_i, C)`` arrays.
            y: (N,) targets (class labels of any type for classification; numbers for
                regression, or (N, K)).
            validation_data: optional ``(x_val, y_val)``; by default a (stratified) share
                ``validation_split`` of the training data is held out (none when 0).
            callbacks: extra :class:`rnnkit.callbacks.Callback` objects.

        Returns:
            self (``members``, ``model``; ``history_`` and ``best_epoch_`` of the first
            network, ``histories_`` and ``best_epochs_`` of all of them).
        """
        started = cpu_seconds()
        seqs = as_sequences(x, "x")
        if len(seqs) != len(y):
            raise ValueError(f"x has {len(seqs)} sequences but y has {len(y)} targets; they "
                             "must match one to one.")
        self.plan(seqs, y)
        # CPU time a choice made by cross-validation took before this call (``rnnkit train``
        # plans first, to print the choices) counts against the budget too
        started -= getattr(self, "selection_seconds_before_fit_", 0.0)
        self.n_features = int(seqs[0].shape[1])
        self.scaler = None
        # with crops the network reads windows: the scalers see the windows it will read
        viewed = self._view(covering_windows(seqs, self.crop)[0] if self.crop else seqs)
        if self.normalize == "channel":
            self.scaler = StandardScaler().fit(viewed)
        elif self.normalize == "series+level":  # scales the (N, 2C) level features
            self.scaler = StandardScaler().fit(series_level(viewed))
        self._fit_targets(y)
        y_enc = self._encode_y(y)
        if validation_data is not None:
            tr = np.arange(len(seqs))
            x_val, y_val = self._windows(as_sequences(validation_data[0], "x_val"),
                                         self._encode_y(validation_data[1]), "x_val")
        elif self.validation_split > 0:
            tr, va = stratified_split(self._groups(y_enc), self.validation_split,
                                      0 if self.seed is None else self.seed)
            if len(va) == 0:
                raise ValueError(
                    f"validation_split={self.validation_split} holds out no sample from "
                    f"{len(seqs)} training sequences; use more data or validation_split=0.")
            x_val, y_val = self._windows([seqs[i] for i in va], y_enc[va])
        else:
            tr, x_val, y_val = np.arange(len(seqs)), None, None
        if self.crop:
            x_tr = None   # fresh random windows every epoch (_CropBatches, per member)
            width = self._prepare_x(covering_windows(seqs[:1], self.crop)[0][:1])[0].shape[1]
        else:
            xs = self._prepare_x(seqs)
            x_tr = self._model_input([xs[i] for i in tr])
            width = xs[0].shape[1]
        val = None if x_val is None else (self._model_input(x_val), y_val)
        total_steps = self.epochs * -(-len(tr) // self.batch_size)
        deadline = None if self.time_budget is None else started + self.time_budget
        self.members, self.histories_, best = [], [], []
        bar = ProgressBar(self.epochs, runs=self.ensemble, desc=self.task,
                          enabled=self.verbose == 1)
        self.stopped_by_budget_ = False
        took = 0.0
        for k in range(self.ensemble):
            # members 1000 seeds apart: runs with nearby seeds share no network
            seed = None if self.seed is None else int(self.seed) + MEMBER_SEED_STEP * k
            if k and deadline is not None:
                # another member only if the last one's duration still fits the budget
                if cpu_seconds() + took > deadline:
                    self.stopped_by_budget_ = True
                    break
            member_start = cpu_seconds()
            seed_everything(seed)
            model = self.build_model(width, total_steps, seed)
            check_file_fits(self, model)
            cbs = list(callbacks or [])
            stopper = None
            if val is not None:
                # patience counts only after the warm-up (a tenth of the epochs, at least 5)
                stopper = _cb.EarlyStopping(
                    monitor="val_loss", patience=self.patience, restore_best_weights=True,
                    start_from_epoch=max(5, self.epochs // 10)
                    if self.schedule == "cosine" else 0)
                cbs.append(stopper)
            guard = _Deadline(deadline)
            if self.crop:
                data, targets = _CropBatches(self, [seqs[i] for i in tr], y_enc[tr],
                                             self.batch_size, seed), None
            else:
                data, targets = x_tr, y_enc[tr]
            hist = model.fit(data, targets, batch_size=self.batch_size, epochs=self.epochs,
                             validation_data=val, callbacks=cbs + [guard, bar],
                             verbose=2 if self.verbose >= 2 else 0)
            took = cpu_seconds() - member_start
            self.members.append(model)
            self.histories_.append(hist)
            best.append((stopper.best_epoch + 1) if stopper is not None and
                        stopper.best is not None else len(hist.epoch))
            if guard.hit:
                self.stopped_by_budget_ = True
                break
        bar.close()
        self.history_, self.best_epoch_ = self.histories_[0], best[0]
        self.best_epochs_ = best
        return self

    def _check_fitted(self):
        if not self.members:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(x, y) first, or "
                               f"load a saved one with {type(self).__name__}.load(path).")

    def _windows(self, seqs, y_enc=None, what="x"):
        """What the network reads for whole series ``seqs``: their prepared sequences, or
        with ``crop`` those of their covering windows (:func:`covering_windows`).

        Returns:
            ``(inputs, targets)``: a list of prepared ``(steps, features)`` arrays and
            ``y_enc`` repeated per window (None when ``y_enc`` is None).
        """
        if not self.crop:
            return self._prepare_x(seqs, what), y_enc
        windows, owner = covering_windows(as_sequences(seqs, what), self.crop)
        return self._prepare_x(windows, what), None if y_enc is None else y_enc[owner]

    def _raw_predict(self, x):
        """The members' outputs for ``x``, averaged (with ``crop``: over each series'
        covering windows too)."""
        self._check_fitted()
        seqs = as_sequences(x)
        owner = None
        if self.crop:
            seqs, owner = covering_windows(seqs, self.crop)
        xin = self._model_input(self._prepare_x(seqs))
        out = None
        for model in self.members:
            p = model.predict(xin, batch_size=max(self.batch_size, 64), verbose=0)
            out = p.astype(np.float64) if out is None else out + p
        out /= len(self.members)
        if owner is not None:   # mean over each series' windows
            n = int(owner[-1]) + 1
            total = np.zeros((n,) + out.shape[1:])
            np.add.at(total, owner, out)
            out = total / np.bincount(owner, minlength=n).reshape((n,) + (1,) * (out.ndim - 1))
        return out.astype(np.float32)

    def transform(self, x, y=None):
        """What the network is fed for raw ``(x, y)``: the saved preprocessing applied.

        Args:
            x: raw sequences, as for :meth:`fit`.
            y: raw targets (labels or numbers), or None.

        Returns:
            ``(x_model, y_model)``: scaled sequences (one ``(N, T, C)`` float32 array when
            the lengths are equal, else a ragged list the model pads and masks) and the
            encoded targets (one-hot (N, K) for a classifier; None when ``y`` is None).
            With ``crop``, one entry per covering window (:func:`covering_windows`), the
            targets repeated per window.
        """
        self._check_fitted()
        xs, ys = self._windows(x, None if y is None else self._encode_y(y))
        return self._model_input(xs), ys

    def evaluate(self, x, y):
        """Loss and metrics on ``(x, y)``; returns a dict such as ``{"loss": .., ...}``."""
        self._check_fitted()
        if len(self.members) > 1 or self.crop:
            return self._evaluate_outputs(self._raw_predict(x), y)
        res = self.model.evaluate(self._model_input(self._prepare_x(x)), self._encode_y(y),
                                  batch_size=max(self.batch_size, 64), verbose=0,
                                  return_dict=True)
        return {k: float(v) for k, v in res.items()}

    def _evaluate_outputs(self, outputs, y):
        """Loss and metrics of averaged ensemble outputs (subclasses with ensembles)."""
        raise NotImplementedError  # abstract

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
            # members 2..E: weights as nested lists, same config as member 1
            "ensemble_weights": [m.get_weights() for m in self.members[1:]],
            "info": self.info,
        })

    def save(self, path):
        """Save the network(s) with the preprocessing and target encoding (one file)."""
        save_pipeline(self, self.model, path)

    @classmethod
    def from_model(cls, model):
        """Rebuild the pipeline around a loaded model (reads ``model.preprocessing``)."""
        check_task(model, cls.task)
        pre = model.preprocessing
        obj = cls(**saved_params(pre, cls.param_names), verbose=0)
        obj.n_features = pre.get("n_features")
        obj.scaler = None if not pre.get("scaler") else StandardScaler.from_config(pre["scaler"])
        obj._restore_targets(pre)
        obj.members = [model]
        for weights in pre.get("ensemble_weights") or []:
            member = Sequential.from_config(model.get_config())
            member.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
            member.compile(optimizer="adam", loss=obj.loss, metrics=list(obj.metrics))
            obj.members.append(member)
        obj.ensemble = len(obj.members)
        obj.info = dict(pre.get("info") or {})
        return obj

    @classmethod
    def load(cls, path):
        """Load a pipeline saved with :meth:`save` (or by ``rnnkit train``)."""
        return cls.from_model(load_model(path))
