"""Parity of the issue-14 cells with PyTorch: minGRU-pytorch (minGRU, minLSTM), the xlstm
package's equations (sLSTM), haste's (LayerNorm LSTM/GRU) and the LRU paper's, written as
PyTorch autograd references; forward outputs and every gradient, float64, random non-zero
biases, saturating inputs included."""

import numpy as np
import pytest
import torch

from rnnkit.cells import (
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LRUCell,
    MinGRUCell,
    MinLSTMCell,
    sLSTMCell,
)
from rnnkit.kernels import reference as R

F_ = torch.nn.functional


def _setup(cell, F, T=6, B=3, seed=0, scale=0.5, big=False):
    rng = np.random.default_rng(seed)
    cell.build_weights(F, "float64")
    for v in cell.params.values():
        v[...] = v + rng.standard_normal(v.shape) * scale
    xs = rng.standard_normal((T, B, F)) * (4.0 if big else 1.0)
    wy = rng.standard_normal((T, B, cell.output_size))
    return xs, wy


def _ours(cell, xs, wy, s0=None):
    T, B, _ = xs.shape
    s0 = s0 or [np.zeros((B, n)) for n in cell.state_size]
    ys, _, cache = R.forward_steps(cell, xs, s0)
    dxs, _, dp = R.backward_steps(cell, cache, wy, [None] * len(s0))
    return ys, dxs, dict(zip(cell.param_names, dp))


def _compare(name, ours, ref, tol=1e-10):
    err = np.max(np.abs(ours - ref)) / max(1e-12, np.max(np.abs(ref)))
    assert err < tol, f"{name}: rnnkit vs reference relative error {err:.2e}"


def _torch_params(cell):
    return {k: torch.tensor(v, requires_grad=True) for k, v in cell.params.items()}


def _check_grads(cell, xs, wy, ref_fn):
    ys, dxs, dp = _ours(cell, xs, wy)
    P = _torch_params(cell)
    x = torch.tensor(xs, requires_grad=True)
    y = ref_fn(x, P)
    (y * torch.tensor(wy)).sum().backward()
    _compare("output", ys, y.detach().numpy())
    _compare("dx", dxs, x.grad.numpy())
    for k, g in dp.items():
        _compare(f"d{k}", g, P[k].grad.numpy())


@pytest.mark.parametrize("big", [False, True])
def test_mingru_matches_mingru_pytorch(big):
    from minGRU_pytorch.minGRU import minGRU
    H = 5
    cell = MinGRUCell(H, use_bias=False)
    xs, wy = _setup(cell, H, big=big)
    ys, dxs, dp = _ours(cell, xs, wy)
    ref = minGRU(H).double()
    W = cell.params["kernel"]                       # (F, 2H) columns z, h
    with torch.no_grad():                           # theirs: rows [hidden; gate]
        ref.to_hidden_and_gate.weight.copy_(torch.tensor(np.concatenate([W[:, H:], W[:, :H]], 1).T))
    x = torch.tensor(xs.transpose(1, 0, 2), requires_grad=True)
    y = ref(x)                                      # the paper's log-space parallel scan
    (y * torch.tensor(wy.transpose(1, 0, 2))).sum().backward()
    _compare("output", ys, y.detach().numpy().transpose(1, 0, 2))
    _compare("dx", dxs, x.grad.numpy().transpose(1, 0, 2))
    gW = ref.to_hidden_and_gate.weight.grad.numpy().T
    _compare("dkernel", dp["kernel"], np.concatenate([gW[:, H:], gW[:, :H]], 1))


def test_minlstm_matches_mingru_pytorch():
    from minGRU_pytorch.minLSTM import minLSTM
    H = 5
    cell = MinLSTMCell(H, use_bias=False)
    xs, wy = _setup(cell, H)
    ys, dxs, dp = _ours(cell, xs, wy)
    ref = minLSTM(H).double()
    W = cell.params["kernel"]                       # ours: i, f, h; theirs: hidden, f, i
    perm = lambda a: np.concatenate([a[:, 2 * H:], a[:, H:2 * H], a[:, :H]], 1)  # noqa: E731
    with torch.no_grad():
        ref.to_hidden_and_f_i_gate.weight.copy_(torch.tensor(perm(W).T))
    x = torch.tensor(xs.transpose(1, 0, 2), requires_grad=True)
    y = ref(x)
    (y * torch.tensor(wy.transpose(1, 0, 2))).sum().backward()
    _compare("output", ys, y.detach().numpy().transpose(1, 0, 2))
    _compare("dx", dxs, x.grad.numpy().transpose(1, 0, 2))
    _compare("dkernel", dp["kernel"], perm(ref.to_hidden_and_f_i_gate.weight.grad.numpy().T))


