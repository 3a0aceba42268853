"""The training engine shared by every model: compile, fit, evaluate, predict.

A concrete model provides ``forward(x, training) -> (y_pred, mask)``,
``backward(dy, wrt_logits)`` and ``layers``. One training step is:

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
from ..kernels import threads as _threads
from ..layers.base import check_finite, inference
from ._torch_habits import TorchHabits


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


def _is_array_like(x):
    return isinstance(x, np.ndarray) or (isinstance(x, (list, tuple)) and not _is_ragged(x))


def _is_ragged(x):
    """A list of per-sample arrays whose lengths differ (or that are themselves arrays)."""
    if not isinstance(x, (list, tuple)) or len(x) == 0:
        return False
    first = x[0]
    if not hasattr(first, "__len__"):
        return False
    try:
        shapes = {np.shape(s) for s in x}
    except ValueError:
        return True
    return len(shapes) > 1


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


class Model(TorchHabits):
    """Base class holding compile/fit/evaluate/predict. See :class:`rnnkit.Sequential`."""

    def __init__(self, name=None):
        self.name = name or "model"
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.terminated_on_nan = None
        self._current_epoch = 0
        self._epochs_done = 0
        self.preprocessing = {}  # JSON-able extras saved with the model (scalers, vocab, labels)

    # -- to be provided by subclasses -----------------------------------------------------
    layers: list

    def forward(self, x, training=False):
        raise NotImplementedError  # abstract

    def backward(self, dy, wrt_logits=False):
        raise NotImplementedError  # abstract

    # -- weights -------------------------------------------------------------------------------
    def _trainable(self):
        params, grads = [], []
        for layer in self.layers:
            if layer.trainable:
                for n in layer.params:
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
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Configure training: optimizer, loss and metrics (names or objects), as in Keras."""
        if loss is None:
            raise ValueError(
                "compile needs a loss, e.g. loss='categorical_crossentropy' or loss='mse'. "
                f"Valid names: {sorted(_losses._REGISTRY)}."
            )
        self.optimizer = _opt.get(optimizer)
        self.loss = _losses.get(loss)
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        self.metrics = [_metrics.get(m, self.loss) for m in (metrics or [])]
        self.compiled = True

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

    def _validate_xy(self, x, y, sample_weight=None):
        if np.ndim(x) == 0:
            raise ValueError(
                "x must be an array with a batch axis, e.g. (samples, timesteps, features), got "
                f"a scalar {x!r}."
            )
        n = len(x)
        if y is not None:
            yl = len(y) if not isinstance(y, np.ndarray) or y.ndim else 0
            if yl != n:
                raise ValueError(
                    f"x and y must contain the same number of samples, got x with {n} and y "
                    f"with {yl}."
                )
            check_finite(y, "y", "Clean the targets before training.")
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
        from ..layers.recurrent import RNNBase
        out = []

        def walk(layer):
            if isinstance(layer, RNNBase):
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

    def _loss_and_grad(self, x, y, sample_weight, mask_in):
        y_pred, mask = self.forward(x, training=True, mask=mask_in)
        mask = self._output_mask(y_pred, mask)
        loss = self.loss(y, y_pred, sample_weight, mask) + self.regularization_loss()
        fuse = (self.loss.fused_activation is not None
                and self._final_activation() == self.loss.fused_activation)
        if fuse:
            dy = self.loss.gradient_logits(y, y_pred, sample_weight, mask)
        else:
            dy = self.loss.gradient(y, y_pred, sample_weight, mask)
        first = self.layers[0]
        first._skip_input_grad = True  # the data needs no gradient (as in PyTorch)
        try:
            self.backward(dy.astype(y_pred.dtype, copy=False), wrt_logits=fuse)
        finally:
            first._skip_input_grad = False
        for layer in self.layers:
            layer.add_regularization_grads()
        return loss, y_pred, mask

    def _final_activation(self):
        last = self.layers[-1] if self.layers else None
        if not getattr(last, "fusable_activation", False):
            return None
        return last.activation.name

    def _train_step(self, x, y, sample_weight=None, mask_in=None):
        loss, y_pred, mask = self._loss_and_grad(x, y, sample_weight, mask_in)
        params, grads = self._trainable()
        if math.isfinite(loss):
            self.optimizer.apply(params, grads)
        for m in self.metrics:
            m.update(y, y_pred, sample_weight, mask)
        return loss

    @_parallel
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient update on one batch. Returns the loss (and metrics)."""
        self._check_compiled("training")
        x, mask_in = self._prepare_x(x)
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
                    n = len(yb)
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
                y_pred, mask = self.forward(xb, training=False, mask=mb)
                pieces = [(yb, swb, y_pred, mask, 1.0)]
            else:
                pieces = self._windowed_forward(xb, yb, swb, mb, tbptt)
            loss = 0.0
            for yw, sww, y_pred, mask, frac in pieces:
                mask = self._output_mask(y_pred, mask)
                loss += frac * self.loss(yw, y_pred, sww, mask)
                for m in self.metrics:
                    m.update(yw, y_pred, sww, mask)
            total += loss * len(yb)
            count += len(yb)
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
                outs.append(self.forward(xb, training=False, mask=mb)[0])
                continue
            preds = [p[2] for p in self._windowed_forward(xb, None, None, mb, tbptt)]
            outs.append(np.concatenate(preds, axis=1) if preds[-1].ndim == 3 else preds[-1])
        if not outs:
            raise ValueError("predict got no data (0 samples).")
        return np.concatenate(outs, axis=0)

    # -- truncated BPTT ------------------------------------------------------------------------
    def _check_tbptt(self, tbptt, training=False):
        if tbptt is None:
            return None
        if isinstance(tbptt, bool) or not isinstance(tbptt, (int, np.integer)) or tbptt <= 0:
            raise ValueError(
                f"tbptt must be a positive integer (the window length in time steps), got "
                f"{tbptt!r}. Use tbptt=None to backpropagate through whole sequences."
            )
        rnns = self._recurrent_layers()
        if not rnns:
            raise ValueError("tbptt needs a model with a recurrent layer (SimpleRNN, LSTM, GRU).")
        back = [r.name for r in rnns if r.go_backwards]
        if back:
            raise ValueError(
                f"tbptt cannot be used with layers that read sequences backwards ({back}, e.g. "
                "inside Bidirectional): their state at a window boundary depends on the future. "
                "Train without tbptt, or use forward-only recurrent layers."
            )
        return int(tbptt)

    def _windows(self, x, y, sample_weight, mask, k, training):
        """Yield ``(x_w, y_w, sw_w, mask_w, frac)`` for windows of k steps along axis 1."""
        x = np.asarray(x) if not isinstance(x, np.ndarray) else x
        if x.ndim < 2:
            raise ValueError(f"tbptt needs sequences shaped (batch, timesteps, ...), got {x.shape}.")
        T = x.shape[1]
        if training:
            ya = np.asarray(y)
            if ya.ndim < 2 or ya.shape[1] != T:
                raise ValueError(
                    f"tbptt needs per-time-step targets: y must have shape (batch, {T}, ...) like "
                    f"x (timesteps={T}), got y with shape {ya.shape}. Use a model whose last "
                    "recurrent layer has return_sequences=True, or train without tbptt."
                )
            y = ya
        sw = None if sample_weight is None else np.asarray(sample_weight)
        for start in range(0, T, k):
            sl = slice(start, min(start + k, T))
            yield (x[:, sl], None if y is None else (y[:, sl] if y.ndim >= 2 and y.shape[1] == T
                                                     else y),
                   None if sw is None else (sw[:, sl] if sw.ndim == 2 else sw),
                   None if mask is None else mask[:, sl], (sl.stop - sl.start) / T)

    class _Carry:
        """Within one batch, recurrent layers carry their final states to the next window."""

        def __init__(self, layers):
            self.layers = layers

        def __enter__(self):
            for layer in self.layers:
                if not layer.stateful:
                    layer.states = None
                layer._carry = True
            return self

        def __exit__(self, *exc):
            for layer in self.layers:
                layer._carry = False
                if not layer.stateful:
                    layer.states = None
            return False

    def _train_tbptt(self, x, y, sample_weight, mask, k):
        """One batch with truncated BPTT: a gradient update per window of k steps.

        Returns the batch loss: the window losses weighted by window length.
        """
        loss = 0.0
        with self._Carry(self._recurrent_layers()):
            for xw, yw, sww, mw, frac in self._windows(x, y, sample_weight, mask, k, True):
                loss += frac * self._train_step(xw, yw, sww, mw)
        return loss

    def _windowed_forward(self, x, y, sample_weight, mask, k):
        """Inference window by window; returns ``[(y_w, sw_w, y_pred_w, mask_w, frac)]``."""
        out = []
        with self._Carry(self._recurrent_layers()):
            for xw, yw, sww, mw, frac in self._windows(x, y, sample_weight, mask, k, False):
                y_pred, m = self.forward(xw, training=False, mask=mw)
                out.append((yw, sww, y_pred, m, frac))
        if out and out[-1][2].ndim != 3 and len(out) > 1:  # a final-step output: last window only
            yw, sww, y_pred, m, _ = out[-1]
            out = [(y, sample_weight, y_pred, m, 1.0)]
        return out

    @_parallel
    def __call__(self, x, training=None):
        """The model's output for ``x``; ``training`` None follows :meth:`train` / :meth:`eval`."""
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
