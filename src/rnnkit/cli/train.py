"""``rnnkit train``: train a model on a built-in dataset or a file, report test metrics, save it.

Every option can also come from a TOML run file (``--config run.toml``); flags given on the
command line override the file, and the file overrides the defaults. The task is inferred from
the data when ``--task`` is not given (built-in name, or ``.ts`` -> classify, ``.csv`` ->
forecast, ``.txt`` -> lm).
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..tasks._common import CELLS
from ._common import (
    DEFAULT_MODEL_PATH,
    LIMITS,
    CLIError,
    Output,
    check_memory,
    check_number,
    estimate_training_bytes,
    fmt,
    infer_task,
    load_config,
    load_sequences,
    load_series,
    load_text,
    parse_data_spec,
)

TASK_NAMES = ("classify", "regress", "forecast", "lm")


@dataclass
class Opt:
    """One ``rnnkit train`` option: its type, help and default (per task when a dict)."""

    name: str
    kind: str                 # int, float, str, bool, units, auto_int, choice, crop
    help: str
    default: object = None
    choices: tuple = ()
    tasks: tuple = TASK_NAMES  # tasks the option applies to
    metavar: str | None = None
    extra: dict = field(default_factory=dict)

    def default_for(self, task):
        if isinstance(self.default, dict):
            return self.default.get(task)
        return self.default


def _task_defaults(key):
    from ..tasks import CLASSIFY_DEFAULTS, FORECAST_DEFAULTS, LM_DEFAULTS, REGRESS_DEFAULTS
    tables = {"classify": CLASSIFY_DEFAULTS, "regress": REGRESS_DEFAULTS,
              "forecast": FORECAST_DEFAULTS, "lm": LM_DEFAULTS}
    out = {}
    for task, table in tables.items():
        if key in table:
            v = table[key]
            out[task] = ",".join(str(u) for u in v) if key == "units" and v else v
    return out


def options():
    """The list of train options (built lazily so that defaults come from rnnkit.tasks)."""
    d = _task_defaults
    return [
        Opt("data", "str", "training data: builtin:japanese_vowels | builtin:adding | "
            "builtin:airline | builtin:shakespeare | a .ts / .csv / .txt file",
            "builtin:japanese_vowels", metavar="SPEC"),
        Opt("test", "str", "test data file (classify/regress: a .ts file; forecast: a .csv "
            "that continues the training series; lm: a .txt file). Default: the built-in test "
            "split, else classify/regress hold out a stratified 20%%, forecast the last "
            "--horizon points, lm the last 10%% of the text", None, metavar="PATH"),
        Opt("task", "choice", "classify | regress | forecast | lm (default: inferred from "
            "--data)", None, choices=TASK_NAMES),
        Opt("cell", "choice", "recurrent cell: lstm | gru | rnn (SimpleRNN) | lnlstm | lngru "
            "(layer-normalised) | indrnn | mingru | minlstm | lru | slstm (docs/new_cells.md)",
            {t: d("cell").get(t, "lstm") for t in TASK_NAMES}, choices=tuple(CELLS)),
        Opt("units", "units", "units per recurrent layer: one number for every layer or a "
            "comma list such as 128,64 (classify: decided from the data size)", d("units"),
            metavar="N[,N...]"),
        Opt("layers", "int", "number of recurrent layers (default: one per --units entry)",
            None, metavar="N"),
        Opt("bidirectional", "bool", "wrap every recurrent layer in Bidirectional "
            "(classify/regress/forecast; classify: on unless --no-bidirectional)",
            {"classify": None, "regress": False, "forecast": False},
            tasks=("classify", "regress", "forecast")),
        Opt("dropout", "float", "input dropout of every recurrent layer", d("dropout"),
            metavar="RATE"),
        Opt("epochs", "int", "maximum training epochs (early stopping may stop sooner; "
            "classify: decided from the data size and --time-budget)", d("epochs"),
            metavar="N"),
        Opt("batch_size", "int", "samples per gradient step (classify: a tenth of the data, "
            "8-64)", d("batch_size"), metavar="N"),
        Opt("lr", "float", "Adam learning rate", d("learning_rate"), metavar="LR"),
        Opt("clipnorm", "float", "clip each gradient to this norm (0: off)", d("clipnorm"),
            metavar="X"),
        Opt("seed", "int", "random seed (weights, shuffling, splits, dropout)", 0,
            metavar="N"),
        Opt("validation_split", "float", "share of the training data held out for early "
            "stopping with best-weight restore (0: off)", d("validation_split"),
            metavar="F"),
        Opt("patience", "int", "early-stopping patience in epochs", d("patience"),
            metavar="N"),
        Opt("horizon", "int", "forecast: steps to forecast (also the test length)", 12,
            tasks=("forecast",), metavar="H"),
        Opt("window", "auto_int", "forecast: input window length, or auto (two seasons, or "
            "24)", "auto", tasks=("forecast",), metavar="W|auto"),
        Opt("stride", "int", "forecast: step between training windows", 1,
            tasks=("forecast",), metavar="N"),
        Opt("strategy", "choice", "forecast: direct (Dense(horizon)) or recursive (one step "
            "fed back)", d("strategy"), choices=("direct", "recursive"), tasks=("forecast",)),
        Opt("ensemble", "int", "forecast/classify: networks trained from seeds "
            "seed..seed+N-1 (classify: seed, seed+1000, ...); their forecasts (probabilities) "
            "are combined (classify: as many as --time-budget allows, at most 3)",
            d("ensemble"),
            tasks=("forecast", "classify"), metavar="N"),
        Opt("time_budget", "float", "classify: seconds the training may take; sizes the "
            "epochs and the ensemble and stops training when exceeded", d("time_budget"),
            tasks=("classify",), metavar="SECONDS"),
        Opt("normalize", "choice", "classify: series (each series by its own mean/std) | "
            "series+level (that, plus each series' mean and log std as inputs) | channel "
            "(training statistics per channel) | none (default: series or series+level for "
            "univariate data, channel for multivariate)", None,
            choices=("series", "series+level", "channel", "none"), tasks=("classify",)),
        Opt("view", "choice", "classify: time (the values over time) | spectrum (each series' "
            "log magnitude spectrum read as a sequence) (default: chosen by 2-fold "
            "cross-validation on the training data for series of 32 steps or more)", None,
            choices=("time", "spectrum"), tasks=("classify",)),
        Opt("crop", "crop", "classify: train on random windows covering the share F (0 < F < "
            "1) of each series, a fresh window every epoch, and predict by averaging the "
            "class probabilities of windows covering the series | off (whole series) | auto "
            "(F = 0.25 or off, chosen with --view by the same cross-validation)",
            {"classify": "auto"},
            tasks=("classify",), metavar="F|off|auto"),
        Opt("patch", "int", "classify: time steps grouped into one recurrent step (default: "
            "long series are cut into ~64 patches)", None, tasks=("classify",), metavar="N"),
        Opt("embed", "int", "classify: width of the Dense(relu) layer applied to every patch "
            "before the recurrent layer (0: none; default 64)", None, tasks=("classify",),
            metavar="N"),
        Opt("aggregate", "choice", "forecast: combine the ensemble's forecasts by their "
            "median or mean", d("aggregate"), choices=("median", "mean"),
            tasks=("forecast",)),
        Opt("season", "auto_int", "forecast: seasonal period for differencing and the "
            "seasonal-naive baseline: auto (from the autocorrelation), none, or a number",
            "auto", tasks=("forecast",), metavar="M|auto|none"),
        Opt("log", "choice", "forecast: log-transform positive series: auto | yes | no",
            "auto", choices=("auto", "yes", "no"), tasks=("forecast",)),
        Opt("difference", "choice", "forecast: auto (lag 1 plus the seasonal lag) | none",
            "auto", choices=("auto", "none"), tasks=("forecast",)),
        Opt("l2", "float", "forecast: L2 penalty on the kernels", d("l2"),
            tasks=("forecast",), metavar="X"),
        Opt("columns", "str", "CSV value columns, comma list (default: every numeric column "
            "that is not a row index, date, counter, id or label)", None,
            tasks=("classify", "regress", "forecast"), metavar="A,B"),
        Opt("label", "str", "classify/regress a CSV: the column holding each sequence's "
            "label (or target value)", None, tasks=("classify", "regress"), metavar="COLUMN"),
        Opt("id", "str", "classify/regress a CSV with one row per time step: the column "
            "naming the sequence each row belongs to (without it, each row is one "
            "univariate sequence)", None, tasks=("classify", "regress"), metavar="COLUMN"),
        Opt("time", "str", "classify/regress a CSV with --id: the column ordering the steps "
            "of a sequence (default: file order)", None, tasks=("classify", "regress"),
            metavar="COLUMN"),
        Opt("target", "str", "forecast: CSV column to forecast (default: the first value "
            "column)", None, tasks=("forecast",), metavar="NAME"),
        Opt("date_column", "str", "forecast: CSV date column (default: the first column of "
            "dates, else of a counter such as years)", None, tasks=("forecast",),
            metavar="NAME"),
        Opt("seq_len", "int", "lm: characters per training sequence", d("seq_len"),
            tasks=("lm",), metavar="N"),
        Opt("embedding_dim", "int", "lm: character embedding size", d("embedding_dim"),
            tasks=("lm",), metavar="N"),
        Opt("sample_length", "int", "lm: characters of sample text printed after training "
            "(0: none)", 300, tasks=("lm",), metavar="N"),
        Opt("temperature", "float", "lm: sampling temperature of that sample", 0.8,
            tasks=("lm",), metavar="T"),
        Opt("out", "str", "where to save the model", DEFAULT_MODEL_PATH, metavar="PATH"),
        Opt("json", "bool", "print one final machine-readable JSON line on stdout "
            "(human output goes to stderr)", False),
        Opt("verbose", "bool", "one line per epoch instead of a progress bar, and more detail",
            False),
        Opt("quiet", "bool", "no progress bar and no human-readable output", False),
    ]


def _help(opt):
    d = opt.default
    if isinstance(d, dict):
        shown = ", ".join(f"{v} for {t}" for t, v in d.items()
                          if t in opt.tasks and v is not None)
        return f"{opt.help} (default: {shown})" if shown else opt.help
    if d is None or d is False:
        return opt.help
    return f"{opt.help} (default: {d})"


def register(subparsers):
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train", help="train a model on built-in data or your file, print test metrics, save it",
        description="Train a recurrent model. With no options: the tutorial's LSTM(128) -> "
        "LSTM(64) -> Dense(9, softmax) on Japanese Vowels (speaker classification). Options "
        "can also come from a TOML file (--config); command-line flags override it.",
        epilog="examples:\n"
        "  rnnkit train\n"
        "  rnnkit train --data builtin:airline --horizon 36\n"
        "  rnnkit train --data builtin:shakespeare --epochs 20 --out tempest.rnnkit\n"
        "  rnnkit train --data my_train.ts --test my_test.ts --cell gru --units 64 --json\n"
        "  rnnkit train --config run.toml --epochs 5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="TOML file with any of the options below "
                   "(keys as the option names, e.g. epochs = 30, batch_size = 16)")
    p.add_argument("--distributed", action="store_true", default=False,
                   help="data-parallel training on every rank of an MPI job: run as `mpiexec "
                   "-n N rnnkit train --distributed ...` (needs the mpi extra; only rank 0 "
                   "prints and saves; see docs/distributed.md)")
    for opt in options():
        flag = "--" + opt.name.replace("_", "-")
        kw = dict(dest=opt.name, default=None, help=_help(opt))
        if opt.kind == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if opt.kind == "choice":
            kw["choices"] = opt.choices
        elif opt.kind == "int":
            kw["type"] = int
        elif opt.kind == "float":
            kw["type"] = float
        if opt.metavar:
            kw["metavar"] = opt.metavar
        p.add_argument(flag, **kw)
    p.set_defaults(func=run)
    return p


# ----------------------------------------------------------------------------- resolving
def _coerce(opt, value, source):
    """Check and convert an option value from the command line or a config file."""
    where = f"{source}: option {opt.name!r}"
    if value is None:
        return None
    k = opt.kind
    if k == "bool":
        if not isinstance(value, bool):
            raise CLIError(f"{where} must be true or false, got {value!r}.")
        return value
    if k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise CLIError(f"{where} must be an integer, got {value!r}.")
        return _in_range(opt, value, where)
    if k == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CLIError(f"{where} must be a number, got {value!r}.")
        return float(_in_range(opt, value, where))
    if k == "choice":
        if value not in opt.choices:
            raise CLIError(f"{where} must be one of {list(opt.choices)}, got {value!r}.")
        return value
    if k == "units":
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise CLIError(f"{where} must be an integer or a list such as 128,64, got "
                           f"{value!r}.")
        for u in str(value).replace(" ", "").split(","):
            _in_range(opt, u, where)
        return str(value)
    if k == "crop":
        if isinstance(value, str) and value.strip().lower() in ("auto", "off"):
            return value.strip().lower()
        try:
            v = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            v = None
        if v is None or not 0.0 < v <= 0.999:
            raise CLIError(f"{where} must be a share of the series in (0, 0.999] (e.g. 0.25), "
                           f"'off' or 'auto', got {value!r}.")
        return v
    if k == "auto_int":
        if isinstance(value, str) and value.strip().lower() in ("auto", "none"):
            return value.strip().lower()
        try:
            v = int(value)
        except (TypeError, ValueError):
            v = None
        if v is None or isinstance(value, bool) or v <= 0 or (isinstance(value, float)):
            raise CLIError(f"{where} must be a positive integer, 'auto' or 'none', got "
                           f"{value!r}.")
        return _in_range(opt, v, where)
    if not isinstance(value, str):
        raise CLIError(f"{where} must be a string, got {value!r}.")
    return value


def _in_range(opt, value, where):
    """``value`` checked against the option's limits in ``LIMITS`` (finite, in range)."""
    if opt.name not in LIMITS:
        return value
    return check_number(opt.name, value, flag=where)


