"""Hyper-parameter sweeps on Ray Tune (``pip install "rnnkit[tune]"``).

A sweep runs ``rnnkit train`` (the same pipelines, options and defaults) once per trial as a
Ray Tune *function trainable*. Every epoch reports rnnkit's logs (``loss``, ``val_loss``,
metrics) to Tune, so ASHA can stop poor trials early; random search or Optuna's TPE choose
the settings. A finished trial saves its model as an ordinary rnnkit file in a Tune
checkpoint; the best completed trial's file is copied to ``<storage>/<name>/best.rnnkit``.
``results.csv`` and ``results.json`` there list every trial. Running the same sweep again
resumes it: finished trials are kept, unfinished ones run (Ray's ``Tuner.restore``).

ray and optuna are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass

from ..callbacks import Callback
from ._table import FINAL, _plain, format_table
from .spec import SweepSpec, load_sweep_spec

MODEL_FILE = "model.rnnkit"
DEFAULT_OBJECT_STORE = 200 * 2**20


def _namespace(values):
    from ..cli.train import options
    ns = argparse.Namespace(config=None, distributed=False)
    for o in options():
        setattr(ns, o.name, values.get(o.name))
    return ns


class _Report(Callback):
    """rnnkit callback: every epoch's logs go to Ray Tune (``ray.tune.report``); keeps the
    best value of the sweep's metric."""

    def __init__(self, metric, mode):
        super().__init__()
        self.metric, self.mode = metric, mode
        self.last, self.best = {}, None

    def on_epoch_end(self, epoch, logs=None):
        from ray import tune
        logs = {k: float(v) for k, v in (logs or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.metric not in logs:
            raise ValueError(
                f"sweep metric {self.metric!r} is not among the epoch logs {sorted(logs)}. "
                "val_* metrics need validation_split > 0 in [train]; or set metric = 'loss' "
                "in [sweep].")
        v = logs[self.metric]
        if self.best is None or (v < self.best if self.mode == "min" else v > self.best):
            self.best = v
        self.last = {**logs, "epoch": epoch + 1}
        tune.report(self.last)


def _trial(config, *, train, metric, mode, cpus):
    """One trial: `rnnkit train` with ``train`` + ``config``; per-epoch reports; model saved."""
    from ray import tune

    from ..cli._common import Output
    from ..cli.train import resolve, train_values
    from ..kernels import _blas

    _blas.set_threads(cpus)
    values = {**train, **{k: _plain(v) for k, v in config.items()}}
    v = resolve(_namespace(values))
    v.update(quiet=True, verbose=False, json=False)
    report = _Report(metric, mode)
    pipe, metrics, _, _, _ = train_values(v, Output(quiet=True), [report])
    final = {**report.last, metric: report.best, FINAL: 1}
    final.update({f"test_{k}": float(x) for k, x in metrics.items()
                  if isinstance(x, (int, float)) and not isinstance(x, bool)})
    with tempfile.TemporaryDirectory() as folder:
        pipe.save(os.path.join(folder, MODEL_FILE))
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))


def _domain(spec):
    from ray import tune
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        return tune.choice(args)
    if kind == "uniform":
        return tune.uniform(*args)
    if kind == "loguniform":
        return tune.loguniform(*args)
    return tune.randint(args[0], args[1] + 1)   # the file's upper bound is included


def _max_iterations(spec):
    """Most reports a trial can make: epochs (x ensemble members) + 1 final."""
    from ..cli.train import resolve

    def upper(key, default):
        dist = spec.space.get(key)
        if dist is None:
            return default
        kind, args = next(iter(dist.items()))
        return max(args) if kind == "choice" else args[1]

    from ..cli._common import LIMITS
    from ..tasks.classification import MAX_ENSEMBLE

    v = resolve(_namespace(spec.train))
    # forecasts and classifiers train ensembles (a classifier sizes its own from the data)
    ensemble = {"forecast": v.get("ensemble") or 1,
                "classify": v.get("ensemble") or MAX_ENSEMBLE}.get(v["task"], 1)
    epochs = upper("epochs", v["epochs"])
    if epochs is None:  # decided from the data (classify): bounded by the option's limit
        epochs = LIMITS["epochs"][2]
    return int(epochs) * int(upper("ensemble", ensemble)) + 1


