"""Replaying a recurrent layer's time loop with the pure-NumPy reference kernel.

The diagnostics never touch layer code: they take a layer's weights and the input it saw, and
re-run the layer's own cell (its ``step`` / ``step_backward``, :mod:`rnnkit.cells`) over time
with the generic loop of :mod:`rnnkit.kernels.reference`, which keeps one cache per step. The
per-step gradients and Jacobians come from the cell's own backward step: no copy of its math.
"""

from __future__ import annotations

import numpy as np

from ..kernels import reference
from ..layers.rnn import RNN


def recurrent_layers(model):
    """The recurrent layers of ``model`` (RNN, SimpleRNN, LSTM, GRU), in model order.

    Recurrent layers inside wrappers (e.g. the two directions of a ``Bidirectional``) are
    found through the wrapper's inner layers.

    Args:
        model: an rnnkit model with a ``layers`` list.

    Returns:
        list of ``(index in model.layers, name, layer)``; ``name`` is the layer name, prefixed
        with the wrapper's name for inner layers (``'bidirectional/forward_lstm'``).
    """
    out = []

    def visit(i, layer, prefix):
        if isinstance(layer, RNN):
            out.append((i, prefix + layer.name, layer))
            return
        inner = getattr(layer, "_inner_layers", None)
        if callable(inner):
            for sub in inner():
                visit(i, sub, f"{prefix}{layer.name}/")

    for i, layer in enumerate(model.layers):
        visit(i, layer, "")
    return out


def check_recurrent_layer(layer, what="layer"):
    """Raise a clear error unless ``layer`` is a built recurrent layer (RNN, SimpleRNN, LSTM,
    GRU)."""
    if not isinstance(layer, RNN):
        raise TypeError(
            f"{what} must be an rnnkit recurrent layer (RNN, SimpleRNN, LSTM or GRU), got "
            f"{type(layer).__name__}. Pass e.g. model.layers[0]."
        )
    if not layer.built:
        raise ValueError(
            f"{what} {layer.name!r} is not built yet, so it has no weights. Call the model on "
            "data first (or build it with an input shape)."
        )


def cell_copy(layer, dtype):
    """A copy of ``layer``'s cell holding its current weights in ``dtype`` (same math)."""
    cell = layer.cell.clone()
    cell.build_weights(layer.input_shape[-1], dtype)
    for name, w in layer.cell.params.items():
        cell.params[name][...] = w
    return cell


class Replay:
    """The forward pass of one recurrent layer re-run through its cell's own ``step``
    (the generic loop, :func:`rnnkit.kernels.reference.forward_steps`), time-major, in
    processing order, keeping one cache per step.

    Attributes:
        cell: a copy of the layer's cell with its weights in ``dtype``.
        xs: (T, B, F) the inputs in processing order (reversed in time when ``go_backwards``).
        states0: list of (B, n) initial states.
        ys: (T, B, O) the output after every step (processing order).
        states: list of final states.
        mask: (T, B) bool or None.
        dtype: the replay's float dtype.
    """

    def __init__(self, layer, x, mask=None, states0=None, dtype=None):
        check_recurrent_layer(layer)
        self.dtype = dtype = np.dtype(dtype or layer.dtype)
        x = np.asarray(x, dtype)
        if x.ndim != 3:
            raise ValueError(
                f"Layer {layer.name!r} input must have shape (batch, timesteps, features), got "
                f"{x.shape}."
            )
        B, T, F = x.shape
        if F != layer.input_shape[-1]:
            raise ValueError(
                f"Layer {layer.name!r} was built for {layer.input_shape[-1]} features, got "
                f"input with {F} features (shape {x.shape})."
            )
        self.layer, self.cell = layer, cell_copy(layer, dtype)
        xt = x.transpose(1, 0, 2)                                       # (T, B, F)
        mt = None if mask is None else np.asarray(mask, bool).T         # (T, B)
        if layer.go_backwards:
            xt = xt[::-1]
            mt = None if mt is None else mt[::-1]
        self.mask = None if mt is None else np.ascontiguousarray(mt)
        self.xs = np.ascontiguousarray(xt)
        if states0 is None:
            states0 = [np.zeros((B, n), dtype) for n in self.cell.state_size]
        self.states0 = [np.asarray(s, dtype) for s in states0]
        self.ys, self.states, self._cache = reference.forward_steps(
            self.cell, self.xs, self.states0, self.mask)

    @property
    def output(self):
        """What the layer returns: (B, T, O) with ``return_sequences`` else (B, O)."""
        if self.layer.return_sequences:
            return self.ys.transpose(1, 0, 2)
        return self.states[0] if self.cell.output_is_state else self.ys[-1]

    def backward(self, dys=None, dstates=None):
        """BPTT through the cell's ``step_backward``, recording the total state gradient at
        every step.

        Args:
            dys: (T, B, O) dL/d(output at step t) in processing order, or None.
            dstates: sequence of dL/d(final states) (entries may be None), or None.

        Returns:
            list with one (T, B, n) array per state: ``dL/ds_t``, the total gradient with
            respect to the state after step ``t`` (the carried state, after masking): the
            direct output gradient (for cells whose output is their first state) plus
            everything that flows back through steps ``t+1 .. T-1``. For LSTM: ``[dh, dc]``.
        """
        T, B = self.xs.shape[:2]
        grads = [np.empty((T, B, n), self.dtype) for n in self.cell.state_size]
        reference.backward_steps(self.cell, self._cache, dys,
                                 list(dstates or [None] * len(self.states0)), self.mask,
                                 state_grads=grads)
        return grads
