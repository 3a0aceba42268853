"""The functional model: a graph of layers from ``rnnkit.Input`` tensors to outputs.

    x = rnnkit.Input(shape=(T, F))
    a = rnnkit.layers.LSTM(8)(x)
    b = rnnkit.layers.GlobalAveragePooling1D()(rnnkit.layers.Conv1D(16, 3)(x))
    y = rnnkit.layers.Dense(3, activation="softmax")(rnnkit.layers.Concatenate()([a, b]))
    model = rnnkit.Model(inputs=x, outputs=y)

Calling a layer on symbolic tensors records a node (:mod:`rnnkit.layers._symbolic`); the model
walks the nodes from its outputs back to its inputs, orders them so every node runs after
the nodes it reads from, and runs them in that order (forward) and in reverse (backward),
summing the gradients of tensors read by several nodes. A layer called more than once (a
shared layer) keeps one cache per call and the gradients of its weights are summed over calls.
"""

from __future__ import annotations

import numpy as np

from ..layers._symbolic import SymbolicTensor
from ..layers.base import Layer, unique_name
from ..layers.core import InputLayer
from .engine import Engine


def _flatten(value, what):
    """(list of SymbolicTensor, names or None, given as a list?) from a tensor/list/dict."""
    if isinstance(value, dict):
        names = list(value)
        tensors = [value[k] for k in names]
        as_list = True
    elif isinstance(value, (list, tuple)):
        tensors, names, as_list = list(value), None, True
    else:
        tensors, names, as_list = [value], None, False
    if not tensors:
        raise ValueError(f"Model needs at least one {what} tensor, got {value!r}.")
    for t in tensors:
        if not isinstance(t, SymbolicTensor):
            raise TypeError(
                f"Model {what} must be symbolic tensors (from rnnkit.Input(...) or a layer "
                f"called on one), got {type(t).__name__}. Example: x = rnnkit.Input((T, F)); "
                "y = rnnkit.layers.LSTM(8)(x); model = rnnkit.Model(x, y)."
            )
    return tensors, names, as_list


def _shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


