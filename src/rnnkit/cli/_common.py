"""Helpers shared by the ``rnnkit`` subcommands: errors, config files, data specs, output."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from ..tasks._common import jsonable

#: Built-in dataset name -> the task it is used for.
BUILTIN_TASKS = {"japanese_vowels": "classify", "adding": "regress", "airline": "forecast",
                 "shakespeare": "lm"}
#: File suffix -> task, for ``--task`` inference.
SUFFIX_TASKS = {".ts": "classify", ".csv": "forecast", ".txt": "lm"}
DEFAULT_MODEL_PATH = "rnnkit_model.rnnkit"


class CLIError(Exception):
    """A user error: printed as ``rnnkit <command>: error: <message>``, exit status 2."""


# ----------------------------------------------------------------------------- output
class Output:
    """Where human-readable lines go: stdout normally, stderr when ``--json`` owns stdout."""

    def __init__(self, json_mode=False, quiet=False):
        self.json_mode, self.quiet = bool(json_mode), bool(quiet)

    def say(self, *parts):
        """Print a human-readable line (suppressed by --quiet)."""
        if not self.quiet:
            print(*parts, file=sys.stderr if self.json_mode else sys.stdout, flush=True)

    def result(self, record):
        """Print the one final machine-readable line (only with --json)."""
        if self.json_mode:
            print(json.dumps(jsonable(record), sort_keys=False), flush=True)


def fmt(value, digits=4):
    """Format a metric for humans."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# ----------------------------------------------------------------------------- config files
def load_config(path):
    """Read a TOML run file into a flat dict of option name -> value.

    Keys may use ``-`` or ``_`` (``batch-size`` = ``batch_size``). A ``[train]`` table, if
    present, is merged over the top-level keys. Relative paths in ``data``, ``test`` and
    ``out`` are resolved against the config file's folder.
    """
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise CLIError(f"config file {str(p)!r} does not exist.") from None
    except IsADirectoryError:
        raise CLIError(f"config file {str(p)!r} is a directory, expected a .toml file.") from None
    except tomllib.TOMLDecodeError as e:
        raise CLIError(f"{p.name}: invalid TOML: {e}. Fix the file (see docs/cli.md for an "
                       "example run file).") from None
    flat = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for table, values in raw.items():
        if isinstance(values, dict):
            if table != "train":
                raise CLIError(f"{p.name}: unknown table [{table}]; put options at the top "
                               "level or in a [train] table.")
            flat.update(values)
    out = {}
    for k, v in flat.items():
        key = k.replace("-", "_")
        if key in ("data", "test", "out") and isinstance(v, str) and not v.startswith(
                "builtin:") and not os.path.isabs(v):
            v = str(p.parent / v)
        out[key] = v
    return out


# ----------------------------------------------------------------------------- data specs
def parse_data_spec(spec, what="--data"):
    """``'builtin:NAME'`` -> ``('builtin', name)``; a path -> ``('file', Path)``."""
    from ..data import BUILTIN_DATASETS

    if not isinstance(spec, str) or not spec:
        raise CLIError(f"{what} must be 'builtin:NAME' or a file path, got {spec!r}.")
    if spec.startswith("builtin:"):
        name = spec[len("builtin:"):].strip().lower().replace("-", "_")
        if name not in BUILTIN_DATASETS:
            raise CLIError(f"{what}: unknown built-in dataset {spec!r}; valid names are "
                           + ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS) + ".")
        return "builtin", name
    path = Path(spec)
    if not path.exists():
        raise CLIError(f"{what}: file {spec!r} does not exist (use builtin:NAME for a built-in "
                       "dataset: builtin:japanese_vowels, builtin:adding, builtin:airline, "
                       "builtin:shakespeare).")
    if path.is_dir():
        raise CLIError(f"{what}: {spec!r} is a directory; pass a .ts, .csv or .txt file.")
    return "file", path


