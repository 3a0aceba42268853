"""Gradient flow through time: how much of the loss signal reaches each step back."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from .. import losses as _losses
from ._replay import Replay, recurrent_layers

#: the memory horizon counts steps whose gradient stays at or above this fraction of the
#: gradient at the last step
HORIZON_FRACTION = 1e-3
#: 'exploding' when the gradient grows by more than this factor going back in time
EXPLODING_RATIO = 1e3


@dataclasses.dataclass
class LayerFlow:
    """Gradient flow through one recurrent layer.

    Attributes:
        name: layer name; cell: 'SimpleRNN', 'LSTM' or 'GRU'.
        norms: (T,) mean over the batch of the per-sample L2 norm of ``dL/dh_t`` at every step
            ``t`` of the layer's time loop (processing order; ``norms[-1]`` is the last step).
        cell_norms: (T,) the same for the LSTM cell state ``c_t``, or None.
        memory_horizon: the largest ``k`` such that ``norms[T-1-j] >= 1e-3 * norms[T-1]`` for
            every ``j <= k``; ``T - 1`` means the signal reaches the first step.
        ratio: ``norms[0] / norms[-1]``, the fraction of the last-step gradient that reaches the
            first step (``inf``/``nan`` when gradients are not finite).
        max_growth: ``max_t norms[t] / norms[-1]``.
        per_step_factor: geometric mean change per step back, ``ratio ** (1 / (T - 1))``.
        verdict: 'vanishing', 'exploding' or 'healthy'; reason: a sentence with the numbers.
    """

    name: str
    cell: str
    norms: np.ndarray
    cell_norms: np.ndarray | None
    memory_horizon: int
    ratio: float
    max_growth: float
    per_step_factor: float
    verdict: str
    reason: str

    @property
    def steps_back(self):
        """(T,) ``0, 1, ..., T-1``: the x axis matching :attr:`norms_by_steps_back`."""
        return np.arange(len(self.norms))

    @property
    def norms_by_steps_back(self):
        """(T,) ``norms`` reversed: entry ``k`` is the gradient ``k`` steps before the end."""
        return self.norms[::-1].copy()

    def to_dict(self):
        """JSON-ready dict (lists instead of arrays)."""
        d = dataclasses.asdict(self)
        d["norms"] = [float(v) for v in self.norms]
        d["cell_norms"] = None if self.cell_norms is None else [float(v) for v in self.cell_norms]
        return d


@dataclasses.dataclass
class GradientFlowResult:
    """What :func:`gradient_flow` measured.

    Attributes:
        loss: the loss value of the batch (with regularisation penalties).
        layers: one :class:`LayerFlow` per recurrent layer, in model order.
        param_norms: ``{"layer/weight": L2 norm of dL/dweight}`` for every weight of every layer.
        verdict: the worst layer verdict ('exploding' > 'vanishing' > 'healthy').
        reason: the reason of the layer that decided the verdict.
    """

    loss: float
    layers: list
    param_norms: dict
    verdict: str
    reason: str

    def __getitem__(self, name):
        for lf in self.layers:
            if lf.name == name:
                return lf
        raise KeyError(f"No recurrent layer named {name!r}; layers: {[lf.name for lf in self.layers]}.")

    def summary(self, print_fn=print):
        """Print a readable table: per layer horizon, ratio and verdict; then parameter norms.

        Returns the printed text as a string.
        """
        lines = [f"Gradient flow (loss {self.loss:.4g})"]
        head = f"{'layer':<18} {'cell':<9} {'T':>5} {'|dL/dh| last':>13} {'first':>10} " \
               f"{'ratio':>10} {'per step':>9} {'horizon':>8}  verdict"
        lines += [head, "-" * len(head)]
        for lf in self.layers:
            T = len(lf.norms)
            lines.append(
                f"{lf.name:<18} {lf.cell:<9} {T:>5} {lf.norms[-1]:>13.3e} {lf.norms[0]:>10.3e} "
                f"{lf.ratio:>10.2e} {lf.per_step_factor:>9.3f} {lf.memory_horizon:>8d}  {lf.verdict}")
        lines.append("")
        lines.append(f"{'parameter':<40} {'|grad|':>12}")
        for k, v in self.param_norms.items():
            lines.append(f"{k:<40} {v:>12.4e}")
        lines.append("")
        lines.append(f"Verdict: {self.verdict}. {self.reason}")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def to_dict(self):
        """JSON-ready dict of everything measured."""
        return {"loss": self.loss, "verdict": self.verdict, "reason": self.reason,
                "param_norms": dict(self.param_norms),
                "layers": [lf.to_dict() for lf in self.layers]}

    def to_json(self, **kwargs):
        """:meth:`to_dict` as a JSON string (non-finite numbers written as null)."""
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v
        return json.dumps(clean(self.to_dict()), **kwargs)


def judge(norms, horizon_fraction=HORIZON_FRACTION, exploding_ratio=EXPLODING_RATIO):
    """Memory horizon and verdict from per-step gradient norms.

    Args:
        norms: (T,) gradient norm at every step, last step last.
        horizon_fraction: threshold of the memory horizon (default 1e-3).
        exploding_ratio: growth factor that counts as exploding (default 1e3).

    Returns:
        dict with ``memory_horizon``, ``ratio``, ``max_growth``, ``per_step_factor``,
        ``verdict`` and ``reason`` (see :func:`gradient_flow` for the rules).
    """
    norms = np.asarray(norms, np.float64)
    T = len(norms)
    last = norms[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = norms[::-1] / last                                   # k steps back
    finite = bool(np.all(np.isfinite(norms)))
    if not finite or last == 0:
        below = np.zeros(T, bool)
    else:
        below = ~(rel >= horizon_fraction)
    horizon = int(np.argmax(below)) - 1 if below.any() else T - 1
    horizon = max(horizon, 0)
    ratio = float(rel[-1]) if T else float("nan")
    growth = float(np.max(rel)) if finite and last > 0 else float("inf")
    factor = float(ratio ** (1.0 / (T - 1))) if T > 1 and np.isfinite(ratio) and ratio >= 0 \
        else float("nan")
    if not finite:
        bad = int(np.argmax(~np.isfinite(norms[::-1])))
        verdict = "exploding"
        reason = (f"the gradient is not finite ({norms[::-1][bad]}) {bad} steps back from the "
                  "end: it overflowed.")
    elif last == 0:
        verdict = "vanishing"
        reason = "the gradient at the last step is exactly 0, so no signal flows back at all."
    elif growth > exploding_ratio:
        k = int(np.argmax(rel))
        verdict = "exploding"
        reason = (f"the gradient norm grows from {last:.3g} at the last step to {rel[k] * last:.3g} "
                  f"{k} steps back (x{growth:.3g} > {exploding_ratio:.0e}; about x{factor:.3g} "
                  "per step).")
    elif horizon < T - 1:
        verdict = "vanishing"
        reason = (f"the gradient norm falls from {last:.3g} at the last step to {norms[0]:.3g} "
                  f"{T - 1} steps back (ratio {ratio:.3g}; about x{factor:.3g} per step); it stays "
                  f"above {horizon_fraction:.0e} of its last-step value for only {horizon} of "
                  f"{T - 1} steps back.")
    else:
        verdict = "healthy"
        reason = (f"the gradient norm goes from {last:.3g} at the last step to {norms[0]:.3g} "
                  f"{T - 1} steps back (ratio {ratio:.3g}, largest growth x{growth:.3g}): it "
                  f"stays above {horizon_fraction:.0e} of its last-step value over all {T} steps.")
    return {"memory_horizon": horizon, "ratio": ratio, "max_growth": growth,
            "per_step_factor": factor, "verdict": verdict, "reason": reason}


def _model_loss(model, loss):
    if loss is not None:
        return _losses.get(loss)
    if getattr(model, "loss", None) is not None:
        return model.loss
    raise ValueError(
        "gradient_flow needs a loss: the model is not compiled and no loss= was given. "
        "Call model.compile(optimizer=..., loss='mse') first or pass loss='mse' (or another "
        "loss name)."
    )


def gradient_flow(model, x, y, loss=None, sample_weight=None):
    """Measure how the loss gradient flows back through time in every recurrent layer.

    One forward pass in inference mode (no dropout), the loss gradient, and backpropagation
    through every layer (filling ``layer.grads``, including regularisation terms, exactly as a
    training step does). For each recurrent layer the time loop is then replayed with the
    pure-NumPy reference kernel and the layer's weights, recording at every step ``t``

        g_t = dL/dh_t,

    the *total* gradient with respect to the hidden state after step ``t`` (the carried state,
    after masking): the direct gradient from the layer's output at ``t`` plus everything that
    flows back through steps ``t+1 .. T-1``. Perturbing ``h_t`` by ``eps * e_i`` changes the loss
    by ``eps * g_t[i]`` to first order. ``norms[t]`` is the mean over the batch of ``||g_t||_2``
    per sample. Steps are in the layer's processing order (reversed with ``go_backwards``).

    Verdict rules per layer, with ``r_k = norms[T-1-k] / norms[T-1]`` (k steps back):

    * **exploding** if any gradient is not finite, or ``max_k r_k > 1e3`` (the signal grows
      more than a thousandfold going back);
    * **vanishing** if the gradient at the last step is 0, or the *memory horizon* is shorter
      than the sequence: ``r_k < 1e-3`` for some ``k <= T-1``;
    * **healthy** otherwise (the signal stays within [1e-3, 1e3] of its last-step value over the
      whole sequence).

    The memory horizon is the largest ``k`` with ``r_j >= 1e-3`` for all ``j <= k`` (``T-1`` when
    the signal reaches the first step). The model verdict is the worst layer verdict.

    A layer with ``return_sequences=True`` also receives a direct gradient at every step,
    which accumulates going back and says nothing about the recurrence (a trained, healthy
    layer would look 'exploding'); its verdict, ratio and horizon are judged on the last
    step's gradient carried back through the recurrence alone (``norms`` keeps the total).

    Args:
        model: an rnnkit Sequential model with at least one SimpleRNN, LSTM or GRU layer.
        x: (B, T, F) inputs (or (B, T) ids for an Embedding model, or a ragged list).
        y: targets for those inputs, as for ``model.fit``.
        loss: loss name or object; default the model's compiled loss.
        sample_weight: optional (B,) or (B, T) weights, as in ``fit``.

    Returns:
        :class:`GradientFlowResult`.

    Example:
        >>> import rnnkit
        >>> from rnnkit.data import adding_problem
        >>> from rnnkit.diagnostics import gradient_flow
        >>> x, y = adding_problem(32, 50, seed=0)
        >>> model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(16), rnnkit.layers.Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> res = gradient_flow(model, x, y)
        >>> res.layers[0].norms.shape
        (50,)
    """
    loss_fn = _model_loss(model, loss)
    layers = list(getattr(model, "layers", []) or [])
    if not layers:
        raise ValueError("gradient_flow: the model has no layers; add layers first.")
    x, mask = model._prepare_x(x)
    rec = recurrent_layers(model)
    if not rec:
        raise ValueError(
            f"gradient_flow: model {getattr(model, 'name', '?')!r} has no recurrent layer "
            f"(SimpleRNN, LSTM or GRU); its layers are {[type(la).__name__ for la in layers]}."
        )
    saved_states = {id(la): (None if la.states is None else tuple(s.copy() for s in la.states))
                    for _, _, la in rec}
    captured = {id(la): {} for _, _, la in rec}
    try:
        for _, _, la in rec:
            _install_capture(la, captured[id(la)])
        y_pred, out_mask = model.forward(x, training=False, mask=mask)
        if out_mask is not None and np.ndim(y_pred) != 3:
            out_mask = None
        loss_value = loss_fn(y, y_pred, sample_weight, out_mask) + model.regularization_loss()
        fuse = (loss_fn.fused_activation is not None
                and getattr(layers[-1], "fusable_activation", False)
                and layers[-1].activation.name == loss_fn.fused_activation)
        if fuse:
            dy = loss_fn.gradient_logits(y, y_pred, sample_weight, out_mask)
        else:
            dy = loss_fn.gradient(y, y_pred, sample_weight, out_mask)
        for la in layers:
            la.zero_grads()
        model.backward(dy.astype(y_pred.dtype, copy=False), wrt_logits=fuse)
        for la in layers:
            la.add_regularization_grads()
        param_norms = {f"{la.name}/{n}": float(np.sqrt(np.vdot(g, g)))
                       for la in layers for n, g in la.grads.items()}
    finally:
        for _, _, la in rec:
            for attr in ("forward", "backward"):
                la.__dict__.pop(attr, None)
            if la.stateful:
                la.states = saved_states[id(la)]
    # -- per-step gradients through each recurrent layer, replayed with the reference loop
    flows = [_layer_flow(name, la, captured[id(la)]) for _, name, la in rec]
    order = {"exploding": 2, "vanishing": 1, "healthy": 0}
    worst = max(flows, key=lambda f: order[f.verdict])
    reason = f"Layer {worst.name!r} ({worst.cell}): {worst.reason}"
    return GradientFlowResult(loss=float(loss_value), layers=flows, param_norms=param_norms,
                              verdict=worst.verdict, reason=reason)


def _install_capture(layer, store):
    """Shadow ``layer.forward`` / ``layer.backward`` on the instance to record what the layer
    receives (input, mask, initial states; output gradients). Removed again by the caller."""
    cls_forward, cls_backward = type(layer).forward, type(layer).backward

    def forward(inputs, training=False, mask=None, initial_state=None):
        x0, init = inputs, initial_state
        if isinstance(inputs, (list, tuple)):
            x0, init = inputs[0], (list(inputs[1:]) or None)
        if init is None and layer.stateful and layer.states is not None:
            init = [s.copy() for s in layer.states]
        store["x"], store["mask"], store["states0"] = np.asarray(x0), mask, init
        out = cls_forward(layer, inputs, training=training, mask=mask,
                          initial_state=initial_state)
        store["out"] = out[0] if isinstance(out, (list, tuple)) else out
        return out

    def backward(grads):
        store["grads"] = grads
        return cls_backward(layer, grads)

    layer.forward, layer.backward = forward, backward


def _layer_flow(name, layer, store):
    if "x" not in store:
        raise RuntimeError(f"gradient_flow: recurrent layer {name!r} was not run by the model's "
                           "forward pass, so its gradient flow cannot be measured.")
    x, mask, s0 = store["x"], store["mask"], store["states0"]
    if s0 is not None and len(s0) != layer.n_states:
        s0 = None
    rp = Replay(layer, x, mask, s0)
    tol = 1e-9 if rp.dtype == np.float64 else 1e-4
    if not np.allclose(rp.output, store["out"], rtol=tol * 10, atol=tol):
        err = float(np.max(np.abs(rp.output - store["out"])))
        raise RuntimeError(
            f"gradient_flow: replaying layer {name!r} through its cell's step does not "
            f"reproduce its output (max abs difference {err:.3g}); the layer's forward pass and "
            "rnnkit.diagnostics are out of step. Please report this as a bug.")
    grads = store.get("grads")
    if grads is None:
        grads = [None] * (len(rp.states0) + 1) if layer.return_state else None
    dhs, d_states = layer.step_gradients(grads, rp.xs.shape[0])
    dhs = None if dhs is None else dhs.astype(rp.dtype)
    d_states = [None if d is None else d.astype(rp.dtype) for d in d_states]
    state_grads = rp.backward(dys=dhs, dstates=d_states)
    dh, dc = state_grads[0], (state_grads[1] if len(state_grads) > 1 else None)
    norms = np.linalg.norm(dh.astype(np.float64), axis=2).mean(axis=1)      # (T,)
    cnorms = None if dc is None else np.linalg.norm(dc.astype(np.float64), axis=2).mean(axis=1)
    judged = norms
    if dhs is not None:
        # Every step also receives a direct gradient from the layer above, so the total
        # gradient grows going back simply by accumulating those injections (a healthy
        # return_sequences layer would look 'exploding'). Judge the recurrence alone: the
        # last step's gradient carried back with no further injection.
        last = np.zeros_like(dhs)
        last[-1] = dhs[-1]
        carried = rp.backward(dys=last, dstates=d_states)[0]
        judged = np.linalg.norm(carried.astype(np.float64), axis=2).mean(axis=1)
    return LayerFlow(name=name, cell=type(layer).__name__, norms=norms, cell_norms=cnorms,
                     **judge(judged))
