"""The long-memory experiment suite: every recurrent cell on the same long-memory tasks.

Tasks (data from :mod:`rnnkit.data`, all generated on this machine):

* ``adding100``, ``adding500``, ``adding1000`` — the adding problem at T = 100, 500, 1000;
  test MSE, where always predicting 1 scores 2/12 ≈ 0.167;
* ``copy100``, ``copy500`` — copy memory: ten symbols recalled after a delay of 100 / 500
  steps; accuracy on the ten recalled symbols (guessing scores 1/8);
* ``selective`` — selective copying: four symbols scattered among 100 blanks recalled in
  order; accuracy (guessing 1/8);
* ``digits`` — scikit-learn's 8x8 digits fed pixel by pixel (64 steps); test accuracy
  (guessing 0.1);
* ``mnist1d`` — MNIST-1D (40 steps); test accuracy (guessing 0.1).

Every model is ``Layer(units) -> Dense`` trained with Adam (``clipnorm``) for a fixed number
of updates on a fixed training set; the table reports the test score, the training time and
the number of parameters. :func:`run_long_memory` is ``rnnkit experiment long-memory``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import numpy as np

#: cell name -> (layer class name in rnnkit.layers, extra constructor arguments)
CELLS = {
    "SimpleRNN": ("SimpleRNN", {}),
    "LSTM": ("LSTM", {}),
    "GRU": ("GRU", {}),
    "LSTM-peephole": ("LSTM", {"use_peepholes": True}),
    "LSTM-proj": ("LSTM", {"proj_size": "half"}),
    "LSTM-zoneout": ("LSTM", {"zoneout": 0.1}),
    "GRU-zoneout": ("GRU", {"zoneout": 0.1}),
    "LayerNormLSTM": ("LayerNormLSTM", {}),
    "LayerNormGRU": ("LayerNormGRU", {}),
    "IndRNN": ("IndRNN", {"timesteps": "T"}),
    "MinGRU": ("MinGRU", {}),
    "MinLSTM": ("MinLSTM", {}),
    "LRU": ("LRU", {"r_min": 0.9, "r_max": 0.999, "max_phase": math.pi / 10}),
    "sLSTM": ("sLSTM", {"num_heads": 4}),
}

TASKS = ("adding100", "adding500", "adding1000", "copy100", "copy500", "selective", "digits",
         "mnist1d")


def digits_sequences(test_fraction: float = 0.25, seed: int = 0):
    """scikit-learn's 8x8 handwritten digits fed pixel by pixel: 64 steps of 1 feature.

    The whole image is seen only at the last step, so a recurrent classifier must carry what
    it saw in the first rows across up to 63 steps (the tutorial's "sequential MNIST" at a
    size a CPU trains in seconds). Pixels are scaled from 0..16 to 0..1.

    Args:
        test_fraction: share of the 1797 images held out (stratified by class), in (0, 1).
        seed: seed of the split.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: x (N, 64, 1) float32, y (N,) int64 in 0..9.

    Needs scikit-learn (``pip install rnnkit[test]`` or ``pip install scikit-learn``).
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("the digits task needs scikit-learn: pip install scikit-learn"
                          ) from e
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)[:, :, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(int(seed))
    test = np.zeros(len(y), bool)
    for c in range(10):
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, int(round(len(idx) * test_fraction)), replace=False)] = True
    return x[~test], y[~test], x[test], y[test]


