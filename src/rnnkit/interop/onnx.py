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
        cell = sub.cell
        if getattr(cell, "proj_size", 0) or getattr(cell, "zoneout", 0.0):
            raise ValueError(f"export_onnx: layer {sub.name!r} uses proj_size or zoneout, "
                             "which the ONNX LSTM/GRU operators do not have. Export a layer "
                             "without them (proj_size LSTMs export to PyTorch: to_torch).")
        if getattr(cell, "use_peepholes", False) != getattr(first.cell, "use_peepholes", False):
            raise ValueError(f"export_onnx: Bidirectional {layer.name!r} mixes use_peepholes "
                             "values; ONNX's P input covers both directions.")
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
    if getattr(first.cell, "use_peepholes", False):
        # ONNX LSTM input P (num_directions, 3u), order i, o, f; after initial_h/c (absent)
        P = np.stack([np.concatenate([sub.cell.params[f"{gate}_peephole"]
                                      for gate in ("input", "output", "forget")])
                      for sub, _ in parts]).astype(np.float32)
        ins += ["", "", g.const("P", _layout.check_shape("ONNX P", P, (D, 3 * u)))]
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


def export_onnx(model, path, opset=None, sequence_lens_input=False):
    """Write ``model`` as an ONNX file that ONNX Runtime runs with the same predictions.

    Args:
        model: a built :class:`rnnkit.Sequential` of SimpleRNN / LSTM / GRU / Bidirectional /
            Dense / Embedding / Dropout / Activation / Flatten / Masking layers
            (TimeDistributed(Dense) too).
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
        else:
            raise ValueError(
                f"export_onnx: layer {where} is not supported. Supported: SimpleRNN, LSTM, GRU, "
                "Bidirectional, Dense, Embedding, Activation, Dropout, Flatten, Masking, "
                "TimeDistributed(Dense/Activation/Dropout)."
            )
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
