"""Safe model files: one safetensors file holding config, weights, optimizer state, metadata.

File layout (a standard safetensors file, readable by any safetensors reader; the full
description is in ``docs/files.md``):

* tensors ``weights/<layer>/<weight>`` — the model weights, Keras layout;
* tensors ``optimizer/<slot>/<i>`` and ``optimizer/iterations`` — optimizer state (optional);
* tensors ``states/<layer path>/<i>`` — carried states of stateful recurrent layers;
* header metadata (all strings): ``format`` = "rnnkit", ``format_version``, ``kind``
  ("model" or "weights"), ``rnnkit_version``, ``created`` (UTC ISO time), ``weight_layers``
  (JSON list of layer names in model order), and for models ``config`` (JSON model config),
  ``compile`` (JSON loss / optimizer / metrics), ``training`` (JSON: epochs done, random
  generator states) and ``preprocessing`` (JSON: scalers, vocabularies, label names).

Loading parses JSON and raw little-endian tensors only: nothing is unpickled, imported or
executed, only built-in or explicitly registered layer classes are created, and every size
is checked against the tensors actually present before anything is allocated. Every write
goes to a temporary file next to the target, is flushed and fsynced, then renamed over the
target, so a crash leaves either the old file or the new one, never a partial file.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import math
import os
import secrets
import stat
import warnings

import numpy as np

from .layers.base import WEIGHT_SOURCE

FORMAT = "rnnkit"
#: Version written by this rnnkit. Version 1 is the first; readers accept 1..FORMAT_VERSION.
FORMAT_VERSION = 1
MIN_FORMAT_VERSION = 1
#: Our headers are a few kilobytes; anything above this cap is refused before it is read.
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_NDIM = 8
#: A config with more layers than this is refused before any layer object is created.
MAX_LAYERS = 10_000
#: safetensors dtype code -> little-endian NumPy dtype. Only these appear in rnnkit files.
_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I64": "<i8"}
_TMP_SUFFIX = ".part"


class RnnkitFileError(ValueError):
    """A model or weights file is missing, truncated, corrupted, hostile or incompatible."""


# ============================================================================ writing
def _tmp_prefix(base):
    return f".{base}."


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, rename).

    The temporary file is ``.<name>.<pid>.<random>.part`` in the target's folder (same file
    system, so the rename is atomic). After a successful rename, temporary files of the same
    target left by processes that no longer exist (killed mid-write) are removed.

    Args:
        path: target file path.
        data: the complete file content.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"Cannot save to {path!r}: it is a directory; pass a file path such "
                         "as 'model.rnnkit'.")
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f"{_tmp_prefix(base)}{os.getpid()}.{secrets.token_hex(6)}"
                               f"{_TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    _remove_stale_temps(folder, base)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # not ours to judge: keep the file
        return True
    return True


def _remove_stale_temps(folder, base):
    """Delete ``.<base>.<pid>.*.part`` files whose writing process is gone (POSIX only)."""
    if os.name != "posix":
        return
    prefix = _tmp_prefix(base)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for n in names:
        if not (n.startswith(prefix) and n.endswith(_TMP_SUFFIX)):
            continue
        pid = n[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, n))
        except OSError:
            pass


def _walk_layers(layer, path=None, seen=None):
    """Yield ``(path, layer)`` for ``layer`` and every Layer held in its attributes."""
    from .layers.base import Layer
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    path = layer.name if path is None else path
    yield path, layer
    for attr in sorted(vars(layer)):
        value = vars(layer)[attr]
        if isinstance(value, Layer):
            yield from _walk_layers(value, f"{path}/{attr}", seen)


def _layer_rng(layer):
    """(attribute name, Generator) of a layer's own seeded generator, or (None, None)."""
    for attr in ("_dropout_rng", "_rng"):
        r = vars(layer).get(attr)
        if isinstance(r, np.random.Generator):
            return attr, r
    return None, None


def _is_stateful_rnn(layer):
    from .layers.rnn import RNN
    return isinstance(layer, RNN) and layer.stateful


