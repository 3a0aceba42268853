"""Recurrent layers: SimpleRNN, LSTM, GRU.

Every recurrent layer is the same wrapper around a cell from :mod:`rnnkit.cells`:

1. the input projection for all steps, ``X @ kernel + bias``, as one matrix product;
2. the time loop (forward) and backpropagation through time (backward) in
   :mod:`rnnkit.kernels` — compiled where supported, pure NumPy otherwise;
3. the kernel gradient as one matrix product over all ``T * B`` rows.

Inputs are batch-major ``(B, T, F)`` as in Keras; the loop runs time-major ``(T, B, .)``.
"""

from __future__ import annotations

import numpy as np

from .. import _backend, cells, kernels
from .. import activations as _act
from .. import initializers as _init
from .. import regularizers as _reg
from ..kernels import threads as _threads
from .base import INFERENCE, Layer, as_float_array, check_positive_int, check_rate


class RNNBase(Layer):
    """Shared machinery of SimpleRNN, LSTM and GRU (not used directly)."""

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = _act.get(activation)
        self.recurrent_activation = _act.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _init.get(kernel_initializer)
        self.recurrent_initializer = _init.get(recurrent_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = _reg.get(kernel_regularizer)
        self.recurrent_regularizer = _reg.get(recurrent_regularizer)
        self.bias_regularizer = _reg.get(bias_regularizer)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self._dropout_rng = None if seed is None else np.random.default_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.states = None  # carried states when stateful
        self._carry = False  # set by truncated BPTT: carry states between windows of a batch
        self.cell = self._make_cell()
        self._cache = None

    # -- subclass hooks --------------------------------------------------------
    n_gates = 1
    #: set by the training step on the model's first layer: dL/dx of the data is not needed
    _skip_input_grad = False

    def _make_cell(self):
        raise NotImplementedError  # abstract

    def _bias_init(self, shape):
        return self.bias_initializer

    @property
    def n_states(self):
        return self.cell.n_states

    # -- build -----------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects input of rank 3 "
                f"(batch, timesteps, features), got shape {tuple(input_shape)}."
            )
        F, H, G = input_shape[-1], self.units, self.n_gates * self.units
        if F is None:
            raise ValueError(f"Layer {self.name!r}: the feature dimension must be known.")
        self.add_weight("kernel", (F, G), self.kernel_initializer, self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (H, G), self.recurrent_initializer,
                        self.recurrent_regularizer)
        if self.use_bias:
            self.add_weight("bias", self._bias_shape(), self._bias_init(self._bias_shape()),
                            self.bias_regularizer)
        super().build(input_shape)

    def _bias_shape(self):
        return (self.n_gates * self.units,)

    def _split_bias(self):
        """(input bias added to X @ kernel, recurrent bias inside the cell or None)."""
        return (self.params["bias"] if self.use_bias else None), None

    # -- forward ---------------------------------------------------------------
    def _check_x(self, x):
        x = as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype)
        if x.ndim != 3:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects input of rank 3 "
                f"(batch, timesteps, features), got shape {x.shape}. "
                + ("Add a time axis with x[:, :, None]." if x.ndim == 2 else "")
            )
        F = self.params["kernel"].shape[0]
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

    def _initial_states(self, B, initial_state):
        H = self.units
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)):
                initial_state = [initial_state]
            if len(initial_state) != self.n_states:
                raise ValueError(
                    f"{type(self).__name__} layer {self.name!r} expects {self.n_states} "
                    f"initial state array(s), got {len(initial_state)}."
                )
            out = []
            for k, s in enumerate(initial_state):
                s = as_float_array(s, f"initial_state[{k}]", self.dtype)
                if s.shape != (B, H):
                    raise ValueError(
                        f"initial_state[{k}] of layer {self.name!r} must have shape "
                        f"(batch, units) = {(B, H)}, got {s.shape}."
                    )
                out.append(s)
            return tuple(out)
        if (self.stateful or self._carry) and self.states is not None:
            if self.states[0].shape[0] != B:
                raise ValueError(
                    f"Stateful layer {self.name!r} carries states for batch size "
                    f"{self.states[0].shape[0]}, got a batch of {B}. Feed batches of the same "
                    "size (fit with shuffle=False and a batch_size that divides the number of "
                    "samples), or call reset_states() first."
                )
            return tuple(self.states)
        return tuple(np.zeros((B, H), self.dtype) for _ in range(self.n_states))

    def _dropout_mask(self, shape, rate):
        rng = self._dropout_rng if self._dropout_rng is not None else _backend.rng()
        keep = rng.random(shape) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    def forward(self, inputs, training=False, mask=None, initial_state=None):
        """Run the layer.

        Args:
            inputs: (B, T, F) array, or ``[x, *initial_states]``.
            training: apply dropout masks when True.
            mask: (B, T) bool array or None; masked steps carry state and output unchanged.
            initial_state: list of (B, units) arrays (h, or h and c for LSTM).

        Returns:
            (B, T, units) if ``return_sequences`` else (B, units); with ``return_state`` a
            list ``[output, *final_states]``.
        """
        if isinstance(inputs, (list, tuple)):
            if initial_state is not None:
                raise ValueError("Pass initial states either inside inputs or as initial_state=, not both.")
            inputs, initial_state = inputs[0], list(inputs[1:]) or None
        x = self._check_x(inputs)
        B, T, F = x.shape
        self._cache = None              # frees the previous step's buffers for reuse
        has_init = initial_state is not None
        states0 = self._initial_states(B, initial_state)
        if mask is not None:
            mask = _check_mask(mask, B, T, self.name)
        mt = None if mask is None else np.ascontiguousarray(mask.T)   # (T, B)
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        b_in, b_rec = self._split_bias()
        if not training and INFERENCE.get():
            res = kernels.infer_sequence(self.cell, x, W, U, b_in, b_rec, states0, mt,
                                         self.go_backwards, self.return_sequences)
            if res is not None:
                out, states = res
                return self._finish(out if self.return_sequences else states[0], states)
        xt = x.transpose(1, 0, 2)                                   # (T, B, F)
        if self.go_backwards:
            xt = xt[::-1]
            mt = None if mt is None else mt[::-1]
        dp = rdp = None
        if training and self.dropout > 0:
            dp = self._dropout_mask((B, F), self.dropout)
            xt = xt * dp
        if training and self.recurrent_dropout > 0:
            rdp = self._dropout_mask((B, self.units), self.recurrent_dropout)
        xt = np.ascontiguousarray(xt)
        ws = _threads.workspace(self)
        # "tbg": the (T, B, G) buffer shared by X @ W here and dL/d(X @ W) in backward (never
        # alive at the same time), so reuse adds no memory over fresh allocations
        xw = _threads.buffer(ws, "tbg", (T, B, W.shape[1]), self.dtype)   # (T, B, G)
        _threads.matmul(xt.reshape(T * B, F), W, out=xw.reshape(T * B, -1))
        if b_in is not None:
            xw += b_in
        hs, states, kcache = kernels.forward_sequence(self.cell, xw, states0, U, b_rec, mt, rdp,
                                                      ws=ws)
        del xw
        self._cache = (xt, mt, dp, rdp, kcache, has_init)
        out = np.ascontiguousarray(hs.transpose(1, 0, 2)) if self.return_sequences else states[0]
        return self._finish(out, states)

    def _finish(self, out, states):
        """Keep the final states of a stateful (or TBPTT-carrying) layer; build the result."""
        if self.stateful or self._carry:
            self.states = tuple(s.copy() for s in states)
        if self.return_state:
            return [out, *states]
        return out

    def backward(self, grads):
        """BPTT. ``grads`` mirrors the outputs: dL/d(output), or a list with the states' too.

        Returns dL/dx (B, T, F), or ``[dx, *d_initial_states]`` when initial states were given.
        Weight gradients are written to ``self.grads``.
        """
        if self._cache is None:
            raise RuntimeError(f"Layer {self.name!r}: backward called before forward.")
        xt, mt, dp, rdp, kcache, has_init = self._cache
        T, B, F = xt.shape
        if self.return_state:
            d_out, *d_states = grads
        else:
            d_out, d_states = grads, [None] * self.n_states
        d_states = [None if d is None else np.asarray(d, self.dtype) for d in d_states]
        dhs = None
        if d_out is not None:
            d_out = np.asarray(d_out, self.dtype)
            if self.return_sequences:
                dhs = d_out.transpose(1, 0, 2)
            else:
                d_states[0] = d_out if d_states[0] is None else d_states[0] + d_out
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        b_in, b_rec = self._split_bias()
        dxw, d0, dU, db_rec = kernels.backward_sequence(
            self.cell, kcache, dhs, tuple(d_states), U, b_rec, mt, rdp,
            ws=_threads.workspace(self))
        dxw2 = dxw.reshape(T * B, -1)
        _threads.matmul(xt.reshape(T * B, F).T, dxw2, out=self.grads["kernel"])
        self.grads["recurrent_kernel"][...] = dU
        if self.use_bias:
            self._write_bias_grad(dxw2.sum(axis=0), db_rec)
        if self._skip_input_grad and not has_init:
            return None  # first layer of a training step: nobody reads dL/dx
        dxt = _threads.matmul(dxw2, np.ascontiguousarray(W.T)).reshape(T, B, F)  # W^T copy: faster BLAS
        if dp is not None:
            dxt *= dp
        if self.go_backwards:
            dxt = dxt[::-1]
        dx = np.ascontiguousarray(dxt.transpose(1, 0, 2))
        if has_init:
            return [dx, *d0]
        return dx

    def _write_bias_grad(self, db_in, db_rec):
        self.grads["bias"][...] = db_in

    # -- masks, shapes, states -----------------------------------------------------
    def compute_mask(self, x, mask):
        if mask is None or not self.return_sequences:
            return None
        return mask[:, ::-1] if self.go_backwards else mask

    def compute_output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        out = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [out] + [(B, self.units)] * self.n_states
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
        idx = _check_rows(rows, self.states[0].shape[0], self.name)
        for s in self.states:
            s[idx] = 0

    # -- streaming ----------------------------------------------------------------------
    def step(self, x, states=None, mask=None):
        """Advance the layer by one time step (or a chunk of steps) from given states.

        A functional, cache-free forward pass for streaming and inference: nothing is stored
        on the layer (``stateful`` is ignored), no dropout is applied. Feeding a sequence in
        pieces and passing the returned states back in gives exactly what one call on the
        whole sequence gives.

        Args:
            x: (B, F) one time step, or (B, k, F) a chunk of k steps.
            states: tuple of (B, units) arrays (h, or h and c for LSTM), or None for zeros.
            mask: (B,) bool for one step, (B, k) for a chunk, or None. Masked steps carry
                state and output unchanged.

        Returns:
            (outputs, states): outputs (B, units) for one step or (B, k, units) for a chunk
            (the output after every step), and the tuple of new (B, units) states.

        Example:
            >>> import numpy as np, rnnkit
            >>> lstm = rnnkit.layers.LSTM(4)
            >>> _ = lstm(np.zeros((1, 3, 2)))            # build
            >>> y, s = lstm.step(np.ones((1, 2)))        # first step from zero states
            >>> y, s = lstm.step(np.ones((1, 2)), s)     # next step
            >>> y.shape, len(s)
            ((1, 4), 2)
        """
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
        F = self.params["kernel"].shape[0]
        if x.ndim not in (2, 3) or x.shape[-1] != F:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r}.step expects one step (batch, {F}) "
                f"or a chunk (batch, steps, {F}), got shape {x.shape}."
            )
        B = x.shape[0]
        k = 1 if single else x.shape[1]
        if k == 0:
            raise ValueError(f"Layer {self.name!r}.step got an empty chunk (0 steps), shape {x.shape}.")
        states = self._initial_states(B, states) if states is not None else tuple(
            np.zeros((B, self.units), self.dtype) for _ in range(self.n_states))
        mt = None
        if mask is not None:
            mask = np.asarray(mask)
            if single and mask.shape == (B,):
                mask = mask[:, None]
            mt = np.ascontiguousarray(_check_mask(mask, B, k, self.name).T)    # (k, B)
        return self._step(x, states, mt)

    def _step(self, x, states, mt):
        """:meth:`step` without validation: x (B, F) or (B, k, F) of the layer dtype, states a
        tuple of (B, units) arrays, mt a (k, B) bool mask or None."""
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        b_in, b_rec = self._split_bias()
        if x.ndim == 2 and mt is None:  # one unmasked LSTM step: compiled end to end
            new = kernels.lstm_step(self.cell, x, W, U, b_in, states)
            if new is not None:
                return new[0], new
        if x.ndim == 2:
            xw = (x @ W)[None]                                          # (1, B, G)
        else:
            k, B, F = x.shape[1], x.shape[0], x.shape[2]
            xw = (np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(k * B, F) @ W).reshape(k, B, -1)
        if b_in is not None:
            xw += b_in
        hs, new_states, _ = kernels.forward_sequence(self.cell, xw, states, U, b_rec, mt, None)
        out = hs[0] if x.ndim == 2 else hs.transpose(1, 0, 2)
        return out, tuple(new_states)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            units=self.units,
            activation=_act.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=_init.serialize(self.kernel_initializer),
            recurrent_initializer=_init.serialize(self.recurrent_initializer),
            bias_initializer=_init.serialize(self.bias_initializer),
            kernel_regularizer=_reg.serialize(self.kernel_regularizer),
            recurrent_regularizer=_reg.serialize(self.recurrent_regularizer),
            bias_regularizer=_reg.serialize(self.bias_regularizer),
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            seed=self.seed,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
        )
        return cfg


