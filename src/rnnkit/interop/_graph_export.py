"""Export of functional models and of the convolution / pooling / normalisation / merging /
reshaping layers: to ONNX (``export_onnx``) and to Keras (``to_keras``).

ONNX: Conv1D and pooling become ``Conv`` / ``MaxPool`` / ``AveragePool`` on a channels-first
view (``Transpose`` around them; ``auto_pad='SAME_UPPER'`` is Keras' 'same', causal padding
is explicit ``pads``); BatchNormalization (inference) is ``x * scale + shift`` with the
moving statistics folded in; LayerNormalization is ONNX's ``LayerNormalization``; global
pooling is a (masked) reduction; merging layers are ``Concat`` / ``Sum`` / ``Sub`` / ``Mul`` /
``Mean`` / ``Max`` / ``Min``. Layers ONNX cannot express this way (attention, Dot,
UpSampling1D, recurrent layers with ``return_state`` or initial states) are refused by name.
"""

from __future__ import annotations

import os

import numpy as np

_KERAS_KEYS = {
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
               "groups", "activation", "use_bias"),
    "MaxPooling1D": ("pool_size", "strides", "padding", "data_format"),
    "AveragePooling1D": ("pool_size", "strides", "padding", "data_format"),
    "GlobalAveragePooling1D": ("data_format", "keepdims"),
    "GlobalMaxPooling1D": ("data_format", "keepdims"),
    "UpSampling1D": ("size",), "ZeroPadding1D": ("padding",), "Cropping1D": ("cropping",),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "LayerNormalization": ("axis", "epsilon", "center", "scale"),
    "Concatenate": ("axis",), "Add": (), "Subtract": (), "Multiply": (), "Average": (),
    "Maximum": (), "Minimum": (), "Dot": ("axes", "normalize"),
    "Reshape": ("target_shape",), "Permute": ("dims",), "RepeatVector": ("n",),
    "Attention": ("use_scale", "score_mode", "dropout"),
    "AdditiveAttention": ("use_scale", "dropout"),
    "MultiHeadAttention": ("num_heads", "key_dim", "value_dim", "dropout", "use_bias",
                           "output_shape"),
}


def keras_layer(layer, keras):
    """The Keras twin of one of the layers above (same config), or None for other layers."""
    name = type(layer).__name__
    if name not in _KERAS_KEYS:
        return None
    cfg = layer.get_config()
    kwargs = {k: cfg[k] for k in _KERAS_KEYS[name] if k in cfg}
    for k in ("target_shape", "dims", "padding", "cropping", "axes"):
        if isinstance(kwargs.get(k), list):
            kwargs[k] = tuple(kwargs[k])
    return getattr(keras.layers, name)(name=layer.name, dtype=layer.dtype, **kwargs)


def to_keras_graph(model, keras, make_layer):
    """A ``keras.Model`` with the functional model's graph and weights.

    ``make_layer(layer)`` gives the Keras twin of one rnnkit layer (shared layers are made
    once, so they stay shared)."""
    from ..layers import InputLayer
    twins, tensors = {}, {}
    for t in model.inputs:
        il = t.node.layer
        tensors[id(t)] = keras.Input(shape=il.shape, batch_size=il.batch_size, dtype=il.dtype,
                                     name=il.name)
    for node in model.nodes:
        layer = node.layer
        if isinstance(layer, InputLayer):
            continue
        if id(layer) not in twins:
            twins[id(layer)] = make_layer(layer)
        k = twins[id(layer)]
        ins = [tensors[id(t)] for t in node.inputs]
        kw = dict(node.kwargs)
        if type(layer).__name__ == "MultiHeadAttention":
            out = k(*ins, **kw)
        elif node.input_is_list and not layer.list_inputs:        # RNN initial states
            out = k(ins[0], initial_state=ins[1:], **kw)
        else:
            out = k(ins if node.input_is_list else ins[0], **kw)
        outs = list(out) if node.output_is_list else [out]
        for t, o in zip(node.outputs, outs):
            tensors[id(t)] = o
    ins = [tensors[id(t)] for t in model.inputs]
    outs = [tensors[id(t)] for t in model.outputs]
    kmodel = keras.Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0],
                         name=model.name)
    for layer in model.layers:
        if id(layer) in twins and layer.params:
            k = twins[id(layer)]
            ws, kws = layer.get_weights(), k.get_weights()
            if len(ws) != len(kws) or any(a.shape != b.shape for a, b in zip(ws, kws)):
                raise ValueError(f"to_keras: layer {layer.name!r} weight shapes "
                                 f"{[a.shape for a in ws]} do not match Keras's "
                                 f"{[b.shape for b in kws]}.")
            k.set_weights(ws)
    return kmodel