def _check_memory(v):
    """Refuse, before any data is read, a network that cannot fit in memory (lower bound:
    one input feature, one output, one time step)."""
    from ..tasks._common import units_list
    try:
        units = units_list(v["units"], v["layers"])
    except ValueError as e:
        raise CLIError(f"--units/--layers: {e}") from None
    need, params = estimate_training_bytes(
        v["cell"], units, features=1, outputs=1, batch_size=v["batch_size"] or 1,
        bidirectional=bool(v["bidirectional"]),
        ensemble=v["ensemble"] if v["task"] == "forecast" else 1)
    check_memory(need, params, f"--units {v['units']} ({v['cell']}, "
                               f"{len(units)} layer(s))")


def resolve(args):
    """Merge defaults <- config file <- command line into a dict; infer the task."""
    opts = {o.name: o for o in options()}
    cfg = {}
    source = "command line"
    if args.config:
        cfg = load_config(args.config)
        source = os.path.basename(args.config)
        unknown = sorted(set(cfg) - set(opts) - {"config"})
        if unknown:
            raise CLIError(f"{source}: unknown option(s) {unknown}; valid keys are "
                           f"{sorted(opts)}.")
    values = {}
    for name, opt in opts.items():
        v = getattr(args, name, None)
        if v is not None:
            values[name] = _coerce(opt, v, "command line")
        elif name in cfg:
            values[name] = _coerce(opt, cfg[name], source)
        else:
            values[name] = None
    data = values["data"] or opts["data"].default
    values["data"] = data
    task = values["task"] or infer_task(data)
    values["task"] = task
    for name, opt in opts.items():
        if values[name] is None:
            values[name] = opt.default_for(task)
        elif task not in opt.tasks and values[name] is not False:
            raise CLIError(f"option --{name.replace('_', '-')} applies to task(s) "
                           f"{list(opt.tasks)}, not to {task!r}.")
    if values["quiet"] and values["verbose"]:
        raise CLIError("--quiet and --verbose contradict each other; pass only one.")
    _check_memory(values)
    return values