def _check_mask(mask, B, T, name):
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


def _check_rows(rows, B, name):
    """Validate row indices for reset_states; returns an int array."""
    idx = np.atleast_1d(np.asarray(rows))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or (idx.size and (idx.min() < -B or idx.max() >= B)):
        raise ValueError(
            f"reset_states(rows=...) of layer {name!r} expects integer row indices in "
            f"[0, {B}) (the carried batch size), got {rows!r}."
        )
    return idx


class SimpleRNN(RNNBase):
    r"""Fully-connected RNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Weights (Keras layout): ``kernel`` (F, units), ``recurrent_kernel`` (units, units),
    ``bias`` (units,). Input (B, T, F); output (B, units), or (B, T, units) with
    ``return_sequences=True``.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.SimpleRNN(4)(np.zeros((2, 5, 3))).shape
        (2, 4)
    """

    n_gates = 1

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def _make_cell(self):
        return cells.SimpleRNNMath(self.activation)

    def get_config(self):
        return super().get_config()


class LSTM(RNNBase):
    r"""Long short-term memory layer (Hochreiter & Schmidhuber 1997), Keras gate order i, f, c, o.

    Equations: see :class:`rnnkit.cells.LSTMMath`. Weights (Keras layout): ``kernel``
    (F, 4u), ``recurrent_kernel`` (u, 4u), ``bias`` (4u,). With ``unit_forget_bias=True``
    (default) the forget-gate bias starts at 1. States: ``[h, c]``.

    Example:
        >>> import numpy as np, rnnkit
        >>> out, h, c = rnnkit.layers.LSTM(8, return_state=True)(np.ones((2, 5, 3)))
        >>> out.shape, c.shape
        ((2, 8), (2, 8))
    """

    n_gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)

    def _make_cell(self):
        return cells.LSTMMath(self.activation, self.recurrent_activation)

    def _bias_init(self, shape):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, H = self.bias_initializer, self.units

        class _ForgetOne(_init.Initializer):
            def __call__(self, shape, dtype="float32"):
                b = base((4 * H,), dtype)
                b[H:2 * H] = 1.0
                return b

        return _ForgetOne()

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=_act.serialize(self.recurrent_activation),
                   unit_forget_bias=self.unit_forget_bias)
        return cfg


