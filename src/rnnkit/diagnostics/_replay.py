"""Replaying a recurrent layer's time loop with the pure-NumPy reference kernel.

The diagnostics never touch layer code: they take a layer's weights and the input it saw, and
re-run the same cell (:mod:`rnnkit.cells`) over time with :mod:`rnnkit.kernels.reference`,
which keeps one cache per step. Those caches give the per-step gradients and Jacobians.
"""

from __future__ import annotations

import numpy as np

from ..kernels import reference
from ..layers.rnn import RNN


def recurrent_layers(model):
    """The recurrent layers of ``model`` (SimpleRNN, LSTM, GRU), in model order.

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
    """Raise a clear error unless ``layer`` is a built SimpleRNN, LSTM or GRU."""
    if not isinstance(layer, RNN):
        raise TypeError(
            f"{what} must be an rnnkit recurrent layer (SimpleRNN, LSTM or GRU), got "
            f"{type(layer).__name__}. Pass e.g. model.layers[0]."
        )
    if not layer.built:
        raise ValueError(
            f"{what} {layer.name!r} is not built yet, so it has no weights. Call the model on "
            "data first (or build it with an input shape)."
        )


class Replay:
    """The reference forward pass of one recurrent layer, time-major, in processing order.

    Attributes:
        xw: (T, B, G) input projections ``x_t @ kernel + bias``.
        states0: tuple of (B, H) initial states.
        hs: (T, B, H) the hidden state after every step (processing order: reversed in time
            when ``go_backwards``).
        states: tuple of final (B, H) states.
        caches: list of T per-step cell caches (see :mod:`rnnkit.cells`).
        mask: (T, B) bool or None.
        U: (H, G) recurrent kernel; b_rec: (G,) recurrent bias or None.
    """

    def __init__(self, layer, x, mask=None, states0=None, dtype=None):
        check_recurrent_layer(layer)
        dtype = np.dtype(dtype or layer.dtype)
        x = np.asarray(x, dtype)
        if x.ndim != 3:
            raise ValueError(
                f"Layer {layer.name!r} input must have shape (batch, timesteps, features), got "
                f"{x.shape}."
            )
        B, T, F = x.shape
        W = layer.params["kernel"].astype(dtype)
        if F != W.shape[0]:
            raise ValueError(
                f"Layer {layer.name!r} was built for {W.shape[0]} features, got input with {F} "
                f"features (shape {x.shape})."
            )
        self.layer, self.cell = layer, layer.cell
        self.U = layer.params["recurrent_kernel"].astype(dtype)
        b_in, b_rec = layer._split_bias()
        self.b_rec = None if b_rec is None else np.asarray(b_rec, dtype)
        xt = x.transpose(1, 0, 2)                                       # (T, B, F)
        mt = None if mask is None else np.asarray(mask, bool).T         # (T, B)
        if layer.go_backwards:
            xt = xt[::-1]
            mt = None if mt is None else mt[::-1]
        self.mask = None if mt is None else np.ascontiguousarray(mt)
        self.xw = (np.ascontiguousarray(xt).reshape(T * B, F) @ W).reshape(T, B, -1)
        if b_in is not None:
            self.xw += np.asarray(b_in, dtype)
        H = layer.units
        if states0 is None:
            states0 = tuple(np.zeros((B, H), dtype) for _ in range(layer.n_states))
        self.states0 = tuple(np.asarray(s, dtype) for s in states0)
        self.hs, self.states, self.caches = reference.forward_sequence(
            self.cell, self.xw, self.states0, self.U, self.b_rec, self.mask, None)

    @property
    def output(self):
        """What the layer returns: (B, T, H) with ``return_sequences`` else (B, H)."""
        if self.layer.return_sequences:
            return self.hs.transpose(1, 0, 2)
        return self.states[0]

    def backward(self, dhs=None, dstates=None):
        """BPTT with the reference loop, recording the total state gradient at every step.

        Args:
            dhs: (T, B, H) dL/d(output at step t) in processing order, or None.
            dstates: tuple of (B, H) dL/d(final states) (entries may be None), or None.

        Returns:
            dh: (T, B, H) ``dL/dh_t`` — the total gradient with respect to the hidden state
                after step ``t`` (the carried state, after masking): the direct gradient
                ``dhs[t]`` plus everything that flows back through steps ``t+1 .. T-1``.
            dc: (T, B, H) the same for the LSTM cell state ``c_t``, or None for other cells.
        """
        T = len(self.caches)
        B, H = self.states0[0].shape
        dt = self.U.dtype
        dh = np.empty((T, B, H), dt)
        dc = np.empty((T, B, H), dt) if len(self.states0) == 2 else None
        reference.backward_sequence(self.cell, self.caches, dhs,
                                    tuple(dstates or (None,) * len(self.states0)), self.U,
                                    self.b_rec, self.mask, None,
                                    state_grads=(dh,) if dc is None else (dh, dc))
        return dh, dc
