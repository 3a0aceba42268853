"""The sweep file: a TOML description of a hyper-parameter search (``rnnkit sweep FILE``).

::

    [sweep]                        # how to search (every key optional)
    name = "vowels"                # results go to <storage>/<name>/
    metric = "val_loss"            # a per-epoch log key of rnnkit's fit
    mode = "min"                   # min | max
    search = "tpe"                 # random | tpe (Optuna's Tree-structured Parzen Estimator)
    scheduler = "asha"             # asha (stop poor trials early) | none
    num_samples = 8                # trials
    max_concurrent = 2             # trials at once (default: as many as the CPUs allow)
    cpus_per_trial = 1             # threads of each trial
    grace_period = 2               # ASHA: epochs before a trial may be stopped
    reduction_factor = 2           # ASHA: keep 1/reduction_factor at each rung
    seed = 0                       # the search algorithm's seed
    storage = "sweeps"             # folder (relative to this file)

    [train]                        # fixed `rnnkit train` options
    data = "builtin:japanese_vowels"
    epochs = 10

    [space]                        # searched `rnnkit train` options
    cell = { choice = ["lstm", "gru"] }
    units = { choice = [32, 64] }
    lr = { loguniform = [1e-4, 1e-2] }
    dropout = { uniform = [0.0, 0.3] }
    layers = { randint = [1, 2] }  # both ends included

Keys of ``[train]`` and ``[space]`` are the options of ``rnnkit train`` (``batch-size`` or
``batch_size``); ``out``, ``json``, ``quiet`` and ``verbose`` are set by the sweep.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

#: distributions of the [space] table -> number of bounds
DISTRIBUTIONS = {"choice": None, "uniform": 2, "loguniform": 2, "randint": 2}
#: rnnkit train options a sweep sets itself
RESERVED = ("out", "json", "quiet", "verbose", "config")


@dataclass
class SweepSpec:
    """A validated sweep description (see the module docstring for the file format).

    Attributes:
        train: fixed ``rnnkit train`` options (name -> value).
        space: searched options (name -> ``{"choice": [...]}`` / ``{"uniform": [lo, hi]}`` /
            ``{"loguniform": [lo, hi]}`` / ``{"randint": [lo, hi]}``, both ends included).
        name, metric, mode, search, scheduler, num_samples, max_concurrent, cpus_per_trial,
        grace_period, reduction_factor, seed, storage: the [sweep] settings.
    """

    train: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)
    name: str = "sweep"
    metric: str = "val_loss"
    mode: str = "min"
    search: str = "random"
    scheduler: str = "asha"
    num_samples: int = 8
    max_concurrent: int | None = None
    cpus_per_trial: int = 1
    grace_period: int = 1
    reduction_factor: int = 2
    seed: int | None = 0
    storage: str = "sweeps"

    def __post_init__(self):
        self.validate()

    def validate(self, source="sweep"):
        """Raise ValueError naming the first wrong setting."""
        from ..cli.train import options

        known = {o.name for o in options()}
        for table in ("train", "space"):
            entries = getattr(self, table)
            if not isinstance(entries, dict):
                raise ValueError(f"{source}: [{table}] must be a table, got {entries!r}.")
            for key in entries:
                if key in RESERVED:
                    raise ValueError(f"{source}: [{table}] {key!r} is set by the sweep itself; "
                                     "remove it.")
                if key not in known:
                    raise ValueError(f"{source}: [{table}] has unknown option {key!r}; valid "
                                     f"options are those of `rnnkit train`: {sorted(known)}.")
        both = sorted(set(self.train) & set(self.space))
        if both:
            raise ValueError(f"{source}: {both} appear in both [train] and [space]; keep each "
                             "option in one of them.")
        if not self.space:
            raise ValueError(f"{source}: [space] is empty; give at least one searched option, "
                             "e.g. lr = { loguniform = [1e-4, 1e-2] }.")
        for key, dist in self.space.items():
            _check_distribution(source, key, dist)
        choices = {"mode": ("min", "max"), "search": ("random", "tpe"),
                   "scheduler": ("asha", "none")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{source}: [sweep] {key} must be one of {list(allowed)}, got "
                                 f"{getattr(self, key)!r}.")
        for key in ("num_samples", "cpus_per_trial", "grace_period", "reduction_factor"):
            _positive_int(source, key, getattr(self, key))
        if self.reduction_factor < 2:
            raise ValueError(f"{source}: [sweep] reduction_factor must be at least 2, got "
                             f"{self.reduction_factor}.")
        if self.max_concurrent is not None:
            _positive_int(source, "max_concurrent", self.max_concurrent)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or self.seed < 0):
            raise ValueError(f"{source}: [sweep] seed must be a non-negative integer, got "
                             f"{self.seed!r}.")
        for key in ("name", "metric", "storage"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"{source}: [sweep] {key} must be a non-empty string, got "
                                 f"{getattr(self, key)!r}.")


def _positive_int(source, key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{source}: [sweep] {key} must be a positive integer, got {value!r}.")


def _check_distribution(source, key, dist):
    where = f"{source}: [space] {key}"
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise ValueError(f"{where} must be one of {{ choice = [...] }}, {{ uniform = [lo, hi] }}, "
                         f"{{ loguniform = [lo, hi] }}, {{ randint = [lo, hi] }}; got {dist!r}.")
    kind, args = next(iter(dist.items()))
    if not isinstance(args, list) or not args:
        raise ValueError(f"{where}: {kind} needs a non-empty list, got {args!r}.")
    if kind == "choice":
        return
    if len(args) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, float))
                             or not math.isfinite(a) for a in args):
        raise ValueError(f"{where}: {kind} needs two finite numbers [low, high], got {args!r}.")
    lo, hi = args
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise ValueError(f"{where}: randint needs two integers, got {args!r}.")
    if not lo < hi if kind != "randint" else not lo <= hi:
        raise ValueError(f"{where}: {kind} needs low < high, got {args!r}.")
    if kind == "loguniform" and lo <= 0:
        raise ValueError(f"{where}: loguniform needs positive bounds, got {args!r}.")


def _normalise(table):
    return {str(k).replace("-", "_"): v for k, v in table.items()}


def load_sweep_spec(path) -> SweepSpec:
    """Read and validate a sweep TOML file.

    Relative paths (``storage``; ``data`` and ``test`` in ``[train]``, unless built-in) are
    resolved against the file's folder.

    Args:
        path: the ``.toml`` file.

    Returns:
        :class:`SweepSpec`.

    Raises:
        ValueError: the file is missing, not TOML, or holds an unknown or invalid setting.
    """
    from ..cli._common import CLIError, read_toml

    p = Path(path)
    try:
        raw = read_toml(p, "sweep file", "see examples/sweep.toml")
    except CLIError as e:
        raise ValueError(str(e)) from None
    unknown = sorted(set(raw) - {"sweep", "train", "space"})
    if unknown:
        raise ValueError(f"{p.name}: unknown table(s) or key(s) {unknown}; a sweep file has the "
                         "tables [sweep], [train] and [space] (see examples/sweep.toml).")
    settings = _normalise(raw.get("sweep", {}))
    fields = set(SweepSpec.__dataclass_fields__) - {"train", "space"}
    bad = sorted(set(settings) - fields)
    if bad:
        raise ValueError(f"{p.name}: [sweep] has unknown key(s) {bad}; valid keys are "
                         f"{sorted(fields)}.")
    folder = p.resolve().parent
    train = _normalise(raw.get("train", {}))
    for key in ("data", "test"):
        v = train.get(key)
        if isinstance(v, str) and not v.startswith("builtin:") and not os.path.isabs(v):
            train[key] = str(folder / v)
    if "storage" in settings and isinstance(settings["storage"], str):
        settings["storage"] = str(folder / settings["storage"])
    else:
        settings["storage"] = str(folder / SweepSpec.storage)
    try:
        return SweepSpec(train=train, space=_normalise(raw.get("space", {})), **settings)
    except ValueError as e:
        raise ValueError(str(e).replace("sweep:", f"{p.name}:", 1)) from None
