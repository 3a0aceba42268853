"""LSTM options against their peers: proj_size against torch.nn.LSTM (forward, every
gradient, import and export), peepholes against ONNX Runtime (export to ONNX)."""

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import layers
from rnnkit.interop import from_torch, to_torch

RNG = np.random.default_rng(0)


def _torch_proj(F=3, H=5, p=2, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.LSTM(F, H, proj_size=p, batch_first=True).double()
    with torch.no_grad():                      # random non-zero biases
        for w in m.parameters():
            w.copy_(torch.randn_like(w) * 0.5)
    return m


def test_proj_lstm_matches_torch_forward_and_every_gradient():
    F, H, p, B, T = 3, 5, 2, 4, 6
    ref = _torch_proj(F, H, p)
    layer = layers.LSTM(H, proj_size=p, return_sequences=True, return_state=True,
                        dtype="float64")
    layer.maybe_build((B, T, F))
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    layer.set_weights([sd["weight_ih_l0"].T, sd["weight_hh_l0"].T,
                       sd["bias_ih_l0"] + sd["bias_hh_l0"], sd["weight_hr_l0"].T])
    x = RNG.normal(size=(B, T, F)) * 2.0               # saturating inputs too
    h0 = RNG.normal(size=(B, p))
    c0 = RNG.normal(size=(B, H))
    out, h, c = layer.forward([x, h0, c0], training=True)
    xt = torch.tensor(x, requires_grad=True)
    h0t, c0t = torch.tensor(h0[None], requires_grad=True), torch.tensor(c0[None],
                                                                        requires_grad=True)
    out_t, (h_t, c_t) = ref(xt, (h0t, c0t))
    for ours, theirs in ((out, out_t[...]), (h, h_t[0]), (c, c_t[0])):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg="rnnkit vs torch forward")
    w = [RNG.normal(size=a.shape) for a in (out, h, c)]
    dx, dh0, dc0 = layer.backward(w)
    loss = sum((torch.tensor(wi) * t).sum() for wi, t in zip(w, (out_t, h_t[0], c_t[0])))
    loss.backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, h0t.grad.numpy()[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc0, c0t.grad.numpy()[0], rtol=1e-10, atol=1e-12)
    g = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    ours = layer.grads
    np.testing.assert_allclose(ours["kernel"], g["weight_ih_l0"].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["recurrent_kernel"], g["weight_hh_l0"].T, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(ours["bias"], g["bias_ih_l0"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["bias"], g["bias_hh_l0"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["projection_kernel"], g["weight_hr_l0"].T, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_proj_lstm_import_and_export_round_trip(bidirectional):
    torch.manual_seed(1)
    ref = torch.nn.LSTM(3, 6, proj_size=2, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for w in ref.parameters():
            w.copy_(torch.randn_like(w) * 0.5)
    x = RNG.normal(size=(4, 7, 3)).astype("float32")
    model = from_torch(ref)
    want = ref(torch.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    back = to_torch(model)
    got = back(torch.tensor(x))
    got = got[0] if isinstance(got, tuple) else got
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_peephole_lstm_matches_onnxruntime(tmp_path):
    import onnxruntime as ort

    from rnnkit.interop import onnx as rk_onnx
    x = RNG.normal(size=(3, 6, 4)).astype("float32")
    model = rnnkit.Sequential([layers.Input((None, 4)),
                               layers.LSTM(5, use_peepholes=True, return_sequences=True)])
    lstm = model.layers[0]
    lstm.set_weights([RNG.normal(0, 0.5, w.shape).astype("float32")
                      for w in lstm.get_weights()])     # random non-zero biases and peepholes
    path = tmp_path / "peep.onnx"
    rk_onnx.export_onnx(model, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