# ----------------------------------------------------------------------------- running
def _verbosity(v):
    if v["quiet"]:
        return 0
    return 2 if v["verbose"] else 1


def _common_kwargs(v):
    return dict(cell=v["cell"], units=v["units"], layers=v["layers"], dropout=v["dropout"],
                epochs=v["epochs"], batch_size=v["batch_size"], learning_rate=v["lr"],
                clipnorm=v["clipnorm"] or None, validation_split=v["validation_split"],
                patience=v["patience"], seed=v["seed"], verbose=_verbosity(v))


def _abs_spec(spec):
    """A data spec that still names the same file from another folder."""
    return spec if spec.startswith("builtin:") else os.path.abspath(spec)


def _csv_options(v):
    return {k: v[k] for k in ("label", "id", "time", "columns")}


def _train_sequences(v, out, callbacks=None):
    from ..tasks import SequenceClassifier, SequenceRegressor
    from ..tasks._sequence import as_sequences, stratified_split

    task = v["task"]
    csv_opts = _csv_options(v)
    found = {}
    loaded = load_sequences(v["data"], task, csv_options=csv_opts, found=found)
    if len(loaded) == 4:
        x_tr, y_tr, x_te, y_te = loaded
        test_source = f"{v['data']} (built-in test split)"
        split = {"kind": "builtin", "data": v["data"]}
    else:
        x_tr, y_tr = loaded
        if y_tr is None:
            raise CLIError(f"--data {v['data']}: the file has no labels (@classLabel / "
                           "@targetLabel), so there is nothing to learn.")
        if v["test"]:
            x_te, y_te = load_sequences(v["test"], task, "--test", csv_options=csv_opts)
            if y_te is None:
                raise CLIError(f"--test {v['test']}: the file has no labels to score against.")
            test_source = v["test"]
            split = {"kind": "file", "data": _abs_spec(v["test"]), "csv": csv_opts}
        else:
            groups = np.unique(y_tr, return_inverse=True)[1] if task == "classify" else \
                np.zeros(len(y_tr), dtype=np.int64)
            tr, te = stratified_split(groups, 0.2, v["seed"])
            if len(te) == 0:
                raise CLIError(f"--data {v['data']}: too few samples to hold out a test set; "
                               "pass --test PATH.")
            x_te, y_te = [x_tr[i] for i in te], np.asarray(y_tr)[te]
            x_tr, y_tr = [x_tr[i] for i in tr], np.asarray(y_tr)[tr]
            test_source = f"20% stratified hold-out of {v['data']}"
            split = {"kind": "holdout", "data": _abs_spec(v["data"]), "fraction": 0.2,
                     "seed": v["seed"], "csv": csv_opts}
    if task == "regress":
        y_tr = _numeric_targets(y_tr, v["data"])
        y_te = _numeric_targets(y_te, v["test"] or v["data"])
    n_feat = (x_tr[0].shape[-1] if np.ndim(x_tr[0]) == 2 else 1)
    if v["label"]:
        used = found.get("channels") or []
        out.say(f"{task}: label column {v['label']!r}"
                + (f", sequences by {v['id']!r}" if v["id"] else ", one sequence per row")
                + (f" ordered by {v['time']!r}" if v["time"] else "")
                + (f"; channels {used}" if v["id"] else f"; time steps {used}"))
    out.say(f"{task}: {len(x_tr)} training sequences, {n_feat} channel(s); test: "
            f"{len(x_te)} from {test_source}")
    if task == "classify":
        pipe = SequenceClassifier(
            bidirectional=v["bidirectional"], ensemble=v["ensemble"], normalize=v["normalize"],
            patch=v["patch"], embed=v["embed"], time_budget=v["time_budget"], view=v["view"],
            crop=None if v["crop"] == "auto" else v["crop"], **_common_kwargs(v))
        out.say("choices (from the training data):")
        for c in pipe.plan(as_sequences(x_tr), y_tr):
            out.say(f"  {c['name']:<14}{fmt(c['value'])!s:<10} {c['reason']}")
    else:
        pipe = SequenceRegressor(bidirectional=v["bidirectional"], **_common_kwargs(v))
    pipe.fit(x_tr, y_tr, callbacks=callbacks)
    pipe.info["test_split"] = split
    if v["label"]:
        pipe.info["csv"] = csv_opts
    metrics = pipe.evaluate(x_te, y_te)
    extra = {"best_epoch": pipe.best_epoch_, "epochs_run": len(pipe.history_.epoch)}
    if task == "classify":
        extra["classes"] = [str(c) for c in pipe.classes_]
        extra["choices"] = pipe.choices_
        extra["networks"] = len(pipe.members)
        if pipe.stopped_by_budget_:
            out.say(f"time budget of {v['time_budget']:.0f} s reached: kept "
                    f"{len(pipe.members)} network(s)")
    return pipe, metrics, extra, test_source


