import sys
import numpy as np
sys.path.insert(0, "tests")
from gradcheck import numerical_grad, rel_error
from rnnkit.kernels import reference as R
from rnnkit.cells.minrnn import MinGRUCell, MinLSTMCell
from rnnkit.cells.indrnn import IndRNNCell
from rnnkit.cells.lru import LRUCell
from rnnkit.cells.slstm import sLSTMCell
from rnnkit.cells.layernorm import LayerNormLSTMCell, LayerNormGRUCell

rng = np.random.default_rng(0)


def check(cell, F=3, T=5, B=3, training=False, seed=None):
    cell.build_weights(F, "float64")
    for k, v in cell.params.items():
        v[...] = v + rng.standard_normal(v.shape) * 0.3
    xs = rng.standard_normal((T, B, F))
    s0 = [rng.standard_normal((B, n)) * 0.5 for n in cell.state_size]
    if isinstance(cell, sLSTMCell):
        s0[2] = np.abs(s0[2]) + 0.5
    mask = rng.random((T, B)) > 0.3
    wy = rng.standard_normal((T, B, cell.output_size))
    ws = [rng.standard_normal((B, n)) for n in cell.state_size]
    def fwd():
        if seed is not None:
            cell._rng = np.random.default_rng(seed)
        ys, st, cache = R.forward_steps(cell, xs, s0, mask, training=training)
        return (wy * ys).sum() + sum((w * s).sum() for w, s in zip(ws, st)), cache
    _, cache = fwd()
    dxs, d0, dp = R.backward_steps(cell, cache, wy, ws, mask)
    f = lambda: fwd()[0]
    errs = {"x": rel_error(dxs, numerical_grad(f, xs))}
    for k, s in enumerate(s0):
        errs[f"s{k}"] = rel_error(d0[k], numerical_grad(f, s))
    for (k, v), d in zip(cell.params.items(), dp):
        errs[k] = rel_error(d, numerical_grad(f, v))
    bad = {k: e for k, e in errs.items() if e > 1e-6}
    print(type(cell).__name__, "OK" if not bad else bad, f"max {max(errs.values()):.1e}")

check(MinGRUCell(4)); check(MinLSTMCell(4)); check(MinGRUCell(4, use_bias=False))
check(IndRNNCell(4, timesteps=10))
check(LRUCell(3, state_size=5, r_min=0.5, r_max=0.9))
check(sLSTMCell(6, num_heads=2)); check(sLSTMCell(4))
check(LayerNormLSTMCell(4)); check(LayerNormGRUCell(4))
check(LayerNormLSTMCell(4, zoneout=0.3, seed=1), training=True, seed=3)
check(LayerNormGRUCell(4, zoneout=0.3, seed=1), training=True, seed=3)
check(LayerNormGRUCell(4, zoneout=0.3, use_bias=False))
