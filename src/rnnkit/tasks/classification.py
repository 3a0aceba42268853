"""Sequence classification: variable-length multichannel sequences -> one class label each.

The pipeline (:class:`SequenceClassifier`):

1. maps the user's labels (strings or numbers) to class ids ``0..K-1`` in natural sort order
   (``"2"`` before ``"10"``) and back again in :meth:`~SequenceClassifier.predict`;
2. decides, from the training data only, every setting left at None (see
   :meth:`SequenceClassifier.plan`, whose choices and reasons are kept in ``choices_``):
   normalisation (each univariate series by its own mean and standard deviation, with that
   level and scale kept as inputs unless the data is already z-normalised; multivariate data
   per channel with training statistics), patches (``patch`` consecutive time steps
   become one recurrent step, so the recurrence sees at most ~64 steps), a per-step
   ``Dense(embed, relu)`` front-end, a bidirectional GRU whose final states (forward: end,
   backward: start) feed a softmax ``Dense`` layer, the batch size, an epoch budget with a
   warm-up + cosine learning-rate schedule (AdamW), and the size of an ensemble of networks
   (seeds ``seed, seed+1000, ...``; probabilities averaged) that fits the ``time_budget``,
   and whether to train on random windows of each series (``crop``, window slicing) and
   predict by averaging the windows covering it;
3. feeds sequences of different lengths as a ragged list, so the training engine pads them
   and masks the padded steps (they neither update the state nor count in the loss);
4. trains every member for the whole epoch budget on all the training data (no early
   stopping by default; ``validation_split > 0`` holds out a stratified share and stops
   early on its loss, patience counted only after the warm-up).

Example:
    >>> from rnnkit.data import load_japanese_vowels
    >>> from rnnkit.tasks import SequenceClassifier
    >>> x_train, y_train, x_test, y_test = load_japanese_vowels()
    >>> clf = SequenceClassifier(epochs=2, ensemble=1, verbose=0).fit(x_train, y_train)
    >>> clf.predict(x_test[:3]).shape
    (3,)
"""

from __future__ import annotations

import math
import re

import numpy as np

from .. import layers as _layers
from ..utils import to_categorical
from ._common import units_list
from ._sequence import (
    VIEWS,
    SequencePipeline,
    check_crop,
    cpu_seconds,
    crop_length,
    series_stats,
    stratified_split,
)

__all__ = ["SequenceClassifier", "natural_sort", "pick_candidate"]

#: Defaults of :class:`SequenceClassifier` (also those of ``rnnkit train --task classify``).
#: None means "decided from the training data" (:meth:`SequenceClassifier.plan`).
CLASSIFY_DEFAULTS = dict(cell="gru", units=None, epochs=None, batch_size=None,
                         learning_rate=3e-3, clipnorm=1.0, validation_split=0.0, patience=20,
                         dropout=0.0, time_budget=600.0)

#: Most recurrent steps the network should see; longer series are cut into patches.
TARGET_STEPS = 64
#: Shortest patch whose magnitude spectrum is added to the inputs.
MIN_SPECTRUM_PATCH = 8
#: Shortest series (time steps) for which the spectrum view is tried.
MIN_VIEW_LENGTH = 32
#: Share of the time budget the view's cross-validation may use (split over its trials).
VIEW_TRIAL_SHARE = 0.4
#: Share of each series a training window covers when cropping is tried (``crop='auto'``).
CROP_TRIAL = 0.25
#: Optimizer updates per ensemble member (the epoch budget is derived from it).
TARGET_UPDATES = 1000
#: Largest ensemble trained when the time budget allows.
MAX_ENSEMBLE = 3
#: Estimated CPU seconds per recurrent step of one batch update (forward + backward) of a
#: bidirectional GRU(64) with a Dense(64) front-end: a fixed part plus a part per batch row
#: (measured on the project's 2-core machine; small batches are overhead-bound).
SECONDS_PER_STEP = (2.5e-4, 2.5e-5)


