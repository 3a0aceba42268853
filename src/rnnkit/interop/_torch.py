"""PyTorch interop: ``from_torch``, ``from_torch_state_dict`` and ``to_torch``.

PyTorch's layout differs from rnnkit's (= Keras's) in three ways, all handled in
:mod:`rnnkit.interop._layout`: weights are stored transposed (G, F); GRU gates are ordered
r, z, n instead of z, r, h; and there are two biases per layer. ``torch.nn.LSTM`` / ``nn.RNN``
map to one bias ``b_ih + b_hh``; ``torch.nn.GRU`` applies the reset gate after the recurrent
product, which is rnnkit's ``GRU(reset_after=True)`` with the two bias rows kept apart.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import re

import numpy as np

from . import _layout

_RNN_KINDS = {"RNN": "SimpleRNN", "LSTM": "LSTM", "GRU": "GRU"}
_TORCH_ACTIVATIONS = {  # torch module class name -> rnnkit activation
    "ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Identity": "linear",
    "ELU": "elu", "Softplus": "softplus", "Softsign": "softsign", "SiLU": "swish",
    "Hardsigmoid": "hard_sigmoid",
}


def _np(t):
    """A torch tensor (or array) as a NumPy array, detached and on the CPU."""
    if hasattr(t, "detach"):
        t = t.detach().cpu()
        if str(t.dtype) == "torch.bfloat16" or str(t.dtype) == "torch.float16":
            t = t.float()
        return t.numpy()
    return np.asarray(t)


def _bidirectional_cls():
    from .. import layers
    cls = getattr(layers, "Bidirectional", None)
    if cls is None:
        raise ValueError(
            "A bidirectional recurrent layer needs rnnkit.layers.Bidirectional, which this "
            "rnnkit version does not have. Upgrade rnnkit or convert a unidirectional model."
        )
    return cls


# --------------------------------------------------------------------------- import
def _torch_direction(sd, key_fmt, kind, units, F, has_bias, proj=False):
    """Keras-layout weights of one direction of one torch layer; ``key_fmt`` like
    'lstm.{}_l1_reverse'; ``proj``: an LSTM with ``proj_size`` (keys ``weight_hr``)."""
    def get(name):
        key = key_fmt.format(name)
        if key not in sd:
            raise ValueError(f"torch state dict: missing key {key!r} for a {kind}; got keys "
                             f"{sorted(sd)[:12]}.")
        return _np(sd[key])
    return _layout.torch_to_keras(
        kind, units, F, get("weight_ih"), get("weight_hh"),
        get("bias_ih") if has_bias else None, get("bias_hh") if has_bias else None,
        get("weight_hr") if proj else None)


def _recurrent_layers(sd, prefix, kind, units, input_size, num_layers, bidirectional,
                      nonlinearity, dropout, return_sequences, dtype):
    """rnnkit layers equivalent to one torch RNN module, built and loaded from ``sd``.

    Returns a list of layers (with ``Dropout`` between layers when ``dropout > 0``).
    """
    from .. import layers as L
    cls = {"SimpleRNN": L.SimpleRNN, "LSTM": L.LSTM, "GRU": L.GRU}[kind]
    has_bias = f"{prefix}bias_ih_l0" in sd
    proj = _np(sd[f"{prefix}weight_hr_l0"]).shape[0] if f"{prefix}weight_hr_l0" in sd else 0
    kwargs = dict(units=units, use_bias=has_bias, dtype=dtype)
    if proj:
        kwargs["proj_size"] = proj
    if kind == "SimpleRNN":
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"torch nn.RNN nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}.")
        kwargs["activation"] = nonlinearity
    if kind == "GRU":
        kwargs["reset_after"] = True       # torch applies r after the recurrent product
    if kind == "LSTM":
        kwargs["unit_forget_bias"] = False  # the imported bias already holds the forget bias
    out = []
    F = input_size
    for k in range(num_layers):
        last = k == num_layers - 1
        seqs = return_sequences or not last
        dirs = [("", False), ("_reverse", True)] if bidirectional else [("", False)]
        subs = []
        for suffix, go_backwards in dirs:
            ws = _torch_direction(sd, f"{prefix}{{}}_l{k}{suffix}", kind, units, F, has_bias,
                                  bool(proj))
            sub = cls(go_backwards=go_backwards, return_sequences=seqs, **kwargs)
            sub.build((None, None, F))
            sub.set_weights(ws)
            subs.append(sub)
        if bidirectional:
            layer = _bidirectional_cls()(subs[0], merge_mode="concat", backward_layer=subs[1])
            layer.build((None, None, F))
            layer.set_weights(subs[0].get_weights() + subs[1].get_weights())
        else:
            layer = subs[0]
        F = len(dirs) * (proj or units)
        out.append(layer)
        if dropout and not last:
            out.append(L.Dropout(float(dropout), dtype=dtype))
    return out


def _parse_groups(state_dict):
    """Split a flat torch state dict into [(prefix, 'rnn'|'linear', keys)] in key order."""
    rnn_key = re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
    lin_key = re.compile(r"^(.*?)(weight|bias)$")
    groups: dict[str, list] = {}
    order = []
    for key in state_dict:
        m = rnn_key.match(key)
        kind = "rnn" if m else None
        if m is None:
            m = lin_key.match(key)
            kind = "linear" if m else None
        if m is None:
            raise ValueError(
                f"torch state dict key {key!r} belongs to no supported module (nn.RNN, nn.LSTM, "
                "nn.GRU, nn.Linear). Remove it or convert that part by hand."
            )
        prefix = m.group(1)
        if prefix not in groups:
            groups[prefix] = [kind, []]
            order.append(prefix)
        elif groups[prefix][0] != kind:
            raise ValueError(f"torch state dict: prefix {prefix!r} mixes recurrent and Linear keys.")
        groups[prefix][1].append(key)
    return [(p, groups[p][0], groups[p][1]) for p in order]


def from_torch_state_dict(state_dict, nonlinearity="tanh", return_sequences=True,
                          dtype="float32"):
    """Build an rnnkit Sequential from a PyTorch ``state_dict`` alone.

    The recurrent kind is inferred from the gate count (``weight_hh_l0`` is (G, u):
    G = u -> SimpleRNN, 3u -> GRU, 4u -> LSTM), ``num_layers`` and bidirectionality from the
    keys. Groups of keys are converted in order: ``<prefix>weight_ih_l0...`` (nn.RNN / nn.LSTM /
    nn.GRU) and ``<prefix>weight`` / ``<prefix>bias`` (nn.Linear, as ``Dense`` without
    activation, since a state dict stores no activations).

    Args:
        state_dict: mapping of names to tensors or arrays (e.g. ``module.state_dict()``).
        nonlinearity: activation of every nn.RNN ('tanh' or 'relu'), not stored in state dicts.
        return_sequences: if False, the LAST recurrent layer returns its final state (B, u)
            (torch ``h_n[-1]``) instead of the sequence (B, T, u) (torch ``output``).
        dtype: dtype of the rnnkit layers.

    Returns:
        :class:`rnnkit.Sequential` taking batch-major (B, T, F) input.

    Example:
        >>> model = from_torch_state_dict(torch.nn.GRU(3, 8, batch_first=True).state_dict())
    """
    from .. import Sequential
    from .. import layers as L
    groups = _parse_groups(state_dict)
    if not groups:
        raise ValueError("from_torch_state_dict: the state dict is empty.")
    last_rnn = max((i for i, g in enumerate(groups) if g[1] == "rnn"), default=-1)
    layers = []
    for i, (prefix, kind, keys) in enumerate(groups):
        if kind == "rnn":
            w_hh = _np(state_dict[f"{prefix}weight_hh_l0"])
            w_ih = _np(state_dict[f"{prefix}weight_ih_l0"])
            units = w_hh.shape[1]
            if f"{prefix}weight_hr_l0" in state_dict:      # LSTM(proj_size): w_hh is (4u, p)
                units = _np(state_dict[f"{prefix}weight_hr_l0"]).shape[1]
            rkind = {1: "SimpleRNN", 3: "GRU", 4: "LSTM"}.get(w_hh.shape[0] // units)
            if rkind is None or w_hh.shape[0] % units:
                raise ValueError(
                    f"torch state dict {prefix!r}: weight_hh_l0 has shape {w_hh.shape}; expected "
                    "(u, u), (3u, u) or (4u, u) for nn.RNN, nn.GRU or nn.LSTM."
                )
            num_layers = len({k for k in keys if k.startswith(f"{prefix}weight_ih_l")
                              and not k.endswith("_reverse")})
            bidir = any(k.endswith("_reverse") for k in keys)
            layers += _recurrent_layers(
                state_dict, prefix, rkind, units, w_ih.shape[1], num_layers, bidir,
                nonlinearity, 0.0, return_sequences or i != last_rnn, dtype)
        else:
            w = _np(state_dict[f"{prefix}weight"])
            if w.ndim != 2:
                raise ValueError(f"torch state dict {prefix}weight has shape {w.shape}; only "
                                 "nn.Linear (2-D weight) is supported besides recurrent modules.")
            bias = state_dict.get(f"{prefix}bias")
            layers.append(_dense_from(w, None if bias is None else _np(bias), None, dtype))
    if groups[0][1] == "rnn":  # recurrent first: declare (timesteps, features)
        F = layers[0].input_shape[-1]
        return Sequential([L.Input((None, F), dtype=dtype)] + layers)
    return Sequential(layers)


def _dense_from(weight, bias, activation, dtype):
    from .. import layers as L
    out_f, in_f = weight.shape
    layer = L.Dense(out_f, activation=activation, use_bias=bias is not None, dtype=dtype)
    layer.build((None, in_f))
    ws = [_layout.check_shape("torch Linear weight.T", weight.T, (in_f, out_f))]
    if bias is not None:
        ws.append(_layout.check_shape("torch Linear bias", bias, (out_f,)))
    layer.set_weights(ws)
    return layer


def from_torch(module, return_sequences=True, dtype="float32"):
    """Convert a PyTorch module to an rnnkit Sequential with the same weights.

    Supported: ``nn.RNN`` (tanh/relu), ``nn.LSTM`` (also with ``proj_size``), ``nn.GRU`` with any
    ``num_layers`` and ``bidirectional``; ``nn.Linear``; activation modules (ReLU, Tanh,
    Sigmoid, Softmax(dim=-1), ...), ``nn.Dropout``, ``nn.Identity``; and an ``nn.Sequential`` of
    these. The rnnkit model is batch-major: feed (B, T, F). A module built with
    ``batch_first=False`` gives the same numbers when you transpose its (T, B, F) input.

    Args:
        module: the torch module.
        return_sequences: if False, the last recurrent layer returns its final hidden state
            (B, u) (torch ``h_n[-1]``, or ``[h_n[-2], h_n[-1]]`` concatenated when
            bidirectional) instead of torch's ``output`` (B, T, dirs*u).
        dtype: dtype of the rnnkit layers.

    Returns:
        :class:`rnnkit.Sequential`.

    Raises:
        ValueError: for unsupported modules or options, naming them.

    Example:
        >>> model = from_torch(torch.nn.LSTM(3, 8, num_layers=2, batch_first=True))
        >>> model.predict(np.zeros((4, 10, 3), "float32")).shape
        (4, 10, 8)
    """
    from torch import nn

    from .. import Sequential
    from .. import layers as L
    mods = list(module) if isinstance(module, nn.Sequential) else [module]
    rnn_idx = [i for i, m in enumerate(mods) if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU))]
    layers, first_shape = [], None
    for i, m in enumerate(mods):
        name = type(m).__name__
        if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU)):
            kind = _RNN_KINDS[name]
            nonlin = getattr(m, "nonlinearity", "tanh")
            layers += _recurrent_layers(
                m.state_dict(), "", kind, m.hidden_size, m.input_size, m.num_layers,
                m.bidirectional, nonlin, m.dropout,
                return_sequences or i != rnn_idx[-1], dtype)
            if i == 0:  # recurrent first: declare (timesteps, features)
                first_shape = (None, m.input_size)
        elif isinstance(m, nn.Linear):
            layers.append(_dense_from(_np(m.weight), None if m.bias is None else _np(m.bias),
                                      None, dtype))
        elif name in _TORCH_ACTIVATIONS:
            layers.append(L.Activation(_TORCH_ACTIVATIONS[name], dtype=dtype))
        elif isinstance(m, nn.Softmax):
            if m.dim not in (-1, None):
                raise ValueError(f"torch Softmax(dim={m.dim}) is not supported; rnnkit's softmax "
                                 "is over the last axis (use dim=-1).")
            layers.append(L.Activation("softmax", dtype=dtype))
        elif isinstance(m, nn.Dropout):
            layers.append(L.Dropout(float(m.p), dtype=dtype))
        else:
            raise ValueError(
                f"from_torch: module {i} ({name}) is not supported. Supported: nn.RNN, nn.LSTM, "
                "nn.GRU, nn.Linear, nn.Dropout, nn.Softmax(dim=-1) and activation modules "
                f"{sorted(_TORCH_ACTIVATIONS)}, or an nn.Sequential of these."
            )
    if not layers:
        raise ValueError("from_torch: the module contains no layers.")
    if first_shape is None:
        return Sequential(layers)
    return Sequential([L.Input(first_shape, dtype=dtype)] + layers)


# --------------------------------------------------------------------------- export
def _recurrent_spec(layer):
    """(kind, [(sub_layer, is_backward)], merge_mode or None) for a recurrent or Bidirectional layer."""
    from ..layers import GRU, LSTM, SimpleRNN
    kinds = {SimpleRNN: "SimpleRNN", LSTM: "LSTM", GRU: "GRU"}
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        f, b = layer.forward_layer, layer.backward_layer
        if type(f) is not type(b) or type(f) not in kinds:
            raise ValueError(f"Bidirectional layer {layer.name!r} wraps {type(f).__name__} and "
                             f"{type(b).__name__}; expected the same SimpleRNN/LSTM/GRU type.")
        return kinds[type(f)], [(f, False), (b, True)], getattr(layer, "merge_mode", "concat")
    for cls, kind in kinds.items():
        if type(layer) is cls:
            return kind, [(layer, False)], None
    return None


def _torch_rnn_for(kind, parts, F):
    """A torch nn.RNN/LSTM/GRU (1 layer, batch_first) holding the weights of ``parts``."""
    import torch
    from torch import nn
    first = parts[0][0]
    for sub, _ in parts:
        if sub.stateful:
            raise ValueError(f"Layer {sub.name!r} is stateful; to_torch exports stateless modules. "
                             "Rebuild it with stateful=False (same weights) first.")
        if (sub.units != first.units or sub.use_bias != first.use_bias
                or sub.activation.name != first.activation.name):
            raise ValueError(f"Bidirectional layer's two directions differ (units, use_bias or "
                             f"activation: {first.name!r} vs {sub.name!r}); torch needs them equal.")
        act = sub.activation.name
        if kind == "SimpleRNN" and act not in ("tanh", "relu"):
            raise ValueError(f"SimpleRNN {sub.name!r} uses activation {act!r}; torch nn.RNN supports "
                             "only 'tanh' and 'relu'.")
        if kind != "SimpleRNN" and (act != "tanh" or sub.recurrent_activation.name != "sigmoid"):
            raise ValueError(f"{kind} {sub.name!r} uses activation={act!r}, recurrent_activation="
                             f"{sub.recurrent_activation.name!r}; torch only has tanh/sigmoid.")
    u = first.units
    proj = getattr(first.cell, "proj_size", 0)
    for sub, _ in parts:
        if getattr(sub.cell, "use_peepholes", False) or getattr(sub.cell, "zoneout", 0.0):
            raise ValueError(f"{kind} {sub.name!r} uses peepholes or zoneout, which torch.nn."
                             f"{kind} does not have; export it to ONNX (peepholes) or rebuild "
                             "it without them.")
        if getattr(sub.cell, "proj_size", 0) != proj:
            raise ValueError("Bidirectional layer's two directions differ in proj_size; torch "
                             "needs them equal.")
    bidir = len(parts) == 2
    kw = dict(input_size=F, hidden_size=u, batch_first=True, bias=first.use_bias,
              bidirectional=bidir)
    if proj:
        kw["proj_size"] = proj
    if kind == "SimpleRNN":
        mod = nn.RNN(nonlinearity=first.activation.name, **kw)
    else:
        mod = getattr(nn, kind)(**kw)
    sd = {}
    for sub, backward in parts:
        sfx = "_reverse" if backward else ""
        ws = sub.get_weights()
        w_ih, w_hh, b_ih, b_hh = _layout.keras_to_torch(
            kind, u, ws, getattr(sub, "reset_after", True), sub.use_bias, proj)
        sd[f"weight_ih_l0{sfx}"], sd[f"weight_hh_l0{sfx}"] = w_ih, w_hh
        if proj:                                     # projection_kernel (u, p) is declared last
            sd[f"weight_hr_l0{sfx}"] = _layout.check_shape(
                f"{sub.name} projection_kernel", ws[-1], (u, proj)).T
        if sub.use_bias:
            sd[f"bias_ih_l0{sfx}"], sd[f"bias_hh_l0{sfx}"] = b_ih, b_hh
    for k, v in mod.state_dict().items():
        _layout.check_shape(f"torch {kind} {k}", sd[k], tuple(v.shape))
    mod.load_state_dict({k: torch.tensor(np.asarray(v, np.float32)) for k, v in sd.items()})
    return mod


def _unwrap_time_distributed(layer):
    """TimeDistributed(Dense / Activation / Dropout) acts on the last axis like the inner layer."""
    from .. import layers as L
    inner = getattr(layer, "layer", None)
    if type(layer).__name__ == "TimeDistributed" and isinstance(inner, (L.Dense, L.Activation,
                                                                        L.Dropout)):
        return inner
    return layer


_TORCH_CLASSES = {}


def _torch_classes():
    """Define the exported torch module classes once (torch imported lazily)."""
    if _TORCH_CLASSES:
        return _TORCH_CLASSES
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    def activation(name, z):
        fns = {"linear": lambda a: a, "relu": torch.relu, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid, "softmax": lambda a: torch.softmax(a, -1),
               "elu": nn.functional.elu, "softplus": nn.functional.softplus,
               "softsign": nn.functional.softsign, "swish": nn.functional.silu,
               "hard_sigmoid": nn.functional.hardsigmoid}
        if name not in fns:
            raise ValueError(f"to_torch: activation {name!r} has no torch equivalent here; "
                             f"supported: {sorted(fns)}.")
        return fns[name](z)

    def reverse_within(x, lengths):
        """Reverse each row's first lengths[b] steps, leave the padding in place. x (B, T, .)"""
        T = x.shape[1]
        t = torch.arange(T).unsqueeze(0)
        L = lengths.unsqueeze(1)
        idx = torch.where(t < L, L - 1 - t, t)                        # (B, T)
        return torch.gather(x, 1, idx.unsqueeze(-1).expand_as(x))

    class RnnkitSequential(nn.Module):
        """Torch twin of an rnnkit Sequential. ``forward(x)``: x (B, T, F) or ids (B, T)."""

        def __init__(self, steps):
            super().__init__()
            self.steps = nn.ModuleList(steps)

        def forward(self, x, mask=None):
            for step in self.steps:
                x, mask = step(x, mask)
            return x

    class DenseStep(nn.Module):
        def __init__(self, linear, act):
            super().__init__()
            self.linear, self.act = linear, act

        def forward(self, x, mask):
            return activation(self.act, self.linear(x)), mask

    class ActivationStep(nn.Module):
        def __init__(self, act):
            super().__init__()
            self.act = act

        def forward(self, x, mask):
            return activation(self.act, x), mask

    class IdentityStep(nn.Module):
        def forward(self, x, mask):
            return x, mask

    class FlattenStep(nn.Module):
        def forward(self, x, mask):
            return x.reshape(x.shape[0], -1), None

    class MaskingStep(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x, mask):
            m = (x != self.value).any(-1)
            m = m if mask is None else (m & mask)
            return x * m.unsqueeze(-1).to(x.dtype), m

    class EmbeddingStep(nn.Module):
        def __init__(self, emb, mask_zero):
            super().__init__()
            self.emb, self.mask_zero = emb, mask_zero

        def forward(self, x, mask):
            x = x.long()
            return self.emb(x), (x != 0) if self.mask_zero else mask

    class RecurrentStep(nn.Module):
        """One rnnkit recurrent (or Bidirectional) layer on a torch nn.RNN/LSTM/GRU.

        Masks must be right-padded (valid steps first); they become packed sequences. Outputs
        at padded steps follow rnnkit: the last output carried over (a forward layer), zeros
        (go_backwards: its carried initial state; Bidirectional: zero_output_for_mask).
        """

        def __init__(self, rnn, go_backwards, return_sequences, merge_mode):
            super().__init__()
            self.rnn, self.go_backwards = rnn, go_backwards
            self.return_sequences, self.merge_mode = return_sequences, merge_mode

        def merge(self, a, b):
            mode = self.merge_mode
            if mode == "concat":
                return torch.cat([a, b], -1)
            if mode == "sum":
                return a + b
            if mode == "ave":
                return (a + b) / 2
            return a * b                                                # 'mul'

        def forward(self, x, mask):
            T = x.shape[1]
            u = getattr(self.rnn, "proj_size", 0) or self.rnn.hidden_size    # output size
            bidir = self.rnn.bidirectional
            if mask is None:
                xin = torch.flip(x, [1]) if self.go_backwards else x
                out, hn = self.rnn(xin)
                hn = hn[0] if isinstance(hn, tuple) else hn             # (dirs, B, u)
            else:
                lengths = mask.sum(1).long()
                right = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
                if not torch.equal(right, mask.bool()):
                    raise ValueError("to_torch module: the mask is not right-padded (valid steps "
                                     "first, then padding); torch packed sequences need that. "
                                     "Pad with padding='post'.")
                if bool((lengths == 0).any()):
                    raise ValueError("to_torch module: a sequence has no valid step (length 0).")
                xin = reverse_within(x, lengths) if self.go_backwards else x
                packed = pack_padded_sequence(xin, lengths.cpu(), batch_first=True,
                                              enforce_sorted=False)
                out, hn = self.rnn(packed)
                out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
                hn = hn[0] if isinstance(hn, tuple) else hn
                keep = mask.unsqueeze(-1)
                if self.go_backwards:  # rnnkit order: processing order, padding (zeros) first
                    out = torch.flip(torch.where(keep, reverse_within(out, lengths),
                                                 torch.zeros_like(out)), [1])
                elif not bidir:  # rnnkit carries the last output over padded steps
                    out = torch.where(keep, out, hn[0].unsqueeze(1))
                # Bidirectional: zeros at padded steps in both directions, as packed gives
            if bidir:
                res = (self.merge(out[..., :u], out[..., u:]) if self.return_sequences
                       else self.merge(hn[0], hn[1]))
            else:
                res = out if self.return_sequences else hn[0]
            new_mask = None
            if mask is not None and self.return_sequences:
                new_mask = torch.flip(mask, [1]) if self.go_backwards else mask
            return res, new_mask

    _TORCH_CLASSES.update(
        RnnkitSequential=RnnkitSequential, DenseStep=DenseStep, ActivationStep=ActivationStep,
        IdentityStep=IdentityStep, FlattenStep=FlattenStep, MaskingStep=MaskingStep,
        EmbeddingStep=EmbeddingStep, RecurrentStep=RecurrentStep)
    return _TORCH_CLASSES


