"""Pieces shared by the task pipelines: model stacks, progress, seeding, saving, JSON helpers."""

from __future__ import annotations

import math

import numpy as np

from .. import callbacks as _cb
from .. import layers as _layers
from .. import optimizers as _opt
from .. import utils as _utils

#: Recurrent cell names accepted by every pipeline (``cell=``) and their layer classes
#: (the cells beyond Keras are described in docs/new_cells.md).
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN", "lnlstm": "LayerNormLSTM",
         "lngru": "LayerNormGRU", "indrnn": "IndRNN", "mingru": "MinGRU", "minlstm": "MinLSTM",
         "lru": "LRU", "slstm": "sLSTM"}

#: ``model.preprocessing["format"]``: bump when the preprocessing record changes shape.
PREPROCESSING_FORMAT = 1


def check_cell(cell):
    """Return the layer class for ``cell`` (a key of :data:`CELLS`, e.g. 'lstm' or 'mingru')."""
    key = str(cell).lower()
    if key not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
    return getattr(_layers, CELLS[key])


def units_list(units, layers=None, default=(64,)):
    """Normalise ``units`` / ``layers`` to one positive int per recurrent layer.

    Args:
        units: an int (the same size for every layer), a sequence of ints (one per layer),
            a string ``"128,64"``, or None for ``default``.
        layers: number of recurrent layers, or None (then ``len(units)``; an int ``units``
            gives one layer).
        default: units used when ``units`` is None.

    Returns:
        list of ints, one per layer.

    Example:
        >>> units_list("128,64"), units_list(32, layers=3), units_list(None, 2, (128, 64))
        ([128, 64], [32, 32, 32], [128, 64])
    """
    if units is None:
        units = list(default)
        if layers is not None and layers != len(units):
            units = [units[0]] * int(layers)
    if isinstance(units, str):
        try:
            units = [int(u) for u in units.replace(" ", "").split(",") if u]
        except ValueError:
            raise ValueError(
                f"units must be an integer or a comma-separated list of integers such as "
                f"'128,64', got {units!r}."
            ) from None
    if isinstance(units, (int, np.integer)) and not isinstance(units, bool):
        units = [int(units)] * (1 if layers is None else int(layers))
    units = list(units)
    if not units or any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u <= 0
                        for u in units):
        raise ValueError(f"units must be positive integers, got {units!r}.")
    if layers is not None:
        if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers <= 0:
            raise ValueError(f"layers must be a positive integer, got {layers!r}.")
        if len(units) == 1 and layers > 1:
            units = units * int(layers)
        elif len(units) != layers:
            raise ValueError(
                f"units lists {len(units)} layer sizes {units} but layers={layers}; give one "
                "size per layer, a single size for all layers, or leave layers out."
            )
    return [int(u) for u in units]


def check_positive_ints(**values):
    """Raise ValueError unless every value is a positive integer (a bool is not one)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")


def check_validation_split(value):
    """``float(value)``, checked to be in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {value!r}.")
    return float(value)


def recurrent_stack(cell, units, return_sequences=False, bidirectional=False, dropout=0.0,
                    recurrent_dropout=0.0, seed=None, kernel_regularizer=None):
    """The recurrent part of a model: one layer per entry of ``units``.

    Every layer but the last returns sequences; the last returns sequences only when
    ``return_sequences`` is True. With ``bidirectional`` each layer is wrapped in
    :class:`rnnkit.layers.Bidirectional` (outputs concatenated, so ``2 * units`` wide).
    ``kernel_regularizer`` (e.g. ``rnnkit.regularizers.L2(1e-3)``) applies to every input
    kernel.

    Returns:
        list of layers.
    """
    cls = check_cell(cell)
    wrapper = None
    if bidirectional:
        wrapper = getattr(_layers, "Bidirectional", None)
        if wrapper is None:
            raise ValueError(
                "bidirectional=True needs rnnkit.layers.Bidirectional, which this rnnkit "
                "installation does not have; train without --bidirectional."
            )
    out = []
    for i, u in enumerate(units):
        rs = return_sequences or i < len(units) - 1
        kw = dict(return_sequences=rs, dropout=dropout, recurrent_dropout=recurrent_dropout,
                  kernel_regularizer=kernel_regularizer)
        if seed is not None and (dropout or recurrent_dropout):
            kw["seed"] = int(seed) + i
        layer = cls(u, **kw)
        out.append(wrapper(layer) if wrapper is not None else layer)
    return out