def mnist1d_data(num_samples: int = 5000, seed: int = 42):
    """MNIST-1D (Greydanus 2020): 40-step 1-D signals of the ten digits, generated offline.

    Built by the ``mnist1d`` package's own generator (its default arguments: templates
    padded, sheared, translated and noised; 80/20 split), never downloaded. The package
    seeds NumPy's global random state; it is restored afterwards.

    Args:
        num_samples: total signals (train + test).
        seed: the generator's seed (42 is the published data set's).

    Returns:
        ``(x_train, y_train, x_test, y_test)``: x (N, 40, 1) float32, y (N,) int64.

    Needs the ``mnist1d`` package (in the ``test`` extra).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("the mnist1d task needs the mnist1d package: pip install mnist1d") from e
    import random
    args = get_dataset_args()
    args.num_samples = int(num_samples)
    args.seed = int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    f = np.float32
    return (d["x"].astype(f)[:, :, None], d["y"].astype(np.int64),
            d["x_test"].astype(f)[:, :, None], d["y_test"].astype(np.int64))


@dataclasses.dataclass
class _Task:
    name: str
    kind: str           # 'mse' (one value), 'seq' (classes per step), 'cls' (one class)
    data: tuple         # x_train, y_train, x_test, y_test
    classes: int
    metric: str
    baseline: float
    answer_steps: int = 0   # 'seq': the last answer_steps outputs are scored


def make_task(name, n_train, n_test, seed=0):
    """The data and scoring of task ``name`` (see the module docstring) as a ``_Task``."""
    from .. import data as D
    if name.startswith("adding"):
        T = int(name[6:])
        xtr, ytr = D.adding_problem(n_train, T, seed=seed + 1)
        xte, yte = D.adding_problem(n_test, T, seed=seed + 2)
        return _Task(name, "mse", (xtr, ytr, xte, yte), 1, "test MSE", 2.0 / 12.0)
    if name.startswith("copy"):
        delay = int(name[4:])
        xtr, ytr = D.copy_memory(n_train, delay, seed=seed + 1)
        xte, yte = D.copy_memory(n_test, delay, seed=seed + 2)
        return _Task(name, "seq", (xtr, ytr, xte, yte), 9, "recall accuracy", 1 / 8, 10)
    if name == "selective":
        xtr, ytr = D.selective_copying(n_train, 100, seed=seed + 1)
        xte, yte = D.selective_copying(n_test, 100, seed=seed + 2)

        def per_step(x, y):          # targets at the cue steps, "ignore" (-1) elsewhere
            out = np.full(x.shape[:2], -1, np.int64)
            out[:, -y.shape[1]:] = y
            return out
        return _Task(name, "seq", (xtr, per_step(xtr, ytr), xte, per_step(xte, yte)), 9,
                     "recall accuracy", 1 / 8, ytr.shape[1])
    if name == "digits":
        xtr, ytr, xte, yte = digits_sequences(seed=seed)
        return _Task(name, "cls", (xtr[:n_train], ytr[:n_train], xte[:n_test], yte[:n_test]),
                     10, "test accuracy", 0.1)
    if name == "mnist1d":
        xtr, ytr, xte, yte = mnist1d_data()
        return _Task(name, "cls", (xtr[:n_train], ytr[:n_train], xte[:n_test], yte[:n_test]),
                     10, "test accuracy", 0.1)
    raise ValueError(f"Unknown task {name!r}; expected one of {', '.join(TASKS)}.")


def build_model(cell, task, units, learning_rate=3e-3, clipnorm=1.0, seed=0):
    """``cell``'s layer with ``units`` -> Dense head for ``task``, compiled."""
    import rnnkit

    from .. import losses
    L = rnnkit.layers
    cls_name, extra = CELLS[cell]
    T = task.data[0].shape[1]
    kw = {}
    for k, v in extra.items():
        kw[k] = T if v == "T" else (max(1, units // 2) if v == "half" else v)
    rnnkit.utils.set_random_seed(seed)
    seq = task.kind == "seq"
    layers = [L.Input((None, task.data[0].shape[2]))]
    if cls_name == "LRU":               # linear recurrence: a non-linear encoder before it
        layers.append(L.Dense(units, activation="relu"))
    layers.append(getattr(L, cls_name)(units, return_sequences=seq, **kw))
    if task.kind == "mse":
        layers.append(L.Dense(1))
        loss = "mse"
    else:
        layers.append(L.Dense(task.classes, activation="softmax"))
        loss = losses.SparseCategoricalCrossentropy(ignore_class=-1) if seq else \
            "sparse_categorical_crossentropy"
    model = rnnkit.Sequential(layers)
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate, clipnorm=clipnorm), loss=loss)
    return model


def score(task, model, batch_size=256):
    """The task's test score of ``model`` (MSE or accuracy)."""
    xte, yte = task.data[2], task.data[3]
    p = model.predict(xte, batch_size=batch_size, verbose=0)
    if task.kind == "mse":
        return float(np.mean((p - yte) ** 2))
    if task.kind == "cls":
        return float(np.mean(p.argmax(-1) == yte))
    k = task.answer_steps
    return float(np.mean(p[:, -k:].argmax(-1) == yte[:, -k:]))