def to_torch(model):
    """Convert an rnnkit Sequential to a torch ``nn.Module`` giving the same outputs.

    The returned module (in eval mode, float32) takes batch-major input like rnnkit:
    ``module(torch.tensor(x))`` with x (B, T, F) floats or (B, T) integer ids, and returns
    what ``model.predict(x)`` returns. Masks from ``Masking`` / ``Embedding(mask_zero=True)``
    must be right-padded (they become packed sequences).

    Args:
        model: a built :class:`rnnkit.Sequential` of SimpleRNN (tanh/relu), LSTM, GRU
            (reset_after=True), Bidirectional, Dense, Embedding, Dropout, Activation,
            Flatten, Masking layers.

    Returns:
        torch.nn.Module.

    Raises:
        ValueError: naming the layer or option torch cannot express (e.g. GRU
            reset_after=False, LSTM with non-default activations).

    Example:
        >>> module = to_torch(model)
        >>> y = module(torch.tensor(x)).detach().numpy()   # == model.predict(x)
    """
    import torch
    from torch import nn

    from .. import layers as L
    C = _torch_classes()
    if not getattr(model, "built", False):
        raise ValueError("to_torch: the model is not built. Call it on data or start it with "
                         "rnnkit.layers.Input(shape=...) first.")
    steps = []
    for layer in model.layers:
        layer = _unwrap_time_distributed(layer)
        spec = _recurrent_spec(layer)
        if spec is not None:
            kind, parts, merge = spec
            F = parts[0][0].params["kernel"].shape[0]
            if merge is None:
                sub = parts[0][0]
                steps.append(C["RecurrentStep"](_torch_rnn_for(kind, parts, F), sub.go_backwards,
                                                sub.return_sequences, None))
            else:
                if merge not in ("concat", "sum", "ave", "mul"):
                    raise ValueError(f"Bidirectional {layer.name!r}: merge_mode={merge!r} cannot be "
                                     "exported; expected 'concat', 'sum', 'ave' or 'mul'.")
                if parts[0][0].go_backwards or not parts[1][0].go_backwards:
                    raise ValueError(f"Bidirectional {layer.name!r}: expected a forward layer "
                                     "with go_backwards=False and a backward one with True.")
                steps.append(C["RecurrentStep"](_torch_rnn_for(kind, parts, F), False,
                                                parts[0][0].return_sequences, merge))
        elif isinstance(layer, L.Dense):
            w = layer.get_weights()
            lin = nn.Linear(w[0].shape[0], w[0].shape[1], bias=layer.use_bias)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(np.asarray(w[0].T, np.float32)))
                if layer.use_bias:
                    lin.bias.copy_(torch.tensor(np.asarray(w[1], np.float32)))
            steps.append(C["DenseStep"](lin, layer.activation.name))
        elif isinstance(layer, L.Embedding):
            (E,) = layer.get_weights()
            emb = nn.Embedding(E.shape[0], E.shape[1])
            with torch.no_grad():
                emb.weight.copy_(torch.tensor(np.asarray(E, np.float32)))
            steps.append(C["EmbeddingStep"](emb, layer.mask_zero))
        elif isinstance(layer, L.Activation):
            steps.append(C["ActivationStep"](layer.activation.name))
        elif isinstance(layer, L.Dropout):
            steps.append(C["IdentityStep"]())
        elif isinstance(layer, L.Flatten):
            steps.append(C["FlattenStep"]())
        elif isinstance(layer, L.Masking):
            steps.append(C["MaskingStep"](layer.mask_value))
        else:
            raise ValueError(
                f"to_torch: layer {layer.name!r} ({type(layer).__name__}) is not supported. "
                "Supported: SimpleRNN, LSTM, GRU, Bidirectional, Dense, Embedding, Activation, "
                "Dropout, Flatten, Masking, TimeDistributed(Dense/Activation/Dropout)."
            )
    return C["RnnkitSequential"](steps).eval()
