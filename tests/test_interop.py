"""Import/export: from_torch, from_torch_state_dict, to_torch, from_keras, to_keras; errors."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import rnnkit
from rnnkit import layers as L
from rnnkit.interop import (
    _layout,
    from_keras,
    from_torch,
    from_torch_state_dict,
    to_keras,
    to_torch,
)

B, T, F = 4, 7, 3
TOL = 1e-5


def close(what, ours, ref, tol=TOL):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{what}: rnnkit vs reference shapes {ours.shape} vs {ref.shape}"
    err = np.max(np.abs(ours - ref))
    assert err <= tol, f"{what}: rnnkit vs reference max diff {err:.3g}\nrnnkit:\n{ours}\nreference:\n{ref}"


def randomize(obj, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    if isinstance(obj, nn.Module):
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in obj.parameters():
                p.copy_(torch.randn_like(p) * scale)
        return obj
    obj.set_weights([rng.normal(0, scale, w.shape) for w in obj.get_weights()])
    return obj


def x_data(seed=0, shape=(B, T, F)):
    return (np.random.default_rng(seed).normal(size=shape) * 3).astype(np.float32)


# ----------------------------------------------------------------------------- layout maps
def test_layout_maps_round_trip_and_check_shapes():
    rng = np.random.default_rng(0)
    u, f = 3, 2
    for kind, g in (("SimpleRNN", 1), ("LSTM", 4), ("GRU", 3)):
        w_ih, w_hh = rng.normal(size=(g * u, f)), rng.normal(size=(g * u, u))
        b_ih, b_hh = rng.normal(size=g * u), rng.normal(size=g * u)
        ks = _layout.torch_to_keras(kind, u, f, w_ih, w_hh, b_ih, b_hh)
        back = _layout.keras_to_torch(kind, u, ks)
        assert np.array_equal(back[0], w_ih) and np.array_equal(back[1], w_hh)
        if kind == "GRU":
            assert np.array_equal(back[2], b_ih) and np.array_equal(back[3], b_hh)
        else:
            assert np.allclose(back[2] + back[3], b_ih + b_hh)
    with pytest.raises(ValueError, match=r"torch LSTM weight_ih: expected shape \(12, 2\), got \(12, 5\)"):
        _layout.torch_to_keras("LSTM", 3, 2, np.zeros((12, 5)), np.zeros((12, 3)))


def test_onnx_lstm_gate_order_is_i_o_f_c():
    u = 2
    kernel = np.concatenate([np.full((1, u), k) for k in range(4)], axis=1)  # i=0 f=1 c=2 o=3
    W, R, Bias = _layout.keras_to_onnx("LSTM", u, [kernel, np.zeros((u, 4 * u)),
                                                   np.zeros(4 * u)])
    assert W[:, 0].tolist() == [0, 0, 3, 3, 1, 1, 2, 2]
    assert Bias.shape == (8 * u,)


# ----------------------------------------------------------------------------- from_torch
@pytest.mark.parametrize("batch_first", [True, False])
def test_from_torch_lstm_any_layout(batch_first):
    m = randomize(nn.LSTM(F, 4, num_layers=2, bidirectional=True, batch_first=batch_first))
    model = from_torch(m)
    x = x_data()
    xt = torch.tensor(x if batch_first else x.transpose(1, 0, 2))
    out, _ = m(xt)
    ref = out.detach().numpy()
    close("from_torch LSTM output", model.predict(x), ref if batch_first else ref.transpose(1, 0, 2))


def test_from_torch_dropout_between_layers_becomes_dropout_layer():
    model = from_torch(nn.GRU(F, 4, num_layers=3, dropout=0.25, batch_first=True))
    names = [type(la).__name__ for la in model.layers]
    assert names == ["GRU", "Dropout", "GRU", "Dropout", "GRU"]
    assert model.layers[1].rate == 0.25


def test_from_torch_sequential_of_linear_and_activations():
    m = randomize(nn.Sequential(nn.Linear(F, 6), nn.ReLU(), nn.Dropout(0.1), nn.Linear(6, 4),
                                nn.Tanh(), nn.Linear(4, 3), nn.Softmax(dim=-1))).eval()
    model = from_torch(m)
    x = x_data(shape=(5, F))
    close("from_torch Sequential", model.predict(x), m(torch.tensor(x)).detach().numpy())


def test_from_torch_return_sequences_false_bidirectional_gives_both_last_states():
    m = randomize(nn.GRU(F, 4, bidirectional=True, batch_first=True))
    model = from_torch(m, return_sequences=False)
    _, hn = m(torch.tensor(x_data()))
    close("bidirectional final states", model.predict(x_data()),
          torch.cat([hn[0], hn[1]], -1).detach().numpy())


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(F, 5, num_layers=2, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, h = self.rnn(x)
        return self.head(h[-1])


def test_from_torch_state_dict_of_a_custom_module():
    net = randomize(_Net(), scale=0.3)
    model = from_torch_state_dict(net.state_dict(), nonlinearity="relu", return_sequences=False)
    assert [type(la).__name__ for la in model.layers] == ["SimpleRNN", "SimpleRNN", "Dense"]
    assert model.layers[0].activation.name == "relu"
    x = x_data()
    close("from_torch_state_dict", model.predict(x), net(torch.tensor(x)).detach().numpy())


def test_from_torch_state_dict_infers_kind_from_gate_count():
    for mod, kind in ((nn.GRU(F, 4), "GRU"), (nn.LSTM(F, 4), "LSTM"), (nn.RNN(F, 4), "SimpleRNN")):
        model = from_torch_state_dict({k: v.numpy() for k, v in mod.state_dict().items()})
        assert type(model.layers[0]).__name__ == kind


def test_from_torch_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"module 1 \(Conv1d\) is not supported"):
        from_torch(nn.Sequential(nn.Linear(3, 3), nn.Conv1d(3, 3, 1)))
    # proj_size LSTMs import since issue 14 (tests/test_lstm_options_interop.py); a torch
    # GRU never has weight_hr, so one is refused by name
    sd = dict(nn.GRU(F, 4).state_dict(), weight_hr_l0=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="weight_hr .*exists only for LSTM"):
        from_torch_state_dict(sd)
    with pytest.raises(ValueError, match=r"conv.weight has shape \(3, 3, 1\); only nn.Linear"):
        from_torch_state_dict({"conv.weight": np.zeros((3, 3, 1)), "conv.bias": np.zeros(3)})
    with pytest.raises(ValueError, match="'bn.running_mean' belongs to no supported module"):
        from_torch_state_dict({"bn.running_mean": np.zeros(3)})
    with pytest.raises(ValueError, match="Softmax"):
        from_torch(nn.Softmax(dim=1))


# ----------------------------------------------------------------------------- to_torch
def test_to_torch_embedding_masked_model():
    model = randomize(rnnkit.Sequential([
        L.Input((T,)), L.Embedding(30, 4, mask_zero=True),
        L.Bidirectional(L.LSTM(5, return_sequences=True)), L.GRU(3, go_backwards=True,
                                                                   return_sequences=True),
        L.TimeDistributed(L.Dense(2, activation="softmax"))]))
    ids = np.random.default_rng(0).integers(1, 30, size=(B, T))
    ids[1, 5:] = 0
    ids[3, 1:] = 0
    module = to_torch(model)
    close("to_torch masked", model.predict(ids), module(torch.tensor(ids)).detach().numpy())
    ids[0, 2] = 0  # interior padding cannot become a packed sequence
    with pytest.raises(ValueError, match="not right-padded"):
        module(torch.tensor(ids))


def test_to_torch_then_from_torch_gives_back_the_weights():
    model = randomize(rnnkit.Sequential([L.Input((T, F)), L.GRU(4, return_sequences=True)]))
    back = from_torch(to_torch(model).steps[0].rnn)
    for a, b in zip(model.get_weights(), back.get_weights()):
        close("to_torch/from_torch weights", a, b, tol=1e-7)


def test_to_torch_errors_name_the_problem():
    with pytest.raises(ValueError, match="reset_after=False has no PyTorch equivalent"):
        to_torch(rnnkit.Sequential([L.Input((T, F)), L.GRU(3, reset_after=False)]))
    with pytest.raises(ValueError, match="activation 'softsign'; torch nn.RNN supports only"):
        to_torch(rnnkit.Sequential([L.Input((T, F)), L.SimpleRNN(3, activation="softsign")]))
    with pytest.raises(ValueError, match="recurrent_activation='hard_sigmoid'"):
        to_torch(rnnkit.Sequential([L.Input((T, F)),
                                    L.LSTM(3, recurrent_activation="hard_sigmoid")]))
    with pytest.raises(ValueError, match="not built"):
        to_torch(rnnkit.Sequential([L.LSTM(3)]))


# ----------------------------------------------------------------------------- keras files
def _write_keras_file(path):
    """Write a real Keras 3 .keras file in a subprocess (so this process never imports keras)."""
    code = f"""