def _numeric_targets(y, source):
    try:
        return np.asarray(y, dtype=np.float64)
    except ValueError:
        raise CLIError(f"{source}: the targets are not numbers; use --task classify for "
                       "class labels.") from None


def _train_forecast(v, out, callbacks=None):
    from ..tasks import Forecaster

    values, columns, dates, target, left_out = load_series(
        v["data"], columns=v["columns"], date_column=v["date_column"], target=v["target"])
    H = v["horizon"]
    if v["test"]:
        test_values, _, _, _, _ = load_series(v["test"], "--test", columns=columns,
                                              date_column=v["date_column"])
        train, test = values, test_values[:, target]
        test_source = v["test"]
        split = {"kind": "file", "data": _abs_spec(v["test"])}
    else:
        if len(values) <= H:
            raise CLIError(f"--data {v['data']}: {len(values)} time steps cannot hold out a "
                           f"test set of --horizon {H}; use a smaller horizon or pass --test.")
        train, test = values[:-H], values[-H:, target]
        test_source = f"last {H} steps of {v['data']}"
        split = {"kind": "tail", "data": _abs_spec(v["data"]), "steps": H}
    out.say(f"forecast: target {columns[target]!r}; channels {columns}"
            + ("".join(f"; left out {c!r} ({why})" for c, why in left_out)))
    season = v["season"]
    pipe = Forecaster(
        horizon=H, window=v["window"], stride=v["stride"], strategy=v["strategy"],
        bidirectional=v["bidirectional"], l2=v["l2"], ensemble=v["ensemble"],
        aggregate=v["aggregate"],
        log={"auto": "auto", "yes": True, "no": False}[v["log"]], difference=v["difference"],
        seasonal_period=None if season == "none" else season, target_column=target,
        **_common_kwargs(v))
    out.say(f"forecast: {len(train)} training steps, {train.shape[1]} channel(s), target "
            f"{columns[target]!r}; test: {len(test)} steps ({test_source})")
    pipe.info.update(columns=columns, target=columns[target], test_split=split,
                     date_column=v["date_column"], last_date=(dates[len(train) - 1]
                                                              if dates else None))
    pipe.fit(train, callbacks=callbacks)
    out.say(f"transforms: log {'on' if pipe.log_channels_ else 'off'}, differencing lags "
            f"{pipe.lags_}, seasonal period {pipe.period_}, window {pipe.window_}, "
            f"{pipe.ensemble} network(s)")
    res = pipe.evaluate(test)
    baseline = res.pop("baseline")
    steps = res.pop("steps")
    extra = {"baseline": baseline, "steps": steps, "window": pipe.window_,
             "lags": pipe.lags_, "seasonal_period": pipe.period_,
             "forecast": pipe.forecast().tolist()}
    return pipe, res, extra, test_source