# ----------------------------------------------------------------------------------- ONNX
def _ax(g, name, values):
    return g.const(name, np.array(values, np.int64))


def _reduce(g, op, x, axis, keepdims, opset):
    if opset >= 18 or op == "ReduceSum":
        return g.op(op, [x, _ax(g, "axes", [axis])], keepdims=int(keepdims))
    return g.op(op, [x], axes=[axis], keepdims=int(keepdims))


def _channels_first(g, x, data_format):
    return x if data_format == "channels_first" else g.op("Transpose", [x], perm=[0, 2, 1])


def onnx_layer(g, layer, xs, masks, where, opset):
    """Emit ONNX nodes for ``layer`` on input tensor names ``xs`` (one per input) with
    ``masks`` ``[(mask, lens), ...]``. Returns ``(y, mask, lens)``."""
    from .. import layers as L
    x = xs[0]
    mask, lens = masks[0]
    if isinstance(layer, L.Conv1D):
        W, *b = layer.get_weights()
        attrs = dict(kernel_shape=[layer.kernel_size], strides=[layer.strides],
                     dilations=[layer.dilation_rate], group=layer.groups)
        if layer.padding == "same":
            attrs["auto_pad"] = "SAME_UPPER"      # extra padding at the end, as Keras
        elif layer.padding == "causal":
            attrs["pads"] = [layer.dilation_rate * (layer.kernel_size - 1), 0]
        inputs = [_channels_first(g, x, layer.data_format),
                  g.const("conv_w", W.transpose(2, 1, 0).astype(np.float32))]  # (F, C/g, k)
        if b:
            inputs.append(g.const("conv_b", b[0].astype(np.float32)))
        y = _channels_first(g, g.op("Conv", inputs, **attrs), layer.data_format)
        from .onnx import _activation
        return _activation(g, layer.activation.name, y, where), None, None
    if isinstance(layer, (L.MaxPooling1D, L.AveragePooling1D)):
        op = "MaxPool" if isinstance(layer, L.MaxPooling1D) else "AveragePool"
        y = g.op(op, [_channels_first(g, x, layer.data_format)], kernel_shape=[layer.pool_size],
                 strides=[layer.strides],
                 auto_pad="SAME_UPPER" if layer.padding == "same" else "VALID")
        return _channels_first(g, y, layer.data_format), None, None
    if isinstance(layer, (L.GlobalAveragePooling1D, L.GlobalMaxPooling1D)):
        axis = 1 if layer.data_format == "channels_last" else 2
        if mask is not None and layer.data_format == "channels_last":
            m3 = g.op("Unsqueeze", [mask[0], _ax(g, "axis", [2])])
            if isinstance(layer, L.GlobalMaxPooling1D):
                neg = g.const("neg", np.array(-3.0e38, np.float32))
                y = _reduce(g, "ReduceMax", g.op("Where", [m3, x, neg]), 1, layer.keepdims,
                            opset)
            else:
                mf = g.op("Cast", [m3], to=1)
                s = _reduce(g, "ReduceSum", g.op("Mul", [x, mf]), 1, layer.keepdims, opset)
                n = _reduce(g, "ReduceSum", mf, 1, layer.keepdims, opset)
                y = g.op("Div", [s, g.op("Max", [n, g.const("one", np.array(1.0, np.float32))])])
            return y, None, None
        op = "ReduceMax" if isinstance(layer, L.GlobalMaxPooling1D) else "ReduceMean"
        return _reduce(g, op, x, axis, layer.keepdims, opset), None, None
    if isinstance(layer, L.BatchNormalization):
        p = layer.params
        scale = (p["gamma"] if layer.scale else 1.0) / np.sqrt(p["moving_variance"] +
                                                             layer.epsilon)
        shift = (p["beta"] if layer.center else 0.0) - p["moving_mean"] * scale
        shape = [1] * len(layer.input_shape)
        shape[layer._ax] = -1
        y = g.op("Mul", [x, g.const("bn_scale", scale.reshape(shape).astype(np.float32))])
        return g.op("Add", [y, g.const("bn_shift", shift.reshape(shape).astype(np.float32))]), \
            mask, lens
    if isinstance(layer, L.LayerNormalization):
        if layer._ax != len(layer.input_shape) - 1 or opset < 17:
            raise ValueError(f"export_onnx: layer {where} normalises axis {layer.axis}; ONNX "
                             "export supports the last axis with opset >= 17.")
        C = layer.input_shape[-1]
        gamma = layer.params["gamma"] if layer.scale else np.ones(C)
        beta = layer.params["beta"] if layer.center else np.zeros(C)
        y = g.op("LayerNormalization", [x, g.const("ln_gamma", gamma.astype(np.float32)),
                                        g.const("ln_beta", beta.astype(np.float32))],
                 axis=-1, epsilon=layer.epsilon)
        return y, mask, lens
    if isinstance(layer, (L.Concatenate, L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum,
                          L.Minimum)):
        if any(m is not None for m, _ in masks):
            raise ValueError(f"export_onnx: layer {where} merges masked tensors; ONNX export "
                             "supports merging unmasked tensors only.")
        if isinstance(layer, L.Concatenate):
            return g.op("Concat", xs, axis=layer.axis), None, None
        op = {L.Add: "Sum", L.Subtract: "Sub", L.Multiply: "Mul", L.Average: "Mean",
              L.Maximum: "Max", L.Minimum: "Min"}[type(layer)]
        y = xs[0]
        if op in ("Sub", "Mul"):
            for other in xs[1:]:
                y = g.op(op, [y, other])
            return y, None, None
        return g.op(op, xs), None, None
    if isinstance(layer, L.Reshape):
        return g.op("Reshape", [x, _ax(g, "shape", [0, *layer.target_shape])]), None, None
    if isinstance(layer, L.Permute):
        return g.op("Transpose", [x], perm=[0, *layer.dims]), None, None
    if isinstance(layer, L.RepeatVector):
        y = g.op("Unsqueeze", [x, _ax(g, "axis", [1])])
        return g.op("Tile", [y, _ax(g, "repeats", [1, layer.n, 1])]), None, None
    if isinstance(layer, L.ZeroPadding1D):
        a, b = layer.padding
        return g.op("Pad", [x, _ax(g, "pads", [0, a, 0, 0, b, 0])]), None, None
    if isinstance(layer, L.Cropping1D):
        a, b = layer.cropping
        y = g.op("Slice", [x, _ax(g, "start", [a]), _ax(g, "end", [-b if b else
                                                                 np.iinfo(np.int64).max]),
                           _ax(g, "axes", [1])])
        return y, None, None
    raise ValueError(
        f"export_onnx: layer {where} is not supported. Supported: SimpleRNN, LSTM, GRU, "
        "Bidirectional, Dense, Embedding, Activation, Dropout, Flatten, Masking, "
        "TimeDistributed(Dense/Activation/Dropout), Conv1D, MaxPooling1D, AveragePooling1D, "
        "GlobalAveragePooling1D, GlobalMaxPooling1D, BatchNormalization, LayerNormalization, "
        "Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Reshape, Permute, "
        "RepeatVector, ZeroPadding1D, Cropping1D."
    )


