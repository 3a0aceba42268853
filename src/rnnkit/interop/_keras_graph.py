"""Keras export of functional models and of the convolution / pooling / normalisation /
merging / reshaping / attention layers (``to_keras``); their ONNX export lives in
:mod:`rnnkit.interop.onnx`.
"""

from __future__ import annotations

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