def _train_lm(v, out, callbacks=None):
    from ..tasks import CharLanguageModel

    text = load_text(v["data"])
    kw = _common_kwargs(v)
    if v["test"]:
        test_text = load_text(v["test"], "--test")
        train_text = text
        test_source = v["test"]
        split = {"kind": "file", "data": _abs_spec(v["test"])}
    else:
        cut = int(len(text) * 0.9)
        train_text, test_text = text[:cut], text[cut:]
        test_source = f"last 10% of {v['data']}"
        split = {"kind": "tail_fraction", "data": _abs_spec(v["data"]), "fraction": 0.1}
    pipe = CharLanguageModel(seq_len=v["seq_len"], embedding_dim=v["embedding_dim"], **kw)
    pipe.info["test_split"] = split
    out.say(f"lm: {len(train_text)} training characters (validation: last "
            f"{v['validation_split']:.0%} of them); test: {len(test_text)} characters "
            f"({test_source})")
    pipe.fit(train_text, callbacks=callbacks)
    metrics = pipe.evaluate(test_text)
    baseline = {"unigram_loss": metrics.pop("baseline_unigram")}
    hist = pipe.history_.history
    extra = {"baseline": baseline, "vocab_size": pipe.vocab.size,
             "epochs_run": len(pipe.history_.epoch)}
    if "val_loss" in hist:
        extra["best_val_loss"] = float(min(hist["val_loss"]))
        extra["val_unigram_loss"] = pipe.baseline_
    if v["sample_length"]:
        extra["sample"] = pipe.generate(v["sample_length"], temperature=v["temperature"],
                                        seed=v["seed"])
    return pipe, metrics, extra, test_source