def export_onnx_graph(model, path, opset):
    """ONNX export of a functional :class:`rnnkit.Model` (see :func:`rnnkit.interop.onnx.
    export_onnx`). Inputs are named after the model's inputs ('input' when there is one),
    outputs after its outputs ('output' when there is one)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from ..layers import InputLayer
    from .onnx import _Graph, _layer_op
    g = _Graph(helper, numpy_helper)
    values, inputs = {}, []
    for t in model.inputs:
        il = t.node.layer
        name = "input" if len(model.inputs) == 1 else il.name
        ints = np.dtype(il.dtype).kind in "iub"
        dims = ["batch"] + [f"{name}_dim{i}" if s is None else int(s)
                            for i, s in enumerate(il.shape)]
        inputs.append(helper.make_tensor_value_info(
            name, TensorProto.INT64 if ints else TensorProto.FLOAT, dims))
        values[id(t)] = (name, None, None)
    for node in model.nodes:
        layer = node.layer
        if isinstance(layer, InputLayer):
            continue
        where = f"{layer.name!r} ({type(layer).__name__})"
        if node.output_is_list or (node.input_is_list and not layer.list_inputs):
            raise ValueError(f"export_onnx: layer {where} is called with initial states or "
                             "returns states; ONNX export supports recurrent layers without "
                             "return_state and initial_state.")
        ins = [values[id(t)] for t in node.inputs]
        if layer.list_inputs:
            y = onnx_layer(g, layer, [v[0] for v in ins], [v[1:] for v in ins], where, opset)
        else:
            y = _layer_op(g, layer, *ins[0], opset)
        values[id(node.outputs[0])] = y
    outs = []
    for i, t in enumerate(model.outputs):
        name = "output" if len(model.outputs) == 1 else model.output_names[i]
        dims = [f"{name}_dim{j}" if s is None else int(s) for j, s in enumerate(t.shape)]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        g.nodes.append(helper.make_node("Identity", [values[id(t)][0]], [name]))
    graph = helper.make_graph(g.nodes, model.name, inputs, outs, initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="rnnkit")
    onnx.checker.check_model(proto)
    onnx.save(proto, os.fspath(path))
    return proto
