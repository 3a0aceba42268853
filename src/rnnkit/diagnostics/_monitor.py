"""GradientMonitor: per-layer gradient norms before and after clipping, during ``fit``."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..callbacks import Callback
from ._replay import recurrent_layers

ADVICE = {
    "exploding": ("Try clipnorm=1.0 (or global_clipnorm=1.0) in the optimizer, a lower "
                  "learning rate (e.g. 10x smaller), a gated cell (LSTM or GRU) instead of "
                  "SimpleRNN, and an orthogonal recurrent_initializer."),
    "vanishing": ("Try a gated cell (LSTM or GRU; keep unit_forget_bias=True), an orthogonal "
                  "recurrent_initializer, shorter sequences or truncated BPTT, and check that "
                  "the learning rate is not so high that units saturate."),
}


class GradientMonitor(Callback):
    """Record gradient norms per layer and batch, before and after clipping; warn once.

    After every training batch it reads the pre-clip gradients from ``layer.grads`` and the
    optimizer's clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``) applied to those same
    gradients, and records:

    * ``layer_norms[name]`` / ``layer_norms_clipped[name]``: list (one entry per batch) of the
      L2 norm of all of the layer's weight gradients, before / after clipping;
    * ``global_norms`` / ``global_norms_clipped``: the same over all trainable weights
      (equal to the optimizer's ``last_grad_norm`` / ``last_clipped_grad_norm``);
    * ``clipped``: per batch, True when clipping changed the gradient; :attr:`clip_rate`;
    * ``flow``: with ``probe=(x, y)``, the :func:`rnnkit.diagnostics.gradient_flow` result at
      the end of every ``probe_every``-th epoch, as ``(epoch, result)`` pairs.

    Warnings (``RuntimeWarning``, each kind at most once per monitor, with concrete advice):

    * 'exploding' when the global pre-clip norm is not finite or exceeds
      ``exploding_threshold`` (default 1e3), or the probe verdict is 'exploding';
    * 'vanishing' when a recurrent layer's gradient norm falls below ``vanishing_threshold``
      (default 1e-7), or the probe verdict is 'vanishing'.

    Args:
        exploding_threshold: global gradient norm regarded as exploding.
        vanishing_threshold: recurrent-layer gradient norm regarded as vanished.
        probe: optional ``(x, y)`` batch for :func:`gradient_flow` at epoch ends.
        probe_every: run the probe every this many epochs (default 1).
        warn: set False to record only.

    Example:
        >>> import rnnkit
        >>> from rnnkit.diagnostics import GradientMonitor
        >>> from rnnkit.data import adding_problem
        >>> x, y = adding_problem(64, 20, seed=0)
        >>> model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(8), rnnkit.layers.Dense(1)])
        >>> model.compile(optimizer=rnnkit.optimizers.Adam(clipnorm=1.0), loss="mse")
        >>> mon = GradientMonitor()
        >>> _ = model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[mon])
        >>> len(mon.global_norms)
        2
    """

    def __init__(self, exploding_threshold=1e3, vanishing_threshold=1e-7, probe=None,
                 probe_every=1, warn=True):
        super().__init__()
        for n, v in (("exploding_threshold", exploding_threshold),
                     ("vanishing_threshold", vanishing_threshold)):
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{n} must be a positive number, got {v!r}.")
        if probe is not None and (not isinstance(probe, (tuple, list)) or len(probe) != 2):
            raise ValueError(f"probe must be a tuple (x, y) or None, got {type(probe).__name__}.")
        if isinstance(probe_every, bool) or not isinstance(probe_every, int) or probe_every < 1:
            raise ValueError(f"probe_every must be a positive integer, got {probe_every!r}.")
        self.exploding_threshold = float(exploding_threshold)
        self.vanishing_threshold = float(vanishing_threshold)
        self.probe, self.probe_every, self.warn = probe, probe_every, bool(warn)
        self.reset()

    def reset(self):
        """Forget everything recorded (also done at the start of every ``fit``)."""
        self.layer_norms: dict[str, list] = {}
        self.layer_norms_clipped: dict[str, list] = {}
        self.global_norms: list = []
        self.global_norms_clipped: list = []
        self.clipped: list = []
        self.epochs: list = []
        self.flow: list = []
        self.warned: dict[str, str] = {}

    @property
    def clip_rate(self):
        """Fraction of recorded batches where clipping changed the gradient (nan if none)."""
        return float(np.mean(self.clipped)) if self.clipped else float("nan")

    # -- events --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.reset()

    def on_train_batch_end(self, batch, logs=None):
        model = self.model
        opt = model.optimizer
        loss = (logs or {}).get("loss")
        entries = [(la, n) for la in model.layers if la.trainable for n in la.params]
        grads = [la.grads[n] for la, n in entries]
        if loss is not None and not math.isfinite(loss):
            # the engine skipped the update: record the (non-finite) gradient as it is
            clipped_grads = grads
        else:
            clipped_grads = opt.clip(grads) if grads else []
        pre = {la.name: 0.0 for la in model.layers}
        post = dict(pre)
        for (la, _), g, gc in zip(entries, grads, clipped_grads, strict=True):
            pre[la.name] += float(np.vdot(g, g))
            post[la.name] += float(np.vdot(gc, gc))
        for la in model.layers:
            self.layer_norms.setdefault(la.name, []).append(math.sqrt(pre[la.name]))
            self.layer_norms_clipped.setdefault(la.name, []).append(math.sqrt(post[la.name]))
        g_pre = math.sqrt(sum(pre.values()))
        g_post = math.sqrt(sum(post.values()))
        self.global_norms.append(g_pre)
        self.global_norms_clipped.append(g_post)
        self.epochs.append(getattr(model, "_current_epoch", 0))
        changed = any(gc is not g and not np.array_equal(gc, g)
                      for g, gc in zip(grads, clipped_grads, strict=True))
        self.clipped.append(bool(changed))
        epoch = getattr(model, "_current_epoch", 0) + 1
        if not math.isfinite(g_pre) or g_pre > self.exploding_threshold:
            self._warn("exploding", f"the global gradient norm is {g_pre:.3g} before clipping "
                       f"(threshold {self.exploding_threshold:.0e}) at epoch {epoch}, batch "
                       f"{batch}.")
        recurrent = {model.layers[i].name for i, _, _ in recurrent_layers(model)}
        for la in model.layers:
            if la.name in recurrent and la.trainable and pre[la.name] < \
                    self.vanishing_threshold ** 2:
                self._warn("vanishing", f"the gradient norm of recurrent layer {la.name!r} is "
                           f"{math.sqrt(pre[la.name]):.3g} (threshold "
                           f"{self.vanishing_threshold:.0e}) at epoch {epoch}, batch {batch}.")

    def on_epoch_end(self, epoch, logs=None):
        if self.probe is None or (epoch + 1) % self.probe_every:
            return
        from ._flow import gradient_flow
        res = gradient_flow(self.model, *self.probe)
        self.flow.append((epoch, res))
        if res.verdict != "healthy":
            self._warn(res.verdict, f"gradient flow on the probe batch after epoch {epoch + 1}: "
                       f"{res.reason}")

    def _warn(self, kind, detail):
        if kind in self.warned:
            return
        msg = f"GradientMonitor: {kind} gradients: {detail} {ADVICE[kind]}"
        self.warned[kind] = msg
        if self.warn:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)

    # -- export --------------------------------------------------------------------------
    def as_arrays(self):
        """``{"global": (N,), "global_clipped": (N,), "layer/<name>": (N,), ...}`` arrays."""
        out = {"global": np.array(self.global_norms),
               "global_clipped": np.array(self.global_norms_clipped)}
        for k, v in self.layer_norms.items():
            out[f"layer/{k}"] = np.array(v)
            out[f"layer_clipped/{k}"] = np.array(self.layer_norms_clipped[k])
        return out
