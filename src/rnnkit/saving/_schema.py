"""One declared schema for every metadata record of a model file.

``load_model`` validates each record (``config``, ``compile``, ``training`` with its random
generator states, ``preprocessing`` with its task parameters) against the schema below before
anything uses it, and ``save_model`` validates with the same schema and the same size limits,
so a file rnnkit writes is always a file rnnkit reads. The limits are listed in
``docs/files.md`` (section "Record schema and limits").

A schema is a tree of small validators (:class:`Int`, :class:`Num`, :class:`Str`,
:class:`List`, :class:`Obj`, ...). Each is called as ``spec(value, path)`` and raises
:class:`SchemaError` naming the record path (``preprocessing.classes[3]``), what was
expected and (shortened) what was received.
"""

from __future__ import annotations

import math

#: Largest number of classes, vocabulary tokens, channels or features a model record may state.
MAX_CLASSES = 100_000
MAX_VOCAB = 1_000_000
MAX_CHANNELS = 100_000
#: Largest forecast horizon, window and differencing lag (steps).
MAX_HORIZON = 10_000
MAX_WINDOW = 100_000
#: Longest label, token, column or layer name (characters).
MAX_NAME = 1_000
#: Largest batch size, epoch count and units a record (or a CLI option) may state.
MAX_BATCH = 1_000_000
MAX_EPOCHS = 1_000_000
MAX_UNITS = 1_000_000_000
#: A config with more layers than this is refused before any layer object is created.
MAX_LAYERS = 10_000
#: Most dimensions of a tensor or an input shape.
MAX_NDIM = 8
#: JSON records nest at most this deep (a deeper record is refused before it is walked).
MAX_DEPTH = 64


class SchemaError(ValueError):
    """A record does not match the schema: ``path`` names the offending entry."""

    def __init__(self, path, msg, wrong_type=False):
        super().__init__(f"{path}: {msg}")
        self.path, self.msg, self.wrong_type = path, msg, wrong_type


def short(value, limit=80):
    """``repr(value)`` cut to ``limit`` characters, so that no error message grows with it."""
    r = repr(value) if not isinstance(value, (dict, list)) else _short_container(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _short_container(value):
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s) {short(list(value)[:4], 60)}"
    return f"a list of {len(value)} item(s)"


def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(value),
                                                                       type(value).__name__)


class Spec:
    """Base of the validators: ``spec(value, path)`` returns ``value`` or raises."""

    nullable = False

    def __call__(self, value, path):
        if value is None and self.nullable:
            return None
        return self.check(value, path)

    def check(self, value, path):  # pragma: no cover - overridden
        raise NotImplementedError

    def or_null(self):
        """This spec, also accepting null."""
        spec = object.__new__(type(self))
        spec.__dict__.update(self.__dict__)
        spec.nullable = True
        return spec


class Any_(Spec):
    """Any JSON value nested at most :data:`MAX_DEPTH` deep, with valid UTF-8 strings."""

    def check(self, value, path):
        _walk_json(value, path, 0)
        return value


def key_path(path, key):
    """``path.key`` for a plain key, else ``path['odd key']`` (escaped, shortened): a path
    in a message never holds line breaks or control characters from the file."""
    if key.isidentifier() and key.isascii() and len(key) <= 40:
        return f"{path}.{key}"
    return f"{path}[{short(key, 40)}]"