import os, numpy as np
os.environ["KERAS_BACKEND"] = "torch"
import keras
m = keras.Sequential([keras.Input((None,)), keras.layers.Embedding(20, 4, mask_zero=True),
    keras.layers.LSTM(5, return_sequences=True),
    keras.layers.Bidirectional(keras.layers.SimpleRNN(3, return_sequences=True), merge_mode="ave"),
    keras.layers.TimeDistributed(keras.layers.Dense(4, activation="relu")),
    keras.layers.GRU(3, reset_after=False), keras.layers.Dropout(0.3),
    keras.layers.Dense(2, activation="softmax", kernel_regularizer="l2")])
rng = np.random.default_rng(0)
m.set_weights([rng.normal(0, 0.5, w.shape) for w in m.get_weights()])
ids = rng.integers(1, 20, size=(4, 7)); ids[1, 4:] = 0; ids[2, 1:] = 0
m.save({str(path)!r}); m.save_weights({str(path)!r}.replace(".keras", ".weights.h5"))
open({str(path)!r} + ".json", "w").write(m.to_json())
np.save({str(path)!r} + ".ids.npy", ids); np.save({str(path)!r} + ".pred.npy", m.predict(ids, verbose=0))
"""
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ,
                                                                "KERAS_BACKEND": "torch"})


def test_from_keras_reads_real_files_without_keras(tmp_path):
    path = tmp_path / "m.keras"
    _write_keras_file(path)
    # keras must not be imported by from_keras: block it in a fresh interpreter
    code = f"""
