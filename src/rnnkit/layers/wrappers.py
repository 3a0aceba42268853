"""Layer wrappers: Bidirectional (a recurrent layer run both ways) and TimeDistributed.

A wrapper owns inner layers. Its ``params`` / ``grads`` / ``regularizers`` are dicts whose
values are the inner layers' own arrays (live references, not copies), so the training engine,
the optimizers, ``get_weights`` / ``set_weights``, regularisation and saving see the wrapper as
one ordinary layer:

* ``Bidirectional``: keys ``'<forward name>/<weight>'`` then ``'<backward name>/<weight>'``,
  e.g. ``'forward_lstm/kernel'`` ... ``'backward_lstm/bias'`` (Keras order: forward weights
  first, then backward weights).
* ``TimeDistributed``: the inner layer's keys unchanged (``'kernel'``, ``'bias'``).
"""

from __future__ import annotations

import numpy as np

from .base import Layer, deserialize
from .rnn import RNN, check_mask

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _layer_spec(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class _Wrapper(Layer):
    """Shared plumbing: merged weight dicts over the inner layers."""

    def _inner_layers(self):
        raise NotImplementedError  # abstract

    def _prefix(self, layer):
        return f"{layer.name}/"

    def _merge_weight_dicts(self):
        self.params, self.grads, self.regularizers = {}, {}, {}
        for layer in self._inner_layers():
            p = self._prefix(layer)
            for k in layer.params:
                self.params[p + k] = layer.params[k]
                self.grads[p + k] = layer.grads[k]
            for k, r in layer.regularizers.items():
                self.regularizers[p + k] = r
        self.constraints = {}
        for layer in self._inner_layers():
            for k, c in layer.constraints.items():
                self.constraints[self._prefix(layer) + k] = c

    def zero_grads(self):
        for layer in self._inner_layers():
            layer.zero_grads()


class Bidirectional(_Wrapper):
    """Run a recurrent layer forwards and a copy of it backwards, and merge the two outputs.

    Keras semantics (``keras.layers.Bidirectional``):

    * ``forward_layer`` is a fresh copy of ``layer`` built from its config, named
      ``'forward_<name>'``; ``backward_layer`` is a copy with ``go_backwards`` flipped, named
      ``'backward_<name>'``, unless you pass your own ``backward_layer`` (it must have the
      opposite ``go_backwards`` and the same ``return_sequences``, ``return_state`` and
      ``stateful``).
    * With ``return_sequences=True`` the backward output sequence is flipped back so that
      step ``t`` of both directions lines up; under a mask the backward pass starts at each
      row's last valid step (masked steps carry the state), and both directions output zeros
      at masked steps (Keras forces ``zero_output_for_mask`` inside Bidirectional).
    * ``merge_mode``: ``'concat'`` (last axis, forward first), ``'sum'``, ``'mul'``, ``'ave'``,
      or ``None`` for a list ``[forward, backward]``.
    * ``return_state=True`` returns ``[output, *forward_states, *backward_states]``;
      ``initial_state`` is split half/half in the same order.
    * ``weights`` (and ``get_weights``) list the forward layer's weights, then the backward
      layer's.

    Args:
        layer: a recurrent layer (RNN, SimpleRNN, LSTM, GRU); it is copied, not used itself.
        merge_mode: ``'concat'``, ``'sum'``, ``'mul'``, ``'ave'`` or None.
        backward_layer: optional recurrent layer for the backward direction.
        weights: optional list of initial weights (forward layer's, then backward layer's).
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.

    Shapes: input (B, T, F); output (B, T, 2u) or (B, 2u) for ``'concat'``, (B, T, u) or
    (B, u) for the other modes.

    Example:
        >>> import numpy as np, rnnkit
        >>> bi = rnnkit.layers.Bidirectional(rnnkit.layers.LSTM(4, return_sequences=True))
        >>> bi(np.ones((2, 5, 3))).shape
        (2, 5, 8)
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, weights=None, **kwargs):
        if not isinstance(layer, RNN):
            raise TypeError(
                "Bidirectional wraps a recurrent layer (RNN, SimpleRNN, LSTM or GRU), got "
                f"{type(layer).__name__}. Example: Bidirectional(LSTM(32))."
            )
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"merge_mode must be one of 'concat', 'sum', 'mul', 'ave' or None, got "
                f"{merge_mode!r}."
            )
        kwargs.setdefault("dtype", layer.dtype)
        if kwargs.get("input_shape") is None and layer._input_shape_arg is not None:
            kwargs["input_shape"] = layer._input_shape_arg
        super().__init__(**kwargs)
        self.layer = layer
        self.merge_mode = merge_mode

        def copy(prefix, flip):
            cfg = layer.get_config()
            cfg.pop("input_shape", None)
            cfg["name"] = prefix + _strip(layer.name, prefix)
            cfg["dtype"] = self.dtype
            if flip:
                cfg["go_backwards"] = not cfg["go_backwards"]
            if "cell" in cfg:          # RNN(cell): copy the cell itself, registered or not
                cfg["cell"] = layer.cell.clone()
            return type(layer).from_config(cfg)

        self.forward_layer = copy("forward_", False)
        if backward_layer is None:
            self.backward_layer = copy("backward_", True)
            self._custom_backward = False
        else:
            self._check_backward(backward_layer)
            self.backward_layer = backward_layer
            self._custom_backward = True
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        if weights is not None and not isinstance(weights, (list, tuple)):
            raise TypeError(f"weights must be None or a list of arrays (forward layer's, then "
                            f"backward layer's), got {type(weights).__name__}.")
        self._initial_weights = None if weights is None else list(weights)
        self._cache = None

    def _check_backward(self, bw):
        if not isinstance(bw, RNN):
            raise TypeError(
                f"backward_layer must be a recurrent layer (SimpleRNN, LSTM or GRU), got "
                f"{type(bw).__name__}."
            )
        fw = self.layer
        if bw.go_backwards == fw.go_backwards:
            raise ValueError(
                f"backward_layer must read the sequence in the opposite direction: layer has "
                f"go_backwards={fw.go_backwards} and backward_layer has "
                f"go_backwards={bw.go_backwards}. Create it with "
                f"go_backwards={not fw.go_backwards}."
            )
        for attr in ("return_sequences", "return_state", "stateful"):
            if getattr(bw, attr) != getattr(fw, attr):
                raise ValueError(
                    f"backward_layer must have the same {attr} as layer: layer has "
                    f"{attr}={getattr(fw, attr)}, backward_layer has {attr}={getattr(bw, attr)}."
                )
        if np.dtype(bw.dtype) != np.dtype(self.dtype):
            raise ValueError(
                f"backward_layer has dtype {bw.dtype} but the Bidirectional layer uses "
                f"{self.dtype}; create both with the same dtype."
            )
        if "forward_" + _strip(fw.name, "forward_") == bw.name:
            raise ValueError(
                f"backward_layer is named {bw.name!r}, the same as the forward layer; give it "
                "another name."
            )

    def _inner_layers(self):
        return (self.forward_layer, self.backward_layer)

    # -- build ----------------------------------------------------------------------------
    def build(self, input_shape):
        self.forward_layer.maybe_build(input_shape)
        self.backward_layer.maybe_build(input_shape)
        self._merge_weight_dicts()
        super().build(input_shape)
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            self.set_weights(weights)

    @property
    def n_states(self):
        return self.forward_layer.n_states + self.backward_layer.n_states

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, inputs, training=False, mask=None, initial_state=None):
        """Run both directions and merge.

        Args:
            inputs: (B, T, F) array, or ``[x, *initial_states]``.
            training: apply the inner layers' dropout when True.
            mask: (B, T) bool or None.
            initial_state: list of forward states then backward states, each (B, units).

        Returns:
            The merged output (see the class docstring), or a list with the states when
            ``return_state=True``.
        """
        if isinstance(inputs, (list, tuple)):
            if initial_state is not None:
                raise ValueError("Pass initial states either inside inputs or as "
                                 "initial_state=, not both.")
            inputs, initial_state = inputs[0], list(inputs[1:]) or None
        nf = self.forward_layer.n_states
        fw_init = bw_init = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != self.n_states:
                got = len(initial_state) if isinstance(initial_state, (list, tuple)) else 1
                raise ValueError(
                    f"Bidirectional layer {self.name!r} expects {self.n_states} initial state "
                    f"arrays ({nf} for the forward layer, then "
                    f"{self.backward_layer.n_states} for the backward layer), got {got}."
                )
            fw_init, bw_init = list(initial_state[:nf]), list(initial_state[nf:])
        m = None
        x_shape = np.shape(inputs)
        if mask is not None and len(x_shape) == 3:
            mask = check_mask(mask, x_shape[0], x_shape[1], self.name)
        yf = self.forward_layer.forward(inputs, training=training, mask=mask,
                                        initial_state=fw_init)
        yb = self.backward_layer.forward(inputs, training=training, mask=mask,
                                         initial_state=bw_init)
        sf = sb = []
        if self.return_state:
            yf, *sf = yf
            yb, *sb = yb
        if self.return_sequences:
            yb = yb[:, ::-1]
            if mask is not None:  # Keras: zero_output_for_mask inside Bidirectional
                m = mask[:, :, None].astype(yf.dtype)
                yf, yb = yf * m, yb * m
        self._cache = (yf, yb, m, fw_init is not None)
        if self.merge_mode == "concat":
            out = np.concatenate([yf, yb], axis=-1)
        elif self.merge_mode == "sum":
            out = yf + yb
        elif self.merge_mode == "ave":
            out = (yf + yb) * 0.5
        elif self.merge_mode == "mul":
            out = yf * yb
        else:
            out = [yf, np.ascontiguousarray(yb)]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + list(sf) + list(sb)
        return out

    def backward(self, grads):
        """Backpropagate. ``grads`` mirrors the outputs of :meth:`forward`.

        Returns dL/dx (B, T, F), or ``[dx, *d_initial_states]`` when initial states were given.
        """
        if self._cache is None:
            raise RuntimeError(f"Layer {self.name!r}: backward called before forward.")
        yf, yb, m, has_init = self._cache
        nf, nb = self.forward_layer.n_states, self.backward_layer.n_states
        if self.merge_mode is None:
            grads = list(grads)
            dyf, dyb, rest = grads[0], grads[1], grads[2:]
        elif self.return_state:
            dy, *rest = grads
        else:
            dy, rest = grads, []
        if self.merge_mode is not None:
            dy = np.asarray(dy, self.dtype)
            if self.merge_mode == "concat":
                u = yf.shape[-1]
                dyf, dyb = dy[..., :u], dy[..., u:]
            elif self.merge_mode == "sum":
                dyf = dyb = dy
            elif self.merge_mode == "ave":
                dyf = dyb = dy * 0.5
            else:  # mul
                dyf, dyb = dy * yb, dy * yf
        rest = list(rest) + [None] * (nf + nb - len(rest))
        dsf, dsb = rest[:nf], rest[nf:nf + nb]
        if self.return_sequences:
            if dyf is not None and m is not None:
                dyf = np.asarray(dyf, self.dtype) * m
            if dyb is not None:
                dyb = np.asarray(dyb, self.dtype)
                if m is not None:
                    dyb = dyb * m
                dyb = np.ascontiguousarray(dyb[:, ::-1])   # back to the backward layer's order
        gf = self.forward_layer.backward([dyf, *dsf] if self.return_state else dyf)
        gb = self.backward_layer.backward([dyb, *dsb] if self.return_state else dyb)
        if has_init:
            dxf, *d0f = gf
            dxb, *d0b = gb
            return [dxf + dxb, *d0f, *d0b]
        return gf + gb

    # -- masks, shapes, states ----------------------------------------------------------------
    def compute_mask(self, x, mask):
        if mask is None or not self.return_sequences:
            return None
        return mask

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, *states = out
        out = tuple(out)
        if self.merge_mode == "concat":
            out = out[:-1] + (2 * out[-1],)
        elif self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            head = out if isinstance(out, list) else [out]
            return head + list(states) + list(states)
        return out

    def reset_states(self, rows=None):
        """Reset the carried states of both directions (all rows, or only ``rows``)."""
        self.forward_layer.reset_states(rows)
        self.backward_layer.reset_states(rows)

    # -- config ---------------------------------------------------------------------------------
    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = _layer_spec(self.layer)
        cfg["merge_mode"] = self.merge_mode
        if self._custom_backward:
            cfg["backward_layer"] = _layer_spec(self.backward_layer)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = deserialize(config["layer"], custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"], custom_objects)
        return cls(**config)


class TimeDistributed(_Wrapper):
    """Apply the same layer to every time step: (B, T, ...) -> (B, T, ...out).

    The wrapped layer sees a batch of ``B * T`` items, so any layer that takes ``(batch, F)``
    (``Dense``, ``Dropout``, ``Activation``, ...) works; its weights are shared across time
    steps. The input mask passes through unchanged, so per-time-step losses skip padded steps.
    ``get_weights()`` returns the inner layer's weights (Keras order).

    Args:
        layer: the rnnkit layer applied at every step (give ``input_shape`` to the wrapper,
            not to it).
        name, trainable, dtype, input_shape, input_dim: see :class:`Layer`.

    Example:
        >>> import numpy as np, rnnkit
        >>> td = rnnkit.layers.TimeDistributed(rnnkit.layers.Dense(3, activation="softmax"))
        >>> td(np.ones((2, 5, 4))).shape
        (2, 5, 3)
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps an rnnkit layer, got {type(layer).__name__}.")
        kwargs.setdefault("dtype", layer.dtype)
        if kwargs.get("input_shape") is None and layer._input_shape_arg is not None:
            raise ValueError(
                "TimeDistributed: give input_shape=(timesteps, ...) to TimeDistributed, not to "
                f"the wrapped layer (it received input_shape={layer._input_shape_arg})."
            )
        super().__init__(**kwargs)
        self.layer = layer
        self._shape = None

    def _inner_layers(self):
        return (self.layer,)

    def _prefix(self, layer):
        return ""

    @property
    def fusable_activation(self):
        """A final softmax/sigmoid in the wrapped layer can be fused with cross-entropy."""
        return getattr(self.layer, "fusable_activation", False)

    @property
    def activation(self):
        return self.layer.activation

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"TimeDistributed layer {self.name!r} expects input of rank >= 3 "
                f"(batch, timesteps, ...), got shape {tuple(input_shape)}."
            )
        inner = (None if input_shape[0] is None or input_shape[1] is None
                 else input_shape[0] * input_shape[1],) + tuple(input_shape[2:])
        self.layer.maybe_build(inner)
        self._merge_weight_dicts()
        super().build(input_shape)

    def forward(self, x, training=False, mask=None):
        """(B, T, ...) -> (B, T, ...out): the wrapped layer on the (B*T, ...) reshaped input."""
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(
                f"TimeDistributed layer {self.name!r} expects input of rank >= 3 "
                f"(batch, timesteps, ...), got shape {x.shape}."
            )
        B, T = x.shape[:2]
        y = self.layer.forward(x.reshape((B * T,) + x.shape[2:]), training=training)
        self._shape = (B, T)
        return y.reshape((B, T) + y.shape[1:])

    def backward(self, dy, wrt_logits=False):
        """dL/dx (B, T, ...) from dL/dy; ``wrt_logits`` is passed to the wrapped layer."""
        B, T = self._shape
        dy = np.asarray(dy)
        d = dy.reshape((B * T,) + dy.shape[2:])
        dx = self.layer.backward(d, wrt_logits=True) if wrt_logits else self.layer.backward(d)
        return None if dx is None else dx.reshape((B, T) + dx.shape[1:])

    def compute_output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        inner = (None,) + tuple(input_shape[2:])
        out = self.layer.compute_output_shape(inner)
        return (B, T) + tuple(out[1:])

    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = _layer_spec(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = deserialize(config["layer"], custom_objects)
        return cls(**config)