def _check_savable(model):
    if not model.built:
        raise ValueError("The model is not built yet, so it has no weights to save. Call it "
                         "on data, fit it, or start it with rnnkit.layers.Input(shape=...).")
    names = [layer.name for layer in model.layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"Cannot save model {model.name!r}: layer names must be unique, but "
                         f"{dup} appear more than once. Give the layers distinct name= values.")


def _weight_tensors(model):
    out = {}
    for layer in model.layers:
        for name, w in layer.params.items():
            out[f"weights/{layer.name}/{name}"] = np.require(w, requirements="C")  # keeps 0-d
    return out


def _base_meta(model, kind):
    from . import __version__
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "rnnkit_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "weight_layers": json.dumps([layer.name for layer in model.layers if layer.params]),
    }


def _dumps(value, what):
    try:
        return json.dumps(value, allow_nan=what == "preprocessing")
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"Cannot save the model's {what} record: it must hold only JSON values (dict, "
            f"list, str, finite numbers, bool, None); {e}. For model.preprocessing convert "
            "NumPy arrays with .tolist()."
        ) from None


def _serialize(model, include_optimizer=True):
    from safetensors.numpy import save

    from . import _backend

    tensors = _weight_tensors(model)
    meta = _base_meta(model, "model")
    record = {"class_name": type(model).__name__, "config": model.get_config()}
    shape = model.layers[0].input_shape
    if shape is not None:  # lets load_model build a model that had no Input layer
        record["build_input_shape"] = [None] + [None if d is None else int(d) for d in shape[1:]]
    meta["config"] = _dumps(record, "config")
    meta["preprocessing"] = _dumps(model.preprocessing, "preprocessing")
    if model.compiled:
        meta["compile"] = _dumps(model.compile_config(), "compile")
        if include_optimizer:
            for k, v in model.optimizer.get_state().items():
                tensors[f"optimizer/{k}"] = np.require(np.atleast_1d(v) if k == "iterations"
                                                       else v, requirements="C")
    layer_rngs = {}
    for top in model.layers:
        for path, layer in _walk_layers(top):
            _, r = _layer_rng(layer)
            if r is not None:
                layer_rngs[path] = r.bit_generator.state
            states = layer.states if _is_stateful_rnn(layer) else None
            if isinstance(states, (tuple, list)):
                for i, s in enumerate(states):
                    tensors[f"states/{path}/{i}"] = np.ascontiguousarray(s)
    meta["training"] = _dumps({
        "epochs_done": int(model._epochs_done),
        "rng_state": _backend.get_rng_state(),
        "layer_rng_states": layer_rngs,
    }, "training")
    return save(tensors, metadata=meta)


def save_model(model, path, include_optimizer=True):
    """Save ``model`` to one file at ``path`` (format: module docstring / docs/files.md).

    Args:
        model: a built :class:`rnnkit.Sequential`.
        path: target file; written atomically (never a partial file at ``path``).
        include_optimizer: also store the optimizer slots and step counter (needed for an
            exact resume; the loss/optimizer/metrics names are stored either way).

    Raises:
        ValueError: the model is not built, has duplicate layer names, or its
            ``preprocessing`` record is not JSON.
    """
    _check_savable(model)
    atomic_write_bytes(path, _serialize(model, include_optimizer))


def save_weights(model, path):
    """Save only the weights of ``model`` (safetensors), atomically.

    Args:
        model: a built model.
        path: target file.
    """
    from safetensors.numpy import save
    _check_savable(model)
    atomic_write_bytes(path, save(_weight_tensors(model), metadata=_base_meta(model, "weights")))