@dataclass
class SweepResult:
    """What :func:`sweep` returns.

    Attributes:
        path: the experiment folder ``<storage>/<name>``.
        trials: one dict per trial (trial, status, settings, epochs, metric, test_* metrics,
            model file).
        best: the best completed trial's row (None when no trial completed).
        best_model: path of ``best.rnnkit`` (None when no trial completed).
        table: the final text table.
        resumed: True when an earlier run of the same sweep was continued.
        interrupted: True when the sweep stopped before all its trials ran (Ctrl-C): run it
            again to resume.
    """

    path: str
    trials: list
    best: dict | None
    best_model: str | None
    table: str
    resumed: bool
    interrupted: bool


def _row_of(result, spec):
    metrics = result.metrics or {}
    row = {"trial": metrics.get("trial_id") or os.path.basename(result.path)}
    row.update({p: _plain((result.config or {}).get(p)) for p in spec.space})
    if result.error is not None:
        status = "ERROR"
    elif metrics.get(FINAL) == 1:
        status = "COMPLETED"
    elif metrics.get("epoch") is None:  # no epoch reported (Ray may still fill trial_id...)
        status = "PENDING"
    else:
        status = "STOPPED"    # by ASHA, or by an interruption (then resuming runs it again)
    row.update(status=status, epochs=metrics.get("epoch"),
               **{spec.metric: metrics.get(spec.metric)})
    row.update({k: v for k, v in metrics.items() if k.startswith("test_")})
    ckpt = result.checkpoint
    row["model_file"] = (os.path.join(ckpt.path, MODEL_FILE)
                         if ckpt is not None and status == "COMPLETED" else None)
    if result.error is not None:
        row["error"] = str(result.error).strip().splitlines()[-1][:300]
    return row