def make_optimizer(learning_rate, clipnorm):
    """Adam with the given learning rate and per-variable gradient clipping (None: none)."""
    return _opt.Adam(learning_rate=float(learning_rate),
                     clipnorm=None if not clipnorm else float(clipnorm))


def seed_everything(seed):
    """Seed rnnkit's and NumPy's legacy generators (None: leave them as they are)."""
    if seed is not None:
        _utils.set_random_seed(int(seed))


class ProgressBar(_cb.Callback):
    """One tqdm bar over a whole training run (all epochs, and all ensemble members).

    The bar advances per batch and shows the latest epoch's loss and validation metrics.
    It writes to stderr, so stdout stays clean for ``--json`` output.

    Args:
        epochs: maximum epochs per run (early stopping may end a run sooner).
        runs: number of consecutive ``fit`` calls this bar covers (ensembles).
        desc: text shown at the left of the bar.
        enabled: False makes the callback do nothing.
    """

    def __init__(self, epochs, runs=1, desc="train", enabled=True):
        super().__init__()
        self.epochs, self.runs, self.desc, self.enabled = int(epochs), int(runs), desc, enabled
        self.bar = None
        self.run = 0
        self._steps_left = 0

    def on_train_begin(self, logs=None):
        if not self.enabled:
            return
        steps = self.params.get("steps") or 1
        if self.bar is None:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.epochs * self.runs * steps, desc=self.desc, unit="step",
                            dynamic_ncols=True, mininterval=0.5, leave=True)
        self._steps_left = self.epochs * steps
        self.run += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            self._steps_left -= 1

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is None:
            return
        shown = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        prefix = f"run {self.run}/{self.runs} " if self.runs > 1 else ""
        self.bar.set_postfix_str(prefix + f"epoch {epoch + 1} " + " ".join(
            f"{k}={v:.4g}" for k, v in shown.items()), refresh=False)

    def on_train_end(self, logs=None):
        if self.bar is None:
            return
        if self._steps_left > 0:  # early stopping: skip the steps that will not run
            self.bar.update(self._steps_left)
            self._steps_left = 0
        if self.run >= self.runs:
            self.close()

    def close(self):
        """Close the bar (idempotent)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def jsonable(value):
    """Convert NumPy scalars/arrays (nested in dicts and lists) to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def params_record(pipe, names):
    """``{name: pipe.<name>}`` for the settings in ``names``: the ``"params"`` of a record."""
    return {k: getattr(pipe, k) for k in names}


def saved_params(pre, names):
    """The entries of ``pre["params"]`` (a preprocessing record) whose keys are in ``names``."""
    return {k: v for k, v in (pre.get("params") or {}).items() if k in names}


def check_file_fits(pipe, model, extra_bytes=0):
    """Fail before training, not after, when ``pipe`` could not save ``model``: its
    preprocessing record must pass the model-file schema (e.g. label lengths, classes vs
    outputs) and the metadata must fit the file header.

    Args:
        pipe: a pipeline whose preprocessing (scaler, labels, vocabulary...) is fitted.
        model: the freshly built network it will train.
        extra_bytes: estimated size of what is not known yet (e.g. ensemble weights).

    Raises:
        ValueError: what ``save`` would refuse, said before any training step.
    """
    from ..saving import check_header_size, check_record
    record = jsonable(pipe.preprocessing_record())
    check_record("preprocessing", record, model)
    check_header_size({"preprocessing": record, "config": model.get_config()}, extra_bytes)


def save_pipeline(pipe, model, path):
    """Check ``pipe`` is fitted, store its preprocessing record on ``model`` and save it."""
    pipe._check_fitted()
    model.preprocessing = pipe.preprocessing_record()
    model.save(path)


def task_of(model):
    """The task name recorded in ``model.preprocessing`` ('classify', ...) or None."""
    pre = getattr(model, "preprocessing", None) or {}
    return pre.get("task")


def check_task(model, want, source="the model"):
    """Raise a clear error unless ``model`` was trained by the ``want`` pipeline."""
    got = task_of(model)
    if got != want:
        raise ValueError(
            f"{source} was trained for task {got!r}, not {want!r}"
            + ("" if got else " (it has no rnnkit task record: it was not saved by an "
               "rnnkit.tasks pipeline or `rnnkit train`)")
            + "."
        )