def run(args) -> int:
    """Run ``rnnkit train``; returns the exit status.

    With ``--distributed`` every rank runs this; any error on a rank is printed with the
    rank and aborts the whole MPI job (a rank that stopped alone would leave the others
    waiting in a collective call).
    """
    if not getattr(args, "distributed", False):
        return _run(args, None)
    import sys

    from ..distributed.mpi import init
    world = init()
    try:
        return _run(args, world)
    except BaseException as e:  # noqa: BLE001 - every error must end every rank
        print(f"rnnkit train: error (rank {world.rank} of {world.size}): "
              f"{type(e).__name__ + ': ' if not isinstance(e, CLIError) else ''}{e}",
              file=sys.stderr, flush=True)
        from ..distributed.mpi import DistributedError
        world.abort(2 if isinstance(e, CLIError) else 1,
                    together=isinstance(e, DistributedError))
        raise  # not reached: abort ends the process


def _run(args, world):
    import time

    v = resolve(args)
    worker = world is not None and not world.is_root
    out = Output(json_mode=v["json"] and not worker, quiet=v["quiet"] or worker)
    parse_data_spec(v["data"])
    if v["test"]:
        parse_data_spec(v["test"], "--test")
    out_path = v["out"]
    folder = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(folder):
        raise CLIError(f"--out {out_path!r}: folder {folder!r} does not exist.")
    if v["bidirectional"] and v["task"] == "lm":
        raise CLIError("--bidirectional does not apply to a language model (it must not see "
                       "the future); remove it.")
    t0 = time.perf_counter()
    pipe, metrics, extra, test_source, settings = train_values(v, out)
    seconds = time.perf_counter() - t0
    pipe.save(out_path)
    _report(out, v, metrics, extra, seconds, out_path, pipe)
    out.result({"task": v["task"], "data": v["data"], "test_data": test_source,
                "test": metrics, **extra, "model": out_path, "seconds": round(seconds, 2),
                "settings": settings,
                "params": sum(m.count_params() for m in pipe.members)
                if getattr(pipe, "members", None) else pipe.model.count_params()})
    return 0


