"""PyTorch import: ``from_torch`` and ``from_torch_state_dict``.

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
def _torch_direction(sd, key_fmt, kind, units, F, has_bias):
    """Keras-layout weights of one direction of one torch layer; ``key_fmt`` like
    'lstm.{}_l1_reverse'."""
    def get(name):
        key = key_fmt.format(name)
        if key not in sd:
            raise ValueError(f"torch state dict: missing key {key!r} for a {kind}; got keys "
                             f"{sorted(sd)[:12]}.")
        return _np(sd[key])
    return _layout.torch_to_keras(
        kind, units, F, get("weight_ih"), get("weight_hh"),
        get("bias_ih") if has_bias else None, get("bias_hh") if has_bias else None)


def _recurrent_layers(sd, prefix, kind, units, input_size, num_layers, bidirectional,
                      nonlinearity, dropout, return_sequences, dtype):
    """rnnkit layers equivalent to one torch RNN module, built and loaded from ``sd``.

    Returns a list of layers (with ``Dropout`` between layers when ``dropout > 0``).
    """
    from .. import layers as L
    cls = {"SimpleRNN": L.SimpleRNN, "LSTM": L.LSTM, "GRU": L.GRU}[kind]
    has_bias = f"{prefix}bias_ih_l0" in sd
    kwargs = dict(units=units, use_bias=has_bias, dtype=dtype)
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
            ws = _torch_direction(sd, f"{prefix}{{}}_l{k}{suffix}", kind, units, F, has_bias)
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
        F = len(dirs) * units
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
            if any("weight_hr" in k for k in keys):
                raise ValueError(
                    f"torch LSTM {prefix!r} has proj_size > 0 (key {prefix}weight_hr_l0); "
                    "projected LSTMs are not supported by rnnkit."
                )
            w_hh = _np(state_dict[f"{prefix}weight_hh_l0"])
            w_ih = _np(state_dict[f"{prefix}weight_ih_l0"])
            units = w_hh.shape[1]
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

    Supported: ``nn.RNN`` (tanh/relu), ``nn.LSTM`` (without ``proj_size``), ``nn.GRU`` with any
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
            if getattr(m, "proj_size", 0):
                raise ValueError(f"torch {name} has proj_size={m.proj_size}; projected LSTMs are "
                                 "not supported by rnnkit (expected proj_size=0).")
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


