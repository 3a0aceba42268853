"""Sequential: a plain stack of single-input, single-output layers."""

from __future__ import annotations

import numpy as np

from ..layers._symbolic import SymbolicTensor
from ..layers.base import Layer, unique_name
from ..layers.core import Embedding, InputLayer
from .engine import Engine
from .functional import Model


class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``.

    Example:
        >>> import rnnkit
        >>> model = rnnkit.Sequential([
        ...     rnnkit.layers.LSTM(128, return_sequences=True),
        ...     rnnkit.layers.LSTM(64),
        ...     rnnkit.layers.Dense(10, activation="softmax"),
        ... ])
        >>> model.compile(loss="categorical_crossentropy", optimizer="adam",
        ...               metrics=["accuracy"])

    The model builds on its first call (or at once when the first layer is ``Input`` or has
    ``input_shape=``). Masks from ``Masking`` / ``Embedding(mask_zero=True)`` / ragged inputs
    flow through every layer.
    """

    _n_inputs = 1   # one input, one output (the engine's defaults), whatever the graph API says

    def __init__(self, layers=None, name=None):
        Engine.__init__(self, name=name or unique_name("sequential"))
        self.layers: list[Layer] = []
        self._input_layer = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer; an ``Input``/``InputLayer`` only sets the input shape."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential accepts rnnkit layers only, got {type(layer).__name__}."
            )
        if isinstance(layer, InputLayer):
            if self.layers or self._input_layer is not None:
                raise ValueError("An Input layer must come first in a Sequential model.")
            self._input_layer = layer
            self.build((None,) + layer.shape)
            return
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"Layer {layer.name!r} has return_state=True, which gives several outputs; "
                "Sequential layers must have a single output."
            )
        self.layers.append(layer)
        if len(self.layers) == 1 and layer._input_shape_arg is not None and self._input_layer is None:
            self._input_layer = InputLayer(layer._input_shape_arg,
                                           batch_size=layer._batch_size_arg)
        if self._input_layer is not None:
            self.build((None,) + self._input_layer.shape)

    def pop(self):
        """Remove and return the last layer (``keras.Sequential.pop``).

        The remaining layers keep their weights and the model keeps its compile settings;
        compile again if the new last layer needs another loss.

        Raises:
            ValueError: the model has no layers.
        """
        if not self.layers:
            raise ValueError(f"pop: model {self.name!r} has no layers to remove.")
        layer = self.layers.pop()
        if self.built and self._input_layer is not None:
            self.build((None,) + self._input_layer.shape)
        return layer

    @property
    def built(self):
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape):
        """Build every layer from the input shape ``(batch, ...)`` (entries may be None)."""
        shape = tuple(input_shape)
        for layer in self.layers:
            layer.maybe_build(shape)
            shape = layer.compute_output_shape(shape)
        self._output_shape = shape

    def _check_input(self, x):
        if self._input_layer is None:
            return
        want = self._input_layer.shape
        rows = self._input_layer.batch_size
        if rows is not None and len(x) != rows:
            raise ValueError(
                f"Model {self.name!r} was built for batches of exactly {rows} rows "
                f"(batch_input_shape / Input(batch_size={rows})), got a batch of {len(x)}. "
                f"Pass batch_size={rows} to fit/evaluate/predict with a sample count that is a "
                f"multiple of {rows}, or rebuild the model without a fixed batch size.")
        got = np.shape(x)[1:]
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            raise ValueError(
                f"Model {self.name!r} expects input of shape (batch, {', '.join(str(w) for w in want)})"
                f", got {np.shape(x)}."
            )

    def forward(self, x, training=False, mask=None):
        """Run every layer. Returns ``(y_pred, output_mask)``."""
        if not self.layers:
            raise ValueError("The model has no layers; add some with model.add(...).")
        if isinstance(x, np.ndarray) and x.ndim == 0:
            raise ValueError(f"Model input must have a batch axis, got a scalar {x!r}.")
        self._check_input(x)
        for layer in self.layers:
            if not layer.built:
                layer.build(np.shape(x))
            out = layer.forward(x, training=training, mask=mask)
            mask = layer.compute_mask(x, mask)
            x = out
        return x, mask

    def backward(self, dy, wrt_logits=False, input_grad=True):
        """Backpropagate dL/dy_pred (or dL/dlogits) through every layer; returns dL/dx.

        ``input_grad=False`` (a training step) lets the first layer skip dL/dx."""
        first = self.layers[0]
        needed = getattr(first, "input_grad_needed", None)
        if needed is not None:
            first.input_grad_needed = needed and input_grad
        try:
            for i, layer in enumerate(reversed(self.layers)):
                if i == 0 and wrt_logits:
                    dy = layer.backward(dy, wrt_logits=True)
                else:
                    dy = layer.backward(dy)
                if dy is None:  # e.g. Embedding: integer inputs have no gradient
                    break
        finally:
            if needed is not None:
                first.input_grad_needed = needed
        return dy

    def _final_activation(self, i=0):
        last = self.layers[-1] if self.layers else None
        if not getattr(last, "fusable_activation", False):
            return None
        return last.activation.name

    # -- streaming ---------------------------------------------------------------------
    def stream(self, batch_size=1):
        """Start feeding this model one time step (or one chunk of steps) at a time.

        Args:
            batch_size: number of independent streams fed together (rows of each step).

        Returns:
            A :class:`Stream`; ``stream.step(x_t)`` returns what :meth:`predict` on the whole
            sequence so far would return at that step, ``stream.reset()`` starts over.

        Example:
            >>> import numpy as np, rnnkit
            >>> model = rnnkit.Sequential([rnnkit.layers.LSTM(8), rnnkit.layers.Dense(1)])
            >>> _ = model(np.zeros((1, 4, 3)))           # build
            >>> s = model.stream(batch_size=1)
            >>> s.step(np.ones((1, 3))).shape          # one step: (batch, features)
            (1, 1)
        """
        return Stream(self, batch_size)

    # -- inspection ---------------------------------------------------------------------
    def summary(self, print_fn=print):
        """Print a Keras-like table of layers, output shapes and parameter counts."""
        if not self.built:
            print_fn(f'Model: "{self.name}" (not built yet: call it on data or start with '
                     "rnnkit.layers.Input(shape=...))")
            return
        rows = []
        shape = (None,) + (self._input_layer.shape if self._input_layer else
                           tuple(self.layers[0].input_shape[1:]))
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            rows.append((f"{layer.name} ({type(layer).__name__})",
                         "(" + ", ".join(str(s) for s in shape) + ")",
                         f"{layer.count_params():,}"))
        self._print_table(("Layer (type)", "Output Shape", "Param #"), rows, print_fn)

    def get_config(self):
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        for layer in self.layers:
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config()})
        return {"name": self.name, "layers": layers}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..layers import deserialize
        model = cls(name=config.get("name"))
        for spec in config["layers"]:
            model.add(deserialize(spec, custom_objects))
        return model


class Stream:
    """Incremental inference through a :class:`Sequential` model, keeping recurrent states.

    Each call to :meth:`step` advances every recurrent layer from the states left by the
    previous call, so feeding a sequence step by step (or in chunks of any sizes) returns
    exactly what one pass over the whole sequence returns (to float32 rounding):

    * one step ``x_t``: (B, F) features (or (B,) ids for an ``Embedding`` model) gives the
      model's output at that step, (B, ...) — the same as row ``t`` of ``predict(x)`` for a
      model returning sequences, or ``predict(x[:, :t+1])`` for one returning the final step;
    * a chunk (B, k, F) (or (B, k) ids) gives (B, k, ...) for a model returning sequences, or
      the output after the chunk's last step otherwise.

    Dropout is off (inference). Masks from ``Masking`` / ``Embedding(mask_zero=True)`` work as
    in whole-sequence processing (a masked step carries the state). Layers with
    ``go_backwards=True`` and ``Bidirectional`` need the whole sequence and are refused.
    The stream keeps its own states: stateful layers' carried states are neither used nor
    changed.

    Args:
        model: a built (or buildable on the first step) :class:`Sequential`.
        batch_size: rows per step.
    """

    def __init__(self, model, batch_size=1):
        from ..layers.rnn import RNN
        from ..layers.wrappers import Bidirectional
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not model.layers:
            raise ValueError("The model has no layers; add some with model.add(...).")
        for layer in model.layers:
            if isinstance(layer, Bidirectional) or getattr(layer, "go_backwards", False):
                raise ValueError(
                    f"Layer {layer.name!r} reads the sequence backwards (Bidirectional or "
                    "go_backwards=True), so its output at step t depends on future steps and "
                    "cannot be streamed. Use model.predict on whole sequences instead."
                )
        self.model = model
        self.batch_size = int(batch_size)
        self._is_rnn = [isinstance(layer, RNN) for layer in model.layers]
        self._ids = isinstance(model.layers[0], Embedding)  # ids in, not features
        self.states = [None] * len(model.layers)

    def reset(self, rows=None):
        """Forget the states: of every row (``rows=None``) or of the given row indices."""
        if rows is None:
            self.states = [None] * len(self.model.layers)
            return
        idx = np.atleast_1d(np.asarray(rows))
        if idx.dtype.kind not in "iu" or idx.ndim != 1 or (
                idx.size and (idx.min() < -self.batch_size or idx.max() >= self.batch_size)):
            raise ValueError(f"reset(rows=...) expects integer row indices in "
                             f"[0, {self.batch_size}), got {rows!r}.")
        for st in self.states:
            if st is not None:
                for a in st:
                    a[idx] = 0

    def step(self, x, mask=None):
        """Feed one time step or a chunk; returns the model output (see the class docstring).

        Args:
            x: (B, F) one step or (B, k, F) a chunk; (B,) / (B, k) integer ids when the model
                starts with an Embedding.
            mask: optional (B,) or (B, k) bool; False marks padded steps.

        Returns:
            (B, ...) for one step, (B, k, ...) for a chunk of a sequence-returning model.
        """
        x = np.asarray(x)
        step_rank = 1 if self._ids else 2
        if x.ndim not in (step_rank, step_rank + 1) or x.shape[0] != self.batch_size:
            what = "(batch,) ids or a chunk (batch, steps)" if self._ids else \
                "(batch, features) or a chunk (batch, steps, features)"
            raise ValueError(
                f"stream.step expects one step {what} with batch = {self.batch_size}, got shape "
                f"{x.shape}."
            )
        single = x.ndim == step_rank
        h = x[:, None] if single else x                       # a time axis for every layer
        if h.shape[1] == 0:
            raise ValueError(f"stream.step got an empty chunk (0 time steps), shape {x.shape}.")
        m = None
        if mask is not None:
            m = np.asarray(mask, bool)
            m = m[:, None] if m.ndim == 1 else m
            if m.shape != h.shape[:2]:
                raise ValueError(f"stream.step: mask has shape {np.shape(mask)}, expected "
                                 f"{h.shape[:2]} to match x of shape {x.shape}.")
        has_time = True
        for i, layer in enumerate(self.model.layers):
            if not layer.built:
                layer.build(np.shape(h))
            if self._is_rnn[i]:
                if not has_time:
                    raise ValueError(f"Layer {layer.name!r} needs a time axis, but the layer before "
                                     "it returns only the last step.")
                xin = h[:, 0] if single else h
                first = self.states[i] is None   # the first step is validated in full
                out, self.states[i] = layer.step(xin, self.states[i], mask=m, validate=first)
                if layer.return_sequences:
                    h = out[:, None] if single else out
                else:
                    h = out if single else out[:, -1]
                    has_time, m = False, None
            else:
                out = layer.forward(h, training=False, mask=m)
                m = layer.compute_mask(h, m)
                h = out
        if single and has_time:
            h = h[:, 0]
        return h
