"""Keras 3 interop: ``from_keras`` (no keras needed) and ``to_keras``.

rnnkit's weight layout is Keras's, so weights move unchanged. ``from_keras`` parses the
``.keras`` zip itself (``config.json`` + ``model.weights.h5`` read with h5py) and never runs
keras or any code named in the file. ``to_keras`` builds the model with real keras and saves it
with ``model.save``, so the file is whatever the installed Keras writes.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile

import numpy as np

from . import _layout

_RNN_KEYS = ("units", "activation", "use_bias", "dropout", "recurrent_dropout", "return_sequences",
             "return_state", "go_backwards", "stateful", "seed", "kernel_regularizer",
             "recurrent_regularizer", "bias_regularizer")
_KEYS = {
    "Dense": ("units", "activation", "use_bias", "kernel_regularizer", "bias_regularizer"),
    "Embedding": ("input_dim", "output_dim", "mask_zero", "embeddings_regularizer"),
    "Dropout": ("rate", "noise_shape", "seed"),
    "Activation": ("activation",),
    "Flatten": (),
    "Masking": ("mask_value",),
    "SimpleRNN": _RNN_KEYS,
    "LSTM": _RNN_KEYS + ("recurrent_activation", "unit_forget_bias"),
    "GRU": _RNN_KEYS + ("recurrent_activation", "reset_after"),
}
_IGNORED_TRAINING_ONLY = ("activity_regularizer", "kernel_constraint", "recurrent_constraint",
                          "bias_constraint", "embeddings_constraint")


def _dtype_of(cfg, override):
    if override is not None:
        return override
    d = cfg.get("dtype")
    if isinstance(d, dict):
        d = d.get("config", {}).get("name")
    return d if d in ("float32", "float64") else "float32"


_REG_FROM_KERAS = {"L1": "l1", "L2": "l2", "L1L2": "l1_l2"}
_REG_TO_KERAS = {v: k for k, v in _REG_FROM_KERAS.items()}


def _plain(value, what):
    """Keras serialises activations and regularizers as strings or dicts; give rnnkit's forms."""
    if isinstance(value, dict) and "class_name" in value and what.endswith("activation"):
        return value["class_name"]
    if isinstance(value, dict) and "class_name" in value:
        name = value["class_name"]
        if name not in _REG_FROM_KERAS:
            raise ValueError(f"Keras {what} {name!r} is not supported; rnnkit has L1, L2 and L1L2 "
                             "regularizers.")
        return {"class_name": _REG_FROM_KERAS[name], "config": value.get("config", {})}
    return value


def _make_layer(spec, dtype_override, where):
    """An rnnkit layer (unbuilt) from one Keras layer spec ``{"class_name", "config"}``."""
    from .. import layers as L
    cls_name, cfg = spec.get("class_name"), dict(spec.get("config", {}))
    dtype = _dtype_of(cfg, dtype_override)
    if cls_name in ("Bidirectional", "TimeDistributed"):
        cls = getattr(L, cls_name, None)
        if cls is None:
            raise ValueError(f"Keras layer {where} is a {cls_name}, which this rnnkit version does "
                             "not provide (rnnkit.layers.{cls_name} is missing).")
        inner = _make_layer(cfg["layer"], dtype_override, where + "/layer")
        if cls_name == "TimeDistributed":
            return cls(inner, name=cfg.get("name"))
        back = cfg.get("backward_layer")
        back = None if back is None else _make_layer(back, dtype_override, where + "/backward_layer")
        if cfg.get("merge_mode", "concat") is None:
            raise ValueError(f"Keras Bidirectional {where} has merge_mode=None (two outputs); "
                             "a Sequential model needs one output. Expected concat/sum/ave/mul.")
        return cls(inner, merge_mode=cfg.get("merge_mode", "concat"), backward_layer=back,
                   name=cfg.get("name"))
    if cls_name not in _KEYS:
        raise ValueError(
            f"Keras layer {where} of class {cls_name!r} is not supported by rnnkit.interop."
            f"from_keras. Supported: {sorted(_KEYS) + ['Bidirectional', 'TimeDistributed']}."
        )
    for k in _IGNORED_TRAINING_ONLY:
        if cfg.get(k) is not None:
            warnings.warn(f"Keras layer {where}: {k}={cfg[k]!r} is ignored (rnnkit has no "
                          "equivalent); weights and predictions are unaffected.", stacklevel=3)
    # "unroll" is not read: it only changes how Keras computes, not the result
    kwargs = {k: _plain(cfg[k], k) for k in _KEYS[cls_name] if k in cfg}
    cls = getattr(L, cls_name)
    return cls(name=cfg.get("name"), dtype=dtype, **kwargs)


def _collect(group):
    """Weights under one Keras layer group, in Keras order (its vars, then cell/layer, then
    forward_layer before backward_layer)."""
    out = []
    if "vars" in group:
        vs = group["vars"]
        out += [np.asarray(vs[k]) for k in sorted(vs, key=int)]
    for child in ("cell", "layer", "forward_layer", "backward_layer"):
        if child in group:
            out += _collect(group[child])
    return out


