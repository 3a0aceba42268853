# one-off: rnnkit sLSTMCell vs the xlstm package's vanilla (pure PyTorch) sLSTM backend
import sys, importlib.util
import numpy as np, torch
from rnnkit.kernels import reference as R
from rnnkit.cells.slstm import sLSTMCell
base = "/tmp/xl_i14/src/xlstm/blocks/slstm/src/vanilla/"
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m); return m
pkg = importlib.util.spec_from_file_location("xv", base + "__init__.py", submodule_search_locations=[base])
xv = importlib.util.module_from_spec(pkg); sys.modules["xv"] = xv; pkg.loader.exec_module(xv)
rng = np.random.default_rng(0)
T, B, F, H, K = 6, 3, 5, 8, 2
d = H // K
cell = sLSTMCell(H, num_heads=K); cell.build_weights(F, "float64")
for v in cell.params.values(): v[...] = rng.standard_normal(v.shape) * 0.5
x = rng.standard_normal((T, B, F))
ys, st, _ = R.forward_steps(cell, x, [np.zeros((B, H))] * 4)
Wx = torch.tensor(x @ cell.params["kernel"])
Rt = torch.tensor(cell.params["recurrent_kernel"]).transpose(1, 2).contiguous()   # (K, 4d, d)
b = torch.tensor(cell.params["bias"])
states_all, last, _ = xv.slstm_forward(Wx, torch.zeros(4, B, H, dtype=torch.float64), Rt, b, xv.slstm_pointwise_function_registry["slstm"])
y_ref = states_all[0, 1:].numpy()
print("max |h - xlstm vanilla h|", np.abs(ys - y_ref).max())
print("c/n ratio equal:", np.abs(st[1] / st[2] - (last[1] / last[2]).numpy()).max())