def train_values(v, out, callbacks=None):
    """Train from resolved options ``v`` (see :func:`resolve`); the model is not saved.

    Args:
        v: dict of every train option (as :func:`resolve` returns).
        out: :class:`rnnkit.cli._common.Output` for the human-readable lines.
        callbacks: extra callbacks for every ``fit`` (e.g. a sweep's per-epoch reporter).

    Returns:
        ``(pipeline, test_metrics, extra, test_source, settings)``; the pipeline's ``info``
        records the data, the settings and the test metrics.
    """
    runner = {"classify": _train_sequences, "regress": _train_sequences,
              "forecast": _train_forecast, "lm": _train_lm}[v["task"]]
    pipe, metrics, extra, test_source = runner(v, out, callbacks)
    applies = {o.name for o in options() if v["task"] in o.tasks}
    settings = {k: v[k] for k in v
                if k in applies and k not in ("json", "verbose", "quiet", "out")}
    pipe.info.update(data=v["data"], test=test_source, train_settings=settings,
                     test_metrics=metrics)
    return pipe, metrics, extra, test_source, settings


def _report(out, v, metrics, extra, seconds, path, pipe):
    task = v["task"]
    out.say("")
    if task == "classify":
        out.say(f"test accuracy: {fmt(metrics['accuracy'])}   test loss: "
                f"{fmt(metrics['loss'])}   ({extra['networks']} network(s); best epoch "
                f"{extra['best_epoch']} of {extra['epochs_run']} run)")
    elif task == "regress":
        out.say(f"test mse: {fmt(metrics['mse'])}   test mae: {fmt(metrics['mae'])}   "
                f"(best epoch {extra['best_epoch']} of {extra['epochs_run']} run)")
    elif task == "forecast":
        b = extra["baseline"]
        out.say(f"{'metric':<8}{'model':>12}{b['method']:>24}")
        for k in ("mape", "smape", "mae", "rmse"):
            out.say(f"{k:<8}{fmt(metrics[k]):>12}{fmt(b[k]):>24}")
    else:
        b = extra["baseline"]["unigram_loss"]
        out.say(f"test loss: {fmt(metrics['loss'])} nats/char "
                f"({fmt(metrics['bits_per_char'], 3)} bits/char, perplexity "
                f"{fmt(metrics['perplexity'], 2)}); unigram baseline: {fmt(b)} nats/char")
        if "best_val_loss" in extra:
            out.say(f"best validation loss: {fmt(extra['best_val_loss'])} nats/char "
                    f"(unigram: {fmt(extra['val_unigram_loss'])})")
        if extra.get("sample"):
            out.say(f"sample (temperature {v['temperature']}):")
            out.say(extra["sample"])
    mins = seconds / 60
    took = f"{mins:.1f} min" if mins >= 1 else f"{seconds:.0f} s"
    out.say(f"saved {path} ({took})")
    if not math.isfinite(float(metrics.get("loss", 0.0) or 0.0)):
        out.say("warning: the test loss is not finite; try a lower --lr or --clipnorm 1.")
