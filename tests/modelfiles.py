"""Tiny task model files and header surgery, shared by test_issue20.py and test_fuzz.py."""

import csv
import json
import struct

import numpy as np

from rnnkit.cli import main

TINY = ["--units", "3", "--epochs", "1", "--quiet", "--validation-split", "0"]
JSON_RECORDS = ("config", "compile", "training", "preprocessing", "weight_layers")


def write_ts(path, n_per_class=4, labels=("low", "mid", "high"), seed=0):
    """A tiny 2-channel, unequal-length .ts file with string labels."""
    rng = np.random.default_rng(seed)
    lines = ["@problemName Tiny", "@timeStamps false", "@missing false", "@univariate false",
             "@dimensions 2", "@equalLength false",
             f"@classLabel true {' '.join(labels)}", "@data"]
    for _ in range(n_per_class):
        for k, lab in enumerate(labels):
            T = int(rng.integers(4, 7))
            a, b = rng.normal(3 * k, 0.3, T), rng.normal(0, 1, T)
            lines.append(",".join(f"{v:.3f}" for v in a) + ":"
                         + ",".join(f"{v:.3f}" for v in b) + f":{lab}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path, n=40, columns=1):
    """A monthly series with a date column and ``columns`` value columns."""
    t = np.arange(n)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date"] + [f"v{c}" for c in range(columns)])
        for i in range(n):
            w.writerow([f"{2000 + i // 12}-{i % 12 + 1:02d}"]
                       + [f"{100 + t[i] + c + 10 * np.sin(i / 2):.2f}" for c in range(columns)])
    return path


def write_text(path):
    path.write_text("the rain in spain stays mainly in the plain. " * 8)
    return path


def make_models(folder):
    """Train one tiny model per task with the CLI; returns {task: (model path, data path)}."""
    data = {"classify": write_ts(folder / "tiny.ts"),
            "forecast": write_csv(folder / "tiny.csv"),
            "lm": write_text(folder / "tiny.txt")}
    extra = {"classify": [], "forecast": ["--horizon", "3", "--window", "4", "--season", "none"],
             "lm": ["--seq-len", "8", "--sample-length", "0"]}
    out = {}
    for task, path in data.items():
        model = folder / f"{task}.rnnkit"
        code = main(["train", "--data", str(path), "--out", str(model), *TINY, *extra[task]])
        assert code == 0, f"training the tiny {task} model failed"
        out[task] = (model, path)
    return out


def split(data):
    """``(header dict, body bytes)`` of a safetensors file's bytes."""
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header, body):
    """File bytes from a header dict and a body."""
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def edit_record(data, key, fn):
    """File bytes with JSON record ``key`` of ``__metadata__`` changed by ``fn(record)``
    (``fn`` edits in place or returns a replacement)."""
    header, body = split(data)
    rec = json.loads(header["__metadata__"][key])
    new = fn(rec)
    header["__metadata__"][key] = json.dumps(rec if new is None else new)
    return join(header, body)


def leaves(obj, path=(), max_items=None):
    """Every path (tuple of keys/indices) into a JSON value, itself included; lists longer
    than ``max_items`` contribute only their first ``max_items`` entries."""
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, path + (k,), max_items)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:max_items]):
            yield from leaves(v, path + (i,), max_items)