class GRU(RNNBase):
    r"""Gated recurrent unit (Cho et al. 2014), Keras gate order z, r, h.

    Equations: see :class:`rnnkit.cells.GRUMath`. Weights (Keras layout): ``kernel`` (F, 3u),
    ``recurrent_kernel`` (u, 3u), ``bias`` (2, 3u) with ``reset_after=True`` (default; row 0
    input bias, row 1 recurrent bias) or (3u,) with ``reset_after=False``.

    Example:
        >>> import numpy as np, rnnkit
        >>> rnnkit.layers.GRU(8, return_sequences=True)(np.ones((2, 5, 3))).shape
        (2, 5, 8)
    """

    n_gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        self.reset_after = bool(reset_after)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)

    def _make_cell(self):
        return cells.GRUMath(self.activation, self.recurrent_activation, self.reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _split_bias(self):
        if not self.use_bias:
            return None, None
        b = self.params["bias"]
        if self.reset_after:
            return b[0], b[1]
        return b, None

    def _write_bias_grad(self, db_in, db_rec):
        if self.reset_after:
            self.grads["bias"][0] = db_in
            self.grads["bias"][1] = db_rec
        else:
            self.grads["bias"][...] = db_in

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=_act.serialize(self.recurrent_activation),
                   reset_after=self.reset_after)
        return cfg
