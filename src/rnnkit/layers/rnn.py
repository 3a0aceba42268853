"""The generic recurrent layer: ``RNN(cell)``, the one place that loops over time.

``RNN`` knows masks, ``go_backwards``, stateful carry, initial states,
``return_sequences`` / ``return_state``, dropout masks and the carry between truncated-BPTT
windows; the cell (:mod:`rnnkit.cells`) knows one step. For a built-in cell
(:class:`~rnnkit.cells.ProjectedCell`):

1. the input projection for all steps, ``X @ kernel + b_in``, is one matrix product;
2. the recurrent part runs in the cell's registered compiled kernel
   (:mod:`rnnkit.kernels`), or in the generic loop over the cell's own step;
3. the kernel gradient is one matrix product over all ``T * B`` rows.

Any other cell (a user cell, or a subclass overriding ``step``) runs the generic loop over
its ``step`` / ``step_backward``. Inputs are batch-major ``(B, T, F)`` as in Keras; the loop
runs time-major ``(T, B, .)``.
"""

from __future__ import annotations

import numpy as np

from .. import _backend, kernels
from .. import cells as _cells
from .._validate import check_bool
from ..cells.base import overrides_protocol
from ..kernels import threads as _threads
from .base import INFERENCE, Layer, as_float_array


class RNN(Layer):
    """Run a cell (or a stack of cells) over sequences, as ``keras.layers.RNN``.

    Args:
        cell: a :class:`rnnkit.cells.Cell` (built-in such as ``LSTMCell(64)``, or your own),
            or a list of cells, stacked with :class:`rnnkit.cells.StackedRNNCells`.
        return_sequences: return the output of every step (B, T, O) instead of the last
            (B, O).
        return_state: also return the final states: ``[output, *states]``.
        go_backwards: process the sequence from its last step to its first (outputs in
            processing order).
        stateful: carry the final states of a batch into the next call (reset with
            :meth:`reset_states`).
        name, trainable, dtype, input_shape, input_dim, batch_input_shape: see
            :class:`rnnkit.layers.Layer`.

    Shapes: input (B, T, F); output (B, O) or (B, T, O), ``O = cell.output_size``; states
    (B, n) for each ``n`` in ``cell.state_size``. Masked steps (from ``Masking``,
    ``Embedding(mask_zero=True)`` or ``mask=``) carry states and output unchanged. Dropout:
    the cell's ``dropout`` / ``recurrent_dropout`` rates, one mask per sequence, training only.

    Example:
        >>> import numpy as np, rnnkit
        >>> layer = rnnkit.layers.RNN(rnnkit.layers.LSTMCell(8), return_sequences=True)
        >>> layer(np.zeros((2, 5, 3))).shape
        (2, 5, 8)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None):
        super().__init__(name=name, trainable=trainable, dtype=dtype, input_shape=input_shape,
                         input_dim=input_dim, batch_input_shape=batch_input_shape)
        if isinstance(cell, (list, tuple)):
            cell = _cells.StackedRNNCells(list(cell))
        if not isinstance(cell, _cells.Cell):
            raise TypeError(
                f"RNN expects a cell (an rnnkit.cells.Cell instance, e.g. "
                f"rnnkit.layers.LSTMCell(32)) or a list of cells, got {type(cell).__name__}.")
        sizes = getattr(cell, "state_size", None)
        if not isinstance(sizes, (list, tuple)) or not sizes or not all(
                isinstance(n, (int, np.integer)) and n > 0 for n in sizes):
            raise ValueError(f"{type(cell).__name__}.state_size must be a non-empty list of "
                             f"positive ints, got {sizes!r}.")
        out = getattr(cell, "output_size", None)
        if not isinstance(out, (int, np.integer)) or out <= 0:
            raise ValueError(f"{type(cell).__name__}.output_size must be a positive int, got "
                             f"{out!r}.")
        self.cell = cell
        self.return_sequences = check_bool("return_sequences", return_sequences)
        self.return_state = check_bool("return_state", return_state)
        self.go_backwards = check_bool("go_backwards", go_backwards)
        self.stateful = check_bool("stateful", stateful)
        self.states = None  # carried states when stateful (or between TBPTT windows)
        self.carry_states = False
        #: False when nothing reads dL/dx (set by the training step on a model's first layer)
        self.input_grad_needed = True
        self._workspace = _threads.Workspace()
        self._stream_plan = None   # (key, generic loop?, compiled step fn) of step()
        self._cache = None
        self._rng = None if cell.seed is None else np.random.default_rng(cell.seed)

    def reset_dropout_rng(self):
        """Restart the sequence of dropout masks from the cell's ``seed`` (no effect without
        a seed)."""
        if self.cell.seed is not None:
            self._rng = np.random.default_rng(self.cell.seed)

    def _dropout_mask(self, shape, rate):
        """A scaled keep-mask (values 0 or 1/(1-rate)), one per sequence."""
        rng = self._rng if self._rng is not None else _backend.rng()
        keep = rng.random(shape) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    @property
    def n_states(self):
        """Number of state arrays (``len(cell.state_size)``)."""
        return len(self.cell.state_size)

    # -- build -----------------------------------------------------------------
    def build(self, input_shape):
        """Create the cell's parameters as this layer's weights (input (B, T, F))."""
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects input of rank 3 "
                f"(batch, timesteps, features), got shape {tuple(input_shape)}."
            )
        F = input_shape[-1]
        if F is None:
            raise ValueError(f"Layer {self.name!r}: the feature dimension must be known.")
        if F <= 0:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} needs at least one input "
                             f"feature, got input shape {tuple(input_shape)}.")

        def make(spec):
            return self.add_weight(spec.name, spec.shape, spec.initializer, spec.regularizer,
                                   constraint=spec.constraint)
        self.params, self.grads, self.regularizers = {}, {}, {}
        self.cell.build_weights(F, self.dtype, make=make)
        super().build(input_shape)

    # -- forward ---------------------------------------------------------------
    def _check_x(self, x):
        x = as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype)
        if x.ndim != 3:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects input of rank 3 "
                f"(batch, timesteps, features), got shape {x.shape}. "
                + ("Add a time axis with x[:, :, None]." if x.ndim == 2 else "")
            )
        self.maybe_build(x.shape)
        F = self.input_shape[-1]
        if x.shape[2] != F:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} was built for {F} features, "
                f"got input with {x.shape[2]} features (shape {x.shape})."
            )
        if x.shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} got zero-length sequences "
                f"(shape {x.shape}); every sequence needs at least one time step."
            )
        return x

    def _zero_states(self, B):
        return [np.zeros((B, n), self.dtype) for n in self.cell.state_size]

    def _initial_states(self, B, initial_state):
        sizes = self.cell.state_size
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)):
                initial_state = [initial_state]
            if len(initial_state) != len(sizes):
                raise ValueError(
                    f"{type(self).__name__} layer {self.name!r} expects {len(sizes)} "
                    f"initial state array(s), got {len(initial_state)}."
                )
            out = []
            for k, (s, n) in enumerate(zip(initial_state, sizes)):
                s = as_float_array(s, f"initial_state[{k}]", self.dtype)
                if s.shape != (B, n):
                    raise ValueError(
                        f"initial_state[{k}] of layer {self.name!r} must have shape "
                        f"(batch, {n}) = {(B, n)}, got {s.shape}."
                    )
                out.append(s)
            return out
        if (self.stateful or self.carry_states) and self.states is not None:
            if self.states[0].shape[0] != B:
                raise ValueError(
                    f"Stateful layer {self.name!r} carries states for batch size "
                    f"{self.states[0].shape[0]}, got a batch of {B}. Feed batches of the same "
                    "size (fit with shuffle=False and a batch_size that divides the number of "
                    "samples), or call reset_states() first."
                )
            return list(self.states)
        return self._zero_states(B)

    def forward(self, inputs, training=False, mask=None, initial_state=None):
        """Run the layer.

        Args:
            inputs: (B, T, F) array, or ``[x, *initial_states]``.
            training: apply dropout masks when True.
            mask: (B, T) bool array or None; masked steps carry state and output unchanged.
            initial_state: list of (B, n) arrays, one per entry of ``cell.state_size``.

        Returns:
            (B, T, O) if ``return_sequences`` else (B, O); with ``return_state`` a list
            ``[output, *final_states]``.
        """
        if isinstance(inputs, (list, tuple)):
            if initial_state is not None:
                raise ValueError("Pass initial states either inside inputs or as "
                                 "initial_state=, not both.")
            inputs, initial_state = inputs[0], list(inputs[1:]) or None
        x = self._check_x(inputs)
        B, T, F = x.shape
        self._cache = None
        self._workspace.release()          # the previous step's buffers are free again
        has_init = initial_state is not None
        states0 = self._initial_states(B, initial_state)
        if mask is not None:
            mask = check_mask(mask, B, T, self.name)
        mt = None if mask is None else np.ascontiguousarray(mask.T)   # (T, B)
        cell = self.cell
        projected = not overrides_protocol(cell)
        if not training and INFERENCE.get() and projected:
            res = kernels.infer_sequence(cell, x, states0, mt, self.go_backwards,
                                         self.return_sequences)
            if res is not None:
                out, states = res
                return self._finish(out if self.return_sequences else states[0], states)
        xt = x.transpose(1, 0, 2)                                   # (T, B, F)
        if self.go_backwards:
            xt = xt[::-1]
            mt = None if mt is None else mt[::-1]
        dp = rdp = None
        if training and cell.dropout > 0:
            dp = self._dropout_mask((B, F), cell.dropout)
            xt = xt * dp
        if training and cell.recurrent_dropout > 0:
            rdp = self._dropout_mask((B, cell.state_size[0]), cell.recurrent_dropout)
        xt = np.ascontiguousarray(xt)
        ws = self._workspace.get()
        if projected:
            W, (b_in, _) = cell.params["kernel"], cell.split_bias()
            # "tbg": the (T, B, G) buffer shared by X @ W here and dL/d(X @ W) in backward
            xw = _threads.buffer(ws, "tbg", (T, B, W.shape[1]), self.dtype)   # (T, B, G)
            _threads.matmul(xt.reshape(T * B, F), W, out=xw.reshape(T * B, -1), bias=b_in)
            hs, states, kcache = kernels.forward_sequence(cell, xw, states0, mt, rdp, ws=ws)
            del xw
            if kernels.reuses_input_buffer(kcache):
                self._workspace.release("tbg")    # backward writes dL/d(X @ W) into it
        else:
            hs, states, kcache = kernels.forward_steps(cell, xt, states0, mt, rdp, training,
                                                       ws=ws)
        self._cache = (xt, mt, dp, rdp, kcache, has_init, projected)
        if self.return_sequences:
            out = hs.transpose(1, 0, 2).copy()        # a copy: hs may be a reused buffer
        else:
            out = states[0] if cell.output_is_state else hs[-1].copy()
        return self._finish(out, states)

    def _finish(self, out, states):
        """Keep the final states of a stateful (or TBPTT-carrying) layer; build the result."""
        if self.stateful or self.carry_states:
            self.states = [s.copy() for s in states]
        if self.return_state:
            return [out, *states]
        return out

    def backward(self, grads):
        """BPTT. ``grads`` mirrors the outputs: dL/d(output), or a list with the states' too.

        Returns dL/dx (B, T, F), or ``[dx, *d_initial_states]`` when initial states were
        given; None when :attr:`input_grad_needed` is False and no initial states were given.
        Weight gradients are written to ``self.grads``.
        """
        if self._cache is None:
            raise RuntimeError(f"Layer {self.name!r}: backward called before forward.")
        xt, mt, dp, rdp, kcache, has_init, projected = self._cache
        T, B, F = xt.shape
        cell = self.cell
        dhs, d_states = self.step_gradients(grads, T)
        ws = self._workspace.get()
        if projected:
            W = cell.params["kernel"]
            dxw, d0, dU, db_rec = kernels.backward_sequence(cell, kcache, dhs, d_states, mt,
                                                            rdp, ws=ws)
            dxw2 = dxw.reshape(T * B, -1)
            dW = _threads.matmul(xt.reshape(T * B, F).T, dxw2, out=self.grads.get("kernel"))
            db_in = None if cell.split_bias()[0] is None else dxw2.sum(axis=0)
            self._write_grads(cell.collect_grads(dW, db_in, dU, db_rec))
            if not self.input_grad_needed and not has_init:
                return None
            # W^T copy: faster BLAS
            dxt = _threads.matmul(dxw2, np.ascontiguousarray(W.T)).reshape(T, B, F)
        else:
            dxt, d0, dparams = kernels.backward_steps(
                cell, kcache, dhs, d_states, mt, rdp,
                input_grad=self.input_grad_needed or has_init, ws=ws)
            self._write_grads(dparams)
            if not self.input_grad_needed and not has_init:
                return None
        if dp is not None:
            dxt = dxt * dp
        if self.go_backwards:
            dxt = dxt[::-1]
        dx = np.ascontiguousarray(dxt.transpose(1, 0, 2))
        if has_init:
            return [dx, *d0]
        return dx

    def step_gradients(self, grads, T):
        """Where the gradients of this layer's outputs enter the time loop.

        Args:
            grads: what :meth:`backward` receives: dL/d(output), or ``[dL/d(output),
                *dL/d(final states)]`` with ``return_state`` (entries may be None).
            T: number of time steps.

        Returns:
            ``(dys, dstates)``: dys (T, B, O) dL/dy_t in processing order, or None when no
            step output receives gradient directly; dstates a list of dL/d(final state)
            arrays or None. For cells whose output is their state (all built-in cells) the
            gradient of a final-step output is added to ``dstates[0]``.
        """
        if self.return_state:
            d_out, *d_states = grads
        else:
            d_out, d_states = grads, [None] * self.n_states
        d_states = [None if d is None else np.asarray(d, self.dtype) for d in d_states]
        dys = None
        if d_out is not None:
            d_out = np.asarray(d_out, self.dtype)
            if self.return_sequences:
                dys = d_out.transpose(1, 0, 2)
            elif self.cell.output_is_state:
                d_states[0] = d_out if d_states[0] is None else d_states[0] + d_out
            else:
                dys = np.zeros((T, d_out.shape[0], self.cell.output_size), self.dtype)
                dys[-1] = d_out
        return dys, d_states

    def _write_grads(self, dparams):
        for name, g in zip(self.cell.param_names, dparams):
            buf = self.grads[name]
            if g is None:
                buf.fill(0)
            elif g is not buf:
                buf[...] = g

    # -- masks, shapes, states -----------------------------------------------------
    def compute_mask(self, x, mask):
        if mask is None or not self.return_sequences:
            return None
        return mask[:, ::-1] if self.go_backwards else mask

    def compute_output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        O = self.cell.output_size
        out = (B, T, O) if self.return_sequences else (B, O)
        if self.return_state:
            return [out] + [(B, n) for n in self.cell.state_size]
        return out

    def reset_states(self, rows=None):
        """Zero the carried states of a stateful layer.

        Args:
            rows: None to forget the states of every row (the next batch starts from zeros and
                may have any batch size), or an int / list of row indices (e.g. the streams
                that ended) to zero only those rows.
        """
        if self.states is None:
            return
        if rows is None:
            self.states = None
            return
        idx = check_rows(rows, self.states[0].shape[0], self.name)
        for s in self.states:
            s[idx] = 0

    def set_state_carry(self, enabled):
        """Carry the final states from one call to the next even when not ``stateful``.

        Truncated BPTT uses it: the windows of one batch continue each other's states.
        Enabling or disabling it forgets the carried states of a non-stateful layer.

        Args:
            enabled: bool.
        """
        self.carry_states = check_bool("enabled", enabled)
        if not self.stateful:
            self.states = None

    # -- streaming ----------------------------------------------------------------------
    def step(self, x, states=None, mask=None, validate=True):
        """Advance the layer by one time step (or a chunk of steps) from given states.

        A functional, cache-free forward pass for streaming and inference: nothing is stored
        on the layer (``stateful`` is ignored), no dropout is applied. Feeding a sequence in
        pieces and passing the returned states back in gives exactly what one call on the
        whole sequence gives.

        Args:
            x: (B, F) one time step, or (B, k, F) a chunk of k steps.
            states: sequence of (B, n) arrays (one per ``cell.state_size`` entry), or None
                for zeros.
            mask: (B,) bool for one step, (B, k) for a chunk, or None. Masked steps carry
                state and output unchanged.
            validate: False skips the argument checks, for callers that pass what a previous
                call returned (x of the layer's dtype, states from ``step``): the per-step
                cost of streaming.

        Returns:
            (outputs, states): outputs (B, O) for one step or (B, k, O) for a chunk (the
            output after every step), and the tuple of new (B, n) states.

        Example:
            >>> import numpy as np, rnnkit
            >>> lstm = rnnkit.layers.LSTM(4)
            >>> _ = lstm(np.zeros((1, 3, 2)))            # build
            >>> y, s = lstm.step(np.ones((1, 2)))        # first step from zero states
            >>> y, s = lstm.step(np.ones((1, 2)), s)     # next step
            >>> y.shape, len(s)
            ((1, 4), 2)
        """
        if validate:
            x, states, mask = self._check_step(x, states, mask)
        elif x.dtype != self.dtype:
            x = x.astype(self.dtype)
        single = x.ndim == 2
        mt = None
        if mask is not None:
            mt = np.ascontiguousarray(np.asarray(mask, bool).reshape(x.shape[0], -1).T)
        cell = self.cell
        # what serves a step is decided once per dtype and kernel-registry version: the
        # per-step cost of streaming is a few microseconds, the lookup would be a third of it
        key = (x.dtype, kernels.VERSION)
        plan = self._stream_plan
        if plan is None or plan[0] != key:
            generic = overrides_protocol(cell)
            plan = self._stream_plan = (key, generic, None if generic else
                                        kernels.stream_step_fn(cell, x.dtype))
        if plan[1]:
            xs = x[None] if single else np.ascontiguousarray(x.transpose(1, 0, 2))
            ys, new, _ = kernels.forward_steps(cell, xs, states, mt)
            return (ys[0] if single else ys.transpose(1, 0, 2)), tuple(new)
        if single and mt is None and plan[2] is not None:  # one unmasked step: compiled end
            new = plan[2](cell, x, states)                    # to end where registered
            return new[0], tuple(new)
        W, (b_in, _) = cell.params["kernel"], cell.split_bias()
        if single:
            xw = (x @ W)[None]                                          # (1, B, G)
        else:
            k, B, F = x.shape[1], x.shape[0], x.shape[2]
            xw = (np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(k * B, F) @ W).reshape(
                k, B, -1)
        if b_in is not None:
            xw += b_in
        hs, new_states, _ = kernels.forward_sequence(cell, xw, states, mt, None)
        out = hs[0].copy() if single else hs.transpose(1, 0, 2).copy()
        return out, tuple(new_states)

    def _check_step(self, x, states, mask):
        if not self.built:
            raise RuntimeError(
                f"Layer {self.name!r} is not built yet; call it once on data of shape "
                "(batch, timesteps, features) (or build the model) before step()."
            )
        if self.go_backwards:
            raise ValueError(
                f"Layer {self.name!r} has go_backwards=True: it reads the sequence from the end, "
                "so it cannot be fed one step at a time. Process whole sequences instead."
            )
        x = x if (isinstance(x, np.ndarray) and x.dtype == self.dtype) else np.asarray(
            x, dtype=self.dtype)
        single = x.ndim == 2
        F = self.input_shape[-1]
        if x.ndim not in (2, 3) or x.shape[-1] != F:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}.step expects one step (batch, {F}) "
                f"or a chunk (batch, steps, {F}), got shape {x.shape}."
            )
        B = x.shape[0]
        k = 1 if single else x.shape[1]
        if k == 0:
            raise ValueError(f"Layer {self.name!r}.step got an empty chunk (0 steps), shape "
                             f"{x.shape}.")
        states = self._initial_states(B, states) if states is not None else \
            self._zero_states(B)
        if mask is not None:
            mask = np.asarray(mask)
            if single and mask.shape == (B,):
                mask = mask[:, None]
            mask = check_mask(mask, B, k, self.name)
        return x, states, mask

    # -- config ----------------------------------------------------------------------------
    def get_config(self):
        cfg = super().get_config()
        cfg.update(cell=_cells.serialize(self.cell), return_sequences=self.return_sequences,
                   return_state=self.return_state, go_backwards=self.go_backwards,
                   stateful=self.stateful)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if not isinstance(config.get("cell"), _cells.Cell):
            config["cell"] = _cells.deserialize(config.get("cell"), custom_objects)
        return cls(**config)


#: options of the built-in cells readable on the layer too (``LSTM(8).units``); a cell without
#: the option raises AttributeError, so ``getattr(layer, "reset_after", True)`` works
_CELL_OPTIONS = ("units", "activation", "recurrent_activation", "use_bias",
                 "kernel_initializer", "recurrent_initializer", "bias_initializer",
                 "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "dropout",
                 "recurrent_dropout", "seed", "n_gates", "reset_after", "unit_forget_bias",
                 "use_peepholes", "proj_size", "zoneout")


def _cell_option(name):
    return property(lambda self: getattr(self.cell, name),
                    doc=f"The cell's ``{name}`` (read-only).")


for _name in _CELL_OPTIONS:
    setattr(RNN, _name, _cell_option(_name))


def check_mask(mask, B, T, name):
    """Validate a (B, T) mask for layer ``name``; returns it as a bool array."""
    mask = np.asarray(mask)
    if mask.shape != (B, T):
        raise ValueError(
            f"Layer {name!r}: the mask has shape {mask.shape}, but the input has batch size {B} "
            f"and {T} time steps, so the mask must have shape (batch, timesteps) = {(B, T)}. "
            "Build the mask from the same padded array you pass as x."
        )
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"Layer {name!r}: the mask must hold booleans, got dtype {mask.dtype}.")
    return mask.astype(bool)


def check_rows(rows, B, name):
    """Validate row indices for reset_states; returns an int array."""
    idx = np.atleast_1d(np.asarray(rows))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or (
            idx.size and (idx.min() < -B or idx.max() >= B)):
        raise ValueError(
            f"reset_states(rows=...) of layer {name!r} expects integer row indices in "
            f"[0, {B}) (the carried batch size), got {rows!r}."
        )
    return idx
