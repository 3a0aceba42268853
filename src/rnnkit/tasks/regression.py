"""Sequence regression: a sequence in, one number (or a vector) out.

Used for the adding problem (``builtin:adding``) and for ``.ts`` files with regression
targets (``@targetLabel true``). Same preprocessing as :mod:`rnnkit.tasks.classification`
(per-channel standardisation from training data, masks for variable lengths, validation split
with early stopping and best-weight restore); the targets are standardised too (statistics
from training data) and predictions are mapped back to the original units.

Example:
    >>> from rnnkit.data import adding_problem
    >>> from rnnkit.tasks import SequenceRegressor
    >>> x, y = adding_problem(256, 20, seed=0)
    >>> reg = SequenceRegressor(units=16, epochs=2, verbose=0).fit(x, y)
    >>> reg.predict(x[:4]).shape
    (4, 1)
"""

from __future__ import annotations

import numpy as np

from .. import layers as _layers
from ..data import StandardScaler
from ._sequence import SequencePipeline

__all__ = ["SequenceRegressor"]

#: Defaults of :class:`SequenceRegressor` (also those of ``rnnkit train --task regress``).
REGRESS_DEFAULTS = dict(cell="lstm", units=(64,), epochs=30, batch_size=64,
                        learning_rate=3e-3, clipnorm=1.0, validation_split=0.1, patience=5,
                        dropout=0.0)


class SequenceRegressor(SequencePipeline):
    """Many-to-one regression over variable-length sequences (mse loss, linear output).

    Arguments as :class:`rnnkit.tasks.SequenceClassifier`; defaults in ``REGRESS_DEFAULTS``.
    ``evaluate`` reports ``mse`` and ``mae`` in the original units of ``y`` and ``loss`` (the
    mse of standardised targets, the quantity trained).
    """

    task = "regress"
    loss = "mse"
    metrics = ()
    defaults = REGRESS_DEFAULTS
    y_scaler = None   # set by fit / from_model
    n_outputs = None

    @staticmethod
    def _as_targets(y):
        try:
            y = np.asarray(y, dtype=np.float64)
        except ValueError:
            raise ValueError("regression targets must be numbers; got non-numeric values "
                             "(use --task classify for class labels).") from None
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2:
            raise ValueError(f"y must be (N,) or (N, K) numbers, got shape {y.shape}.")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or Inf; regression targets must be finite.")
        return y

    def _fit_targets(self, y):
        y = self._as_targets(y)
        self.n_outputs = y.shape[1]
        self.y_scaler = StandardScaler().fit(y)

    def _encode_y(self, y):
        y = self._as_targets(y)
        if y.shape[1] != self.n_outputs:
            raise ValueError(f"y has {y.shape[1]} target column(s); the model predicts "
                             f"{self.n_outputs}.")
        return self.y_scaler.transform(y).astype(np.float32)

    def _output_layer(self):
        return _layers.Dense(self.n_outputs)

    def _targets_record(self):
        return {"n_outputs": self.n_outputs, "y_scaler": self.y_scaler.to_config()}

    def _restore_targets(self, record):
        self.n_outputs = int(record["n_outputs"])
        self.y_scaler = StandardScaler.from_config(record["y_scaler"])

    def predict(self, x):
        """Predictions in the units of the training targets, (N, K)."""
        return self.y_scaler.inverse_transform(self._raw_predict(x).astype(np.float64))

    def _evaluate_outputs(self, outputs, y):
        """The loss of averaged outputs (ensembles, crops): mse on standardised targets."""
        return {"loss": float(np.mean((outputs.astype(np.float64) - self._encode_y(y)) ** 2))}

    def evaluate(self, x, y):
        """``{"loss": mse on standardised targets, "mse": .., "mae": ..}`` (original units)."""
        res = super().evaluate(x, y)
        err = self.predict(x) - self._as_targets(y)
        res["mse"] = float(np.mean(err ** 2))
        res["mae"] = float(np.mean(np.abs(err)))
        return res