def _walk_json(value, path, depth):
    if depth > MAX_DEPTH:
        raise SchemaError(path, f"nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        _check_utf8(value, path)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_utf8(k, path)
            _walk_json(v, key_path(path, k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk_json(v, f"{path}[{i}]", depth + 1)


def _check_utf8(s, path):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise SchemaError(path, "holds a string that is not valid UTF-8 (a lone surrogate "
                                "escape such as \\ud800).") from None


class Bool(Spec):
    def check(self, value, path):
        if type(value) is not bool:
            raise SchemaError(path, f"expected true or false, got {short(value)}.", wrong_type=True)
        return value


class Num(Spec):
    """A number in ``[lo, hi]``; finite unless ``finite=False`` (NaN/Infinity allowed)."""

    kind, types = "a number", (int, float)

    def __init__(self, lo=None, hi=None, finite=True):
        self.lo, self.hi, self.finite = lo, hi, finite

    def check(self, value, path):
        if type(value) not in self.types:
            raise SchemaError(path, f"expected {self.kind}, got {_type_name(value)} "
                                    f"{short(value)}.", wrong_type=True)
        if type(value) is float and not math.isfinite(value):
            if self.finite:
                raise SchemaError(path, f"expected a finite number, got {value}.")
            return value
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise SchemaError(path, f"expected {self.kind} in [{self.lo}, {self.hi}], got "
                                    f"{short(value)}.")
        return value


class Int(Num):
    """An integer (not a boolean) in ``[lo, hi]``."""

    kind, types = "an integer", (int,)

    def __init__(self, lo=None, hi=None):
        super().__init__(lo, hi)


class Str(Spec):
    """A valid UTF-8 string of at most ``max_len`` characters, optionally from ``choices``."""

    def __init__(self, max_len=MAX_NAME, choices=None):
        self.max_len, self.choices = max_len, choices

    def check(self, value, path):
        if type(value) is not str:
            raise SchemaError(path, f"expected a string, got {_type_name(value)} "
                                    f"{short(value)}.", wrong_type=True)
        if self.choices is not None and value not in self.choices:
            raise SchemaError(path, f"expected one of {sorted(self.choices)}, got "
                                    f"{short(value)}.")
        if len(value) > self.max_len:
            raise SchemaError(path, f"expected at most {self.max_len} characters, got a "
                                    f"string of {len(value)}.")
        _check_utf8(value, path)
        return value


class OneOf(Spec):
    """The first of ``options`` that accepts the value."""

    def __init__(self, *options, what):
        self.options, self.what = options, what

    def check(self, value, path):
        for opt in self.options:
            try:
                return opt(value, path)
            except SchemaError as e:
                if not e.wrong_type:  # the right kind of value, but wrong: say why
                    raise
        raise SchemaError(path, f"expected {self.what}, got {_type_name(value)} "
                                f"{short(value)}.", wrong_type=True)


class Const(Spec):
    def __init__(self, value):
        self.value = value

    def check(self, value, path):
        if value != self.value or type(value) is not type(self.value):
            raise SchemaError(path, f"expected {self.value!r}, got {short(value)}.")
        return value


class List(Spec):
    """A list of ``item`` with ``min_len <= len <= max_len``."""

    def __init__(self, item, min_len=0, max_len=None):
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def check(self, value, path):
        if type(value) is not list:
            raise SchemaError(path, f"expected a list, got {_type_name(value)} {short(value)}.", wrong_type=True)
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise SchemaError(path, f"expected a list of {self.min_len} to {self.max_len} "
                                    f"items, got {len(value)}.")
        for i, v in enumerate(value):
            self.item(v, f"{path}[{i}]")
        return value


class Obj(Spec):
    """A JSON object: ``fields`` maps key -> spec (required unless listed in ``optional``).

    ``extra``: spec for keys not in ``fields`` (None: other keys are refused).
    """

    def __init__(self, fields, optional=(), extra=None):
        self.fields, self.optional, self.extra = fields, set(optional), extra

    def check(self, value, path):
        if type(value) is not dict:
            raise SchemaError(path, f"expected an object, got {_type_name(value)} "
                                    f"{short(value)}.", wrong_type=True)
        for key, spec in self.fields.items():
            if key in value:
                spec(value[key], f"{path}.{key}")
            elif key not in self.optional:
                raise SchemaError(path, f"missing entry {key!r}.")
        for key in value:
            if key in self.fields:
                continue
            if self.extra is None:
                raise SchemaError(path, f"unexpected entry {short(key, 60)}; expected only "
                                        f"{sorted(self.fields)}.")
            _check_utf8(key, path)
            self.extra(value[key], key_path(path, key))
        return value


ANY = Any_()
FLOAT = Num()
NAME = Str()

# ---------------------------------------------------------------------------- random states
_U64 = Int(0, 2**64 - 1)
_U32 = Int(0, 2**32 - 1)
_HAS = dict(has_uint32=Int(0, 1), uinteger=_U32)
RNG_STATES = {
    "PCG64": Obj({"bit_generator": Const("PCG64"),
                  "state": Obj({"state": Int(0, 2**128 - 1), "inc": Int(0, 2**128 - 1)}),
                  **_HAS}),
    "PCG64DXSM": Obj({"bit_generator": Const("PCG64DXSM"),
                      "state": Obj({"state": Int(0, 2**128 - 1), "inc": Int(0, 2**128 - 1)}),
                      **_HAS}),
    "MT19937": Obj({"bit_generator": Const("MT19937"),
                    "state": Obj({"key": List(_U32, 624, 624), "pos": Int(0, 624)})}),
    "Philox": Obj({"bit_generator": Const("Philox"),
                   "state": Obj({"counter": List(_U64, 4, 4), "key": List(_U64, 2, 2)}),
                   "buffer": List(_U64, 4, 4), "buffer_pos": Int(0, 4), **_HAS}),
    "SFC64": Obj({"bit_generator": Const("SFC64"),
                  "state": Obj({"state": List(_U64, 4, 4)}), **_HAS}),
}


class RngState(Spec):
    """A NumPy ``bit_generator.state`` of one of the generators in :data:`RNG_STATES`."""

    def check(self, value, path):
        kind = value.get("bit_generator") if isinstance(value, dict) else None
        if not isinstance(kind, str) or kind not in RNG_STATES:
            raise SchemaError(path, f"expected a random-generator state naming one of "
                                    f"{sorted(RNG_STATES)} as 'bit_generator', got "
                                    f"{short(kind)}.")
        return RNG_STATES[kind](value, path)


# ---------------------------------------------------------------------------- records
_NAMED = Obj({"class_name": Str(200), "config": Obj({}, extra=ANY)}, optional=("config",),
             extra=ANY)

CONFIG = Obj({
    "class_name": Str(20, choices=("Sequential", "Model")),  # Model: the functional API
    "config": Obj({"name": NAME.or_null(),
                   "layers": List(Obj({"class_name": Str(200), "config": Obj({}, extra=ANY)},
                                      extra=ANY), 1, MAX_LAYERS)},
                  optional=("name",), extra=ANY),
    "build_input_shape": List(Int(1, 2**31 - 1).or_null(), 1, MAX_NDIM).or_null(),
}, optional=("build_input_shape",))

_LOSS = OneOf(Str(200), _NAMED, what="a loss name or {'class_name', 'config'}")
_METRICS = List(Str(200), 0, 100)
#: ``Model.compile_config()``: one loss and metric list, or (several outputs) one per output
COMPILE = Obj({
    "loss": OneOf(_LOSS, List(_LOSS, 1, MAX_LAYERS),
                  what="a loss (name or {'class_name', 'config'}) or one per output"),
    "optimizer": OneOf(Str(200), _NAMED, what="an optimizer name or {'class_name', 'config'}"),
    "metrics": OneOf(_METRICS, List(_METRICS, 1, MAX_LAYERS),
                     what="a list of metric names or one such list per output"),
    "loss_weights": List(Num(), 1, MAX_LAYERS).or_null(),
}, optional=("loss_weights",))

TRAINING = Obj({
    "epochs_done": Int(0, 2**31 - 1),
    "rng_state": RngState().or_null(),
    "layer_rng_states": Obj({}, extra=RngState()),
}, optional=("epochs_done", "rng_state", "layer_rng_states"))

WEIGHT_LAYERS = List(Str(200), 0, MAX_LAYERS)

_SCALER = Obj({"class_name": Const("StandardScaler"),
               "mean": List(FLOAT, 1, MAX_CHANNELS),
               "scale": List(Num(lo=0.0), 1, MAX_CHANNELS)}, optional=("class_name",),
              extra=ANY)
_LABEL = OneOf(Str(MAX_NAME), Int(), Num(), Bool(), what="a class label (string or number)")
#: Pipeline settings saved under ``preprocessing.params`` (every task uses a subset).
_PARAMS = Obj({
    "cell": Str(20),  # a name from rnnkit.tasks.CELLS, checked where the pipeline uses it
    "units": List(Int(1, MAX_UNITS), 1, 1000),
    "bidirectional": Bool(),
    "dropout": Num(0.0, 1.0),
    "l2": Num(0.0, 1e6),
    "epochs": Int(0, MAX_EPOCHS),
    "batch_size": Int(1, MAX_BATCH),
    "learning_rate": Num(0.0, 1e6),
    "clipnorm": Num(0.0, 1e12).or_null(),
    "validation_split": Num(0.0, 0.999),
    "patience": Int(0, MAX_EPOCHS),
    "ensemble": Int(1, 1000),
    "aggregate": Str(10, choices=("mean", "median")),
    "log": OneOf(Bool(), Str(10, choices=("auto",)), what="'auto', true or false"),
    "difference": OneOf(Str(10, choices=("auto", "none")), List(Int(1, MAX_WINDOW), 0, 10),
                        what="'auto', 'none' or a list of lags"),
    "seasonal_period": OneOf(Int(1, MAX_WINDOW), Str(10, choices=("auto",)),
                             what="'auto', null or a positive integer").or_null(),
    "seed": Int(0, 2**63 - 1).or_null(),
    "embedding_dim": Int(1, MAX_UNITS),
    "seq_len": Int(1, MAX_WINDOW),
    "standardize": Bool(),
    "normalize": Str(20, choices=("series", "series+level", "channel", "none")).or_null(),
    "patch": Int(1, MAX_WINDOW).or_null(),
    "view": Str(10, choices=("time", "spectrum")),
    # share of each series a training window covers (0: whole series, no cropping)
    "crop": Num(0.0, 0.999),
}, optional=("normalize", "patch", "view", "crop", "cell", "units", "bidirectional", "dropout", "l2", "epochs", "batch_size",
             "learning_rate", "clipnorm", "validation_split", "patience", "ensemble",
             "aggregate", "log", "difference", "seasonal_period", "seed", "embedding_dim",
             "seq_len", "standardize"), extra=ANY)

#: ``preprocessing.info``: what `rnnkit train` recorded (shown by `rnnkit info`, used to
#: read data the way the model was trained).
_INFO = Obj({"data": Str(10_000), "test": Str(10_000).or_null(),
             "train_settings": Obj({}, extra=ANY), "test_metrics": Obj({}, extra=ANY),
             "columns": List(Str(MAX_NAME), 1, MAX_CHANNELS),
             "target": OneOf(Str(MAX_NAME), Int(0), what="a column name").or_null(),
             "date_column": Str(MAX_NAME).or_null(), "last_date": Str(MAX_NAME).or_null()},
            optional=("data", "test", "train_settings", "test_metrics", "columns", "target",
                      "date_column", "last_date"), extra=ANY)
_COMMON = {"format": Int(1, 1), "task": Str(20), "params": _PARAMS, "info": _INFO}
_COMMON_OPT = ("format", "params", "info")

PREPROCESSING = {
    "classify": Obj({**_COMMON, "n_features": Int(1, MAX_CHANNELS).or_null(),
                     "scaler": _SCALER.or_null(), "classes": List(_LABEL, 1, MAX_CLASSES)},
                    optional=_COMMON_OPT + ("n_features", "scaler"), extra=ANY),
    "regress": Obj({**_COMMON, "n_features": Int(1, MAX_CHANNELS).or_null(),
                    "scaler": _SCALER.or_null(), "n_outputs": Int(1, MAX_CHANNELS),
                    "y_scaler": _SCALER}, optional=_COMMON_OPT + ("n_features", "scaler"),
                   extra=ANY),
    "forecast": Obj({**_COMMON, "n_channels": Int(1, MAX_CHANNELS),
                     "target_column": Int(0, MAX_CHANNELS - 1),
                     "horizon": Int(1, MAX_HORIZON), "window": Int(1, MAX_WINDOW),
                     "stride": Int(1, MAX_WINDOW),
                     "strategy": Str(10, choices=("direct", "recursive")),
                     "log_channels": List(Int(0, MAX_CHANNELS - 1), 0, MAX_CHANNELS),
                     "lags": List(Int(1, MAX_WINDOW), 0, 10),
                     "seasonal_period": Int(1, MAX_WINDOW).or_null(),
                     "scaler": _SCALER,
                     "train_tail": List(List(Num(finite=False), 1, MAX_CHANNELS), 1,
                                        2 * MAX_WINDOW),
                     "ensemble_weights": List(List(ANY), 0, 1000)},
                    optional=_COMMON_OPT + ("stride", "ensemble_weights"),
                    extra=ANY),
    "lm": Obj({**_COMMON, "vocab": Obj({"class_name": Str(40), "tokens": List(
                   Str(MAX_NAME), 3, MAX_VOCAB)}, optional=("class_name",), extra=ANY),
               "unigram_counts": List(Int(0, 2**62), 0, MAX_VOCAB).or_null(),
               "seq_len": Int(1, MAX_WINDOW), "baseline_unigram": Num(0.0).or_null()},
              optional=_COMMON_OPT + ("unigram_counts", "seq_len", "baseline_unigram"),
              extra=ANY),
}


def check_preprocessing(pre, path="preprocessing"):
    """Validate a ``model.preprocessing`` record (any JSON object; a task record in full)."""
    Obj({}, extra=ANY)(pre, path)
    task = pre.get("task")
    if task is None:
        return pre
    if not isinstance(task, str) or task not in PREPROCESSING:
        raise SchemaError(f"{path}.task", f"expected one of {sorted(PREPROCESSING)} (or no "
                                          f"task), got {short(task)}.")
    PREPROCESSING[task](pre, path)
    _check_task_consistency(pre, task, path)
    return pre


def _check_task_consistency(pre, task, path):
    """Cross-field rules inside one preprocessing record."""
    scaler = pre.get("scaler")
    if scaler and len(scaler["mean"]) != len(scaler["scale"]):
        raise SchemaError(f"{path}.scaler", f"'mean' has {len(scaler['mean'])} entries but "
                                            f"'scale' has {len(scaler['scale'])}.")
    params = pre.get("params") or {}
    # normalize='series+level' scales each series' (mean, log std) per channel: 2 per channel
    per_channel = 2 if params.get("normalize") == "series+level" else 1
    if task in ("classify", "regress") and scaler and pre.get("n_features") is not None \
            and len(scaler["mean"]) != per_channel * pre["n_features"]:
        raise SchemaError(f"{path}.scaler", f"scales {len(scaler['mean'])} features but "
                                            f"n_features is {pre['n_features']}.")
    if task == "regress":
        ys = pre["y_scaler"]
        if len(ys["mean"]) != len(ys["scale"]) or len(ys["mean"]) != pre["n_outputs"]:
            raise SchemaError(f"{path}.y_scaler", f"expected {pre['n_outputs']} means and "
                                                  f"scales (n_outputs), got "
                                                  f"{len(ys['mean'])} and {len(ys['scale'])}.")
    if task == "forecast":
        c = pre["n_channels"]
        if pre["target_column"] >= c:
            raise SchemaError(f"{path}.target_column", f"expected a column index below "
                                                       f"n_channels={c}, got "
                                                       f"{pre['target_column']}.")
        bad = [v for v in pre["log_channels"] if v >= c]
        if bad or len(set(pre["log_channels"])) != len(pre["log_channels"]):
            raise SchemaError(f"{path}.log_channels", f"expected distinct channel indices "
                                                      f"below n_channels={c}, got "
                                                      f"{short(pre['log_channels'])}.")
        if len(scaler["mean"]) != c:
            raise SchemaError(f"{path}.scaler", f"scales {len(scaler['mean'])} channels but "
                                                f"n_channels is {c}.")
        need = pre["window"] + sum(pre["lags"])
        tail = pre["train_tail"]
        if len(tail) < need or any(len(row) != c for row in tail):
            raise SchemaError(f"{path}.train_tail", f"expected at least {need} rows (window "
                                                    f"+ lags) of {c} values, got "
                                                    f"{len(tail)} rows.")
    if task == "lm":
        tokens = pre["vocab"]["tokens"]
        if tokens[:2] != ["<pad>", "<unk>"] or len(set(tokens)) != len(tokens):
            raise SchemaError(f"{path}.vocab.tokens", "expected distinct tokens starting with "
                                                      "'<pad>', '<unk>'.")
        counts = pre.get("unigram_counts")
        if counts and len(counts) != len(tokens):
            raise SchemaError(f"{path}.unigram_counts", f"expected one count per vocabulary "
                                                        f"token ({len(tokens)}), got "
                                                        f"{len(counts)}.")


def check_against_model(pre, model, path="preprocessing"):
    """Rules tying a task record to the model's weights: classes vs outputs, vocabulary vs
    outputs and embedding rows, channels / features vs input width, horizon vs outputs."""
    task = pre.get("task")
    if task is None:
        return
    last = model.layers[-1]
    out_dim = _last_dim(last.compute_output_shape(last.input_shape))
    in_dim = _last_dim(model.layers[0].input_shape)
    if task == "classify" and out_dim is not None and len(pre["classes"]) != out_dim:
        raise SchemaError(f"{path}.classes", f"lists {len(pre['classes'])} classes but the "
                                             f"model has {out_dim} outputs.")
    if task == "regress" and out_dim is not None and pre["n_outputs"] != out_dim:
        raise SchemaError(f"{path}.n_outputs", f"is {pre['n_outputs']} but the model has "
                                               f"{out_dim} outputs.")
    params = pre.get("params") or {}
    patch = params.get("patch") or 1
    # with patches (and the level/spectrum features that may join them) the network reads at
    # least patch * n_features values per step; without, exactly n_features
    if task in ("classify", "regress") and pre.get("n_features") is not None \
            and in_dim is not None and (in_dim < patch * pre["n_features"] if "patch" in params
                                        else pre["n_features"] != in_dim):
        raise SchemaError(f"{path}.n_features", f"is {pre['n_features']} but the model reads "
                                                f"{in_dim} features.")
    if task == "forecast":
        c = pre["n_channels"]
        if in_dim is not None and c != in_dim:
            raise SchemaError(f"{path}.n_channels", f"is {c} but the model reads {in_dim} "
                                                    f"channels.")
        want = pre["horizon"] if pre["strategy"] == "direct" else c
        if out_dim is not None and out_dim != want:
            raise SchemaError(f"{path}.horizon", f"the {pre['strategy']} strategy needs "
                                                 f"{want} model outputs, the model has "
                                                 f"{out_dim}.")
        shapes = [tuple(w.shape) for w in model.get_weights()]
        for i, member in enumerate(pre.get("ensemble_weights") or []):
            p = f"{path}.ensemble_weights[{i}]"
            if len(member) != len(shapes):
                raise SchemaError(p, f"expected {len(shapes)} weight arrays, got "
                                     f"{len(member)}.")
            for j, (w, shape) in enumerate(zip(member, shapes)):
                _check_nested(w, shape, f"{p}[{j}]")
    if task == "lm":
        v = len(pre["vocab"]["tokens"])
        if out_dim is not None and v != out_dim:
            raise SchemaError(f"{path}.vocab.tokens", f"holds {v} tokens but the model has "
                                                      f"{out_dim} outputs.")
        emb = model.layers[0].params.get("embeddings")
        if emb is not None and emb.shape[0] != v:
            raise SchemaError(f"{path}.vocab.tokens", f"holds {v} tokens but the embedding "
                                                      f"has {emb.shape[0]} rows.")


def _last_dim(shape):
    if shape is None or not len(shape):
        return None
    d = shape[-1]
    return int(d) if d is not None else None


def _check_nested(value, shape, path):
    """``value`` is a nested list of finite numbers of exactly ``shape``."""
    if not shape:
        Num()(value, path)
        return
    if type(value) is not list or len(value) != shape[0]:
        raise SchemaError(path, f"expected a nested list of shape {shape}, got "
                                f"{_type_name(value)} {short(value)}.")
    for i, v in enumerate(value):
        _check_nested(v, shape[1:], f"{path}[{i}]")


#: The header's ``__metadata__`` (all strings; JSON records are checked by their own schema).
METADATA = Obj({"format": Const("rnnkit"), "format_version": Str(9),
                "kind": Str(10, choices=("model", "weights")), "rnnkit_version": Str(100),
                "created": Str(100)},
               optional=("format_version", "kind", "rnnkit_version", "created"),
               extra=Str(16 * 1024 * 1024))

#: Record name in the file header -> schema (``preprocessing`` is checked per task).
RECORDS = {"config": CONFIG, "compile": COMPILE, "training": TRAINING,
           "weight_layers": WEIGHT_LAYERS}
