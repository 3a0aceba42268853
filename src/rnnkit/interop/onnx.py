"""ONNX export with ONNX's own RNN / LSTM / GRU operators (``onnx`` imported lazily).

The graph takes the model's batch-major input (B, T, F) float32 (or (B, T) int64 ids when the
model starts with ``Embedding``) and returns what ``model.predict`` returns. Recurrent layers
become one ONNX ``RNN`` / ``LSTM`` / ``GRU`` node each (``direction`` 'forward', 'reverse' for
``go_backwards`` or 'bidirectional'); weights are converted by :func:`_layout.keras_to_onnx`.

Masks from ``Masking`` and ``Embedding(mask_zero=True)`` become the operators'
``sequence_lens`` input (the count of valid steps per row), which is only right for
right-padded batches (valid steps first). At padded steps rnnkit carries the last output of
a forward layer (reproduced with a ``Where``) and outputs zeros for go_backwards and
Bidirectional layers, as ONNX does.

Functional models and the convolution / pooling / normalisation / merging / reshaping layers
(:func:`export_onnx_graph`, :func:`onnx_layer`): Conv1D and pooling become ``Conv`` /
``MaxPool`` / ``AveragePool`` on a channels-first view; BatchNormalization (inference) is
``x * scale + shift`` with the moving statistics folded in; LayerNormalization is ONNX's
``LayerNormalization``; merging layers are ``Concat`` / ``Sum`` / ``Sub`` / ``Mul`` / ``Mean`` /
``Max`` / ``Min``. Layers ONNX cannot express this way (attention, Dot, UpSampling1D,
recurrent layers with ``return_state`` or initial states) are refused by name.
"""

from __future__ import annotations

import os

import numpy as np

from . import _layout
from ._layout import recurrent_spec as _recurrent_spec
from ._layout import unwrap_time_distributed as _unwrap_time_distributed

DEFAULT_OPSET = 17
MIN_OPSET = 14

# rnnkit activation -> (ONNX activation name inside RNN ops, alpha, beta)
_RNN_ACTS = {
    "tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None), "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None), "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "linear": ("Affine", 1.0, 0.0),
}


