"""Parity with PyTorch (torch==2.13.0): forward, final states and every gradient.

PyTorch modules with random weights and biases (both b_ih and b_hh non-zero) are converted
with :func:`rnnkit.interop.from_torch`; rnnkit's float32 forward outputs and final states must
match within 1e-5 and its gradients w.r.t. inputs, initial states and every weight within 1e-4
relative. Inputs are scaled x3 so gates saturate. Masked batches are compared with PyTorch
packed sequences on the valid steps (PyTorch outputs zeros at padded steps, rnnkit carries the
last output) and on the final states.
"""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit import layers as L
from rnnkit.interop import _layout, from_torch

FWD_TOL = 1e-5
GRAD_TOL = 1e-4
KINDS = [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", None), ("GRU", None)]
KERAS_KIND = {"RNN": "SimpleRNN", "LSTM": "LSTM", "GRU": "GRU"}
B, T, F, H = 4, 7, 3, 5


def assert_fwd(what, ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{what}: rnnkit vs reference shapes {ours.shape} vs {ref.shape}"
    err = np.max(np.abs(ours - ref)) / max(1.0, np.max(np.abs(ref)))
    assert err <= FWD_TOL, f"{what}: rnnkit vs reference differ by {err:.3g}\nrnnkit:\n{ours}\nreference:\n{ref}"


def assert_grad(what, ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{what}: rnnkit vs reference shapes {ours.shape} vs {ref.shape}"
    err = np.max(np.abs(ours - ref)) / max(1e-6, np.max(np.abs(ref)))
    assert err <= GRAD_TOL, (f"{what}: rnnkit vs reference relative error {err:.3g}\n"
                             f"rnnkit:\n{ours}\nreference:\n{ref}")


def make_torch(kind, nonlin=None, input_size=F, **kw):
    torch.manual_seed(0)
    extra = {"nonlinearity": nonlin} if nonlin else {}
    m = getattr(nn, kind)(input_size, H, batch_first=True, **extra, **kw)
    scale = 0.3 if nonlin == "relu" else 0.6
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * scale)          # non-zero b_ih and b_hh
    return m


def torch_weight_grads(m, kind, n_layers, bidir):
    """Gradients of a torch RNN module mapped to rnnkit/Keras layout and order."""
    out = []
    for k in range(n_layers):
        for sfx in ("", "_reverse") if bidir else ("",):
            g = {name: getattr(m, f"{name}_l{k}{sfx}").grad.numpy()
                 for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            f_in = g["weight_ih"].shape[1]
            # SimpleRNN/LSTM bias = b_ih + b_hh, so dL/dbias = dL/db_ih (= dL/db_hh).
            b_hh = g["bias_hh"] if kind == "GRU" else np.zeros_like(g["bias_hh"])
            out += _layout.torch_to_keras(KERAS_KIND[kind], H, f_in, g["weight_ih"],
                                          g["weight_hh"], g["bias_ih"], b_hh)
    return out


def data(seed=0, masked=False):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(B, T, F)) * 3).astype(np.float32)     # saturating inputs
    mask = None
    if masked:
        lengths = np.array([T, 5, 2, 1])
        mask = np.arange(T)[None, :] < lengths[:, None]
        x = np.where(mask[..., None], x, 0).astype(np.float32)
    return x, mask


def clone(layer, **overrides):
    """A built copy of an rnnkit recurrent (or Bidirectional) layer with changed options."""
    if isinstance(layer, L.Bidirectional):
        fw, bw = clone(layer.forward_layer, **overrides), clone(layer.backward_layer, **overrides)
        new = L.Bidirectional(fw, merge_mode=layer.merge_mode, backward_layer=bw)
    else:
        cfg = {**layer.get_config(), **overrides}
        cfg.pop("name")
        new = type(layer).from_config(cfg)
    new.build(layer.input_shape)
    new.set_weights(layer.get_weights())
    return new


def states_list(hn, kind):
    """torch h_n (and c_n) -> rnnkit state order [h, (c)] per direction, numpy."""
    h, c = (hn if kind == "LSTM" else (hn, None))
    out = []
    for d in range(h.shape[0]):
        out.append(h[d])
        if c is not None:
            out.append(c[d])
    return out


def run_case(kind, nonlin, bidir=False, go_backwards=False, masked=False, with_init=False):
    m = make_torch(kind, nonlin, bidirectional=bidir)
    model = from_torch(m)
    layer = clone(model.layers[0], return_sequences=True, return_state=True,
                  go_backwards=go_backwards) if not bidir else clone(
        model.layers[0], return_sequences=True, return_state=True)
    x, mask = data(masked=masked)
    rng = np.random.default_rng(1)
    n_states = layer.n_states
    init = ([rng.normal(size=(B, H)).astype(np.float32) for _ in range(n_states)]
            if with_init else None)
    # rnnkit
    outs = layer.forward(x, mask=mask, initial_state=init)
    y, states = outs[0], outs[1:]
    R = [rng.normal(size=np.shape(o)).astype(np.float32) for o in outs]
    if mask is not None:
        R[0] = R[0] * mask[..., None]          # padded steps differ by design: no gradient there
    g = layer.backward(R)
    dx, d_init = (g[0], g[1:]) if with_init else (g, [])
    grads = list(layer.grads.values())
    # torch
    xt = torch.tensor(x, requires_grad=True)
    inp = torch.flip(xt, [1]) if go_backwards else xt
    init_t = None
    if with_init:
        per = [torch.tensor(s, requires_grad=True) for s in init]
        k = 2 if kind == "LSTM" else 1
        hs = torch.stack(per[0::k])
        init_t = (hs, torch.stack(per[1::k])) if kind == "LSTM" else hs
    if mask is not None:
        lengths = torch.tensor(mask.sum(1))
        packed = pack_padded_sequence(inp, lengths, batch_first=True, enforce_sorted=False)
        out_t, hn = m(packed, init_t)
        out_t, _ = pad_packed_sequence(out_t, batch_first=True, total_length=T)
    else:
        out_t, hn = m(inp, init_t)
    st = states_list(hn, kind)
    loss = (out_t * torch.tensor(R[0])).sum() + sum(
        (s * torch.tensor(r)).sum() for s, r in zip(st, R[1:]))
    loss.backward()
    what = f"{kind}({nonlin or ''}) bidir={bidir} go_backwards={go_backwards} masked={masked} init={with_init}"
    valid = np.ones((B, T, 1), bool) if mask is None else mask[..., None]
    assert_fwd(f"{what} output", np.where(valid, y, 0), np.where(valid, out_t.detach().numpy(), 0))
    for i, (s, r) in enumerate(zip(states, st)):
        assert_fwd(f"{what} final state {i}", s, r.detach().numpy())
    assert_grad(f"{what} dL/dx", dx, xt.grad.numpy())
    if with_init:
        for i, (d, p) in enumerate(zip(d_init, per)):
            assert_grad(f"{what} dL/dinitial_state[{i}]", d, p.grad.numpy())
    ref = torch_weight_grads(m, kind, 1, bidir)
    for name, ours, r in zip(layer.grads, grads, ref):
        assert_grad(f"{what} dL/d{name}", ours, r)


@pytest.mark.parametrize("kind,nonlin", KINDS)
def test_single_layer(kind, nonlin):
    run_case(kind, nonlin)


@pytest.mark.parametrize("kind,nonlin", KINDS)
def test_go_backwards(kind, nonlin):
    run_case(kind, nonlin, go_backwards=True)


@pytest.mark.parametrize("kind,nonlin", KINDS)
def test_initial_states(kind, nonlin):
    run_case(kind, nonlin, with_init=True)


@pytest.mark.parametrize("kind,nonlin", KINDS)
def test_masked_vs_packed_sequences(kind, nonlin):
    run_case(kind, nonlin, masked=True)


@pytest.mark.parametrize("kind,nonlin", KINDS)
def test_bidirectional(kind, nonlin):
    run_case(kind, nonlin, bidir=True, with_init=True)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_masked(kind):
    run_case(kind, None, bidir=True, masked=True)


@pytest.mark.parametrize("kind,nonlin", KINDS)
@pytest.mark.parametrize("bidir", [False, True])
def test_stacked_model(kind, nonlin, bidir):
    """nn.<kind>(num_layers=2) vs the converted rnnkit Sequential: output, dx and all grads."""
    m = make_torch(kind, nonlin, num_layers=2, bidirectional=bidir)
    model = from_torch(m)
    assert len(model.layers) == 2
    x, _ = data()
    y, _ = model.forward(x, training=False)
    R = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
    dx = model.backward(R)
    xt = torch.tensor(x, requires_grad=True)
    out_t, _ = m(xt)
    (out_t * torch.tensor(R)).sum().backward()
    what = f"stacked {kind}({nonlin or ''}) bidir={bidir}"
    assert_fwd(f"{what} output", y, out_t.detach().numpy())
    assert_grad(f"{what} dL/dx", dx, xt.grad.numpy())
    ours = [g for layer in model.layers for g in layer.grads.values()]
    for i, (a, r) in enumerate(zip(ours, torch_weight_grads(m, kind, 2, bidir))):
        assert_grad(f"{what} weight grad {i}", a, r)


def test_return_sequences_false_is_last_hidden_state():
    m = make_torch("LSTM")
    model = from_torch(m, return_sequences=False)
    x, _ = data()
    _, (h, _) = m(torch.tensor(x))
    assert_fwd("LSTM return_sequences=False", model.predict(x), h[-1].detach().numpy())


def test_gru_bias_rows_are_kept_apart():
    """torch GRU's b_hn sits inside r * (h U_n + b_hn): summing the biases would be wrong."""
    m = make_torch("GRU")
    layer = from_torch(m).layers[0]
    b = layer.get_weights()[2]
    assert b.shape == (2, 3 * H)
    # torch r, z, n -> Keras z, r, h
    assert np.array_equal(b[1, 2 * H:], m.bias_hh_l0.detach().numpy()[2 * H:])
    assert np.array_equal(b[0, :H], m.bias_ih_l0.detach().numpy()[H:2 * H])


def test_float64_model_matches_float32_torch_module():
    """rnnkit float64 layers run in float64; the converted torch module in float32 agrees."""
    from rnnkit.interop import to_torch
    model = rnnkit.Sequential([L.Input((T, F)), L.GRU(H, return_sequences=True, dtype="float64"),
                               L.Dense(2, dtype="float64")])
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    x, _ = data()
    y = model.predict(x.astype(np.float64))
    yt = to_torch(model)(torch.tensor(x)).detach().numpy()
    assert_fwd("float64 rnnkit vs float32 torch", y, yt)


# ----------------------------------------------------------------------------- training
def _train_curves(opt_name, clip, kind, steps=20):
    """20 steps of rnnkit and of torch (float64, same initial weights and batches)."""
    from rnnkit.interop import to_torch
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, T, F)) * 3
    y = rng.normal(size=(16, 1))
    layer = {"LSTM": L.LSTM, "GRU": L.GRU}[kind](H, dtype="float64")
    model = rnnkit.Sequential([L.Input((T, F)), layer, L.Dense(1, dtype="float64")])
    # float32-representable weights, so the float32 copy inside to_torch loses nothing
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32).astype(np.float64)
                       for w in model.get_weights()])
    module = to_torch(model).double()
    for name, p in module.named_parameters():
        if kind == "LSTM" and "bias_hh" in name:
            p.requires_grad_(False)  # rnnkit's one LSTM bias = b_ih (+ this frozen zero b_hh)
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    assert sum(p.numel() for p in params) == model.count_params()
    # rnnkit variables as groups of torch parameters (a GRU's (2, 3u) bias = [b_ih, b_hh])
    groups = [[p] for n, p in named if "bias_hh" not in n]
    if kind == "GRU":
        groups[2] = [dict(named)["steps.0.rnn.bias_ih_l0"], dict(named)["steps.0.rnn.bias_hh_l0"]]
    assert len(groups) == len(model.get_weights())
    if opt_name == "sgd":
        ropt = rnnkit.optimizers.SGD(learning_rate=0.05, momentum=0.9, **clip)
        topt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    else:
        # Keras/rnnkit add epsilon to sqrt(v) (lr bias-corrected), torch to sqrt(v_hat): the
        # same eps is eps/sqrt(1 - beta_2**t) in torch's form. With eps=1e-7 that alone moves
        # the GRU clipnorm curve by 1.6e-4; a tiny eps makes the placement irrelevant.
        ropt = rnnkit.optimizers.Adam(learning_rate=0.01, epsilon=1e-12, **clip)
        topt = torch.optim.Adam(params, lr=0.01, eps=1e-12)
    model.compile(optimizer=ropt, loss="mse")
    ours, ref = [], []
    for step in range(steps):
        sl = slice((step % 2) * 8, (step % 2) * 8 + 8)
        ours.append(float(model.train_on_batch(x[sl], y[sl])))
        topt.zero_grad()
        loss = torch.mean((module(torch.tensor(x[sl])) - torch.tensor(y[sl])) ** 2)
        loss.backward()
        if "global_clipnorm" in clip:   # torch clip_grad_norm_ is global over all parameters
            nn.utils.clip_grad_norm_(params, clip["global_clipnorm"])
        if "clipnorm" in clip:          # Keras/rnnkit clipnorm clips each variable on its own
            for group in groups:
                nn.utils.clip_grad_norm_(group, clip["clipnorm"])
        topt.step()
        ref.append(float(loss))
    return np.array(ours), np.array(ref)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("clip", [{}, {"clipnorm": 0.1}, {"global_clipnorm": 0.1}],
                         ids=["noclip", "clipnorm", "global_clipnorm"])
def test_training_loss_curve_matches_torch(opt_name, clip, kind):
    ours, ref = _train_curves(opt_name, clip, kind)
    assert np.max(np.abs(ours - ref)) <= 1e-4, (
        f"{kind} {opt_name} {clip}: rnnkit vs reference loss curves\nrnnkit:    {ours}\n"
        f"reference: {ref}\nmax diff {np.max(np.abs(ours - ref)):.3g}")
    assert ours[-2:].mean() < ours[:2].mean(), f"training did not lower the loss: {ours}"
