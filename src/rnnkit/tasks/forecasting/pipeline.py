"""The forecasting pipeline :class:`Forecaster` (the steps are listed in
:mod:`rnnkit.tasks.forecasting`)."""

from __future__ import annotations

import numpy as np

from ... import callbacks as _cb
from ... import layers as _layers
from ... import regularizers as _reg
from ...data import StandardScaler
from ...models import Sequential
from ...saving import load_model
from .._common import (
    PREPROCESSING_FORMAT,
    ProgressBar,
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
from .baselines import detect_period, seasonal_naive
from .metrics import forecast_metrics
from .transforms import _difference, _fill_missing, _undifference

__all__ = ["Forecaster", "FORECAST_DEFAULTS"]

#: Defaults of :class:`Forecaster` (also those of ``rnnkit train --task forecast``).
FORECAST_DEFAULTS = dict(cell="lstm", units=(16,), horizon=12, window="auto", stride=1,
                         strategy="recursive", epochs=200, batch_size=16, learning_rate=3e-3,
                         clipnorm=1.0, validation_split=0.2, patience=20, dropout=0.2,
                         l2=1e-3, ensemble=10, log="auto", difference="auto",
                         seasonal_period="auto", aggregate="median")


# ------------------------------------------------------------------------------- the pipeline
class Forecaster:
    """Multi-step forecaster for one (possibly multichannel) time series.

    See the module docstring for every step. Defaults are ``FORECAST_DEFAULTS``.

    Args:
        horizon: number of future steps to forecast.
        window: input steps per example, or 'auto' (two seasons when a period is known, else
            24; shrunk when the series is too short).
        stride: step between consecutive training windows.
        strategy: 'direct' (one output per future step) or 'recursive' (one-step model fed
            its own predictions).
        cell, units, layers, bidirectional: the recurrent stack (see
            :class:`rnnkit.tasks.SequenceClassifier`).
        dropout: input dropout of every recurrent layer.
        l2: L2 penalty on every kernel (0: none).
        epochs, batch_size, learning_rate, clipnorm: training settings (Adam).
        validation_split: share of the last windows held out for early stopping (0: none,
            train ``epochs`` epochs).
        patience: early-stopping patience in epochs.
        ensemble: number of networks (seeds ``seed, seed+1, ...``) whose forecasts are
            combined.
        aggregate: 'median' (robust to one diverging network) or 'mean' of the members'
            forecasts.
        log: 'auto' (log of every all-positive channel), True or False.
        difference: 'auto' (lag 1, plus the seasonal lag when a period is known), 'none', or a
            list of lags such as ``[1, 12]``.
        seasonal_period: 'auto' (:func:`detect_period`), None, or an int; also used by the
            seasonal-naive baseline.
        target_column: channel to forecast.
        seed: base seed (None: not seeded).
        verbose: 0 silent, 1 one progress bar, 2 one line per epoch.
    """

    task = "forecast"
    #: The settings saved in the preprocessing record and restored by :meth:`from_model`.
    param_names = ("cell", "units", "bidirectional", "dropout", "l2", "epochs", "batch_size",
                   "learning_rate", "clipnorm", "validation_split", "patience", "ensemble",
                   "aggregate", "log", "difference", "seasonal_period", "seed")

    def __init__(self, horizon=FORECAST_DEFAULTS["horizon"], window="auto", stride=1,
                 strategy=FORECAST_DEFAULTS["strategy"], cell="lstm", units=None, layers=None,
                 bidirectional=False,
                 dropout=FORECAST_DEFAULTS["dropout"], l2=FORECAST_DEFAULTS["l2"],
                 epochs=FORECAST_DEFAULTS["epochs"], batch_size=FORECAST_DEFAULTS["batch_size"],
                 learning_rate=FORECAST_DEFAULTS["learning_rate"],
                 clipnorm=FORECAST_DEFAULTS["clipnorm"],
                 validation_split=FORECAST_DEFAULTS["validation_split"],
                 patience=FORECAST_DEFAULTS["patience"], ensemble=FORECAST_DEFAULTS["ensemble"],
                 log="auto", difference="auto", seasonal_period="auto", target_column=0,
                 aggregate=FORECAST_DEFAULTS["aggregate"], seed=0, verbose=1):
        if strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy must be 'direct' or 'recursive', got {strategy!r}.")
        check_positive_ints(horizon=horizon, stride=stride, ensemble=ensemble)
        if window != "auto" and (isinstance(window, bool) or not isinstance(
                window, (int, np.integer)) or window <= 0):
            raise ValueError(f"window must be a positive integer or 'auto', got {window!r}.")
        if aggregate not in ("mean", "median"):
            raise ValueError(f"aggregate must be 'mean' or 'median', got {aggregate!r}.")
        if log not in ("auto", True, False):
            raise ValueError(f"log must be 'auto', True or False, got {log!r}.")
        validation_split = check_validation_split(validation_split)
        self.horizon, self.window, self.stride = int(horizon), window, int(stride)
        self.strategy = strategy
        self.cell = cell
        self.units = units_list(units, layers, FORECAST_DEFAULTS["units"])
        self.bidirectional = bool(bidirectional)
        self.dropout, self.l2 = float(dropout), float(l2)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.clipnorm = float(learning_rate), clipnorm
        self.validation_split, self.patience = validation_split, int(patience)
        self.ensemble = int(ensemble)
        self.aggregate = aggregate
        self.log, self.difference, self.seasonal_period = log, difference, seasonal_period
        self.target_column = int(target_column)
        self.seed, self.verbose = seed, int(verbose)
        self.members = []        # trained Sequential models
        self.history_ = []       # one History per member
        self.info = {}
        self.n_channels = None
        self.period_ = None
        self.lags_ = None
        self.log_channels_ = None
        self.scaler = None
        self.window_ = None
        self.train_tail_ = None  # the last training values (forecast context)

    # -- transforms -------------------------------------------------------------------------
    def _as_series(self, series, what="series"):
        arr = np.asarray(series, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise ValueError(f"{what} must be a (T,) or (T, C) array of numbers, got shape "
                             f"{arr.shape}.")
        if self.n_channels is not None and arr.shape[1] != self.n_channels:
            raise ValueError(f"{what} has {arr.shape[1]} channel(s); the forecaster was "
                             f"trained on {self.n_channels}.")
        if np.isinf(arr).any():
            raise ValueError(f"{what} contains inf; replace it (NaN is interpolated).")
        return _fill_missing(arr)

    def _forward_transform(self, z):
        z = z.copy()
        for c in self.log_channels_:
            if np.any(z[:, c] <= 0):
                raise ValueError(
                    f"channel {c} was log-transformed in training (all values were positive), "
                    "but this series has values <= 0 there; retrain with log=False.")
            z[:, c] = np.log(z[:, c])
        return z

    def _inverse_log(self, values, channel):
        return np.exp(values) if channel in self.log_channels_ else values

    @property
    def context_length(self):
        """Raw history steps needed to forecast: the window plus the differencing lags."""
        return self.window_ + sum(self.lags_)

    # -- training ----------------------------------------------------------------------------
    def _resolve(self, z):
        T, C = z.shape
        if not -C <= self.target_column < C:
            raise ValueError(f"target_column {self.target_column} is out of range for a series "
                             f"with {C} channel(s).")
        self.target_column %= C
        self.n_channels = C
        if self.log == "auto":
            self.log_channels_ = [c for c in range(C) if np.all(z[:, c] > 0)]
        else:
            self.log_channels_ = list(range(C)) if self.log else []
        if self.log is True and any(np.any(z[:, c] <= 0) for c in range(C)):
            raise ValueError("log=True needs positive values in every channel; use log='auto'.")
        if self.seasonal_period == "auto":
            self.period_ = detect_period(z[:, self.target_column])
        else:
            self.period_ = None if not self.seasonal_period else int(self.seasonal_period)
        if self.difference == "auto":
            lags = [1] + ([self.period_] if self.period_ and self.period_ > 1 else [])
        elif self.difference in ("none", None, False):
            lags = []
        else:
            lags = [int(v) for v in self.difference]
            if any(v <= 0 for v in lags):
                raise ValueError(f"difference lags must be positive, got {lags}.")
        self.lags_ = lags
        n_diff = T - sum(lags)
        out = 1 if self.strategy == "recursive" else self.horizon
        if self.window == "auto":
            want = 2 * self.period_ if self.period_ else 24
            # keep at least 8 training windows
            self.window_ = max(1, min(want, n_diff - out - 7))
        else:
            self.window_ = int(self.window)
        if n_diff - self.window_ - out + 1 < 2:
            raise ValueError(
                f"the training series has {T} steps; after differencing (lags {lags}) "
                f"{n_diff} remain, too few for window={self.window_} and "
                f"{'one-step targets' if out == 1 else f'horizon={self.horizon}'} (need at "
                f"least {self.window_ + out + 1}). Use a longer series, a smaller "
                "window/horizon, or difference='none'.")

    def _windows(self, d):
        """(X, Y) training windows of the scaled differenced series ``d`` (T', C)."""
        out = 1 if self.strategy == "recursive" else self.horizon
        n = (len(d) - self.window_ - out) // self.stride + 1
        starts = np.arange(n) * self.stride
        X = d[starts[:, None] + np.arange(self.window_)]                    # (N, W, C)
        if self.strategy == "direct":
            Y = d[starts[:, None] + self.window_ + np.arange(out), self.target_column]
        else:
            Y = d[starts + self.window_]                                        # (N, C)
        return X.astype(np.float32), Y.astype(np.float32)

    def build_model(self):
        """A fresh network: recurrent stack -> Dense(horizon) (direct) or Dense(C)."""
        reg = _reg.L2(self.l2) if self.l2 > 0 else None
        rnn = recurrent_stack(self.cell, self.units, bidirectional=self.bidirectional,
                              dropout=self.dropout, kernel_regularizer=reg)
        out = self.horizon if self.strategy == "direct" else self.n_channels
        model = Sequential([_layers.Input((self.window_, self.n_channels))] + rnn
                           + [_layers.Dense(out, kernel_regularizer=reg)])
        model.compile(optimizer=make_optimizer(self.learning_rate, self.clipnorm), loss="mse")
        return model

    def fit(self, series, callbacks=None):
        """Fit the transforms and the ensemble on a training series.

        Args:
            series: (T,) or (T, C) training values, oldest first.
            callbacks: extra callbacks passed to every member's ``fit``.

        Returns:
            self.
        """
        z = self._as_series(series)
        self.n_channels = None
        self._resolve(z)
        zt = self._forward_transform(z)
        d = _difference(zt, self.lags_)
        self.scaler = StandardScaler().fit(d)
        X, Y = self._windows(self.scaler.transform(d))
        n_val = int(round(len(X) * self.validation_split)) if self.validation_split else 0
        if self.validation_split and (n_val == 0 or n_val >= len(X)):
            raise ValueError(f"validation_split={self.validation_split} of {len(X)} windows "
                             "leaves no training or no validation window.")
        self.train_tail_ = z[-self.context_length:]
        self.members, self.history_ = [], []
        bar = ProgressBar(self.epochs, runs=self.ensemble, desc="forecast",
                          enabled=self.verbose == 1)
        for k in range(self.ensemble):
            seed_everything(None if self.seed is None else self.seed + k)
            model = self.build_model()
            cbs = list(callbacks or [])
            fit_kw = {}
            if n_val:
                cbs.append(_cb.EarlyStopping(monitor="val_loss", patience=self.patience,
                                             restore_best_weights=True))
                fit_kw["validation_data"] = (X[-n_val:], Y[-n_val:])
                Xt, Yt = X[:-n_val], Y[:-n_val]
            else:
                Xt, Yt = X, Y
            hist = model.fit(Xt, Yt, batch_size=self.batch_size, epochs=self.epochs,
                             callbacks=cbs + [bar], verbose=2 if self.verbose >= 2 else 0,
                             **fit_kw)
            self.members.append(model)
            self.history_.append(hist)
        bar.close()
        return self

    # -- forecasting ------------------------------------------------------------------------
    def _check_fitted(self):
        if not self.members:
            raise RuntimeError("Forecaster is not fitted: call fit(series) first, or load one "
                               "with Forecaster.load(path).")

    def _member_diffs(self, model, d_ctx):
        """One member's prediction of the next ``horizon`` scaled diffs: (H, C)."""
        if self.strategy == "direct":
            full = np.zeros((self.horizon, self.n_channels))
            full[:, self.target_column] = model.predict(d_ctx[None].astype(np.float32),
                                                        verbose=0)[0]
            return full
        win = d_ctx.copy()
        steps = []
        for _ in range(self.horizon):
            nxt = model.predict(win[None].astype(np.float32), verbose=0)[0]       # (C,)
            steps.append(nxt)
            win = np.concatenate([win[1:], nxt[None]])
        return np.stack(steps).astype(np.float64)

    def member_forecasts(self, history=None):
        """Every member's forecast of the target channel in original units: (E, horizon).

        Args:
            history: as in :meth:`forecast`.
        """
        self._check_fitted()
        z = self.train_tail_ if history is None else self._as_series(history, "history")
        if len(z) < self.context_length:
            raise ValueError(
                f"history has {len(z)} steps; the forecaster needs at least "
                f"{self.context_length} (window {self.window_} + differencing lags "
                f"{self.lags_}).")
        z = z[-self.context_length:]
        zt = self._forward_transform(z)
        d = self.scaler.transform(_difference(zt, self.lags_))
        c = self.target_column
        out = []
        for model in self.members:
            diffs = self.scaler.inverse_transform(self._member_diffs(model, d))
            levels = _undifference(zt, diffs, self.lags_) if self.lags_ else diffs
            out.append(self._inverse_log(levels[:, c], c))
        return np.stack(out)

    def forecast(self, history=None):
        """Forecast the ``horizon`` values after ``history``.

        Each member forecasts in original units; the forecasts are combined by ``aggregate``
        (median or mean).

        Args:
            history: (T,) or (T, C) raw values ending just before the forecast, at least
                ``context_length`` steps; None uses the end of the training series.

        Returns:
            (horizon,) float64 forecast of the target channel, in the original units.
        """
        fc = self.member_forecasts(history)
        return np.median(fc, axis=0) if self.aggregate == "median" else fc.mean(axis=0)

    def baseline(self, history=None):
        """Seasonal-naive forecast of the target channel (naive when no period is known)."""
        z = self.train_tail_ if history is None else self._as_series(history, "history")
        return seasonal_naive(z[:, self.target_column], self.horizon, self.period_)

    def evaluate(self, actual, history=None):
        """Score the forecast after ``history`` against the values that followed.

        Args:
            actual: the true values after ``history`` ((n,) target values, or (n, C)); the
                first ``min(n, horizon)`` are scored.
            history: as in :meth:`forecast` (None: the training series).

        Returns:
            dict: ``mae``, ``rmse``, ``mape``, ``smape`` of the model, and ``baseline`` with
            the same metrics for the seasonal-naive forecast (``baseline["method"]`` names it).
        """
        a = np.asarray(actual, dtype=np.float64)
        if a.ndim == 2:
            a = a[:, self.target_column]
        a = a.reshape(-1)
        if a.size == 0:
            raise ValueError("actual is empty: pass the values that follow the history.")
        n = min(len(a), self.horizon)
        f = self.forecast(history)[:n]
        b = self.baseline(history)[:n]
        res = forecast_metrics(a[:n], f)
        res["baseline"] = {"method": f"seasonal_naive(m={self.period_ or 1})",
                           **forecast_metrics(a[:n], b)}
        res["steps"] = n
        return res

    # -- saving -------------------------------------------------------------------------------
    def preprocessing_record(self):
        """The JSON-able dict saved as ``model.preprocessing`` of the first member."""
        return jsonable({
            "format": PREPROCESSING_FORMAT,
            "task": self.task,
            "n_channels": self.n_channels,
            "target_column": self.target_column,
            "horizon": self.horizon,
            "window": self.window_,
            "stride": self.stride,
            "strategy": self.strategy,
            "log_channels": self.log_channels_,
            "lags": self.lags_,
            "seasonal_period": self.period_,
            "scaler": self.scaler.to_config(),
            "train_tail": self.train_tail_,
            # members 2..E: weights as nested lists (small models), same config as member 1
            "ensemble_weights": [m.get_weights() for m in self.members[1:]],
            "params": params_record(self, self.param_names),
            "info": self.info,
        })

    def save(self, path):
        """Save all members, transforms and the training tail in one ``.rnnkit`` file."""
        self._check_fitted()
        save_pipeline(self, self.members[0], path)

    @classmethod
    def from_model(cls, model):
        """Rebuild the forecaster around a loaded model (reads ``model.preprocessing``)."""
        check_task(model, cls.task)
        pre = model.preprocessing
        obj = cls(horizon=int(pre["horizon"]), window=int(pre["window"]),
                  stride=int(pre.get("stride", 1)), strategy=pre["strategy"],
                  target_column=int(pre["target_column"]), verbose=0,
                  **saved_params(pre, cls.param_names))
        obj.n_channels = int(pre["n_channels"])
        obj.window_ = int(pre["window"])
        obj.log_channels_ = [int(c) for c in pre["log_channels"]]
        obj.lags_ = [int(v) for v in pre["lags"]]
        obj.period_ = pre.get("seasonal_period")
        obj.scaler = StandardScaler.from_config(pre["scaler"])
        obj.train_tail_ = np.asarray(pre["train_tail"], dtype=np.float64)
        obj.members = [model]
        for weights in pre.get("ensemble_weights") or []:
            member = Sequential.from_config(model.get_config())
            member.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
            member.compile(optimizer="adam", loss="mse")
            obj.members.append(member)
        obj.info = dict(pre.get("info") or {})
        return obj

    @classmethod
    def load(cls, path):
        """Load a forecaster saved with :meth:`save` (or by ``rnnkit train``)."""
        return cls.from_model(load_model(path))