def _keras_snake(name):
    """Keras's ``to_snake_case``: the weights file addresses layers by class, not name."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name, used):
    """'lstm', 'lstm_1', 'lstm_2', ... in order of appearance (Keras's saving_lib naming)."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _read_config(config):
    if isinstance(config, (str, os.PathLike)) and os.path.exists(config):
        with open(config) as f:
            return json.load(f)
    if isinstance(config, str):
        return json.loads(config)
    if isinstance(config, dict):
        return config
    raise TypeError(f"config must be a dict, a JSON string or a path to a JSON file, got "
                    f"{type(config).__name__}.")


def from_keras(path, config=None, dtype=None):
    """Load a Keras 3 Sequential model file into an rnnkit Sequential (keras not needed).

    Args:
        path: a ``.keras`` file written by ``model.save``, or a ``.weights.h5`` file written by
            ``model.save_weights`` (then ``config`` is required).
        config: for ``.weights.h5``: ``model.get_config()`` (dict), ``model.to_json()``
            (string) or the path to a JSON file holding either.
        dtype: force the rnnkit dtype ('float32' / 'float64'); default from the file.

    Returns:
        :class:`rnnkit.Sequential` with the file's weights (not compiled).

    Raises:
        ValueError: for non-Sequential models or unsupported layers, naming them.

    Example:
        >>> model = from_keras("model.keras")
        >>> model.predict(x)          # same numbers as keras model.predict(x)
    """
    from .. import Sequential
    from .. import layers as L
    path = os.fspath(path)
    if path.endswith(".h5") and config is None:
        raise ValueError(f"{path!r} holds only weights; pass config= (model.get_config(), "
                         "model.to_json() or a JSON file) to rebuild the model.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"from_keras: file {path!r} does not exist; pass the path of "
                                "a .keras file (keras_model.save('model.keras')) or of a "
                                ".weights.h5 file with config=.")
    if os.path.isdir(path):
        raise ValueError(f"from_keras: {path!r} is a directory (a TensorFlow SavedModel?); "
                         "save the model from Keras as 'model.keras' and pass that file.")
    import h5py

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "config.json" not in names or "model.weights.h5" not in names:
                raise ValueError(f"{path!r} is a zip but not a Keras 3 .keras file (expected "
                                 f"config.json and model.weights.h5, found {names}).")
            cfg = json.loads(z.read("config.json"))
            weights_bytes = io.BytesIO(z.read("model.weights.h5"))
        h5 = h5py.File(weights_bytes, "r")
    elif path.endswith(".h5"):
        cfg = _read_config(config)
        h5 = h5py.File(path, "r")
    else:
        raise ValueError(f"from_keras expects a .keras file (a zip) or a .weights.h5 file, got "
                         f"{path!r}, which is neither.")
    if "class_name" not in cfg and "layers" in cfg:
        cfg = {"class_name": "Sequential", "config": cfg}
    if cfg.get("class_name") != "Sequential":
        raise ValueError(f"from_keras supports Keras Sequential models only, got a "
                         f"{cfg.get('class_name')!r} model. Rebuild it as keras.Sequential.")
    with h5:
        model = Sequential(name=cfg["config"].get("name"))
        used: dict[str, int] = {}
        for i, spec in enumerate(cfg["config"]["layers"]):
            lcfg = spec.get("config", {})
            where = f"#{i} {lcfg.get('name', '?')!r}"
            if spec.get("class_name") == "InputLayer":
                shape = lcfg.get("batch_shape") or lcfg.get("batch_input_shape")
                model.add(L.Input(tuple(shape[1:]), dtype=dtype))
                continue
            layer = _make_layer(spec, dtype, where)
            if not model.layers and model._input_layer is None and "build_config" in spec:
                shape = spec["build_config"]["input_shape"]
                model.add(L.Input(tuple(shape[1:]), dtype=dtype))
            model.add(layer)
            key = _unique(_keras_snake(spec.get("class_name", "")), used)
            group = h5.get(f"layers/{key}")
            if group is None:  # files from older Keras 3 versions address layers by name
                group = h5.get(f"layers/{lcfg.get('name')}")
            ws = [] if group is None else _collect(group)
            if len(ws) != len(layer.params) and not (not ws and not layer.params):
                raise ValueError(f"Keras file layer {where}: found {len(ws)} weight arrays, rnnkit "
                                 f"{type(layer).__name__} expects {len(layer.params)} "
                                 f"({list(layer.params)}).")
            if ws:
                layer.set_weights(ws)
    if not model.built:
        raise ValueError("from_keras: the Keras model has no input shape (it was never built); "
                         "save it after building it with keras.Input(shape=...).")
    return model


# --------------------------------------------------------------------------- export
def _keras_layer(layer, keras):
    """A keras layer configured like the rnnkit ``layer`` (weights set later)."""
    from .. import layers as L
    name = type(layer).__name__
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        return keras.layers.Bidirectional(
            _keras_layer(layer.forward_layer, keras), merge_mode=layer.merge_mode,
            backward_layer=_keras_layer(layer.backward_layer, keras), name=layer.name)
    if name == "TimeDistributed":
        return keras.layers.TimeDistributed(_keras_layer(layer.layer, keras), name=layer.name)
    from ._keras_graph import keras_layer
    twin = keras_layer(layer, keras) if isinstance(layer, getattr(L, name, ())) else None
    if twin is not None:   # convolution, pooling, normalisation, merging, attention
        return twin
    cfg = layer.get_config()
    if isinstance(layer, L.RNN):            # a preset, or RNN(cell) with a built-in cell
        _layout.recurrent_spec(layer)       # refuses cells without a Keras counterpart
        name = _layout.recurrent_kind(layer)
        cfg = {**cfg.pop("cell", {}).get("config", {}), **cfg}
    if name not in _KEYS or not (isinstance(layer, L.RNN) or isinstance(layer, getattr(L, name))):
        raise ValueError(f"to_keras: layer {layer.name!r} ({name}) is not supported. Supported: "
                         f"{sorted(_KEYS) + ['Bidirectional', 'TimeDistributed']}.")
    if cfg.get("stateful"):
        raise ValueError(f"to_keras: layer {layer.name!r} is stateful; Keras needs a fixed batch "
                         "size for that. Rebuild the model with stateful=False (same weights) to "
                         "export it.")
    kwargs = {k: cfg[k] for k in _KEYS[name] if k in cfg}
    for k, v in kwargs.items():
        if k.endswith("_regularizer") and v is not None:
            kwargs[k] = getattr(keras.regularizers, _REG_TO_KERAS[v["class_name"]])(**v["config"])
    if kwargs.get("noise_shape") is not None:
        kwargs["noise_shape"] = tuple(kwargs["noise_shape"])
    return getattr(keras.layers, name)(name=layer.name, dtype=layer.dtype, **kwargs)


def import_keras():
    """``import keras`` with a backend that the ``keras`` extra installs.

    Keras 3 defaults to TensorFlow, which the extra does not install (it is large and not
    needed); when ``KERAS_BACKEND`` is unset and keras is not imported yet, use ``torch``.
    """
    import sys

    if "keras" not in sys.modules and not os.environ.get("KERAS_BACKEND"):
        os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ModuleNotFoundError as e:
        if e.name == "keras":
            raise ModuleNotFoundError(
                "to_keras needs keras 3: pip install 'rnnkit[keras]' (installs keras, h5py and "
                "the torch backend).") from None
        raise ModuleNotFoundError(
            f"keras could not load its backend ({e}). KERAS_BACKEND is "
            f"{os.environ.get('KERAS_BACKEND')!r}; install that backend, or unset "
            "KERAS_BACKEND to use torch (installed by rnnkit[keras]).") from None
    return keras


def to_keras(model, path):
    """Write an rnnkit model as a Keras 3 ``.keras`` file (needs keras installed).

    Args:
        model: a built :class:`rnnkit.Sequential`, or a functional :class:`rnnkit.Model`
            (same graph, shared layers stay shared).
        path: destination, must end with ``.keras``.

    Returns:
        The keras model that was saved (``keras.saving.load_model(path)`` gives the same
        predictions as ``model.predict``).

    Keras needs a backend. When ``KERAS_BACKEND`` is not set, rnnkit sets it to ``torch``
    before the first import of keras (the ``keras`` extra installs torch, CPU wheels are
    enough); Keras' own default, TensorFlow, is used only if you choose it.

    Example:
        >>> to_keras(model, "model.keras")
    """
    keras = import_keras()
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"to_keras: path must end with '.keras', got {path!r}.")
    if not getattr(model, "built", False):
        raise ValueError("to_keras: the model is not built. Call it on data or start it with "
                         "rnnkit.layers.Input(shape=...) first.")
    from ..models import Sequential
    if not isinstance(model, Sequential):  # a functional graph
        from ._keras_graph import to_keras_graph
        kmodel = to_keras_graph(model, keras, lambda layer: _keras_layer(layer, keras))
        kmodel.save(path)
        return kmodel
    shape = (model._input_layer.shape if model._input_layer is not None
             else tuple(model.layers[0].input_shape[1:]))
    from .. import layers as L
    if isinstance(model.layers[0], L.RNN) or type(model.layers[0]).__name__ == "Bidirectional":
        shape = (None,) + tuple(shape[1:])  # any sequence length
    kmodel = keras.Sequential([keras.Input(shape)] + [_keras_layer(la, keras) for la in model.layers],
                              name=model.name)
    for layer, klayer in zip(model.layers, kmodel.layers):
        ws = layer.get_weights()
        kws = klayer.get_weights()
        if len(ws) != len(kws) or any(a.shape != b.shape for a, b in zip(ws, kws)):
            raise ValueError(f"to_keras: layer {layer.name!r} weight shapes "
                             f"{[a.shape for a in ws]} do not match Keras's {[b.shape for b in kws]}.")
        if ws:
            klayer.set_weights(ws)
    kmodel.save(path)
    return kmodel
