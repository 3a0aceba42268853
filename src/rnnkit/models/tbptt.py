"""Truncated backpropagation through time: ``fit(..., tbptt=k)``.

Each batch's sequences are cut into windows of k steps; recurrent layers carry their final
states from one window to the next as constants (no gradient crosses a window boundary) and
the weights are updated after every window. Evaluation and prediction can also run window by
window, which gives the same numbers with memory growing with k instead of T.

Mixed into :class:`rnnkit.models.engine.Engine`, which provides ``_train_step``, ``forward``
and ``_recurrent_layers``.
"""

from __future__ import annotations

import numpy as np


class TruncatedBPTT:
    """The windowing, state carrying and per-window updates behind ``tbptt=k``."""

    def _check_tbptt(self, tbptt, training=False):
        if tbptt is None:
            return None
        if isinstance(tbptt, bool) or not isinstance(tbptt, (int, np.integer)) or tbptt <= 0:
            raise ValueError(
                f"tbptt must be a positive integer (the window length in time steps), got "
                f"{tbptt!r}. Use tbptt=None to backpropagate through whole sequences."
            )
        if self._n_inputs != 1 or self._n_outputs != 1:
            raise ValueError(
                f"tbptt needs a model with one input and one output; model {self.name!r} has "
                f"{self._n_inputs} inputs and {self._n_outputs} outputs. Train without tbptt."
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
                layer.set_state_carry(True)
            return self

        def __exit__(self, *exc):
            for layer in self.layers:
                layer.set_state_carry(False)
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
