"""Safe model files: one safetensors file holding config, weights, optimizer state, metadata.

File layout (a standard safetensors file, readable by any safetensors reader):

* tensors ``weights/<layer>/<weight>`` — the model weights, Keras layout;
* tensors ``optimizer/<slot>/<i>`` and ``optimizer/iterations`` — optimizer state (optional);
* header metadata (all strings): ``format`` = "rnnkit", ``format_version``, ``rnnkit_version``,
  ``created`` (UTC ISO time), ``config`` (JSON model config), ``compile`` (JSON loss /
  optimizer / metrics), ``training`` (JSON: epochs done, random-generator state) and
  ``preprocessing`` (JSON: scalers, vocabularies, label names).

Loading parses JSON and raw tensors only — nothing is unpickled, imported or executed, and
only built-in or explicitly registered layer classes can be created. Every write goes to a
temporary file in the target folder, is flushed and fsynced, then renamed over the target, so
a crash leaves either the old file or the new one, never a partial file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile

import numpy as np

FORMAT = "rnnkit"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024


class RnnkitFileError(ValueError):
    """A model or weights file is missing, truncated, corrupted, hostile or incompatible."""


# ---------------------------------------------------------------------------- writing
def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _weight_tensors(model):
    out = {}
    for layer in model.layers:
        for name, w in layer.params.items():
            out[f"weights/{layer.name}/{name}"] = np.ascontiguousarray(w)
    return out


def _serialize(model, include_optimizer=True):
    from . import __version__, _backend
    from . import losses as _losses
    from . import optimizers as _opt
    from safetensors.numpy import save

    tensors = _weight_tensors(model)
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "rnnkit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": json.dumps({"class_name": type(model).__name__, "config": model.get_config()}),
        "preprocessing": json.dumps(model.preprocessing),
    }
    if model.compiled:
        meta["compile"] = json.dumps({
            "loss": _losses.serialize(model.loss),
            "optimizer": _opt.serialize(model.optimizer),
            "metrics": [m.name for m in model.metrics],
        })
        if include_optimizer:
            for k, v in model.optimizer.get_state().items():
                tensors[f"optimizer/{k}"] = np.ascontiguousarray(np.atleast_1d(v))
        meta["training"] = json.dumps({
            "epochs_done": model._epochs_done,
            "rng_state": _backend.get_rng_state(),
            "layer_rng_states": {
                layer.name: r.bit_generator.state
                for layer in model.layers
                for r in [getattr(layer, "_dropout_rng", None) or getattr(layer, "_rng", None)]
                if r is not None
            },
        })
    return save(tensors, metadata=meta)


def save_model(model, path, include_optimizer=True):
    """Save ``model`` to ``path`` (one file; see the module docstring for the format)."""
    if not model.built:
        raise ValueError("The model is not built yet, so it has no weights to save. Call it "
                         "on data, fit it, or start it with rnnkit.layers.Input(shape=...).")
    atomic_write_bytes(path, _serialize(model, include_optimizer))


def save_weights(model, path):
    """Save only the weights of ``model`` (safetensors), atomically."""
    from safetensors.numpy import save
    if not model.built:
        raise ValueError("The model is not built yet, so it has no weights to save.")
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": "weights"}
    atomic_write_bytes(path, save(_weight_tensors(model), metadata=meta))


# ---------------------------------------------------------------------------- reading
def _read(path):
    """Parse and validate a file; returns (metadata dict, tensors dict). Never unpickles."""
    from safetensors.numpy import load

    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RnnkitFileError(f"No model file at {path!r}.") from None
    except IsADirectoryError:
        raise RnnkitFileError(f"{path!r} is a directory, expected an rnnkit model file.") from None
    if len(data) < 8:
        raise RnnkitFileError(f"{name}: file is truncated ({len(data)} bytes); not an rnnkit file.")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise RnnkitFileError(
            f"{name}: not an rnnkit/safetensors file (declared header size {header_len} bytes, "
            f"file size {len(data)} bytes). It may be truncated, or a different format such as "
            "a pickle; rnnkit never unpickles files."
        )
    try:
        header = json.loads(data[8:8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RnnkitFileError(f"{name}: the header is not valid JSON; the file is corrupted "
                              "or not an rnnkit file.") from None
    if not isinstance(header, dict):
        raise RnnkitFileError(f"{name}: the header is not a JSON object.")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RnnkitFileError(f"{name}: not an rnnkit file (no 'format': 'rnnkit' in its header).")
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        raise RnnkitFileError(f"{name}: invalid format_version {meta.get('format_version')!r}.") from None
    if version > FORMAT_VERSION:
        raise RnnkitFileError(
            f"{name}: written with file format version {version}, but this rnnkit reads up to "
            f"version {FORMAT_VERSION}. Upgrade rnnkit to load it."
        )
    if version < 1:
        raise RnnkitFileError(f"{name}: invalid format_version {version}.")
    body = len(data) - 8 - header_len
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise RnnkitFileError(f"{name}: tensor {key!r} has a malformed header entry.")
        if info["dtype"] not in ("F16", "F32", "F64", "I64", "I32", "BOOL", "U8"):
            raise RnnkitFileError(f"{name}: tensor {key!r} has unsupported dtype {info['dtype']!r}.")
        shape, offs = info["shape"], info["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(s, int) and 0 <= s < 2**31 for s in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and 0 <= o <= body for o in offs) or offs[0] > offs[1]):
            raise RnnkitFileError(f"{name}: tensor {key!r} has invalid shape or offsets.")
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error types for bad payloads
        raise RnnkitFileError(f"{name}: corrupted tensor data ({e}).") from None
    return meta, tensors


def _json_field(meta, key, name, default=None):
    if key not in meta:
        if default is not None:
            return default
        raise RnnkitFileError(f"{name}: missing {key!r} record in the header.")
    try:
        return json.loads(meta[key])
    except (TypeError, json.JSONDecodeError):
        raise RnnkitFileError(f"{name}: the {key!r} record is not valid JSON.") from None


def _assign_weights(model, tensors, name):
    import warnings
    for layer in model.layers:
        for wname, w in layer.params.items():
            key = f"weights/{layer.name}/{wname}"
            if key not in tensors:
                raise RnnkitFileError(f"{name}: missing tensor {key!r}.")
            t = tensors[key]
            if t.shape != w.shape:
                raise RnnkitFileError(
                    f"{name}: tensor {key!r} has shape {t.shape}, but the model config needs "
                    f"{w.shape}."
                )
            if t.dtype.kind != "f":
                raise RnnkitFileError(f"{name}: tensor {key!r} has dtype {t.dtype}, expected float.")
            if not np.all(np.isfinite(t)):
                warnings.warn(f"{name}: weight {key!r} contains NaN or Inf; the model will "
                              "produce non-finite outputs.", RuntimeWarning, stacklevel=3)
            w[...] = t


def load_model(path, custom_objects=None, compile=True):
    """Load a model saved with ``model.save(path)``.

    Args:
        path: file written by :meth:`rnnkit.Sequential.save`.
        custom_objects: dict ``class name -> Layer subclass`` for custom layers (or register
            them with :func:`rnnkit.layers.register_layer`).
        compile: restore the loss, metrics and optimizer (with its state) when saved.

    Raises:
        RnnkitFileError: the file is missing, truncated, corrupted, not an rnnkit file, from a
            newer format, or its config and tensors disagree.
    """
    from . import _backend
    from . import losses as _losses
    from . import metrics as _metrics
    from . import optimizers as _opt
    from .models import Sequential

    name = os.path.basename(os.fspath(path))
    meta, tensors = _read(path)
    if meta.get("kind") == "weights":
        raise RnnkitFileError(f"{name}: holds weights only (save_weights); build the model "
                              "and call model.load_weights instead.")
    cfg = _json_field(meta, "config", name)
    if not isinstance(cfg, dict) or cfg.get("class_name") != "Sequential" or not isinstance(
            cfg.get("config"), dict) or not isinstance(cfg["config"].get("layers"), list):
        raise RnnkitFileError(f"{name}: the model config is malformed.")
    try:
        model = Sequential.from_config(cfg["config"], custom_objects)
    except (ValueError, TypeError, KeyError) as e:
        raise RnnkitFileError(f"{name}: cannot rebuild the model from its config: {e}") from None
    if not model.built:
        first = next((t for k, t in tensors.items() if k.startswith("weights/")), None)
        layer0 = model.layers[0] if model.layers else None
        if layer0 is None:
            raise RnnkitFileError(f"{name}: the model has no layers.")
        kernel = tensors.get(f"weights/{layer0.name}/kernel")
        emb = tensors.get(f"weights/{layer0.name}/embeddings")
        if kernel is not None and kernel.ndim == 2:
            try:
                model.build((None, None, int(kernel.shape[0])) if hasattr(layer0, "cell")
                            else (None, int(kernel.shape[0])))
            except ValueError as e:
                raise RnnkitFileError(f"{name}: {e}") from None
        elif emb is not None:
            model.build((None, None))
        elif first is None:
            raise RnnkitFileError(f"{name}: no weights in the file.")
        else:
            raise RnnkitFileError(f"{name}: cannot infer the input shape; the file is malformed.")
    _assign_weights(model, tensors, name)
    model.preprocessing = _json_field(meta, "preprocessing", name, default={}) or {}
    if compile and "compile" in meta:
        comp = _json_field(meta, "compile", name)
        try:
            model.compile(optimizer=_opt.get(comp["optimizer"]), loss=_losses.get(comp["loss"]),
                          metrics=[_metrics.get(m, _losses.get(comp["loss"])) for m in comp["metrics"]])
        except (ValueError, TypeError, KeyError) as e:
            raise RnnkitFileError(f"{name}: invalid compile record: {e}") from None
        state = {k[len("optimizer/"):]: v for k, v in tensors.items() if k.startswith("optimizer/")}
        if state:
            state["iterations"] = int(np.asarray(state["iterations"]).reshape(-1)[0])
            try:
                model.optimizer.set_state(state, model._trainable()[0])
            except (ValueError, KeyError) as e:
                raise RnnkitFileError(f"{name}: optimizer state does not match the model: {e}") from None
        training = _json_field(meta, "training", name, default={}) or {}
        model._epochs_done = int(training.get("epochs_done", 0))
        if training.get("rng_state"):
            _backend.set_rng_state(training["rng_state"])
        for layer in model.layers:
            st = (training.get("layer_rng_states") or {}).get(layer.name)
            r = getattr(layer, "_dropout_rng", None) or getattr(layer, "_rng", None)
            if st is not None and r is not None:
                r.bit_generator.state = st
    return model


def load_weights(model, path):
    """Load weights into an existing, built model from a weights file or a model file."""
    name = os.path.basename(os.fspath(path))
    meta, tensors = _read(path)
    if not model.built:
        raise ValueError("Build the model (call it on data) before load_weights.")
    _assign_weights(model, tensors, name)