@dataclasses.dataclass
class LongMemoryResults:
    """Results of :func:`run_long_memory`.

    Attributes:
        config: settings (dict). rows: one dict per (task, cell) with ``task, cell, metric,
            score, baseline, params, seconds, epochs``.
    """

    config: dict
    rows: list

    def table(self):
        """A Markdown table, one row per cell, one column per task: ``score / training
        seconds / parameters``."""
        tasks = list(dict.fromkeys(r["task"] for r in self.rows))
        cells = list(dict.fromkeys(r["cell"] for r in self.rows))
        by = {(r["task"], r["cell"]): r for r in self.rows}
        lines = ["| cell | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
        for c in cells:
            cols = []
            for t in tasks:
                r = by.get((t, c))
                cols.append("" if r is None else
                            f"{r['score']:.3f} / {r['seconds']:.0f} s / {r['params']}")
            lines.append(f"| {c} | " + " | ".join(cols) + " |")
        base = {r["task"]: (r["metric"], r["baseline"]) for r in self.rows}
        lines.append("| *metric; chance / constant baseline* | " + " | ".join(
            f"{base[t][0]}; {base[t][1]:.3f}" for t in tasks) + " |")
        return "\n".join(lines)


def run_long_memory(tasks=TASKS, cells=tuple(CELLS), units=32, epochs=3, n_train=512,
                    n_test=256, batch_size=32, learning_rate=3e-3, clipnorm=1.0, seed=0,
                    out_dir=None, verbose=1):
    """Train every cell on every task; return a :class:`LongMemoryResults`.

    Args:
        tasks: task names (see the module docstring). cells: names among :data:`CELLS`.
        units: units of every recurrent layer (LSTM-proj projects to units // 2).
        epochs, n_train, batch_size: training length (``epochs * n_train / batch_size``
            updates; digits and MNIST-1D use at most ``n_train`` of their training images).
        n_test: test sequences (digits / MNIST-1D: at most their test split).
        learning_rate, clipnorm: Adam settings.
        seed: seeds the data and the initial weights.
        out_dir: folder for ``long_memory.json`` and ``long_memory.md`` (None: nothing written).
        verbose: 0 silent, 1 one line per model.
    """
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ValueError(f"cells must be a non-empty subset of {list(CELLS)}, got {list(cells)}.")
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {list(TASKS)}, got {list(tasks)}.")
    config = dict(tasks=list(tasks), cells=list(cells), units=units, epochs=epochs,
                  n_train=n_train, n_test=n_test, batch_size=batch_size,
                  learning_rate=learning_rate, clipnorm=clipnorm, seed=seed)
    rows = []
    for tname in tasks:
        task = make_task(tname, n_train, n_test, seed)
        for cell in cells:
            # compile the cell's kernels first (numba caches them per process), so the time is
            # training time
            warm = build_model(cell, task, units, learning_rate, clipnorm, seed)
            warm.fit(task.data[0][:2], task.data[1][:2], batch_size=2, epochs=1, verbose=0)
            model = build_model(cell, task, units, learning_rate, clipnorm, seed)
            t0 = time.perf_counter()
            model.fit(task.data[0], task.data[1], batch_size=batch_size, epochs=epochs,
                      verbose=0)
            dt = time.perf_counter() - t0
            s = score(task, model)
            row = dict(task=tname, cell=cell, metric=task.metric, score=s,
                       baseline=task.baseline, params=int(model.count_params()),
                       seconds=round(dt, 2), epochs=epochs)
            rows.append(row)
            if verbose:
                print(f"{tname:<10s} {cell:<14s} {task.metric} {s:.4f} (baseline "
                      f"{task.baseline:.3f}) {row['params']} params {dt:.1f} s", flush=True)
    res = LongMemoryResults(config, rows)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "long_memory.json"), "w") as fh:
            json.dump({"config": config, "rows": rows}, fh, indent=1)
        with open(os.path.join(out_dir, "long_memory.md"), "w") as fh:
            fh.write(res.table() + "\n")
    return res