def _natural_key(label):
    text = str(label)
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)])


def natural_sort(labels):
    """Sort labels numerically when they look like numbers, else in natural text order.

    Example:
        >>> natural_sort(["10", "2", "1"])
        ['1', '2', '10']
    """
    return sorted(labels, key=_natural_key)


def pick_candidate(scores, n):
    """The simplest candidate whose cross-validated accuracy no other beats by more than one
    standard error.

    ``scores`` lists the candidates from the simplest to the most elaborate. Candidate c is
    taken, in that order, as soon as ``best - acc[c] <= se(best, acc[c])``, where ``best`` is
    the highest accuracy and ``se(a, b) = max(sqrt((a(1-a) + b(1-b)) / n), 1 / n)`` is the
    standard error of the difference of two accuracies each measured on the same ``n``
    series (and at least one series): a more elaborate candidate must win by more than
    noise. With two candidates this is "take the second only if it wins by more than one
    standard error".

    Args:
        scores: dict ``name -> accuracy`` in order of simplicity (first: the simplest).
        n: series each accuracy was measured on.

    Returns:
        the chosen name.

    Example:
        >>> pick_candidate({"time": 0.80, "spectrum": 0.83}, 100)
        'time'
        >>> pick_candidate({"time": 0.50, "spectrum": 0.83}, 100)
        'spectrum'
    """
    if not scores:
        raise ValueError("pick_candidate needs at least one candidate score, got none.")
    best = max(scores.values())
    for name, acc in scores.items():
        margin = max(math.sqrt((best * (1 - best) + acc * (1 - acc)) / n), 1.0 / n)
        # the accuracies are counts over n: a win by exactly the margin is no win, whatever
        # the rounding of the two means (1.0 - 0.99 > 0.01 in floating point)
        if best - acc <= margin + 1e-9:
            return name
    return max(scores, key=scores.get)  # not reached: the best is within 0 of itself