def _write_results(folder, spec, rows, best):
    from ..saving import atomic_write_bytes
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    path_csv = os.path.join(folder, "results.csv")
    with open(path_csv + ".part", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(path_csv + ".part", path_csv)
    record = {"metric": spec.metric, "mode": spec.mode, "search": spec.search,
              "scheduler": spec.scheduler, "best": best, "trials": rows}
    atomic_write_bytes(os.path.join(folder, "results.json"),
                       json.dumps(record, indent=1, default=str).encode())
    return path_csv


def sweep(spec, *, address=None, num_cpus=None, object_store_memory=DEFAULT_OBJECT_STORE,
          resume=True, print_fn=print):
    """Run a hyper-parameter search of ``rnnkit train`` settings on Ray Tune.

    Args:
        spec: a :class:`SweepSpec`, a dict with its fields, or the path of a sweep TOML file
            (format: :mod:`rnnkit.distributed.spec`, example: examples/sweep.toml).
        address: join this Ray cluster (e.g. ``"auto"`` or ``"ray://head:10001"``) instead of
            starting a local Ray. The storage folder must then be reachable by every node.
        num_cpus: CPUs of the local Ray (default: this machine's cores).
        object_store_memory: bytes of the local Ray's object store (default 200 MiB; trials
            exchange only small results).
        resume: continue an earlier, interrupted run of the same sweep (same storage and
            name) when there is one; False refuses to touch an existing folder.
        print_fn: where the live table and messages go (None: silent).

    Returns:
        :class:`SweepResult`; ``best_model`` is an ordinary rnnkit model file
        (``rnnkit.load_model``, ``rnnkit evaluate``, ``rnnkit predict``).

    Example:
        >>> from rnnkit.distributed import sweep            # doctest: +SKIP
        >>> res = sweep("examples/sweep.toml", num_cpus=2)   # doctest: +SKIP
        >>> res.best["lr"], res.best_model                   # doctest: +SKIP
    """
    if isinstance(spec, (str, os.PathLike)):
        spec = load_sweep_spec(spec)
    elif isinstance(spec, dict):
        spec = SweepSpec(**spec)
    elif not isinstance(spec, SweepSpec):
        raise TypeError(f"spec must be a SweepSpec, a dict or a TOML path, got "
                        f"{type(spec).__name__}.")
    say = print_fn or (lambda *a, **k: None)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")   # our table instead of Ray's
    try:
        import ray
        from ray import tune

        from ._live_table import LiveTable
    except ImportError:
        raise ImportError("rnnkit sweeps need Ray Tune and Optuna: pip install "
                          "\"rnnkit[tune]\".") from None
    folder = os.path.join(os.path.abspath(spec.storage), spec.name)
    can_restore = os.path.isdir(folder) and tune.Tuner.can_restore(folder)
    if os.path.exists(folder) and not resume:
        raise ValueError(f"sweep folder {folder!r} already exists; resume it (the default), "
                         "choose another [sweep] name, or delete the folder.")
    max_t = _max_iterations(spec)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    if spec.search == "tpe":
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = False
    if not ray.is_initialized():
        quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(),
                     object_store_memory=object_store_memory, include_dashboard=False, **quiet)
        started = True
    try:
        trainable = tune.with_resources(
            tune.with_parameters(_trial, train=spec.train, metric=spec.metric, mode=spec.mode,
                                 cpus=spec.cpus_per_trial),
            {"cpu": spec.cpus_per_trial})
        space = {k: _domain(d) for k, d in spec.space.items()}
        LiveTable.print_fn = print_fn
        if can_restore:
            say(f"resuming the sweep in {folder}")
            tuner = tune.Tuner.restore(folder, trainable, resume_unfinished=True,
                                       resume_errored=True, param_space=space)
        else:
            tuner = tune.Tuner(trainable, param_space=space,
                               tune_config=_tune_config(spec, max_t),
                               run_config=tune.RunConfig(
                                   name=spec.name, storage_path=os.path.abspath(spec.storage),
                                   verbose=0,
                                   callbacks=[LiveTable(spec.metric, spec.mode,
                                                        list(spec.space))]))
        grid = tuner.fit()
        rows = [_row_of(r, spec) for r in grid]
    finally:
        if started:
            ray.shutdown()
    done = [r for r in rows if r["status"] == "COMPLETED" and r["model_file"]
            and isinstance(r[spec.metric], (int, float)) and math.isfinite(r[spec.metric])]
    best = ((min if spec.mode == "min" else max)(done, key=lambda r: r[spec.metric])
            if done else None)
    best_model = None
    if best is not None:
        from ..saving import atomic_write_bytes
        best_model = os.path.join(folder, "best.rnnkit")
        with open(best["model_file"], "rb") as f:
            atomic_write_bytes(best_model, f.read())
    table = format_table(rows, spec.metric, spec.mode, list(spec.space))
    _write_results(folder, spec, rows, best)
    interrupted = len(rows) < spec.num_samples or any(r["status"] == "PENDING" for r in rows)
    return SweepResult(path=folder, trials=rows, best=best, best_model=best_model,
                       table=table, resumed=can_restore, interrupted=interrupted)


def _tune_config(spec, max_t):
    from ray import tune
    if spec.search == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch
        search = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=spec.seed))
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator
        search = BasicVariantGenerator(random_state=spec.seed)
    scheduler = None
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                                  grace_period=min(spec.grace_period, max_t),
                                  reduction_factor=spec.reduction_factor)
    return tune.TuneConfig(metric=spec.metric, mode=spec.mode, search_alg=search,
                           scheduler=scheduler, num_samples=spec.num_samples,
                           max_concurrent_trials=spec.max_concurrent)