# ============================================================================ reading
_SNIFF = (
    (b"PK\x03\x04", "a ZIP archive (e.g. a PyTorch .pt/.pth checkpoint or a Keras .keras file)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (e.g. Keras .h5 weights; see rnnkit.interop)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)


def _sniff(head: bytes):
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return what
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    return None


def _interop_hint(path, head):
    """Which rnnkit.interop function reads a Keras or PyTorch file (sniffed by content)."""
    import zipfile

    keras_h5 = (" A Keras .h5 / .weights.h5 file is read by rnnkit.interop.from_keras(path, "
                "config=...) (the config from keras_model.to_json()).")
    torch_hint = (" A PyTorch checkpoint is read by torch itself: module.load_state_dict("
                  "torch.load(path, weights_only=True)), then rnnkit.interop.from_torch(module) "
                  "(or rnnkit.interop.from_torch_state_dict(torch.load(path, weights_only=True)) "
                  "for a state dict).")
    if head.startswith(b"\x89HDF"):
        return keras_h5
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (OSError, zipfile.BadZipFile):
            return ""
        if "config.json" in names and "model.weights.h5" in names:
            return " It is a Keras 3 .keras file: read it with rnnkit.interop.from_keras(path)."
        if any(n.endswith("data.pkl") for n in names):
            return " It is a PyTorch checkpoint (torch.save)." + torch_hint
        return ""
    if len(head) >= 2 and head[0] == 0x80:
        return " If it was written by torch.save, it is a PyTorch checkpoint." + torch_hint
    return ""


def _no_constants(value):
    raise ValueError(f"non-finite number {value} in the header")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r} in the header")
        out[k] = v
    return out


def _fail(name, msg):
    raise RnnkitFileError(f"{name}: {msg}")


def _validate_entries(name, header, body_size):
    """Check every tensor entry: dtype, shape, and offsets tiling the data section exactly."""
    spans = []
    for key, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            _fail(name, f"tensor {key!r} has a malformed header entry (expected dtype, shape "
                        "and data_offsets).")
        if not isinstance(info["dtype"], str) or info["dtype"] not in _DTYPES:
            _fail(name, f"tensor {key!r} has dtype {info['dtype']!r}; rnnkit files hold only "
                        f"{sorted(_DTYPES)}.")
        shape, offs = info["shape"], info["data_offsets"]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(type(s) is int and 0 <= s < 2**40 for s in shape)):
            _fail(name, f"tensor {key!r} declares an invalid shape {shape!r} (expected at most "
                        f"{MAX_NDIM} non-negative integers).")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(type(o) is int and 0 <= o <= body_size for o in offs)
                or offs[0] > offs[1]):
            _fail(name, f"tensor {key!r} has data offsets {offs!r} outside the data section "
                        f"of {body_size} bytes (truncated or corrupted file).")
        nbytes = math.prod(shape) * np.dtype(_DTYPES[info["dtype"]]).itemsize
        if nbytes != offs[1] - offs[0]:
            _fail(name, f"tensor {key!r} declares shape {shape} ({nbytes} bytes) but "
                        f"{offs[1] - offs[0]} bytes of data; the file is corrupted or tampered.")
        spans.append((offs[0], offs[1], key))
    end = 0
    for start, stop, key in sorted(spans):
        if start != end:
            _fail(name, f"tensor {key!r} starts at byte {start} of the data section, expected "
                        f"{end} (tensors overlap or leave holes); the file is corrupted.")
        end = stop
    if end != body_size:
        _fail(name, f"the tensors cover {end} bytes but the data section has {body_size}; the "
                    "file is truncated, padded or corrupted.")


