"""Sequential: a plain stack of single-input, single-output layers."""

from __future__ import annotations

import numpy as np

from ..layers.base import Layer, unique_name
from ..layers.core import InputLayer
from .model import Model


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

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or unique_name("sequential"))
        self.layers: list[Layer] = []
        self._input_layer = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer; an ``Input``/``InputLayer`` only sets the input shape."""
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
            self._input_layer = InputLayer(layer._input_shape_arg)
        if self._input_layer is not None:
            self.build((None,) + self._input_layer.shape)

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

    def backward(self, dy, wrt_logits=False):
        """Backpropagate dL/dy_pred (or dL/dlogits) through every layer; returns dL/dx."""
        for i, layer in enumerate(reversed(self.layers)):
            if i == 0 and wrt_logits:
                dy = layer.backward(dy, wrt_logits=True)
            else:
                dy = layer.backward(dy)
            if dy is None:  # e.g. Embedding: integer inputs have no gradient
                break
        return dy

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
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in
             enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "─" * (sum(w) + 6)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(f"{'Layer (type)':<{w[0]}}   {'Output Shape':<{w[1]}}   {'Param #':>{w[2]}}")
        print_fn(line)
        for r in rows:
            print_fn(f"{r[0]:<{w[0]}}   {r[1]:<{w[1]}}   {r[2]:>{w[2]}}")
        print_fn(line)
        total = self.count_params()
        trainable = sum(layer.count_params() for layer in self.layers if layer.trainable)
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {total - trainable:,}")

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

    # -- saving (implemented in rnnkit.saving) ---------------------------------------------------
    def save(self, path, include_optimizer=True):
        """Save config, weights, optimizer state and metadata to one safe file (atomic)."""
        from ..saving import save_model
        save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path):
        """Save only the weights (safetensors, atomic)."""
        from ..saving import save_weights
        save_weights(self, path)

    def export_onnx(self, path, opset=None):
        """Export to ONNX with ONNX's own RNN/LSTM/GRU operators (see rnnkit.interop)."""
        from ..interop.onnx import export_onnx
        return export_onnx(self, path, opset=opset)

    def load_weights(self, path):
        """Load weights saved by :meth:`save_weights` (or a full model file)."""
        from ..saving import load_weights
        load_weights(self, path)
