"""The training engine shared by every model: compile, fit, evaluate, predict.

A concrete model (:class:`rnnkit.Sequential`, the functional :class:`rnnkit.Model`) provides
``layers``, ``forward(x, training, mask) -> (y_pred, mask)`` and
``backward(dy, wrt_logits, input_grad)``. A model with several outputs returns lists
(one prediction and one mask per output) and takes a list of gradients. One training step is:

    y_pred = forward(x)              # layers keep their caches
    L      = loss(y, y_pred) + sum(regularisation penalties)
    dy     = dL/dy_pred              # or dL/dlogits, fused with a final softmax/sigmoid
    backward(dy)                     # every layer fills .grads (BPTT in recurrent layers)
    optimizer.apply(params, grads)
"""

from __future__ import annotations

import functools
import math
import signal
import threading
import time
import warnings

import numpy as np

from .. import _backend
from .. import callbacks as _cb
from .. import losses as _losses
from .. import metrics as _metrics
from .. import optimizers as _opt
from .._data_adapter import is_ragged as _is_ragged
from ..kernels import threads as _threads
from ..layers.base import check_finite, inference
from ._torch_habits import TorchHabits
from .tbptt import TruncatedBPTT


def _parallel(method):
    """Run a model entry point on rnnkit's threads (:func:`rnnkit.kernels.threads.parallel`)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _threads.parallel():
            return method(*args, **kwargs)
    return wrapper


def _inference(method):
    """Forward passes inside need no gradient caches (:func:`rnnkit.layers.base.inference`)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with inference():
            return method(*args, **kwargs)
    return wrapper


