import time, sys, importlib
import numpy as np
from rnnkit.kernels import reference as R
from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell
from rnnkit.cells.indrnn import IndRNNCell
from rnnkit.cells.lru import LRUCell
from rnnkit.cells.slstm import sLSTMCell
from rnnkit.cells.layernorm import LayerNormLSTMCell, LayerNormGRUCell
T, B, F, H = int(__import__("os").environ.get("T", 1000)), 32, 32, 128
rng = np.random.default_rng(0)
xs = rng.standard_normal((T, B, F)).astype(np.float32)
which = sys.argv[1:]
cells = {"mingru": (MinGRUCell(H), "minrnn"), "minlstm": (MinLSTMCell(H), "minrnn"), "indrnn": (IndRNNCell(H), "indrnn"),
         "lru": (LRUCell(H), "lru"), "slstm": (sLSTMCell(H, num_heads=4), None), "lnlstm": (LayerNormLSTMCell(H), None),
         "lngru": (LayerNormGRUCell(H), None)}
for name in which:
    cell, mod = cells[name]
    cell.build_weights(F, "float32")
    s0 = [np.zeros((B, n), np.float32) for n in cell.state_size]
    dys = np.ones((T, B, cell.output_size), np.float32)
    if mod:
        K = importlib.import_module("rnnkit.kernels." + mod)
        f = lambda: K.backward(cell, K.forward(cell, xs, s0)[2], dys, [None] * len(s0))
    else:
        f = lambda: R.backward_steps(cell, R.forward_steps(cell, xs, s0)[2], dys, [None] * len(s0))
    f()
    t = time.perf_counter(); f(); f(); print(name, "train step (fwd+bwd)", round((time.perf_counter() - t) / 2, 3), "s", flush=True)