class SequenceClassifier(SequencePipeline):
    """Many-to-one classifier over variable-length sequences, with its preprocessing.

    Every setting left at None is decided from the training data by :meth:`plan` (the
    decisions and their reasons are in ``choices_``; ``rnnkit train`` prints them). With all
    defaults: a per-step ``Dense(64, relu)`` front-end over patches of the normalised series,
    ``Bidirectional(GRU(64))``, ``Dense(K, softmax)``, AdamW (learning rate 0.003, weight
    decay 0.01, clipnorm 1.0) with warm-up and cosine decay over about 1,000 updates, and as
    many networks (up to 3, probabilities averaged) as the 10-minute time budget allows.

    Args:
        cell: 'gru' (default), 'lstm' or 'rnn' (SimpleRNN).
        units: int, list of ints (one per recurrent layer) or '128,64' (None: by data size).
        layers: number of recurrent layers (None: one per entry of ``units``, else 1).
        bidirectional: wrap every recurrent layer in ``Bidirectional`` (None: yes).
        dropout: input dropout of every recurrent layer.
        epochs: epochs per network (None: about 1,000 updates, within the time budget).
        batch_size: sequences per gradient step (None: a tenth of the data, 8-64).
        learning_rate: peak learning rate.
        clipnorm: per-variable gradient-norm clipping (None or 0: off).
        validation_split: stratified share of the training data held out for early stopping
            (default 0: train the whole epoch budget on all the data).
        patience: epochs without validation-loss improvement before stopping (counted after
            the warm-up).
        standardize: False turns normalisation off (same as ``normalize='none'``).
        normalize: 'series' (each series by its own mean/std), 'series+level' (that, plus
            each series' mean and log std as inputs), 'channel' (training statistics per
            channel) or 'none' (None: 'series' for z-normalised univariate data,
            'series+level' for other univariate data, 'channel' for multivariate).
        view: 'time' (the series' values over time) or 'spectrum' (each series' log magnitude
            spectrum, read as a sequence over frequency); None: chosen (with ``crop``) by
            2-fold cross-validation on the training data for series of 32 steps or more,
            else 'time'.
        crop: share of each series a training window covers (window slicing: every epoch
            trains on one random contiguous window of ``ceil(crop * T)`` steps of each
            series; prediction averages the class probabilities of at least 5 evenly spaced
            windows covering the series); 0 or 'off': whole series; None or 'auto': windows
            of a quarter or whole series, chosen with the view by the same
            cross-validation.
        patch: time steps per recurrent step (None: ``ceil(longest / 64)``).
        embed: width of the per-step ``Dense(embed, relu)`` front-end (0: none; None: 64).
        ensemble: networks trained from seeds ``seed, seed+1000, ...`` whose probabilities are
            averaged (None: as many as the time budget allows, at most 3).
        schedule: 'cosine' (warm-up then cosine decay) or 'constant'.
        weight_decay: AdamW's decoupled weight decay (0: Adam).
        time_budget: CPU seconds the whole fit may take (default 600; on a dedicated machine
            an upper bound of the wall time); sizes the ensemble and the epochs, and stops
            training when exceeded (None: no limit).
        seed: seed for weights, shuffling and the validation split (None: not seeded).
        verbose: 0 silent, 1 one progress bar, 2 one line per epoch.

    Attributes:
        classes_: the user's labels, index = class id.
        choices_: list of ``{"name", "value", "reason"}`` dicts, one per decided setting.
        members: the trained :class:`rnnkit.Sequential` networks; ``model`` is the first.
        scaler: the fitted :class:`rnnkit.data.StandardScaler` of the inputs ('channel') or
            of the series' levels ('series+level'); None otherwise.
    """

    task = "classify"
    loss = "categorical_crossentropy"
    metrics = ("accuracy",)
    defaults = CLASSIFY_DEFAULTS
    classes_ = None  # set by fit / from_model

    def __init__(self, cell="gru", units=None, layers=None, bidirectional=None, dropout=None,
                 epochs=None, batch_size=None, learning_rate=None, clipnorm=1.0,
                 validation_split=None, patience=None, standardize=True, seed=0, verbose=1,
                 normalize=None, patch=None, embed=None, ensemble=None, schedule="cosine",
                 weight_decay=1e-2, time_budget=CLASSIFY_DEFAULTS["time_budget"],
                 spectrum=None, view=None, crop=None):
        auto_crop = crop is None or (isinstance(crop, str) and crop.strip().lower() == "auto")
        crop = None if auto_crop else check_crop(crop)
        self._requested = dict(units=units, layers=layers, bidirectional=bidirectional,
                               epochs=epochs, batch_size=batch_size, normalize=normalize,
                               standardize=standardize, patch=patch, embed=embed,
                               ensemble=ensemble, spectrum=spectrum, view=view, crop=crop)
        # what a candidate network of the view selection is built from (plan)
        self._arguments = dict(cell=cell, units=units, layers=layers, bidirectional=bidirectional,
                               dropout=dropout, epochs=epochs, batch_size=batch_size,
                               learning_rate=learning_rate, clipnorm=clipnorm,
                               standardize=standardize, normalize=normalize, patch=patch,
                               embed=embed, schedule=schedule, weight_decay=weight_decay,
                               spectrum=spectrum)
        self._selection = None   # (data fingerprint, choice, reasons, CPU seconds) of plan
        super().__init__(
            cell=cell, units=units_list(units, layers, (64,)), bidirectional=bidirectional
            is not False, dropout=dropout, epochs=epochs or 1, batch_size=batch_size or 32,
            learning_rate=learning_rate, clipnorm=clipnorm, validation_split=validation_split,
            patience=patience, standardize=standardize, seed=seed, verbose=verbose,
            normalize=normalize, patch=patch or 1, embed=64 if embed is None else embed,
            ensemble=ensemble or 1, schedule=schedule, weight_decay=weight_decay,
            time_budget=time_budget, spectrum=bool(spectrum), view=view or "time",
            crop=crop or 0.0)
        self.choices_ = []

    # -- choices from the data -------------------------------------------------------------
    def plan(self, x, y):
        """Decide every setting left at None from the training data ``(x, y)`` only.

        The rules (each recorded in ``choices_`` with its reason):

        * view and crop, together: for series of at least 32 steps, one network per
          candidate ('time', 'time' with crops of a quarter, 'spectrum', 'spectrum' with
          crops; simplest first) and fold is trained on half the training data and scored on
          the other half (2-fold stratified cross-validation, at most 40% of the time
          budget); :func:`pick_candidate` takes the simplest candidate no other beats by
          more than one standard error. The rules below then apply to the chosen view's
          sequences;
        * normalisation: univariate -> each series by its own mean and standard deviation
          (the shape is then comparable across series); if the training series are not
          already z-normalised, their level and scale may carry the class too, so each
          series' mean and log standard deviation (standardised over the training set) are
          fed as two extra inputs at every step; multivariate -> per channel with training
          statistics (keeps the channels' relative levels);
        * patch: ``ceil(L / 64)`` time steps per recurrent step, L the longest training
          series, so the recurrence runs at most 64 steps;
        * front-end: ``Dense(64, relu)`` on every patch (learned down-sampling);
        * direction: bidirectional (the whole sequence is known before the label is needed);
        * size: GRU(64) below 1,000 training sequences, GRU(128) from 1,000;
        * batch size: a tenth of the training sequences, between 8 and 64;
        * epochs: about 1,000 updates (between 20 and 300 epochs; with crops of a share F,
          1,000 / F updates and up to 300 / F epochs: the same number of time steps read),
          fewer if one network would not fit the time budget;
        * ensemble: as many networks as the estimated cost fits in 80% of the time budget
          (at most 3).

        Args:
            x: list of ``(T_i, C)`` training sequences.
            y: (N,) labels.

        Returns:
            ``choices_``: list of ``{"name", "value", "reason"}`` dicts.
        """
        req = self._requested
        choices = []

        def choose(name, value, reason):
            choices.append({"name": name, "value": value, "reason": reason})
            return value

        self.selection_seconds_before_fit_ = 0.0
        spent = 0.0
        if req["view"] is None or req["crop"] is None:
            (view, crop), reasons, spent, fresh = self._select_candidate(x, y)
            if req["view"] is None:
                self.view = choose("view", view, reasons["view"])
            if req["crop"] is None:
                self.crop = crop
                choose("crop", crop or "off", reasons["crop"])
            if not fresh:
                self.selection_seconds_before_fit_ = spent
        seqs = self._view(x)
        n = len(seqs)
        lengths = np.array([len(s) for s in seqs])
        channels = int(seqs[0].shape[1])
        counts = np.unique(np.asarray(y).astype(str), return_counts=True)[1]

        if req["normalize"] is None and req["standardize"]:
            mean, std = series_stats(seqs)
            prenormalised = bool(np.all(np.abs(mean) < 1e-2) and np.all(np.abs(std - 1) < 1e-2))
            if channels == 1 and prenormalised:
                self.normalize = choose("normalize", "series", "univariate, every training "
                                        "series already has mean 0 and std 1: each series is "
                                        "scaled by its own mean and std (shape counts)")
            elif channels == 1:
                self.normalize = choose(
                    "normalize", "series+level",
                    f"univariate, series levels {mean.min():.3g}..{mean.max():.3g} and "
                    f"scales {std.min():.3g}..{std.max():.3g} differ: each series is scaled "
                    "by its own mean and std, and that mean and log std (standardised over "
                    "the training set) are fed at every step")
            else:
                self.normalize = choose("normalize", "channel", f"{channels} channels: "
                                        "standardised per channel with training statistics, "
                                        "keeping their relative levels")
        longest = int(lengths.max())
        if req["patch"] is None:
            self.patch = max(1, math.ceil(longest / TARGET_STEPS))
            steps = math.ceil(longest / self.patch)
            span = (f"{lengths.min()}-{longest}" if lengths.min() < longest else f"{longest}")
            self.patch = choose(
                "patch", self.patch,
                f"series of {span} steps: " + (
                    f"{self.patch} steps per recurrent step, so the GRU runs at most {steps} "
                    "steps" if self.patch > 1 else
                    f"short enough to feed step by step (<= {TARGET_STEPS})") + (
                    f" ({math.ceil(crop_length(longest, self.crop) / self.patch)} on a "
                    f"window of {self.crop:.0%})" if self.crop else ""))
        # recurrent steps of the longest sequence the network reads (a window with crops)
        steps = math.ceil(crop_length(int(lengths.max()), self.crop) / self.patch)
        if req["spectrum"] is None:
            self.spectrum = self.patch >= MIN_SPECTRUM_PATCH
            choose("spectrum", self.spectrum, (
                f"patches of {self.patch} steps: each patch's magnitude spectrum "
                f"({self.patch // 2 + 1} frequencies) joins its values, so rhythms inside a "
                "patch are visible whatever their phase") if self.spectrum else (
                f"patches of {self.patch} step(s) are too short for a useful spectrum "
                f"(< {MIN_SPECTRUM_PATCH})"))
        if req["embed"] is None:
            width = channels * (self.patch + (self.patch // 2 + 1 if self.spectrum else 0)
                                + (2 if self.normalize == "series+level" else 0))
            choose("embed", self.embed, f"a Dense({self.embed}, relu) layer reads each step's "
                   f"{width} inputs before the GRU" + (
                       " (learned down-sampling of the patch)" if self.patch > 1 else ""))
        if req["bidirectional"] is None:
            choose("bidirectional", True, "the whole sequence is known before its label is "
                   "needed: one GRU reads forward, one backward; their final states are read")
        if req["units"] is None:
            size = 64 if n < 1000 else 128
            self.units = [size] * (req["layers"] or 1)
            choose("units", self.units, f"{n} training sequences: {size} units per direction")
        if req["batch_size"] is None:
            self.batch_size = choose("batch_size", int(np.clip(n // 10, 8, 64)),
                                     f"a tenth of {n} sequences, between 8 and 64")
        n_train = n - (int(round(n * self.validation_split)) if self.validation_split else 0)
        batches = math.ceil(n_train / self.batch_size)
        width = max(self.units) / 64.0
        step_cost = SECONDS_PER_STEP[0] + SECONDS_PER_STEP[1] * self.batch_size
        per_epoch = batches * steps * step_cost * max(1.0, width) * len(self.units)
        budget = None if self.time_budget is None else max(self.time_budget - spent, 1.0)
        if req["epochs"] is None:
            # with crops every epoch reads fresh windows, a share crop of the data: as many
            # updates as read the same number of time steps as whole series would
            updates = TARGET_UPDATES / (self.crop or 1.0)
            epochs = int(np.clip(round(updates / batches), 20, 300 / (self.crop or 1.0)))
            reason = (f"~{updates:.0f} updates of {batches} batches per epoch" + (
                f" (windows of {self.crop:.0%} of each series: the time steps of "
                f"{TARGET_UPDATES} updates on whole series)" if self.crop else "")
                + ", warm-up then cosine decay, no early stopping")
            if budget is not None and epochs * per_epoch > 0.8 * budget:
                epochs = max(1, int(0.8 * budget / per_epoch))
                reason = (f"as many epochs as fit 80% of the {budget:.0f} s budget (est. "
                          f"{per_epoch:.1f} s per epoch), warm-up then cosine decay")
            self.epochs = choose("epochs", epochs, reason)
        member = self.epochs * per_epoch
        if req["ensemble"] is None:
            if budget is None:
                k, reason = 1, "no time budget: one network"
            else:
                k = int(np.clip(0.8 * budget // max(member, 1e-9), 1, MAX_ENSEMBLE))
                reason = (f"est. {member:.0f} s per network: {k} network(s) fit 80% of the "
                          f"{budget:.0f} s budget; probabilities averaged")
            self.ensemble = choose("ensemble", k, reason)
        if counts.min() * 2 < counts.max():
            choose("class_balance", "unweighted", f"class sizes {counts.min()}-{counts.max()}: "
                   "left unweighted (accuracy is the target)")
        self.choices_ = choices
        return choices
    def _candidates(self):
        """The ``(view, crop)`` pairs cross-validation compares, simplest first: the views
        left to choose ('time' then 'spectrum') crossed with the crops left to choose (off,
        then :data:`CROP_TRIAL`); a setting the user gave is the only value of its axis."""
        req = self._requested
        views = VIEWS if req["view"] is None else (req["view"],)
        crops = (0.0, CROP_TRIAL) if req["crop"] is None else (req["crop"],)
        return [(v, c) for v in views for c in crops]

    @staticmethod
    def _candidate_name(view, crop):
        return view + (f"+crop {crop:g}" if crop else "")

    def _select_candidate(self, x, y):
        """Choose ``view`` ('time' or 'spectrum') and ``crop`` (off or :data:`CROP_TRIAL`)
        together by 2-fold stratified cross-validation on the training data: one network
        per candidate (:meth:`_candidates`) and fold, trained on one half and scored on the
        other (all trials together within :data:`VIEW_TRIAL_SHARE` of the time budget);
        :func:`pick_candidate` takes the simplest candidate that no other beats by more than
        one standard error (when in doubt: the time view, whole series). Series shorter than
        :data:`MIN_VIEW_LENGTH` steps, or a class with a single training series, keep the
        time view and whole series without trials. The result is remembered for the same
        data (``rnnkit train`` plans before it fits).

        Returns:
            ``((view, crop), {"view": reason, "crop": reason}, CPU seconds the trials took,
            True if computed by this call)``.
        """
        lengths = [len(s) for s in x]
        key = (len(x), int(np.sum(lengths)), float(np.nansum(x[0])), float(np.nansum(x[-1])),
               tuple(np.asarray(y).astype(str)[:50]))
        if self._selection is not None and self._selection[0] == key:
            return self._selection[1], self._selection[2], self._selection[3], False
        start = cpu_seconds()
        ids = np.unique(np.asarray(y).astype(str), return_inverse=True)[1]
        candidates = self._candidates()
        default = candidates[0]
        skip = None
        if min(lengths) < MIN_VIEW_LENGTH:
            skip = (f"series as short as {min(lengths)} steps (< {MIN_VIEW_LENGTH}): no "
                    "cross-validation trial")
        elif np.bincount(ids).min() < 2:
            skip = "a class with a single training series: no cross-validation possible"
        if skip is not None:
            choice = default
            scores = None
            reasons = {"view": f"{skip}; read over time" if choice[0] == "time" else skip,
                       "crop": f"{skip}; whole series" if not choice[1] else skip}
        else:
            half, other = stratified_split(ids, 0.5, 0 if self.seed is None else self.seed)
            folds = [(half, other), (other, half)]
            share = None if self.time_budget is None else VIEW_TRIAL_SHARE * self.time_budget \
                / (len(candidates) * len(folds))
            scores = {}
            for view, crop in candidates:
                acc = []
                for k, (tr, va) in enumerate(folds):
                    trial = type(self)(**self._arguments, view=view, crop=crop, ensemble=1,
                                       verbose=0, time_budget=share,
                                       seed=None if self.seed is None else self.seed + 7 * k)
                    trial.fit([x[i] for i in tr], np.asarray(y)[tr])
                    acc.append(trial.evaluate([x[i] for i in va], np.asarray(y)[va])
                               ["accuracy"])
                scores[(view, crop)] = float(np.mean(acc))
            # every series is scored once (n series in all)
            named = {self._candidate_name(*c): a for c, a in scores.items()}
            chosen = pick_candidate(named, len(ids))
            choice = next(c for c in candidates if self._candidate_name(*c) == chosen)
            table = ", ".join(f"{k} {a:.3f}" for k, a in named.items())
            cv = (f"2-fold cross-validation on the training data, accuracy {table}: "
                  f"{chosen} (the simplest within one standard error of the best)")
            view, crop = choice
            longest = max(lengths)
            reasons = {
                "view": cv + (": each series' log magnitude spectrum is read as the sequence"
                              if view == "spectrum" else ": the series is read over time"),
                "crop": (cv if self._requested["view"] is not None else
                         f"with the view, by the same cross-validation: {chosen}") + (
                    f": every epoch trains on one random window of {crop:.0%} of each series "
                    f"({crop_length(longest, crop)} of {longest} steps); prediction averages "
                    "the probabilities of windows covering the series" if crop else
                    ": whole series")}
        spent = cpu_seconds() - start
        self._selection = (key, choice, reasons, spent)
        return choice, reasons, spent, True

    # -- labels --------------------------------------------------------------------------------
    def _fit_targets(self, y):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D array of class labels, got shape {y.shape}.")
        labels = natural_sort(np.unique(y).tolist())
        if len(labels) < 2:
            raise ValueError(f"classification needs at least 2 classes in y, got {labels}.")
        self.classes_ = labels

    def _encode_ids(self, y):
        if self.classes_ is None:
            raise RuntimeError("The classifier has no classes yet: call fit first.")
        index = {str(c): i for i, c in enumerate(self.classes_)}
        ids = np.empty(len(y), dtype=np.int64)
        for n, label in enumerate(np.asarray(y).tolist()):
            i = index.get(str(label))
            if i is None:
                raise ValueError(
                    f"label {label!r} (sample {n}) was not among the training labels "
                    f"{self.classes_}; a classifier can only be evaluated on known classes.")
            ids[n] = i
        return ids

    def _encode_y(self, y):
        return to_categorical(self._encode_ids(y), len(self.classes_))

    def _groups(self, y_enc):
        return y_enc.argmax(-1)

    def _output_layer(self):
        return _layers.Dense(len(self.classes_), activation="softmax")

    def _targets_record(self):
        return {"classes": list(self.classes_)}

    def _restore_targets(self, record):
        classes = record.get("classes")
        if not classes:
            raise ValueError("the model's preprocessing record has no 'classes' list.")
        self.classes_ = list(classes)

    # -- predictions ---------------------------------------------------------------------------
    def predict_proba(self, x):
        """Class probabilities, (N, K), columns in the order of ``classes_``."""
        return self._raw_predict(x)

    def predict(self, x):
        """The most likely label of every sequence, in the user's own labels: (N,) array."""
        proba = self.predict_proba(x)
        return np.asarray(self.classes_, dtype=object)[proba.argmax(-1)]

    def evaluate(self, x, y):
        """``{"loss": cross-entropy, "accuracy": share of correct labels}`` on ``(x, y)``."""
        return super().evaluate(x, y)

    def _evaluate_outputs(self, outputs, y):
        ids = self._encode_ids(y)
        p = np.clip(outputs[np.arange(len(ids)), ids].astype(np.float64), 1e-7, 1.0)
        return {"loss": float(-np.log(p).mean()),
                "accuracy": float(np.mean(outputs.argmax(-1) == ids))}

    # -- saving ------------------------------------------------------------------------------
    def preprocessing_record(self):
        """The JSON-able record (see the base class) plus ``choices``: what was decided why."""
        return {**super().preprocessing_record(), "choices": list(self.choices_)}

    @classmethod
    def from_model(cls, model):
        """Rebuild the classifier around a loaded model (reads ``model.preprocessing``)."""
        obj = super().from_model(model)
        obj.choices_ = list(model.preprocessing.get("choices") or [])
        return obj