class _Interrupt:
    """First Ctrl-C during fit stops after the current batch; a second one raises."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Engine(TruncatedBPTT, TorchHabits):
    """Base class holding compile/fit/evaluate/predict (and the PyTorch habits of
    :mod:`._torch_habits`: state_dict, train and eval modes).

    See :class:`rnnkit.Sequential` and the functional :class:`rnnkit.Model`.
    """

    def __init__(self, name=None):
        self.name = name or "model"
        self.optimizer = None
        self.loss = None            # one Loss, or a list with one per output
        self.loss_weights = None    # None, or one float per output
        self.metrics = []           # flat list; names prefixed by the output's for several outputs
        self._output_metrics = [[]]  # the same metrics, one list per output
        self._loss_trackers = []     # per-output losses (several outputs)
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.terminated_on_nan = None
        self._current_epoch = 0
        self._epochs_done = 0
        self.preprocessing = {}  # JSON-able extras saved with the model (scalers, vocab, labels)

    # -- to be provided by subclasses -----------------------------------------------------
    layers: list

    def forward(self, x, training=False, mask=None):
        raise NotImplementedError  # abstract

    def backward(self, dy, wrt_logits=False, input_grad=True):
        raise NotImplementedError  # abstract

    #: names of the model outputs (one entry per output); a single-output model has one
    output_names: list = ["output"]

    @property
    def _n_outputs(self):
        return len(self.output_names)

    def _final_activation(self, i=0):
        """The activation name of the layer producing output ``i`` when that layer's backward
        can start from dL/dlogits (``fusable_activation``), else None."""
        raise NotImplementedError  # abstract

    # -- weights -------------------------------------------------------------------------------
    def _trainable(self):
        params, grads = [], []
        for layer in self.layers:
            if layer.trainable:
                for n in layer.trainable_param_names():
                    params.append(layer.params[n])
                    grads.append(layer.grads[n])
        return params, grads

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return self._trainable()[0]

    def get_weights(self):
        """Copies of every layer's weights, in Keras order."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set all weights from a flat list in Keras order (as returned by get_weights)."""
        weights = list(weights)
        need = sum(len(layer.params) for layer in self.layers)
        if len(weights) != need:
            raise ValueError(
                f"set_weights: model {self.name!r} has {need} weight arrays, got {len(weights)}."
            )
        i = 0
        for layer in self.layers:
            k = len(layer.params)
            if k:
                layer.set_weights(weights[i:i + k])
            i += k

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def regularization_loss(self) -> float:
        return sum(layer.regularization_loss() for layer in self.layers)

    # -- compile ---------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None):
        """Configure training: optimizer, loss and metrics (names or objects), as in Keras.

        Args:
            optimizer: name or :class:`rnnkit.optimizers.Optimizer`.
            loss: name or Loss object; for a model with several outputs also a list (one per
                output) or a dict ``{output name: loss}``. One loss is used for every output.
            metrics: list of names or Metric objects; for several outputs also a list of lists
                or a dict ``{output name: [metrics]}`` (a flat list applies to every output).
            loss_weights: for several outputs, a list or dict of floats: the total loss is
                ``sum(w_i * loss_i)`` (default 1 each).
        """
        if loss is None:
            raise ValueError(
                "compile needs a loss, e.g. loss='categorical_crossentropy' or loss='mse'. "
                f"Valid names: {sorted(_losses._REGISTRY)}."
            )
        n = self._n_outputs
        losses = [_losses.get(v) for v in self._per_output(loss, "loss", single_ok=True)]
        weights = ([1.0] * n if loss_weights is None else
                   [float(w) for w in self._per_output(loss_weights, "loss_weights")])
        if metrics is None:
            metrics = []
        if isinstance(metrics, dict) or (n > 1 and metrics and all(
                isinstance(m, (list, tuple)) or m is None for m in metrics)):
            per = [list(m or []) if isinstance(m, (list, tuple)) or m is None else [m]
                   for m in self._per_output(metrics, "metrics")]
        else:
            flat = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
            per = [flat] * n
        self.optimizer = _opt.get(optimizer)
        self.loss = losses[0] if n == 1 else losses
        self.loss_weights = None if loss_weights is None else weights
        self._losses, self._loss_w = losses, weights
        self._output_metrics = [[_metrics.get(m, losses[i]) for m in per[i]] for i in range(n)]
        self._metric_names = [[m.name for m in ms] for ms in self._output_metrics]
        if n > 1:  # Keras names: "<output>_<metric>"
            for name, ms in zip(self.output_names, self._output_metrics):
                for m in ms:
                    m.name = f"{name}_{m.name}"
        # several outputs: each output's (unweighted) loss is logged as "<output>_loss"
        self._loss_trackers = [_metrics.Mean(name=f"{name}_loss") for name in self.output_names] \
            if n > 1 else []
        self.metrics = self._loss_trackers + [m for ms in self._output_metrics for m in ms]
        self.compiled = True

    def compile_config(self):
        """The JSON record of :meth:`compile`'s arguments (what a saved file stores)."""
        if self._n_outputs == 1:
            return {"loss": _losses.serialize(self.loss), "optimizer": _opt.serialize(self.optimizer),
                    "metrics": self._metric_names[0]}
        return {"loss": [_losses.serialize(fn) for fn in self._losses],
                "optimizer": _opt.serialize(self.optimizer), "metrics": self._metric_names,
                "loss_weights": self._loss_w}

    def compile_from_config(self, record):
        """Compile from a :meth:`compile_config` record."""
        if not isinstance(record, dict):
            raise ValueError(f"A compile record must be a JSON object, got {record!r}.")
        missing = sorted({"loss", "optimizer", "metrics"} - set(record))
        if missing:
            raise ValueError(f"A compile record needs the keys loss, optimizer and metrics "
                             f"(KeyError: {missing} missing).")
        if not isinstance(record["metrics"], list):
            raise ValueError(f"Unknown metric record {record['metrics']!r}: a compile record "
                             "lists metric names (one list per output for several outputs).")
        loss = record["loss"]
        losses = [_losses.get(v) for v in loss] if isinstance(loss, list) else _losses.get(loss)
        self.compile(optimizer=_opt.get(record["optimizer"]), loss=losses,
                     metrics=record["metrics"], loss_weights=record.get("loss_weights"))

    def _per_output(self, value, what, single_ok=False):
        """``value`` as a list with one entry per output (from a list, a dict by output name,
        or, when ``single_ok``, one value shared by every output)."""
        n, names = self._n_outputs, self.output_names
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"compile: {what} names outputs {unknown}, but the model's "
                                 f"outputs are {names}.")
            missing = [k for k in names if k not in value]
            if missing and what != "metrics":
                raise ValueError(f"compile: {what} has no entry for outputs {missing}; give one "
                                 f"for each of {names}.")
            return [value.get(k) for k in names]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"compile: {what} is a list of {len(value)} entries, but the "
                                 f"model has {n} output(s) {names}; give one per output.")
            return list(value)
        if single_ok or n == 1:
            return [value] * n
        raise ValueError(f"compile: {what} must be a list or a dict with one entry per output "
                         f"{names}, got {value!r}.")

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(
                f"You must compile the model before {what}: model.compile(optimizer='adam', "
                "loss='mse')."
            )

    # -- data ------------------------------------------------------------------------------------
    def _prepare_x(self, x):
        """Arrays as they are; a ragged list of sequences is padded and masked."""
        from ..utils import pad_ragged  # local import to avoid a cycle
        if _is_ragged(x):
            return pad_ragged(x, self._float_dtype())
        return x, None

    def _float_dtype(self):
        for layer in self.layers:
            if layer.params:
                return layer.dtype
        return _backend.floatx()

    _n_inputs = 1

    def _prepare_y(self, y):
        """Targets as given for one output; a list of arrays (one per output) for several."""
        if y is None or self._n_outputs == 1:
            return y
        return self._structure(y, self.output_names, "y", "output")

    def _structure(self, v, names, what, kind):
        """A list or dict holding one array per model input/output -> list of arrays."""
        if isinstance(v, dict):
            missing = [k for k in names if k not in v]
            if missing or len(v) != len(names):
                raise ValueError(f"{what} must have one entry per {kind} {names}, got keys "
                                 f"{sorted(v)}.")
            v = [v[k] for k in names]
        if not isinstance(v, (list, tuple)) or len(v) != len(names):
            got = f"{len(v)} arrays" if isinstance(v, (list, tuple)) else type(v).__name__
            raise ValueError(f"Model {self.name!r} has {len(names)} {kind}s {names}: {what} must "
                             f"be a list (or a dict by name) of {len(names)} arrays, got {got}. "
                             "(Batches for such a model come from a generator or another "
                             "iterable that is not a list.)")
        return [np.asarray(a) for a in v]

    def _validate_xy(self, x, y, sample_weight=None):
        xs = list(x) if self._n_inputs > 1 else [x]
        if any(np.ndim(a) == 0 for a in xs):
            raise ValueError(
                "x must be an array with a batch axis, e.g. (samples, timesteps, features), got "
                f"a scalar {x!r}."
            )
        n = len(xs[0])
        if any(len(a) != n for a in xs):
            raise ValueError(f"All inputs must contain the same number of samples, got "
                             f"{[len(a) for a in xs]}.")
        if y is not None:
            for yi in (y if self._n_outputs > 1 else [y]):
                yl = len(yi) if not isinstance(yi, np.ndarray) or yi.ndim else 0
                if yl != n:
                    raise ValueError(
                        f"x and y must contain the same number of samples, got x with {n} and "
                        f"y with {yl}."
                    )
                check_finite(yi, "y", "Clean the targets before training.")
        if sample_weight is not None and (np.ndim(sample_weight) == 0
                                          or len(sample_weight) != n):
            raise ValueError(
                f"sample_weight must have one entry per sample ({n}), got shape "
                f"{np.shape(sample_weight)}."
            )
        if n == 0:
            raise ValueError("x is empty (0 samples); pass at least one sample.")

    def _class_weights(self, y, class_weight):
        """Per-sample (N,) or per-time-step (N, T) weights from ``class_weight``.

        Labels are integer ids for a sparse loss (y (N,) or (N, T), optional trailing 1),
        otherwise one-hot rows (argmax of the last axis) or binary labels (last axis of size 1).
        """
        if self._n_outputs > 1:
            raise ValueError(f"class_weight is for models with one output; model {self.name!r} "
                             f"has {self._n_outputs} {self.output_names}. Pass sample_weight "
                             "(one array per output) instead.")
        y = np.asarray(y)
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class id: weight}}, got "
                            f"{type(class_weight).__name__}.")
        for c in class_weight:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
                raise TypeError(f"class_weight keys must be integer class ids, got {c!r}.")
        if y.ndim == 0 or (y.ndim > 1 and y.shape[-1] == 0):
            raise ValueError(f"class_weight needs class labels in y, got y of shape {y.shape}.")
        sparse = isinstance(self.loss, _losses.SparseCategoricalCrossentropy)
        if sparse or y.ndim == 1:
            labels = y[..., 0] if (y.ndim > 1 and y.shape[-1] == 1) else y
        elif y.shape[-1] > 1:
            labels = y.argmax(-1)
        else:
            labels = y[..., 0]
        labels = np.round(np.asarray(labels, dtype=np.float64)).astype(np.int64)
        w = np.ones(labels.shape, dtype=np.float64)
        for c, cw in class_weight.items():
            w[labels == int(c)] = cw
        return w

    # -- recurrent state helpers ---------------------------------------------------------
    def _recurrent_layers(self):
        """Every recurrent layer, including those inside wrappers (Bidirectional)."""
        from ..layers.rnn import RNN
        out = []

        def walk(layer):
            if isinstance(layer, RNN):
                out.append(layer)
            inner = getattr(layer, "_inner_layers", None)
            if inner is not None:
                for sub in inner():
                    walk(sub)
        for layer in self.layers:
            walk(layer)
        return out

    def reset_states(self, rows=None):
        """Reset the carried states of every stateful layer (all rows, or only ``rows``)."""
        for layer in self._recurrent_layers():
            layer.reset_states(rows)

    # -- single steps ------------------------------------------------------------------------
    @staticmethod
    def _output_mask(y_pred, mask):
        """The mask the loss and metrics use: only per-time-step outputs (B, T, C) are masked."""
        return mask if (mask is not None and y_pred.ndim == 3) else None

    def _run_outputs(self, x, training, mask_in):
        """Forward pass as lists: ``([y_pred per output], [mask per output])``."""
        y_pred, mask = self.forward(x, training=training, mask=mask_in)
        if self._n_outputs == 1:
            return [y_pred], [mask]
        return list(y_pred), list(mask)

    def _targets(self, y):
        return list(y) if self._n_outputs > 1 else [y]

    def _loss_and_grad(self, x, y, sample_weight, mask_in):
        """Forward, loss (weighted sum over outputs + penalties) and backward for one batch.

        Returns ``(loss, [y_pred per output], [loss mask per output])``."""
        preds, masks = self._run_outputs(x, True, mask_in)
        masks = [self._output_mask(p, m) for p, m in zip(preds, masks)]
        loss = self.regularization_loss()
        dys, fused, parts = [], [], []
        for i, (yt, yp, m) in enumerate(zip(self._targets(y), preds, masks)):
            fn, w = self._losses[i], self._loss_w[i]
            parts.append(fn(yt, yp, sample_weight, m))
            loss += w * parts[-1]
            fuse = (fn.fused_activation is not None
                    and self._final_activation(i) == fn.fused_activation)
            dy = (fn.gradient_logits if fuse else fn.gradient)(yt, yp, sample_weight, m)
            if w != 1.0:
                dy = dy * w
            dys.append(dy.astype(yp.dtype, copy=False))
            fused.append(fuse)
        if self._n_outputs == 1:
            dys, fused = dys[0], fused[0]
        # the data needs no gradient (as in PyTorch)
        self.backward(dys, wrt_logits=fused, input_grad=False)
        for layer in self.layers:
            layer.add_regularization_grads()
        self._track_losses(parts, len(preds[0]))
        return loss, preds, masks

    def _track_losses(self, parts, n):
        for tracker, value in zip(self._loss_trackers, parts):
            tracker.update_value(value, n)

    def _train_step(self, x, y, sample_weight=None, mask_in=None):
        loss, preds, masks = self._loss_and_grad(x, y, sample_weight, mask_in)
        params, grads = self._trainable()
        if math.isfinite(loss):
            self.optimizer.apply(params, grads)
            for layer in self.layers:
                layer.apply_constraints()
        self._update_metrics(self._targets(y), preds, sample_weight, masks)
        return loss

    def _update_metrics(self, ys, preds, sample_weight, masks):
        for ms, yt, yp, m in zip(self._output_metrics, ys, preds, masks):
            for metric in ms:
                metric.update(yt, yp, sample_weight, m)

    @_parallel
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient update on one batch. Returns the loss (and metrics)."""
        self._check_compiled("training")
        x, mask_in = self._prepare_x(x)
        y = self._prepare_y(y)
        self._validate_xy(x, y, sample_weight)
        if class_weight is not None:
            from .._data_adapter import combine_weights
            sample_weight = combine_weights(sample_weight, self._class_weights(y, class_weight))
        for m in self.metrics:
            m.reset()
        loss = self._train_step(x, y, sample_weight, mask_in)
        return self._step_result(loss, return_dict)

    @_parallel
    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, no update."""
        self._check_compiled("evaluation")
        x, mask_in = self._prepare_x(x)
        y = self._prepare_y(y)
        self._validate_xy(x, y, sample_weight)
        res = self._evaluate_adapter([(x, y, sample_weight, mask_in)])
        return res if return_dict else self._step_result(res["loss"], False)

    @_parallel
    @_inference
    def predict_on_batch(self, x):
        x, mask_in = self._prepare_x(x)
        return self.forward(x, training=False, mask=mask_in)[0]

    def _step_result(self, loss, return_dict):
        res = {"loss": loss, **{m.name: m.result() for m in self.metrics}}
        if return_dict:
            return res
        return loss if not self.metrics else list(res.values())

    # -- fit -------------------------------------------------------------------------------------
    @_parallel
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, tbptt=None):
        """Train for ``epochs`` passes over the data.

        Args:
            x: (N, T, F) array (or (N, T) ids for an Embedding model), a list of (T_i, F)
                arrays of different lengths (padded and masked automatically), or an iterable
                of ``(x, y)`` / ``(x, y, sample_weight)`` batches (then ``y`` is None).
            y: targets, shaped like the model output (or integer ids for sparse losses).
            batch_size: samples per gradient update (default 32).
            epochs: index of the last epoch (training runs from ``initial_epoch``).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch ('auto' is 1).
            callbacks: list of :class:`rnnkit.callbacks.Callback`.
            validation_split: fraction in [0, 1) of the *last* samples held out for validation.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``.
            shuffle: reshuffle the training samples before each epoch.
            class_weight: dict ``class id -> weight`` multiplied into the sample weights.
            sample_weight: (N,) per-sample or (N, T) per-time-step weights.
            initial_epoch: epoch to start from (for resuming).
            steps_per_epoch: batches per epoch when ``x`` is an iterable of batches.
            tbptt: truncated backpropagation through time, an int k (rnnkit extension, not in
                Keras). Each batch's sequences are cut into windows of k steps; the recurrent
                states are carried from one window to the next (as constants: no gradient
                crosses a window boundary) and the weights are updated after every window.
                Needs per-time-step targets (a model whose output is (B, T, ...)). Memory
                grows with k instead of T. Validation also runs window by window. See
                docs/sequences.md.

        Returns:
            :class:`rnnkit.callbacks.History` with per-epoch logs.
        """
        self._check_compiled("training")
        from .. import _data_adapter as da
        verbose = 1 if verbose == "auto" else int(verbose)
        batch_size = 32 if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}.")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}.")
        tbptt = self._check_tbptt(tbptt, training=True)
        train = da.make_adapter(self, x, y, sample_weight, batch_size, shuffle,
                                class_weight=class_weight, steps=steps_per_epoch)
        if validation_split and validation_data is None:
            train, val = train.split(validation_split)
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                                 "(x_val, y_val, sample_weight_val).")
            val = da.make_adapter(self, *validation_data[:2],
                                  validation_data[2] if len(validation_data) == 3 else None,
                                  batch_size, False)
        else:
            val = None

        history = _cb.History()
        cbs = list(callbacks or [])
        cb = _cb.CallbackList(cbs + [history], self,
                              {"epochs": epochs, "verbose": verbose, "steps": train.num_batches})
        self.history = history
        self.stop_training = False
        self.terminated_on_nan = None
        cb.on_train_begin()
        exploding_warned = False
        with _Interrupt() as interrupt:
            for epoch in range(initial_epoch, epochs):
                self._current_epoch = epoch
                for m in self.metrics:
                    m.reset()
                cb.on_epoch_begin(epoch)
                bar = _Progress(verbose, epoch, epochs, train.num_batches)
                total, count = 0.0, 0
                for step, (xb, yb, swb, mb) in enumerate(train):
                    if yb is None:
                        raise ValueError("fit needs targets: each batch from the iterable must "
                                         "be (x, y) or (x, y, sample_weight), got x only.")
                    cb.on_train_batch_begin(step)
                    if tbptt is None:
                        loss = self._train_step(xb, yb, swb, mb)
                    else:
                        loss = self._train_tbptt(xb, yb, swb, mb, tbptt)
                    n = len(self._targets(yb)[0])
                    total += loss * n
                    count += n
                    logs = {"loss": total / count, **{m.name: m.result() for m in self.metrics}}
                    if not math.isfinite(loss):
                        logs["loss"] = loss
                    bar.update(logs)
                    cb.on_train_batch_end(step, {**logs, "loss": loss if not math.isfinite(loss) else logs["loss"]})
                    if (not exploding_warned and self.optimizer.last_grad_norm is not None
                            and self.optimizer.last_grad_norm > 1e3
                            and not (self.optimizer.clipnorm or self.optimizer.global_clipnorm)):
                        warnings.warn(
                            f"Exploding gradients: the global gradient norm reached "
                            f"{self.optimizer.last_grad_norm:.3g} (epoch {epoch + 1}, batch {step}). "
                            "Set clipnorm=1.0 (or global_clipnorm) in the optimizer, lower the "
                            "learning rate, or use an LSTM/GRU.", RuntimeWarning, stacklevel=2)
                        exploding_warned = True
                    if self.stop_training or interrupt.requested:
                        break
                if count == 0 and not interrupt.requested:
                    raise ValueError(
                        f"fit got no batches in epoch {epoch + 1}: the training data ran out of "
                        "data. A generator can be iterated only once: pass steps_per_epoch with "
                        "a generator that repeats, or an iterable whose __iter__ starts over "
                        "(a list, a Sequence-like object), and check that it is not empty."
                    )
                if interrupt.requested:
                    bar.close(logs if count else {})
                    print(f"\nTraining interrupted (Ctrl-C) in epoch {epoch + 1} after batch "
                          f"{step}: the model holds the weights after that batch.")
                    break
                if val is not None and not self.stop_training:
                    vlogs = self._evaluate_adapter(val, tbptt)
                    logs.update({f"val_{k}": v for k, v in vlogs.items()})
                bar.close(logs)
                self._epochs_done = epoch + 1  # before the callbacks: checkpoints record it
                cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        cb.on_train_end()
        return history

    @_inference
    def _evaluate_adapter(self, data, tbptt=None):
        for m in self.metrics:
            m.reset()
        total, count = 0.0, 0
        for xb, yb, swb, mb in data:
            if tbptt is None:
                preds, masks = self._run_outputs(xb, False, mb)
                pieces = [(self._targets(yb), swb, preds, masks, 1.0)]
            else:  # one output (checked by _check_tbptt)
                pieces = [([yw], sww, [yp], [m], frac) for yw, sww, yp, m, frac
                          in self._windowed_forward(xb, yb, swb, mb, tbptt)]
            loss = 0.0
            for ys, sww, preds, masks, frac in pieces:
                masks = [self._output_mask(p, m) for p, m in zip(preds, masks)]
                parts = [fn(yw, yp, sww, m) for fn, yw, yp, m
                         in zip(self._losses, ys, preds, masks)]
                loss += frac * sum(w * v for w, v in zip(self._loss_w, parts))
                self._track_losses(parts, len(preds[0]))
                self._update_metrics(ys, preds, sww, masks)
            n = len(self._targets(yb)[0])
            total += loss * n
            count += n
        if count == 0:
            raise ValueError("evaluate got no batches (no data): the data is empty, or a "
                             "generator was already used up.")
        reg = self.regularization_loss()
        return {"loss": total / max(count, 1) + reg, **{m.name: m.result() for m in self.metrics}}

    @_parallel
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 return_dict=False, tbptt=None):
        """Loss and metrics on data (no update). Returns a float, a list, or a dict.

        ``tbptt=k`` runs each batch window by window (k steps, states carried), so memory
        grows with k rather than with the sequence length; the numbers are the same.
        """
        self._check_compiled("evaluation")
        from .. import _data_adapter as da
        tbptt = self._check_tbptt(tbptt)
        data = da.make_adapter(self, x, y, sample_weight, batch_size or 32, False)
        res = self._evaluate_adapter(data, tbptt)
        if verbose not in (0, "auto"):
            print(" - ".join(f"{k}: {_metrics.format_value(v)}" for k, v in res.items()))
        if return_dict:
            return res
        return res["loss"] if not self.metrics else list(res.values())

    @_parallel
    @_inference
    def predict(self, x, batch_size=None, verbose="auto", tbptt=None):
        """Model outputs for ``x`` (array, ragged list of sequences, or iterable of batches).

        ``tbptt=k`` runs each batch window by window (k steps, states carried): per-time-step
        outputs are joined along the time axis, a final-step output (B, ...) is the last
        window's. The result equals a whole-sequence pass; memory grows with k only.
        """
        from .. import _data_adapter as da
        tbptt = self._check_tbptt(tbptt)
        data = da.make_adapter(self, x, None, None, batch_size or 32, False)
        outs = []
        for xb, _, _, mb in data:
            if tbptt is None:
                outs.append(self._run_outputs(xb, False, mb)[0])
                continue
            preds = [p[2] for p in self._windowed_forward(xb, None, None, mb, tbptt)]
            outs.append([np.concatenate(preds, axis=1) if preds[-1].ndim == 3 else preds[-1]])
        if not outs:
            raise ValueError("predict got no data (0 samples).")
        res = [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]
        return res[0] if self._n_outputs == 1 else res

    @_parallel
    def __call__(self, x, training=None):
        """The model's output for ``x``; ``training`` None follows :meth:`train` / :meth:`eval`."""
        from ..layers._symbolic import is_symbolic
        if is_symbolic(x):
            raise TypeError(f"Model {self.name!r} cannot be called on symbolic tensors (nesting "
                            "models is not supported): call its layers on them instead, or "
                            "build one rnnkit.Model from all the layers.")
        training = self.training if training is None else training
        x, mask = self._prepare_x(x)
        if training:
            return self.forward(x, training=True, mask=mask)[0]
        with inference():
            return self.forward(x, training=False, mask=mask)[0]


class _Progress:
    """Keras-like progress: a tqdm bar per epoch (verbose=1) or one line per epoch (2)."""

    def __init__(self, verbose, epoch, epochs, steps):
        self.verbose, self.epoch, self.epochs = verbose, epoch, epochs
        self.t0 = time.perf_counter()
        self.bar = None
        if verbose == 1:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="step",
                            leave=True, dynamic_ncols=True, mininterval=0.2)

    @staticmethod
    def fmt(logs):
        return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()
                          if isinstance(v, (int, float, np.floating)))

    def update(self, logs):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.fmt(logs), refresh=False)

    def close(self, logs):
        if self.bar is not None:
            self.bar.set_postfix_str(self.fmt(logs), refresh=True)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            dt = time.perf_counter() - self.t0
            print(f"Epoch {self.epoch + 1}/{self.epochs} - {dt:.1f}s - {self.fmt(logs)}", flush=True)
