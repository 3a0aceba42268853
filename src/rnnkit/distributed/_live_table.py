"""The sweep's live trials table: a Ray Tune callback (imported only when Ray is)."""

from __future__ import annotations

import time

from ray import tune

from ._table import FINAL, _plain, format_table


class LiveTable(tune.Callback):
    """Prints the trials table (:func:`rnnkit.distributed.tune.format_table`) when results
    arrive, at most every ``interval`` seconds (:func:`~rnnkit.distributed.sweep` prints the
    final table itself, with the trials of earlier, resumed runs).

    Ray pickles this callback with the sweep's state and restores it when the sweep is
    resumed; the print function is a class attribute, set by each run, so a resumed sweep
    prints where the new run asks.

    Args:
        metric, mode: the sweep's metric and 'min' / 'max'.
        params: names of the searched settings (table columns).
        interval: seconds between two tables.
    """

    #: where tables go (set by :func:`rnnkit.distributed.sweep`); None prints nothing
    print_fn = None

    def __init__(self, metric, mode, params, interval=2.0):
        self.metric, self.mode, self.params = metric, mode, list(params)
        self.interval = interval
        self.rows, self.shown = {}, 0.0

    def _row(self, trial, result=None, status=None):
        row = self.rows.setdefault(trial.trial_id, {"trial": trial.trial_id})
        row.update({p: _plain(trial.config.get(p)) for p in self.params})
        if result:
            row["epochs"] = result.get("epoch")
            row[self.metric] = result.get(self.metric)
            if result.get(FINAL) == 1:
                row["status"] = "COMPLETED"
        row.setdefault("status", "RUNNING")
        if status and row["status"] != "COMPLETED":
            row["status"] = status
        return row

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._row(trial, result)
        if time.monotonic() - self.shown >= self.interval:
            self.show()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._row(trial, status="STOPPED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._row(trial, status="ERROR")

    def show(self):
        self.shown = time.monotonic()
        if LiveTable.print_fn is not None:
            LiveTable.print_fn(format_table(list(self.rows.values()), self.metric, self.mode,
                                   self.params))