def ts_has_targets(path):
    """Whether a ``.ts`` header declares regression targets (``@targetLabel true``)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip().lower()
            if s.startswith("@data"):
                return False
            if s.startswith("@targetlabel"):
                return s.split()[1:2] == ["true"]
    return False


def labelled_csv_hint(path, roles=None):
    """Why a CSV looks like labelled sequences, with the command that classifies it; or None."""
    from ..data import csv_column_roles

    roles = roles or csv_column_roles(path)
    suspects = roles.suggests_labels()
    if not suspects:
        return None
    ids = [c for c in suspects if roles.roles[c] == "id"]
    labels = [c for c in suspects if c not in ids] or suspects
    desc = ", ".join(f"{c!r} ({roles.reasons[c]})" for c in suspects)
    cmd = f"--task classify --label {labels[0] or '?'}" + (f" --id {ids[0]}" if ids and
                                                         ids[0] != labels[0] else "")
    return (f"{path.name} looks like labelled sequences, not one time series: column(s) "
            f"{desc}. To classify it pass `{cmd}` (see docs/datasets.md, 'Labelled CSV "
            "files'); to forecast it anyway pass --task forecast with --target and --columns "
            "naming numeric columns.")


def infer_task(spec, what="--data"):
    """The task for a data spec: from the built-in name or the file suffix.

    A ``.csv`` file is a forecast only when nothing in it looks like labels (a text column,
    a column named like a label, sequence ids); otherwise the user must say ``--task``.
    """
    kind, value = parse_data_spec(spec, what)
    if kind == "builtin":
        return BUILTIN_TASKS[value]
    suffix = value.suffix.lower()
    if suffix not in SUFFIX_TASKS:
        raise CLIError(f"{what}: cannot infer the task from the file name {value.name!r} "
                       f"(known suffixes: .ts -> classify, .csv -> forecast, .txt -> lm); "
                       "pass --task classify|regress|forecast|lm.")
    if suffix == ".ts" and ts_has_targets(value):
        return "regress"
    if suffix == ".csv":
        hint = labelled_csv_hint(value)
        if hint:
            raise CLIError(f"{what}: {hint}")
    return SUFFIX_TASKS[suffix]


def _suffix_check(path, allowed, task, what):
    if path.suffix.lower() not in allowed:
        raise CLIError(f"{what}: task {task!r} reads {' or '.join(allowed)} files, got "
                       f"{path.name!r}.")


def load_sequences(spec, task, what="--data", csv_options=None, unlabelled_ok=False,
                   found=None):
    """Sequences for classify/regress: ``(x_train, y_train, x_test, y_test)`` for built-ins,
    ``(x, y)`` from a ``.ts`` file or a labelled ``.csv`` file.

    ``csv_options``: ``{"label", "id", "time", "columns"}`` for a CSV (see
    :func:`rnnkit.data.load_csv_sequences`); ``label`` is required there unless
    ``unlabelled_ok`` (prediction), and a label column absent from the file is then ignored.
    ``found``: a dict that receives ``"channels"``, the CSV columns used as channels.
    """
    from ..data import adding_problem, load_csv_sequences, load_japanese_vowels, load_ts

    kind, value = parse_data_spec(spec, what)
    if kind == "builtin":
        if value == "japanese_vowels":
            return load_japanese_vowels()
        if value == "adding":
            x, y = adding_problem(5000, 50, seed=0)
            xt, yt = adding_problem(1000, 50, seed=1)
            return x, y, xt, yt
        raise CLIError(f"{what}: builtin:{value} is a {BUILTIN_TASKS[value]} dataset, not "
                       f"for task {task!r}.")
    if value.suffix.lower() == ".csv":
        opts = csv_options or {}
        if not opts.get("label") and not unlabelled_ok:
            raise CLIError(f"{what}: task {task!r} on a CSV file needs --label COLUMN (the "
                           "column holding each sequence's label), and --id COLUMN when each "
                           "row is one time step of a sequence (docs/datasets.md, 'Labelled "
                           "CSV files').")
        columns = opts.get("columns")
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",") if c.strip()]
        label = opts.get("label")
        if unlabelled_ok and label:
            from ..data import csv_column_roles
            if label not in csv_column_roles(value).header:
                label = None
        x, y, used = load_csv_sequences(value, label, id_column=opts.get("id"),
                                        time_column=opts.get("time"), columns=columns)
        if found is not None:
            found["channels"] = used
        return x, y
    if value.suffix.lower() != ".ts":
        raise CLIError(f"{what}: task {task!r} reads .ts files or a labelled .csv (with "
                       f"--label COLUMN), got {value.name!r}.")
    x, y = load_ts(value)
    return x, y


def load_series(spec, what="--data", columns=None, date_column=None, target=None):
    """A series for forecasting: ``(values (T, C), column names, dates or None, target idx,
    left out)``.

    ``columns``: comma-separated names or a list (default: every column whose role is
    'value', see :func:`rnnkit.data.csv_column_roles` — never a row index, date, counter,
    id or text column); ``date_column``: name, or None to take the first date (else counter)
    column; ``target``: the column to forecast (name or index among the value columns;
    default the first). ``left out``: ``[(name, reason)]`` of the columns not used.
    """
    import numpy as np

    from ..data import csv_column_roles, load_airline, load_csv

    kind, value = parse_data_spec(spec, what)
    if kind == "builtin":
        if value != "airline":
            raise CLIError(f"{what}: builtin:{value} is a {BUILTIN_TASKS[value]} dataset, not "
                           "a time series to forecast.")
        y, dates = load_airline(return_dates=True)
        return np.asarray(y, np.float64)[:, None], ["Passengers"], dates, 0, []
    _suffix_check(value, (".csv",), "forecast", what)
    roles = csv_column_roles(value)
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    if date_column is None:
        dated = roles.named("date") or roles.named("counter")
        date_column = dated[0] if dated else None
    if columns is None:
        columns = [c for c in roles.named("value") if c != date_column]
        if not columns:
            hint = labelled_csv_hint(value, roles) or ""
            raise CLIError(f"{what}: {value.name} has no column of measurements to forecast: "
                           + "; ".join(f"{c!r} is {roles.reasons[c]}" for c in roles.header)
                           + f". Name the value columns with --columns. {hint}".rstrip())
    elif date_column in columns:
        raise CLIError(f"--columns: {date_column!r} is the date column; leave it out.")
    s = load_csv(value, columns=columns, date_column=date_column)
    t = 0
    if target is not None:
        if target in s.columns:
            t = s.columns.index(target)
        elif isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            t = int(target)
            if not 0 <= t < len(s.columns):
                raise CLIError(f"--target {target}: the file has {len(s.columns)} value "
                               f"column(s) {s.columns}.")
        else:
            why = f" ({roles.reasons[target]})" if target in roles.roles else ""
            raise CLIError(f"--target {target!r}{why} is not one of the value columns "
                           f"{s.columns} of {value.name}; pass --columns to choose them.")
    left_out = [(c, roles.reasons[c]) for c in roles.header
                if c not in s.columns and c != date_column]
    return np.asarray(s.values, np.float64), list(s.columns), s.dates, t, left_out


def load_series_for(pipe, spec):
    """The series in ``spec`` read as forecaster ``pipe`` was trained: ``(values, columns,
    dates)`` (same value columns and date column; the channel count is checked)."""
    info = pipe.info
    values, columns, dates, _, _ = load_series(spec, columns=info.get("columns"),
                                               date_column=info.get("date_column"))
    if values.shape[1] != pipe.n_channels:
        raise CLIError(f"--data {spec}: {values.shape[1]} value column(s) {columns}, but "
                       f"the model was trained on {pipe.n_channels}.")
    return values, columns, dates


def load_text(spec, what="--data"):
    """Text for the language model (``builtin:shakespeare`` or a UTF-8 ``.txt`` file)."""
    from ..data import load_shakespeare

    kind, value = parse_data_spec(spec, what)
    if kind == "builtin":
        if value != "shakespeare":
            raise CLIError(f"{what}: builtin:{value} is a {BUILTIN_TASKS[value]} dataset, not "
                           "text.")
        return load_shakespeare()
    try:
        text = value.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CLIError(f"{what}: {value.name} is not UTF-8 text (byte {e.start} cannot be "
                       "decoded); save it as UTF-8.") from None
    if len(text) < 2:
        raise CLIError(f"{what}: {value.name} holds {len(text)} character(s); a language model "
                       "needs text to learn from.")
    return text


# ----------------------------------------------------------------------------- writing files
def write_table(path, header, rows):
    """Write rows as CSV (``.csv``) or a JSON list of objects (``.json``); None -> stdout."""
    if path is None:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise CLIError(f"--out {str(p)!r}: write predictions to a .csv or .json file.")
    if p.parent and not p.parent.exists():
        raise CLIError(f"--out {str(p)!r}: folder {str(p.parent)!r} does not exist.")
    if suffix == ".csv":
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    else:
        with open(p, "w", encoding="utf-8") as f:
            json.dump(jsonable([dict(zip(header, r)) for r in rows]), f, indent=1)
            f.write("\n")


def load_model_file(path):
    """Load a ``.rnnkit`` model file, with CLI-friendly errors."""
    from ..saving import RnnkitFileError, load_model

    if not os.path.exists(path):
        raise CLIError(f"model file {str(path)!r} does not exist; train one with "
                       "`rnnkit train --out PATH`.")
    try:
        return load_model(path)
    except RnnkitFileError as e:
        raise CLIError(str(e)) from None


def load_pipeline(path):
    """Load a model file as its task pipeline, with CLI-friendly errors."""
    from ..tasks import pipeline_from_model

    model = load_model_file(path)
    try:
        return pipeline_from_model(model)
    except ValueError as e:
        raise CLIError(f"{os.path.basename(path)}: {e}") from None