def _g(v):
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def test_min_cells_with_bias_match_torch_equations():
    H = 4
    for cell in (MinGRUCell(H), MinLSTMCell(H)):
        xs, wy = _setup(cell, 3)

        def ref(x, P, cell=cell):
            k = x @ P["kernel"] + P["bias"]
            h = torch.zeros(x.shape[1], H, dtype=x.dtype)
            out = []
            for t in range(x.shape[0]):
                if isinstance(cell, MinGRUCell):
                    z = torch.sigmoid(k[t, :, :H])
                    h = (1 - z) * h + z * _g(k[t, :, H:])
                else:
                    i, f = torch.sigmoid(k[t, :, :H]), torch.sigmoid(k[t, :, H:2 * H])
                    h = f / (f + i) * h + i / (f + i) * _g(k[t, :, 2 * H:])
                out.append(h)
            return torch.stack(out)
        _check_grads(cell, xs, wy, ref)


def test_lru_matches_torch_complex_reference():
    N, U, F = 5, 3, 4
    cell = LRUCell(U, state_size=N, r_min=0.5, r_max=0.95)
    xs, wy = _setup(cell, F, scale=0.2)

    def ref(x, P):
        lam = torch.exp(-torch.exp(P["nu_log"]) + 1j * torch.exp(P["theta_log"]))
        gam = torch.exp(P["gamma_log"])
        W = P["kernel"]
        Bc = torch.complex(W[:, :N], W[:, N:2 * N])
        C = torch.complex(P["output_kernel"][:N], P["output_kernel"][N:])
        h = torch.zeros(x.shape[1], N, dtype=torch.complex128)
        out = []
        for t in range(x.shape[0]):
            h = lam * h + gam * (x[t].to(torch.complex128) @ Bc)
            out.append((h @ C).real + x[t] @ W[:, 2 * N:])
        return torch.stack(out)
    _check_grads(cell, xs, wy, ref)


@pytest.mark.parametrize("heads", [1, 2])
def test_slstm_matches_torch_reference_of_xlstm_equations(heads):
    # the xlstm package's vanilla backend (slstm_forward_pointwise) written in torch: gate
    # order i, f, z, o, recurrent weights (heads, 4d, d); ours are their transpose
    H, F = 6, 3
    cell = sLSTMCell(H, num_heads=heads)
    xs, wy = _setup(cell, F)
    d = H // heads

    def ref(x, P):
        B = x.shape[1]
        Rt = P["recurrent_kernel"].transpose(1, 2)                    # xlstm: (K, 4d, d)
        y = c = n = m = torch.zeros(B, H, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            Ry = (y.reshape(B, heads, 1, d) @ Rt.transpose(1, 2).reshape(1, heads, d, 4 * d)
                  ).reshape(B, heads, 4, d).transpose(1, 2).reshape(B, -1)
            raw = x[t] @ P["kernel"] + Ry + P["bias"]
            i_, f_, z_, o_ = raw.split(H, dim=1)
            logfm = m + F_.logsigmoid(f_)
            m = torch.maximum(i_, logfm)
            ig, fg = torch.exp(i_ - m), torch.exp(logfm - m)
            c = fg * c + ig * torch.tanh(z_)
            n = fg * n + ig
            y = torch.sigmoid(o_) * c / n
            out.append(y)
        return torch.stack(out)
    _check_grads(cell, xs, wy, ref)


def _ln(v, g, b=None):
    return F_.layer_norm(v, (v.shape[-1],), weight=g, bias=b, eps=1e-5)


def test_layernorm_lstm_matches_haste_equations():
    H, F = 4, 3
    cell = LayerNormLSTMCell(H)
    xs, wy = _setup(cell, F)

    def ref(x, P):
        B = x.shape[1]
        h = c = torch.zeros(B, H, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            v = _ln(x[t] @ P["kernel"], P["gamma"][0]) + _ln(h @ P["recurrent_kernel"], P["gamma"][1]) + P["bias"]
            i, f, g, o = torch.sigmoid(v[:, :H]), torch.sigmoid(v[:, H:2 * H]), \
                torch.tanh(v[:, 2 * H:3 * H]), torch.sigmoid(v[:, 3 * H:])
            c = f * c + i * g
            h = o * torch.tanh(_ln(c, P["gamma_h"], P["beta_h"]))
            out.append(h)
        return torch.stack(out)
    _check_grads(cell, xs, wy, ref)


def test_layernorm_gru_matches_haste_equations():
    H, F = 4, 3
    cell = LayerNormGRUCell(H)
    xs, wy = _setup(cell, F)

    def ref(x, P):                                    # haste's LayerNormGRUScript, z r h order
        h = torch.zeros(x.shape[1], H, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            vx = _ln(x[t] @ P["kernel"], P["gamma"][0]) + P["bias"][0]
            vh = _ln(h @ P["recurrent_kernel"], P["gamma"][1]) + P["bias"][1]
            z = torch.sigmoid(vx[:, :H] + vh[:, :H])
            r = torch.sigmoid(vx[:, H:2 * H] + vh[:, H:2 * H])
            g = torch.tanh(vx[:, 2 * H:] + r * vh[:, 2 * H:])
            h = z * h + (1 - z) * g
            out.append(h)
        return torch.stack(out)
    _check_grads(cell, xs, wy, ref)