class _Graph:
    """Collects nodes and initializers with unique names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, array):
        n = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, base=None, n_out=1, **attrs):
        outs = [self.name(base or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs


def _activation(g, name, x, where):
    """Dense / Activation layer activation as ONNX nodes."""
    simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "elu": "Elu",
              "softplus": "Softplus", "softsign": "Softsign"}
    if name == "linear":
        return x
    if name in simple:
        return g.op(simple[name], [x])
    if name == "softmax":
        return g.op("Softmax", [x], axis=-1)
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    if name == "swish":
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    raise ValueError(f"export_onnx: layer {where} uses activation {name!r}, which has no ONNX "
                     "export here. Supported: linear, relu, tanh, sigmoid, elu, softplus, "
                     "softsign, softmax, hard_sigmoid, swish.")


def _rnn_acts(kind, sub):
    names = [sub.activation.name] if kind == "SimpleRNN" else (
        [sub.recurrent_activation.name, sub.activation.name, sub.activation.name]
        if kind == "LSTM" else [sub.recurrent_activation.name, sub.activation.name])
    out = []
    for n in names:
        if n not in _RNN_ACTS:
            raise ValueError(
                f"export_onnx: {kind} layer {sub.name!r} uses activation {n!r}, which ONNX's "
                f"{kind if kind != 'SimpleRNN' else 'RNN'} operator lacks. Supported inside "
                f"recurrent operators: {sorted(_RNN_ACTS)}."
            )
        out.append(_RNN_ACTS[n])
    return out


def _recurrent(g, layer, spec, x, mask, lens):
    """Emit one recurrent/Bidirectional layer. x (B, T, F). Returns (y, mask, lens)."""
    kind, parts, merge = spec
    first = parts[0][0]
    for sub, _ in parts:
        if sub.stateful:
            raise ValueError(f"export_onnx: layer {sub.name!r} is stateful; ONNX graphs start from "
                             "zero states. Rebuild the model with stateful=False and the same "
                             "weights, then export.")
        if sub.units != first.units or type(sub.cell) is not type(first.cell):
            raise ValueError(f"export_onnx: Bidirectional {layer.name!r} has directions with "
                             "different types or units; ONNX needs them equal.")
        if getattr(sub, "reset_after", True) != getattr(first, "reset_after", True):
            raise ValueError(f"export_onnx: Bidirectional {layer.name!r} mixes GRU reset_after "
                             "values; ONNX's linear_before_reset is shared by both directions.")
    if merge is not None and merge not in ("concat", "sum", "ave", "mul"):
        raise ValueError(f"export_onnx: Bidirectional {layer.name!r} merge_mode={merge!r}; "
                         "expected 'concat', 'sum', 'ave' or 'mul'.")
    if mask is not None and mask[1]:
        raise ValueError(
            f"export_onnx: layer {layer.name!r} receives a time-reversed mask (from an earlier "
            "go_backwards layer with return_sequences=True), i.e. left padding, which ONNX "
            "sequence_lens cannot express. Use Bidirectional instead of go_backwards there."
        )
    u = first.units
    if merge is None:
        direction = "reverse" if first.go_backwards else "forward"
    else:
        if first.go_backwards or not parts[1][0].go_backwards:
            raise ValueError(f"export_onnx: Bidirectional {layer.name!r} must have a forward "
                             "layer with go_backwards=False and a backward one with True.")
        direction = "bidirectional"
    Ws, Rs, Bs, acts = [], [], [], []
    for sub, _ in parts:
        W, R, B = _layout.keras_to_onnx(kind, u, sub.get_weights(),
                                        getattr(sub, "reset_after", True), sub.use_bias)
        Ws.append(W)
        Rs.append(R)
        Bs.append(B)
        acts += _rnn_acts(kind, sub)
    D = len(parts)
    G = _layout.N_GATES[kind] * u
    F = Ws[0].shape[1]
    W = _layout.check_shape("ONNX W", np.stack(Ws).astype(np.float32), (D, G, F))
    R = _layout.check_shape("ONNX R", np.stack(Rs).astype(np.float32), (D, G, u))
    B = _layout.check_shape("ONNX B", np.stack(Bs).astype(np.float32), (D, 2 * G))
    attrs = dict(hidden_size=u, direction=direction, activations=[a[0] for a in acts])
    if any(a[1] is not None for a in acts):
        # ONNX Runtime reads one alpha/beta per activation that takes them, in order.
        attrs["activation_alpha"] = [a[1] for a in acts if a[1] is not None]
        attrs["activation_beta"] = [a[2] for a in acts if a[2] is not None]
    if kind == "GRU":
        attrs["linear_before_reset"] = int(getattr(first, "reset_after", True))
    op = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[kind]
    xt = g.op("Transpose", [x], perm=[1, 0, 2])                              # (T, B, F)
    ins = [xt, g.const("W", W), g.const("R", R), g.const("B", B), lens or ""]
    Y, Y_h = g.op(op, ins, base=first.name, n_out=2, **attrs)               # (T,D,B,u), (D,B,u)
    Yb = g.op("Transpose", [Y], perm=[2, 0, 1, 3])                          # (B, T, D, u)
    return_sequences = first.return_sequences
    outs = []
    for d in range(len(parts)):
        idx = g.const("dir", np.array(d, np.int64))
        if not return_sequences:
            outs.append(g.op("Gather", [Y_h, idx], axis=0))                    # (B, u)
            continue
        y = g.op("Gather", [Yb, idx], axis=2)                                  # (B, T, u)
        if direction == "forward":
            if mask is not None:  # rnnkit carries the last output over padded steps
                h = g.op("Unsqueeze", [g.op("Gather", [Y_h, idx], axis=0),
                                       g.const("axis", np.array([1], np.int64))])
                m3 = g.op("Unsqueeze", [mask[0], g.const("axis", np.array([2], np.int64))])
                y = g.op("Where", [m3, y, h])
        elif direction == "reverse":  # rnnkit gives go_backwards outputs in processing order
            y = g.op("Slice", [y, g.const("start", np.array([-1], np.int64)),
                               g.const("end", np.array([np.iinfo(np.int64).min], np.int64)),
                               g.const("axes", np.array([1], np.int64)),
                               g.const("steps", np.array([-1], np.int64))])
        outs.append(y)
    if len(outs) == 1:
        y = outs[0]
    elif merge == "concat":
        y = g.op("Concat", outs, axis=-1)
    elif merge == "mul":
        y = g.op("Mul", outs)
    else:
        y = g.op("Add", outs)
        if merge == "ave":
            y = g.op("Mul", [y, g.const("half", np.array(0.5, np.float32))])
    if not return_sequences:
        return y, None, None
    if mask is not None and direction == "reverse":
        mask = (mask[0], True)
    return y, mask, lens


def _lens_from(g, mask_f):
    """(B,) int32 valid-step counts from a (B, T) float mask."""
    s = g.op("ReduceSum", [mask_f, g.const("axes", np.array([1], np.int64))], keepdims=0)
    return g.op("Cast", [s], to=6)                                            # INT32


def _layer_op(g, layer, x, mask, lens, opset=DEFAULT_OPSET):
    """Emit the ONNX nodes of one single-input layer. x: tensor name; mask: (bool (B, T)
    tensor name, reversed?) or None; lens: (B,) int32 valid-step counts or None.
    Returns the new ``(x, mask, lens)``."""
    from .. import layers as L
    where = f"{layer.name!r} ({type(layer).__name__})"
    layer = _unwrap_time_distributed(layer)
    spec = _recurrent_spec(layer)
    if spec is not None:
        x, mask, lens = _recurrent(g, layer, spec, x, mask, lens)
    elif isinstance(layer, L.Dense):
        ws = layer.get_weights()
        x = g.op("MatMul", [x, g.const("kernel", ws[0].astype(np.float32))])
        if layer.use_bias:
            x = g.op("Add", [x, g.const("bias", ws[1].astype(np.float32))])
        x = _activation(g, layer.activation.name, x, where)
    elif isinstance(layer, L.Embedding):
        (E,) = layer.get_weights()
        ids = x
        x = g.op("Gather", [g.const("embeddings", E.astype(np.float32)), ids], axis=0)
        if layer.mask_zero:
            m = g.op("Not", [g.op("Equal", [ids, g.const("zero", np.array(0, np.int64))])])
            mask = (m, False)
            lens = _lens_from(g, g.op("Cast", [m], to=1))
    elif isinstance(layer, L.Masking):
        v = g.const("mask_value", np.array(layer.mask_value, np.float32))
        neq = g.op("Cast", [g.op("Not", [g.op("Equal", [x, v])])], to=1)     # (B, T, F)
        cnt = g.op("ReduceSum", [neq, g.const("axes", np.array([-1], np.int64))], keepdims=0)
        m = g.op("Greater", [cnt, g.const("zero", np.array(0.0, np.float32))])  # (B, T)
        if mask is not None:
            if mask[1]:
                raise ValueError(f"export_onnx: Masking layer {where} receives a "
                                 "time-reversed mask from a go_backwards layer; ONNX "
                                 "sequence_lens cannot express it. Use Bidirectional.")
            m = g.op("And", [m, mask[0]])
        mf = g.op("Cast", [m], to=1)
        x = g.op("Mul", [x, g.op("Unsqueeze", [mf, g.const("axis", np.array([2], np.int64))])])
        mask, lens = (m, False), _lens_from(g, mf)
    elif isinstance(layer, L.Activation):
        x = _activation(g, layer.activation.name, x, where)
    elif isinstance(layer, L.Dropout):
        pass  # identity at inference
    elif isinstance(layer, L.Flatten):
        x = g.op("Flatten", [x], axis=1)
        mask = lens = None
    else:  # convolution, pooling, normalisation, reshaping (one input)
        x, mask, lens = onnx_layer(g, layer, [x], [(mask, lens)], where, opset)
    return x, mask, lens


def export_onnx(model, path, opset=None, sequence_lens_input=False):
    """Write ``model`` as an ONNX file that ONNX Runtime runs with the same predictions.

    Args:
        model: a built :class:`rnnkit.Sequential` of SimpleRNN / LSTM / GRU / Bidirectional /
            Dense / Embedding / Dropout / Activation / Flatten / Masking layers
            (TimeDistributed(Dense) too), Conv1D, pooling, normalisation, merging and
            reshaping layers; or a functional :class:`rnnkit.Model` of those (one ONNX input
            per model input, one output per model output).
        path: destination ``.onnx`` file.
        opset: ONNX opset, default 17, at least 14.
        sequence_lens_input: add a second graph input ``"sequence_lens"`` (B,) int32, the
            number of valid (leading) steps of each row: the ONNX twin of the mask rnnkit
            builds when ``predict`` gets a ragged list of sequences (padded at the end).

    Returns:
        ``onnx.ModelProto`` (also saved to ``path``). Input ``"input"``: (B, T, F) float32, or
        (B, T) int64 ids for an Embedding first layer; output ``"output"``.

    Raises:
        ValueError: for layers or options ONNX cannot express, naming them: stateful layers,
        recurrent activations ONNX lacks (e.g. swish), masks reversed by ``go_backwards``.
        Masks are exported as ``sequence_lens``, correct for right-padded batches only.

    Example:
        >>> model.export_onnx("model.onnx")
        >>> import onnxruntime as ort
        >>> ort.InferenceSession("model.onnx").run(None, {"input": x})[0]  # == model.predict(x)
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .. import layers as L
    opset = DEFAULT_OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset < MIN_OPSET:
        raise ValueError(f"export_onnx: opset must be an integer >= {MIN_OPSET} (RNN operators "
                         f"with the needed semantics), got {opset!r}.")
    if not getattr(model, "built", False) or not model.layers:
        raise ValueError("export_onnx: the model is not built. Call it on data or start it with "
                         "rnnkit.layers.Input(shape=...) first.")
    from ..models import Sequential
    if not isinstance(model, Sequential):  # a functional graph
        if sequence_lens_input:
            raise ValueError("export_onnx: sequence_lens_input=True is for Sequential models; "
                             "give a functional model a Masking layer instead.")
        return export_onnx_graph(model, path, opset)
    g = _Graph(helper, numpy_helper)
    shape = (model._input_layer.shape if model._input_layer is not None
             else tuple(model.layers[0].input_shape[1:]))
    first = model.layers[0]
    ids_input = isinstance(first, L.Embedding)
    dims = ["batch"] + [("time" if i == 0 else f"dim{i}") if s is None else int(s)
                        for i, s in enumerate(shape)]
    inp = helper.make_tensor_value_info(
        "input", TensorProto.INT64 if ids_input else TensorProto.FLOAT, dims)
    x, mask, lens = "input", None, None   # mask: (bool (B, T) tensor name, reversed?) or None
    inputs = [inp]
    if sequence_lens_input:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"]))
        steps = g.op("Gather", [g.op("Shape", ["input"]), g.const("one", np.array(1, np.int64))])
        t = g.op("Range", [g.const("zero", np.array(0, np.int64)), steps,
                           g.const("one", np.array(1, np.int64))])                 # (T,)
        lens64 = g.op("Cast", ["sequence_lens"], to=7)                             # INT64
        m = g.op("Less", [g.op("Unsqueeze", [t, g.const("axis", np.array([0], np.int64))]),
                          g.op("Unsqueeze", [lens64, g.const("axis", np.array([1], np.int64))])])
        mask, lens = (m, False), "sequence_lens"
    for layer in model.layers:
        x, mask, lens = _layer_op(g, layer, x, mask, lens, opset)
    oshape = (None,) + tuple(shape)
    for layer in model.layers:
        oshape = layer.compute_output_shape(oshape)
    odims = [f"out{i}" if s is None else int(s) for i, s in enumerate(oshape)]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, odims)
    g.nodes.append(helper.make_node("Identity", [x], ["output"]))
    graph = helper.make_graph(g.nodes, model.name, inputs, [out], initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="rnnkit")
    onnx.checker.check_model(proto)
    onnx.save(proto, os.fspath(path))
    return proto


# ------------------------------------------------- functional models and the non-recurrent layers
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
