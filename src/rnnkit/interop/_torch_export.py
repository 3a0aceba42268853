"""PyTorch export: ``to_torch`` (an ``nn.Module`` computing what the rnnkit model computes).

Layouts are converted by :mod:`rnnkit.interop._layout`; see :mod:`._torch_import` for the
differences. torch is imported inside the functions that need it.
"""

from __future__ import annotations

import numpy as np

from . import _layout


# --------------------------------------------------------------------------- export
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
    bidir = len(parts) == 2
    kw = dict(input_size=F, hidden_size=u, batch_first=True, bias=first.use_bias,
              bidirectional=bidir)
    if kind == "SimpleRNN":
        mod = nn.RNN(nonlinearity=first.activation.name, **kw)
    else:
        mod = getattr(nn, kind)(**kw)
    sd = {}
    for sub, backward in parts:
        sfx = "_reverse" if backward else ""
        w_ih, w_hh, b_ih, b_hh = _layout.keras_to_torch(
            kind, u, sub.get_weights(), getattr(sub, "reset_after", True), sub.use_bias)
        sd[f"weight_ih_l0{sfx}"], sd[f"weight_hh_l0{sfx}"] = w_ih, w_hh
        if sub.use_bias:
            sd[f"bias_ih_l0{sfx}"], sd[f"bias_hh_l0{sfx}"] = b_ih, b_hh
    for k, v in mod.state_dict().items():
        _layout.check_shape(f"torch {kind} {k}", sd[k], tuple(v.shape))
    mod.load_state_dict({k: torch.tensor(np.asarray(v, np.float32)) for k, v in sd.items()})
    return mod


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
            u = self.rnn.hidden_size
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
        layer = _layout.unwrap_time_distributed(layer)
        spec = _layout.recurrent_spec(layer)
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