import sys, numpy as np
sys.modules["keras"] = None
from rnnkit.interop import from_keras
ids, want = np.load({str(path)!r} + ".ids.npy"), np.load({str(path)!r} + ".pred.npy")
for m in (from_keras({str(path)!r}),
          from_keras({str(path).replace(".keras", ".weights.h5")!r}, config={str(path)!r} + ".json")):
    got = m.predict(ids)
    assert np.max(np.abs(got - want)) <= 1e-5, ("rnnkit vs reference", got, want)
    assert m.layers[-1].kernel_regularizer is not None
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_from_keras_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="pass config="):
        from_keras(tmp_path / "w.weights.h5")
    bad = tmp_path / "bad.keras"
    cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 5, 3], "name": "in"}},
        {"class_name": "Conv1D", "config": {"name": "conv1d", "filters": 2}}]}}
    import h5py
    with h5py.File(tmp_path / "w.h5", "w"):
        pass
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.write(tmp_path / "w.h5", "model.weights.h5")
    with pytest.raises(ValueError, match="'conv1d' of class 'Conv1D' is not supported"):
        from_keras(bad)
    cfg["class_name"] = "Functional"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.write(tmp_path / "w.h5", "model.weights.h5")
    with pytest.raises(ValueError, match="Sequential models only, got a 'Functional' model"):
        from_keras(bad)


def test_to_keras_requires_keras_suffix(tmp_path):
    model = rnnkit.Sequential([L.Input((T, F)), L.LSTM(3)])
    with pytest.raises(ValueError, match="must end with '.keras'"):
        to_keras(model, tmp_path / "m.h5")
