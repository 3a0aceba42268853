import sys, importlib
import numpy as np
sys.path.insert(0, "tests")
from gradcheck import rel_error
from rnnkit.kernels import reference as R
from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell
from rnnkit.cells.indrnn import IndRNNCell
from rnnkit.cells.lru import LRUCell
rng = np.random.default_rng(0)
for cell, mod in [(MinGRUCell(4), "minrnn"), (MinLSTMCell(4), "minrnn"), (IndRNNCell(4), "indrnn"),
                  (LRUCell(3, state_size=5), "lru")]:
    K = importlib.import_module("rnnkit.kernels." + mod)
    for dt in ("float64", "float32"):
        cell.build_weights(3, dt)
        for v in cell.params.values():
            v[...] = v + rng.standard_normal(v.shape) * 0.3
        T, B = 7, 5
        xs = rng.standard_normal((T, B, 3)).astype(dt)
        s0 = [np.abs(rng.standard_normal((B, n))).astype(dt) for n in cell.state_size]
        for mask in (None, rng.random((T, B)) > 0.3):
            dys = rng.standard_normal((T, B, cell.output_size)).astype(dt)
            dst = [rng.standard_normal((B, n)).astype(dt) for n in cell.state_size]
            y1, s1, c1 = R.forward_steps(cell, xs, s0, mask)
            y2, s2, c2 = K.forward(cell, xs, s0, mask)
            g1 = R.backward_steps(cell, c1, dys, dst, mask)
            g2 = K.backward(cell, c2, dys, dst, mask)
            errs = [rel_error(y1, y2)] + [rel_error(a, b) for a, b in zip(s1, s2)] + [rel_error(g1[0], g2[0])] + \
                [rel_error(a, b) for a, b in zip(g1[1], g2[1])] + [rel_error(a, b) for a, b in zip(g1[2], g2[2])]
            print(type(cell).__name__, dt, "mask" if mask is not None else "-", f"{max(errs):.1e}")