class Model(Engine):
    """A model defined by its input and output tensors, as ``keras.Model(inputs, outputs)``.

    Args:
        inputs: one symbolic tensor from :func:`rnnkit.Input`, or a list (or dict by name).
        outputs: one symbolic tensor computed from the inputs by calling layers, or a list
            (or dict by name) of them.
        name: model name.

    Several inputs take a list (or a dict by input name) of arrays in ``fit`` / ``predict``;
    several outputs take a list (or dict by output name) of targets and return a list of
    predictions. ``compile`` then accepts one loss per output, ``loss_weights`` and metrics per
    output (see :meth:`rnnkit.models.engine.Engine.compile`).

    Example:
        >>> import numpy as np, rnnkit
        >>> L = rnnkit.layers
        >>> x = rnnkit.Input(shape=(20, 3))
        >>> h = L.LSTM(8)(x)
        >>> p = L.GlobalAveragePooling1D()(L.Conv1D(4, 3, padding="same")(x))
        >>> y = L.Dense(2, activation="softmax")(L.Concatenate()([h, p]))
        >>> model = rnnkit.Model(x, y)
        >>> model.predict(np.zeros((5, 20, 3)), verbose=0).shape
        (5, 2)

    Errors: an output that cannot be computed from the given inputs, an input that no output
    uses, or a layer called on tensors of the wrong shape raise ValueError naming the layer.
    """

    def __init__(self, inputs=None, outputs=None, name=None):
        super().__init__(name=name or unique_name("functional"))
        if inputs is None or outputs is None:
            raise TypeError(
                "rnnkit.Model needs inputs and outputs: x = rnnkit.Input((T, F)); "
                "y = rnnkit.layers.Dense(1)(rnnkit.layers.LSTM(8)(x)); "
                "model = rnnkit.Model(inputs=x, outputs=y). For a plain stack of layers use "
                "rnnkit.Sequential([...])."
            )
        self._inputs, in_names, self._inputs_list = _flatten(inputs, "inputs")
        self._outputs, out_names, self._outputs_list = _flatten(outputs, "outputs")
        for t in self._inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model inputs must come from rnnkit.Input(...), but "
                                 f"{t.name!r} is the output of layer {t.node.layer.name!r}.")
        self.input_names = in_names or [t.node.layer.name for t in self._inputs]
        self.output_names = out_names or self._default_output_names()
        self._nodes = self._order()
        layers = [t.node.layer for t in self._inputs]
        for node in self._nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        self.layers: list[Layer] = layers
        self._calls = {}  # id(layer) -> number of nodes calling it in this graph
        for node in self._nodes:
            self._calls[id(node.layer)] = self._calls.get(id(node.layer), 0) + 1
        self._consumers = {}  # id(tensor) -> number of reads (by nodes and as outputs)
        for node in self._nodes:
            for t in node.inputs:
                self._consumers[id(t)] = self._consumers.get(id(t), 0) + 1
        for t in self._outputs:
            self._consumers[id(t)] = self._consumers.get(id(t), 0) + 1
        self._states = []

    def _default_output_names(self):
        names = []
        for t in self._outputs:
            n = t.node.layer.name if len(t.node.outputs) == 1 else f"{t.node.layer.name}_{t.index}"
            names.append(n if n not in names else f"{n}_{len(names)}")
        return names

    # -- graph ------------------------------------------------------------------------------
    def _order(self):
        """Nodes from the inputs to the outputs, each after every node it reads from."""
        inputs = {id(t) for t in self._inputs}
        order, done, active = [], set(), set()

        def check(t, reader):
            """True when ``t`` comes from a node still to visit; refuses foreign inputs."""
            if id(t) in inputs:
                return False
            if isinstance(t.node.layer, InputLayer):
                raise ValueError(
                    f"Graph disconnected: layer {reader!r} reads input {t.node.layer.name!r} of "
                    f"shape {_shape_str(t.shape)}, which is not among the model inputs "
                    f"{[i.node.layer.name for i in self._inputs]}. Add it to inputs=[...]."
                )
            if id(t.node) in active:
                raise ValueError(f"The graph has a cycle through layer {t.node.layer.name!r}.")
            return id(t.node) not in done

        # depth-first, with an explicit stack (graphs deeper than Python's recursion limit)
        for out in self._outputs:
            if not check(out, "(model output)"):
                continue
            stack = [(out.node, 0)]
            active.add(id(out.node))
            while stack:
                node, k = stack[-1]
                if k < len(node.inputs):
                    stack[-1] = (node, k + 1)
                    src = node.inputs[k]
                    if check(src, node.layer.name):
                        active.add(id(src.node))
                        stack.append((src.node, 0))
                    continue
                stack.pop()
                active.discard(id(node))
                done.add(id(node))
                order.append(node)
        used = {id(src) for node in order for src in node.inputs} | {id(t) for t in self._outputs}
        unused = [t.node.layer.name for t in self._inputs if id(t) not in used]
        if unused:
            raise ValueError(f"Graph disconnected: model input(s) {unused} are not used to "
                             "compute any output. Remove them from inputs=[...] or connect them.")
        return order

    @property
    def nodes(self):
        """The layer calls (:class:`rnnkit.layers._symbolic.Node`) in the order they run."""
        return list(self._nodes)

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def _n_inputs(self):
        return len(self._inputs)

    @property
    def built(self):
        return True

    def _final_activation(self, i=0):
        t = self._outputs[i]
        layer = t.node.layer
        if (not getattr(layer, "fusable_activation", False) or len(t.node.outputs) > 1
                or self._calls.get(id(layer), 0) != 1 or self._consumers.get(id(t), 0) != 1):
            return None
        return layer.activation.name

    # -- data -------------------------------------------------------------------------------
    def _prepare_x(self, x):
        if self._n_inputs == 1:
            if isinstance(x, dict):
                x = self._structure(x, self.input_names, "x", "input")[0]
            return super()._prepare_x(x)
        return self._structure(x, self.input_names, "x", "input"), None

    def _check_inputs(self, xs):
        for t, a in zip(self._inputs, xs):
            got = np.shape(a)
            want = t.shape
            if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
                raise ValueError(
                    f"Input {t.node.layer.name!r} of model {self.name!r} expects shape "
                    f"{_shape_str(want)}, got {got}."
                )

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, x, training=False, mask=None):
        """Run the graph. Returns ``(y_pred, mask)``, or lists of both for several outputs.

        Args:
            x: one array, or a list of arrays (one per input).
            training: training mode (dropout, batch statistics).
            mask: (B, T) mask of the (single) input, e.g. from ragged sequences.
        """
        xs = list(x) if self._n_inputs > 1 else [x]
        if any(isinstance(a, np.ndarray) and a.ndim == 0 for a in xs):
            raise ValueError(f"Model input must have a batch axis, got a scalar {x!r}.")
        self._check_inputs(xs)
        values, masks = {}, {}
        for t, a in zip(self._inputs, xs):
            values[id(t)] = a
            masks[id(t)] = mask if self._n_inputs == 1 else None
        self._states = []
        self._shapes = {}
        for node in self._nodes:
            layer = node.layer
            args = [values[id(t)] for t in node.inputs]
            ms = [masks[id(t)] for t in node.inputs]
            if node.input_is_list:
                arg = args
                m_in = ms if layer.list_inputs else ms[0]
            else:
                arg, m_in = args[0], ms[0]
            out = layer.forward(arg, training=training, mask=m_in, **node.kwargs)
            m_out = layer.compute_mask(arg, m_in)
            outs = list(out) if node.output_is_list else [out]
            m_outs = list(m_out) if isinstance(m_out, (list, tuple)) else [m_out] * len(outs)
            for t, v, m in zip(node.outputs, outs, m_outs):
                values[id(t)] = v
                masks[id(t)] = m
                self._shapes[id(t)] = np.shape(v)
            self._states.append(layer.call_state() if self._calls[id(layer)] > 1 else None)
        preds = [values[id(t)] for t in self._outputs]
        out_masks = [masks[id(t)] for t in self._outputs]
        if self._n_outputs == 1:
            return preds[0], out_masks[0]
        return preds, out_masks

    def backward(self, dy, wrt_logits=False, input_grad=True):
        """Backpropagate dL/d(outputs) through the graph (reverse order).

        Args:
            dy: dL/dy_pred, or a list with one per output.
            wrt_logits: bool, or one per output: that ``dy`` is already dL/dlogits of the
                output layer's activation (fused softmax/sigmoid + cross-entropy).
            input_grad: compute dL/d(model inputs) (False in a training step).

        Returns:
            dL/dx, or a list with one per input (None where an input gets none, e.g. ids).
        """
        dys = list(dy) if self._n_outputs > 1 else [dy]
        fused = (list(wrt_logits) if isinstance(wrt_logits, (list, tuple))
                 else [wrt_logits] * len(dys))
        grads = {}
        fused_tensors = set()
        for t, d, f in zip(self._outputs, dys, fused):
            self._add(grads, t, d)
            if f:
                fused_tensors.add(id(t))
        inputs = {id(t) for t in self._inputs}
        sums = {}       # id(shared layer) -> summed weight gradients over its calls
        for k in range(len(self._nodes) - 1, -1, -1):
            node = self._nodes[k]
            layer = node.layer
            douts = [grads.pop(id(t), None) for t in node.outputs]
            if all(d is None for d in douts):
                continue
            douts = [np.zeros(self._shapes[id(t)], layer.dtype) if d is None else d
                     for t, d in zip(node.outputs, douts)]
            if self._states[k] is not None:
                layer.restore_call_state(self._states[k])
            d = douts if node.output_is_list else douts[0]
            skip = not input_grad and all(id(t) in inputs for t in node.inputs)
            needed = getattr(layer, "input_grad_needed", None)
            if needed is not None:
                layer.input_grad_needed = not skip
            try:
                if not node.output_is_list and id(node.outputs[0]) in fused_tensors:
                    dx = layer.backward(d, wrt_logits=True)
                else:
                    dx = layer.backward(d)
            finally:
                if needed is not None:
                    layer.input_grad_needed = needed
            if self._calls[id(layer)] > 1:
                acc = sums.setdefault(id(layer), (layer, {}))[1]
                for n, g in layer.grads.items():
                    acc[n] = g.copy() if n not in acc else acc[n] + g
            if dx is None:
                continue
            dxs = list(dx) if isinstance(dx, (list, tuple)) else [dx]
            for t, g in zip(node.inputs, dxs):
                if g is not None and not (skip and id(t) in inputs):
                    self._add(grads, t, g)
        for layer, acc in sums.values():
            for n, g in acc.items():
                layer.grads[n][...] = g
        res = [grads.get(id(t)) for t in self._inputs]
        return res[0] if self._n_inputs == 1 else res

    @staticmethod
    def _add(grads, t, g):
        """Sum the gradients of a tensor read by several nodes (fan-out)."""
        if id(t) in grads:
            grads[id(t)] = grads[id(t)] + g
        else:
            grads[id(t)] = g

    # -- inspection -------------------------------------------------------------------------
    def get_layer(self, name=None, index=None):
        """The layer called ``name`` (or at position ``index`` in :attr:`layers`)."""
        if index is not None:
            if not isinstance(index, (int, np.integer)) or not -len(self.layers) <= index < len(
                    self.layers):
                raise ValueError(f"get_layer: index must be an integer in [0, "
                                 f"{len(self.layers)}), got {index!r}.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r} in model {self.name!r}; its layers are "
                         f"{[layer.name for layer in self.layers]}.")

    def summary(self, print_fn=print):
        """Print a Keras-like table: layer, output shape, parameters, and the layers it reads."""
        rows = []
        for layer in self.layers:
            nodes = [n for n in layer.inbound_nodes if n in self._nodes] or [
                t.node for t in self._inputs if t.node.layer is layer]
            for node in nodes:
                shapes = [_shape_str(t.shape) for t in node.outputs]
                src = ", ".join(self._ref_str(t) for t in node.inputs)
                rows.append((f"{layer.name} ({type(layer).__name__})",
                             shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]",
                             f"{layer.count_params():,}", src or "-"))
        self._print_table(("Layer (type)", "Output Shape", "Param #", "Connected to"), rows,
                          print_fn)

    def _print_table(self, heads, rows, print_fn):
        """The summary table (right-aligned parameter column) and the parameter totals."""
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]

        def fmt(r):
            cells = [f"{c:>{w[i]}}" if i == 2 else f"{c:<{w[i]}}" for i, c in enumerate(r)]
            return "   ".join(cells).rstrip()

        line = "─" * (sum(w) + 3 * (len(w) - 1))
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(fmt(heads))
        print_fn(line)
        for r in rows:
            print_fn(fmt(r))
        print_fn(line)
        total = self.count_params()
        trainable = sum(w.size for w in self.trainable_weights)
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {total - trainable:,}")

    def _ref_str(self, t):
        """Keras-style 'layer[call][output]' for the summary's connections column."""
        calls = [n for n in t.node.layer.inbound_nodes
                 if n in self._nodes or any(n is i.node for i in self._inputs)]
        k = next((i for i, n in enumerate(calls) if n is t.node), 0)
        return f"{t.node.layer.name}[{k}][{t.index}]"

    # -- config -----------------------------------------------------------------------------
    def get_config(self):
        """Keras-style functional config: layers with their inbound nodes, inputs, outputs."""
        mine = {id(n) for n in self._nodes} | {id(t.node) for t in self._inputs}
        node_index = {}
        for layer in self.layers:
            for i, node in enumerate(n for n in layer.inbound_nodes if id(n) in mine):
                node_index[id(node)] = i

        def ref(t):
            return [t.node.layer.name, node_index[id(t.node)], t.index]

        layers = []
        for layer in self.layers:
            inbound = []
            for node in layer.inbound_nodes:
                if id(node) in mine and not isinstance(layer, InputLayer):
                    inbound.append({"inputs": [ref(t) for t in node.inputs],
                                    "input_is_list": node.input_is_list,
                                    "kwargs": node.kwargs})
            layers.append({"class_name": type(layer).__name__, "name": layer.name,
                           "config": layer.get_config(), "inbound_nodes": inbound})
        return {"name": self.name, "layers": layers,
                "input_layers": [ref(t) for t in self._inputs],
                "output_layers": [ref(t) for t in self._outputs],
                "input_names": self.input_names if self._inputs_list else None,
                "output_names": self.output_names if self._outputs_list else None}

    @classmethod
    def from_config(cls, config, custom_objects=None, on_layer=None):
        """Rebuild a functional model from :meth:`get_config` (no code is executed).

        Args:
            config: the dict from :meth:`get_config`.
            custom_objects: dict ``class name -> Layer subclass`` for custom layers.
            on_layer: called with each layer right after it is created (before it is built);
                the file loader uses it to check weight shapes before allocating.
        """
        from ..layers import deserialize
        specs = config.get("layers")
        if not isinstance(specs, list) or not specs:
            raise ValueError("The functional model config has no list of layers.")
        made, tensors = {}, {}
        for spec in specs:
            if not isinstance(spec, dict) or not isinstance(spec.get("inbound_nodes"), list):
                raise ValueError(f"Malformed layer entry in the model config: {spec!r}.")
            layer = deserialize({"class_name": spec.get("class_name"),
                                 "config": spec.get("config", {})}, custom_objects)
            if layer.name in made:
                raise ValueError(f"Two layers are named {layer.name!r}; names must be unique.")
            if on_layer is not None:
                on_layer(layer)
            made[layer.name] = layer
            if isinstance(layer, InputLayer):
                tensors[(layer.name, 0, 0)] = layer.output

        def get(ref, reader):
            if (not isinstance(ref, list) or len(ref) != 3 or not isinstance(ref[0], str)
                    or any(type(v) is not int for v in ref[1:])):
                raise ValueError(f"Malformed tensor reference {ref!r} (read by {reader!r}).")
            key = tuple(ref)
            if key not in tensors:
                if ref[0] not in made:
                    raise ValueError(f"Layer {reader!r} reads from unknown layer {ref[0]!r}.")
                raise ValueError(
                    f"Layer {reader!r} reads {ref!r}, which is not computed before it: the "
                    "config's graph is out of order or has a cycle."
                )
            return tensors[key]

        pending = [(lname, k, node) for spec, lname in zip(specs, list(made))
                   for k, node in enumerate(spec["inbound_nodes"])]
        # run nodes as soon as their inputs exist; a pass without progress means a cycle
        while pending:
            left = []
            for lname, k, node in pending:
                refs = node.get("inputs") if isinstance(node, dict) else None
                if not isinstance(refs, list) or not refs:
                    raise ValueError(f"Malformed inbound node of layer {lname!r}: {node!r}.")
                if not all(isinstance(r, list) and tuple(r) in tensors for r in refs):
                    left.append((lname, k, node))
                    continue
                ins = [get(r, lname) for r in refs]
                kwargs = node.get("kwargs") or {}
                if not isinstance(kwargs, dict):
                    raise ValueError(f"Malformed call arguments of layer {lname!r}: {kwargs!r}.")
                out = made[lname](ins if node.get("input_is_list") else ins[0], **kwargs)
                outs = out if isinstance(out, list) else [out]
                for i, t in enumerate(outs):
                    tensors[(lname, k, i)] = t
            if len(left) == len(pending):
                lname, _, node = left[0]
                for r in node["inputs"]:
                    get(r, lname)  # raises naming the missing or cyclic input
            pending = left

        def refs(key):
            value = config.get(key)
            if not isinstance(value, list) or not value:
                raise ValueError(f"The functional model config has no {key}.")
            return [get(r, "(model)") for r in value]

        ins, outs = refs("input_layers"), refs("output_layers")
        in_names, out_names = config.get("input_names"), config.get("output_names")
        inputs = dict(zip(in_names, ins)) if in_names else (ins if len(ins) > 1 else ins[0])
        outputs = dict(zip(out_names, outs)) if out_names else (
            outs if len(outs) > 1 else outs[0])
        return cls(inputs, outputs, name=config.get("name"))

    # -- saving and export ------------------------------------------------------------------
    def to_json(self, **kwargs):
        """The architecture as a JSON string (``keras.Model.to_json``): class name, config
        and rnnkit version, no weights. :func:`rnnkit.models.model_from_json` rebuilds it.

        Args:
            **kwargs: passed to :func:`json.dumps` (e.g. ``indent=2``).
        """
        import json

        from .. import __version__
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config(),
                           "rnnkit_version": __version__}, **kwargs)

    def save(self, path, include_optimizer=True):
        """Save config, weights, optimizer state and metadata to one safe file (atomic).

        A path ending in ``.keras`` writes a real Keras 3 file instead, through
        :func:`rnnkit.interop.to_keras` (needs the ``keras`` extra; weights and architecture
        only, no optimizer state), so that ``keras.saving.load_model`` opens it. Keras'
        legacy ``.h5`` model format is refused with a pointer to ``.keras`` / ``.rnnkit``.

        Args:
            path: target file; rnnkit's own format is used for any other suffix (by
                convention ``.rnnkit``).
            include_optimizer: store the optimizer slots and step counter (rnnkit format).
        """
        import os
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        if suffix == ".keras":
            from ..interop import to_keras
            to_keras(self, path)
            return
        if suffix == ".h5":
            raise ValueError(
                f"save({os.fspath(path)!r}): '.h5' is Keras' legacy HDF5 format, which rnnkit "
                "does not write. Use a '.keras' path (a real Keras 3 file, written through "
                "rnnkit.interop.to_keras) or rnnkit's own '.rnnkit' format (exact resume with "
                "optimizer state; reopen with rnnkit.load_model).")
        from ..saving import save_model
        save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path):
        """Save only the weights (safetensors, atomic)."""
        from ..saving import save_weights
        save_weights(self, path)

    def load_weights(self, path):
        """Load weights saved by :meth:`save_weights` (or a full model file)."""
        from ..saving import load_weights
        load_weights(self, path)

    def export_onnx(self, path, opset=None, sequence_lens_input=False):
        """Export to ONNX with ONNX's own operators (see :mod:`rnnkit.interop`)."""
        from ..interop.onnx import export_onnx
        return export_onnx(self, path, opset=opset, sequence_lens_input=sequence_lens_input)