def _read(path):
    """Parse and validate a file. Returns ``(meta, tensors, name)``. Never unpickles.

    ``tensors`` maps names to read-only NumPy views into the file's bytes.
    """
    path = os.fspath(path)
    name = os.path.basename(path) or path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RnnkitFileError(f"No model file at {path!r}: check the path.") from None
    except OSError as e:
        raise RnnkitFileError(f"Cannot read {path!r}: {e}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise RnnkitFileError(f"{path!r} is a directory; expected an rnnkit model file.")
    if not stat.S_ISREG(st.st_mode):
        raise RnnkitFileError(f"{path!r} is not a regular file; expected an rnnkit model file.")
    with open(path, "rb") as f:
        head = f.read(8)
        size = os.fstat(f.fileno()).st_size
        what = _sniff(head)
        if what is not None:
            _fail(name, f"this is {what}, not an rnnkit model file. rnnkit only reads its own "
                        "safetensors-based files and never unpickles anything."
                        + _interop_hint(path, head))
        if len(head) < 8:
            _fail(name, f"file is truncated ({len(head)} bytes); not an rnnkit file.")
        header_len = int.from_bytes(head, "little")
        if header_len < 2 or header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            _fail(name, f"not an rnnkit/safetensors file (declared header size {header_len} "
                        f"bytes, file size {size} bytes). It may be truncated or in another "
                        "format.")
        raw = f.read(header_len)
        if len(raw) != header_len:
            _fail(name, "the file is truncated inside its header.")
        try:
            header = json.loads(raw.decode("utf-8"), parse_constant=_no_constants,
                                object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            _fail(name, f"the header is not valid JSON ({type(e).__name__}: {e}); the file "
                        "is corrupted or not an rnnkit file.")
        if not isinstance(header, dict):
            _fail(name, "the header is not a JSON object; not an rnnkit file.")
        meta = header.pop("__metadata__", None)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            _fail(name, "not an rnnkit file (its header has no 'format': 'rnnkit' record).")
        if not all(isinstance(v, str) for v in meta.values()):
            _fail(name, "header metadata values must all be strings; the file is corrupted.")
        version = meta.get("format_version", "")
        if not (version.isascii() and version.isdigit() and len(version) < 10):
            _fail(name, f"invalid format_version {version!r} (expected an integer such as "
                        f"'{FORMAT_VERSION}').")
        if int(version) > FORMAT_VERSION:
            _fail(name, f"written with file format version {int(version)}, but this rnnkit "
                        f"reads versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}. Upgrade "
                        "rnnkit (pip install -U rnnkit) to load it.")
        if int(version) < MIN_FORMAT_VERSION:
            _fail(name, f"invalid format_version {int(version)}; versions start at "
                        f"{MIN_FORMAT_VERSION}.")
        body_size = size - 8 - header_len
        _validate_entries(name, header, body_size)
        body = f.read(body_size)
        if len(body) != body_size:
            _fail(name, "the file changed or was truncated while it was read.")
    tensors = {}
    for key, info in header.items():
        dt = np.dtype(_DTYPES[info["dtype"]])
        start, stop = info["data_offsets"]
        if stop == start:
            tensors[key] = np.zeros(info["shape"], dt)
        else:
            tensors[key] = np.frombuffer(body, dt, (stop - start) // dt.itemsize,
                                         start).reshape(info["shape"])
    return meta, tensors, name


def _json_record(meta, key, name, required=True, default=None, allow_nan=False):
    if key not in meta:
        if required:
            _fail(name, f"missing {key!r} record in the header; the file is incomplete.")
        return default
    try:
        if allow_nan:
            return json.loads(meta[key], object_pairs_hook=_no_duplicates)
        return json.loads(meta[key], parse_constant=_no_constants,
                          object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:
        _fail(name, f"the {key!r} record is not valid JSON ({e}).")


# ---------------------------------------------------------------------------- rebuilding
class _WeightGuard:
    """Refuse any weight allocation the file's tensors do not back, before it happens.

    While a model is rebuilt from a file the guard is the layers' weight source
    (:data:`rnnkit.layers.base.WEIGHT_SOURCE`): each weight a layer (or nested layer) asks for
    must equal a tensor stored for its top-level layer (by key when the layer is top-level,
    else by shape), so a config declaring ``units=10**12`` fails with RnnkitFileError instead
    of allocating. Weights start as zeros (no initializer runs, no random numbers are drawn);
    the file's values are copied in after. Layers the guard was not told about are built
    normally (their initializer runs).
    """

    def __init__(self, name, tensors):
        self.name, self.tensors = name, tensors
        self.owners = {}  # id(layer) -> (layer, top-level layer, tensor-key prefix, shapes left)

    def install(self, top):
        prefix = f"weights/{top.name}/"
        shapes = collections.Counter(t.shape for k, t in self.tensors.items()
                                     if k.startswith(prefix))
        for _, layer in _walk_layers(top):
            self.owners[id(layer)] = (layer, top, prefix, shapes)

    def __call__(self, layer, wname, shape, dtype):
        owner = self.owners.get(id(layer))
        if owner is None or owner[0] is not layer:
            return None
        _, top, prefix, shapes = owner
        key = prefix + str(wname)
        t = self.tensors.get(key) if layer is top else None
        if layer is top and t is None:
            _fail(self.name, f"layer {top.name!r} as configured needs weight {wname!r} of "
                             f"shape {shape}, but the file has no tensor {key!r}; the file "
                             "is incomplete or its config was altered.")
        if t is not None and t.shape != shape:
            _fail(self.name, f"tensor {key!r} has shape {t.shape}, but layer {top.name!r} "
                             f"as configured needs {shape}; the config and the tensors "
                             "disagree (tampered or corrupted file).")
        if shapes[shape] <= 0:
            _fail(self.name, f"layer {top.name!r} (inner layer {layer.name!r}) as "
                             f"configured needs a weight of shape {shape}, but the file "
                             f"holds no such tensor for it (shapes present: "
                             f"{sorted(shapes.elements())[:6]}).")
        shapes[shape] -= 1
        return np.zeros(shape, dtype)


def _check_shape_list(name, shape):
    if (not isinstance(shape, list) or not 1 <= len(shape) <= MAX_NDIM
            or not all(s is None or (type(s) is int and 0 < s < 2**31) for s in shape)):
        _fail(name, f"invalid build_input_shape {shape!r} in the config.")
    return tuple(shape)


def _rebuild(name, record, tensors, custom_objects):
    """Create the Sequential model described by ``record`` and build it under a guard."""
    from .layers import deserialize, get_layer_class
    from .models import Model, Sequential

    if (not isinstance(record, dict) or record.get("class_name") not in ("Sequential", "Model")
            or not isinstance(record.get("config"), dict)):
        _fail(name, "the model config is malformed (expected a Sequential or Model record).")
    cfg = record["config"]
    specs = cfg.get("layers")
    if not isinstance(specs, list) or not specs:
        _fail(name, "the model config has no list of layers.")
    if len(specs) > MAX_LAYERS:
        _fail(name, f"the model config lists {len(specs)} layers; rnnkit loads at most "
                    f"{MAX_LAYERS}.")
    if not (cfg.get("name") is None or isinstance(cfg.get("name"), str)):
        _fail(name, f"the model name must be a string, got {cfg.get('name')!r}.")
    for i, spec in enumerate(specs):
        cls_name = spec.get("class_name") if isinstance(spec, dict) else None
        if not isinstance(cls_name, str):
            _fail(name, f"layer {i} of the config has no class_name.")
        try:
            get_layer_class(cls_name, custom_objects)
        except ValueError:
            _fail(name, f"layer {i} has class {cls_name!r}, which is neither built into rnnkit "
                        "nor registered. A file cannot supply code: if you trust this file "
                        f"and have the class, pass custom_objects={{{cls_name!r}: "
                        f"{cls_name}}} or decorate it with @rnnkit.layers.register_layer.")
    build_shape = record.get("build_input_shape")
    if build_shape is not None:
        build_shape = _check_shape_list(name, build_shape)
    guard = _WeightGuard(name, tensors)
    token = WEIGHT_SOURCE.set(guard)
    try:
        if record["class_name"] == "Model":  # functional: layers connected by the config
            return Model.from_config(cfg, custom_objects, on_layer=guard.install)
        model = Sequential(name=cfg.get("name"))
        seen = set()
        for spec in specs:
            layer = deserialize(spec, custom_objects)
            if layer.name in seen:
                _fail(name, f"two layers are named {layer.name!r}; layer names must be unique.")
            seen.add(layer.name)
            guard.install(layer)
            model.add(layer)
        if not model.built:
            if build_shape is not None:
                model.build(build_shape)
            else:
                _infer_build(name, model, tensors)
        if not model.built:
            _fail(name, "cannot build the model from its config: the input shape is unknown.")
    except RnnkitFileError:
        raise
    except Exception as e:  # anything a hostile config can provoke in layer constructors/build
        raise RnnkitFileError(f"{name}: cannot rebuild the model from its config "
                              f"({type(e).__name__}: {e}).") from e
    finally:
        WEIGHT_SOURCE.reset(token)
    return model


def _infer_build(name, model, tensors):
    """Build a model saved without ``build_input_shape`` from its first layer's tensors."""
    layer0 = model.layers[0]
    kernel = tensors.get(f"weights/{layer0.name}/kernel")
    if tensors.get(f"weights/{layer0.name}/embeddings") is not None:
        model.build((None, None))
    elif kernel is not None and kernel.ndim == 2 and kernel.shape[0] > 0:
        rank3 = hasattr(layer0, "cell")
        model.build((None, None, int(kernel.shape[0])) if rank3 else (None, int(kernel.shape[0])))
    else:
        _fail(name, "cannot infer the model's input shape: the config has no "
                    "build_input_shape and the first layer has no kernel.")


# ---------------------------------------------------------------------------- weights
def _nonfinite(name, what, arr, allow_nonfinite):
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if not bad:
        return
    msg = (f"{name}: {what} contains {bad} NaN/Inf value(s) (the run that saved it probably "
           "diverged).")
    if not allow_nonfinite:
        raise RnnkitFileError(msg + " Pass allow_nonfinite=True to load it anyway, e.g. to "
                                    "inspect it.")
    warnings.warn(msg + " Loaded because allow_nonfinite=True; outputs will be NaN.",
                  RuntimeWarning, stacklevel=4)


def _weight_pairs(meta, model, name, by_position):
    """[(file layer name, model layer)] for the model's layers that have weights."""
    layers = [layer for layer in model.layers if layer.params]
    if not by_position or "weight_layers" not in meta:
        return [(layer.name, layer) for layer in layers]
    names = _json_record(meta, "weight_layers", name)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        _fail(name, "the 'weight_layers' record must be a list of layer names.")
    if len(names) != len(layers):
        _fail(name, f"the file holds weights for {len(names)} layers {names}, but the model has "
                    f"{len(layers)} layers with weights {[lyr.name for lyr in layers]}. Build "
                    "the same architecture before load_weights.")
    return list(zip(names, layers))


def _assign_weights(model, tensors, name, pairs, allow_nonfinite):
    """Check every weight tensor (presence, no extras, shape, dtype, finiteness), then copy."""
    expected = {f"weights/{fname}/{w}" for fname, layer in pairs for w in layer.params}
    present = {k for k in tensors if k.startswith("weights/")}
    if expected - present:
        _fail(name, f"missing weight tensors {sorted(expected - present)[:5]}; the file is "
                    "incomplete or belongs to another architecture.")
    if present - expected:
        _fail(name, f"unexpected weight tensors {sorted(present - expected)[:5]} that the model "
                    "config does not use; the file was altered or belongs to another "
                    "architecture.")
    converted = []
    for fname, layer in pairs:
        for wname, w in layer.params.items():
            key = f"weights/{fname}/{wname}"
            t = tensors[key]
            if t.shape != w.shape:
                _fail(name, f"tensor {key!r} has shape {t.shape}, but layer {layer.name!r} needs "
                            f"{w.shape}.")
            if t.dtype.kind != "f":
                _fail(name, f"tensor {key!r} has dtype {t.dtype}; weights must be float.")
            with np.errstate(over="ignore"):
                c = t.astype(w.dtype)
            _nonfinite(name, f"weight {key!r}", c, allow_nonfinite)
            converted.append((w, c))
    for w, c in converted:
        w[...] = c


def _restore_optimizer(model, tensors, name, allow_nonfinite):
    state = {k[len("optimizer/"):]: v for k, v in tensors.items() if k.startswith("optimizer/")}
    if not state:
        return
    it = state.pop("iterations", None)
    if it is None or it.dtype.kind != "i" or it.size != 1 or not 0 <= int(it.reshape(-1)[0]) < 2**62:
        _fail(name, "optimizer/iterations must be one non-negative int64.")
    params = model._trainable()[0]
    opt = model.optimizer
    probe = type(opt).from_config(opt.get_config())
    probe.build(params)
    slots = sorted(probe.slots) if state else []
    want = {f"{s}/{i}" for s in slots for i in range(len(params))}
    if set(state) != want:
        _fail(name, f"optimizer state tensors {sorted(state)[:6]} do not match optimizer "
                    f"{type(opt).__name__} on this model (expected {sorted(want)[:6]}).")
    for k, v in state.items():
        if v.dtype.kind != "f":
            _fail(name, f"optimizer tensor {k!r} has dtype {v.dtype}; expected float.")
        _nonfinite(name, f"optimizer slot {k!r}", v, allow_nonfinite)
    state["iterations"] = int(it.reshape(-1)[0])
    try:
        opt.set_state(state, params)
    except (ValueError, KeyError, TypeError) as e:
        _fail(name, f"optimizer state does not match the model: {e}")


def _restore_states(model, tensors, name):
    stored = {k[len("states/"):]: v for k, v in tensors.items() if k.startswith("states/")}
    used = set()
    for top in model.layers:
        for path, layer in _walk_layers(top):
            if not _is_stateful_rnn(layer):
                continue
            keys = [f"{path}/{i}" for i in range(layer.n_states)]
            if not any(k in stored for k in keys):
                continue
            arrs = []
            for k in keys:
                s = stored.get(k)
                if (s is None or s.ndim != 2 or s.shape[1] != layer.units or s.shape[0] < 1
                        or s.dtype.kind != "f" or not np.all(np.isfinite(s))):
                    _fail(name, f"the saved state 'states/{k}' is missing or is not a finite "
                                f"(batch, {layer.units}) float array.")
                arrs.append(np.array(s, dtype=layer.dtype))
            if len({a.shape for a in arrs}) != 1:
                _fail(name, f"the saved states of layer {path!r} have different shapes.")
            layer.states = tuple(arrs)
            used.update(keys)
    if set(stored) - used:
        _fail(name, f"unexpected state tensors {sorted(set(stored) - used)[:5]}.")


def _restore_training(model, training, name, restore_random_state):
    from . import _backend
    if not isinstance(training, dict):
        _fail(name, "the 'training' record must be a JSON object.")
    epochs = training.get("epochs_done", 0)
    if type(epochs) is not int or epochs < 0:
        _fail(name, f"invalid epochs_done {epochs!r} in the training record.")
    layer_states = training.get("layer_rng_states", {})
    if not isinstance(layer_states, dict):
        _fail(name, "layer_rng_states in the training record must be a JSON object.")
    try:
        new_rngs = []
        for top in model.layers:
            for path, layer in _walk_layers(top):
                attr, r = _layer_rng(layer)
                if r is not None and path in layer_states:
                    new_rngs.append((layer, attr, _backend.generator_from_state(layer_states[path])))
        global_rng = None
        if restore_random_state:
            if not training.get("rng_state"):
                _fail(name, "restore_random_state=True, but the file holds no random state.")
            global_rng = _backend.generator_from_state(training["rng_state"])
    except ValueError as e:
        _fail(name, f"invalid random-generator state in the training record: {e}")
    for layer, attr, gen in new_rngs:
        setattr(layer, attr, gen)
    if global_rng is not None:
        _backend.set_rng(global_rng)
    model._epochs_done = epochs


def _check_custom_objects(custom_objects):
    from .layers.base import Layer
    if custom_objects is None:
        return None
    if not isinstance(custom_objects, dict) or not all(
            isinstance(k, str) and isinstance(v, type) and issubclass(v, Layer)
            for k, v in custom_objects.items()):
        raise TypeError("custom_objects must be a dict {'ClassName': LayerSubclass}, got "
                        f"{custom_objects!r}.")
    return custom_objects


def load_model(path, custom_objects=None, compile=True, restore_random_state=False,
               allow_nonfinite=False):
    """Load a model saved with ``model.save(path)``.

    Only JSON and raw tensors are read: no pickle, no imports, no code from the file. Layer
    classes must be built in, registered with :func:`rnnkit.layers.register_layer`, or given
    in ``custom_objects``. Sizes in the config are checked against the stored tensors before
    any weight is allocated.

    Args:
        path: file written by :meth:`rnnkit.Sequential.save` or a ``ModelCheckpoint``.
        custom_objects: dict ``class name -> Layer subclass`` for custom layers.
        compile: restore the loss, metrics and optimizer (with its slots and step counter).
        restore_random_state: also set rnnkit's global random generator (shuffling, dropout
            without a seed) to its state when the file was saved. Needed for a bit-exact
            resume; off by default because loading a model should not change the random
            stream of the program that loads it.
        allow_nonfinite: load weights or optimizer slots holding NaN/Inf (with a
            RuntimeWarning) instead of raising.

    Returns:
        The :class:`rnnkit.Sequential` model, built, with its weights (and optimizer state,
        layer random generators, stateful states and ``preprocessing`` record).

    Raises:
        RnnkitFileError: the file is missing, truncated, corrupted, hostile, from a newer
            format version, names an unknown layer class, or its config and tensors disagree.

    Example:
        >>> model.save("model.rnnkit")                          # doctest: +SKIP
        >>> model = rnnkit.load_model("model.rnnkit")           # doctest: +SKIP
    """
    custom_objects = _check_custom_objects(custom_objects)
    meta, tensors, name = _read(path)
    if meta.get("kind", "model") != "model":
        _fail(name, f"this file holds {meta.get('kind')!r}, not a model (written by "
                    "save_weights?); build the model and call model.load_weights(path).")
    record = _json_record(meta, "config", name)
    model = _rebuild(name, record, tensors, custom_objects)
    _assign_weights(model, tensors, name, _weight_pairs(meta, model, name, False),
                    allow_nonfinite)
    _restore_states(model, tensors, name)
    pre = _json_record(meta, "preprocessing", name, required=False, default={}, allow_nan=True)
    if not isinstance(pre, dict):
        _fail(name, "the 'preprocessing' record must be a JSON object.")
    model.preprocessing = pre
    if compile and "compile" in meta:
        comp = _json_record(meta, "compile", name)
        try:
            model.compile_from_config(comp)
        except Exception as e:  # hostile records can provoke any error in the constructors
            raise RnnkitFileError(f"{name}: invalid compile record ({type(e).__name__}: {e}).") \
                from e
        _restore_optimizer(model, tensors, name, allow_nonfinite)
    training = _json_record(meta, "training", name, required=False, default={})
    _restore_training(model, training, name, restore_random_state)
    return model


def load_weights(model, path, allow_nonfinite=False):
    """Load weights into a built model from a weights file or a full model file.

    Layers are matched by position (the file records its layers in order), so the model may
    have different layer names than the one that was saved, but must have the same
    architecture: the same weight names and shapes layer by layer.

    Args:
        model: a built model.
        path: file written by ``save_weights`` or ``save``.
        allow_nonfinite: accept NaN/Inf weights (with a warning) instead of raising.

    Raises:
        ValueError: the model is not built.
        RnnkitFileError: the file is bad or does not fit the model.
    """
    if not model.built:
        raise ValueError("Build the model (call it on data, or start it with "
                         "rnnkit.layers.Input(shape=...)) before load_weights.")
    meta, tensors, name = _read(path)
    pairs = _weight_pairs(meta, model, name, True)
    _assign_weights(model, tensors, name, pairs, allow_nonfinite)
