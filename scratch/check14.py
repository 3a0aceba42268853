import sys
import numpy as np
sys.path.insert(0, "scratch")
sys.path.insert(0, "tests")
import cells14 as C
from gradcheck import numerical_grad, rel_error

rng = np.random.default_rng(0)


def run(cell, xs, s0, wy, ws, training=False):
    s = list(s0)
    caches, loss = [], 0.0
    for t in range(xs.shape[0]):
        y, s, cache = cell.step(xs[t], s, training)
        caches.append(cache)
        loss += (wy[t] * y).sum()
    loss += sum((w * a).sum() for w, a in zip(ws, s))
    return loss, caches


def back(cell, caches, wy, ws, T):
    ds = [w.copy() for w in ws]
    dxs = [None] * T
    dp = None
    for t in reversed(range(T)):
        dx, ds, dparams = cell.step_backward(wy[t], ds, caches[t])
        dxs[t] = dx
        dp = dparams if dp is None else [a + b for a, b in zip(dp, dparams)]
    return np.stack(dxs), ds, dp


def check(name, cell, F, state_sizes, Y, T=4, B=3, reseed=None):
    xs = rng.standard_normal((T, B, F))
    s0 = [rng.standard_normal((B, n)) * 0.5 for n in state_sizes]
    if name == "slstm":
        s0[2] = np.abs(s0[2]) + 0.5
    wy = rng.standard_normal((T, B, Y))
    ws = [rng.standard_normal((B, n)) for n in state_sizes]
    def f():
        if reseed:
            reseed()
        return run(cell, xs, s0, wy, ws, training=True)[0]
    if reseed:
        reseed()
    _, caches = run(cell, xs, s0, wy, ws, training=True)
    dx, ds0, dp = back(cell, caches, wy, ws, T)
    errs = {"x": rel_error(dx, numerical_grad(f, xs))}
    for k, s in enumerate(s0):
        errs[f"s{k}"] = rel_error(ds0[k], numerical_grad(f, s))
    for (k, v), d in zip(cell.p.items(), dp):
        errs[k] = rel_error(d, numerical_grad(f, v))
    bad = {k: e for k, e in errs.items() if e > 1e-6}
    print(name, "OK" if not bad else bad, f"max {max(errs.values()):.1e}")


F, H = 3, 4
check("mingru", C.MinGRU({"kernel": rng.standard_normal((F, 2 * H)),
                          "bias": rng.standard_normal(2 * H)}), F, [H], H)
check("minlstm", C.MinLSTM({"kernel": rng.standard_normal((F, 3 * H)),
                            "bias": rng.standard_normal(3 * H)}), F, [H], H)
N, Y = 5, 4
check("lru", C.LRU({"nu_log": rng.standard_normal(N) * 0.3 - 1, "theta_log": rng.standard_normal(N) * 0.3,
                    "gamma_log": rng.standard_normal(N) * 0.3, "B_re": rng.standard_normal((F, N)),
                    "B_im": rng.standard_normal((F, N)), "C_re": rng.standard_normal((N, Y)),
                    "C_im": rng.standard_normal((N, Y)), "D": rng.standard_normal((F, Y))}), F, [N, N], Y)
check("indrnn", C.IndRNN({"kernel": rng.standard_normal((F, H)), "recurrent_kernel": rng.uniform(0, 1, H),
                          "bias": rng.standard_normal(H)}), F, [H], H)
K, hd = 2, 3
H2 = K * hd
check("slstm", C.SLSTM({"kernel": rng.standard_normal((F, 4 * H2)) * 0.5,
                        "recurrent_kernel": rng.standard_normal((K, hd, 4 * hd)) * 0.5,
                        "bias": rng.standard_normal(4 * H2)}, K), F, [H2] * 4, H2)
check("lnlstm", C.LayerNormLSTM({"kernel": rng.standard_normal((F, 4 * H)), "recurrent_kernel": rng.standard_normal((H, 4 * H)),
                                 "bias": rng.standard_normal(4 * H), "gamma": rng.standard_normal((2, 4 * H)),
                                 "gamma_h": rng.standard_normal(H), "beta_h": rng.standard_normal(H)}), F, [H, H], H)
check("lngru", C.LayerNormGRU({"kernel": rng.standard_normal((F, 3 * H)), "recurrent_kernel": rng.standard_normal((H, 3 * H)),
                               "bias": rng.standard_normal((2, 3 * H)), "gamma": rng.standard_normal((2, 3 * H))}), F, [H], H)
P = 2
base = lambda hin: {"kernel": rng.standard_normal((F, 4 * H)), "recurrent_kernel": rng.standard_normal((hin, 4 * H)),
                    "bias": rng.standard_normal(4 * H)}
pp = base(H); pp.update(input_peephole=rng.standard_normal(H), forget_peephole=rng.standard_normal(H),
                        output_peephole=rng.standard_normal(H))
check("peephole", C.LSTMOpts(pp, peep=True), F, [H, H], H)
pj = base(P); pj["projection_kernel"] = rng.standard_normal((H, P))
check("proj", C.LSTMOpts(pj, proj=P), F, [P, H], P)
zr = [None]
def reseed():
    zr[0] = np.random.default_rng(5)
cz = C.LSTMOpts(base(H), zoneout=0.3, zmask=lambda shape: (zr[0].random(shape) < 0.3).astype(float))
check("zoneout", cz, F, [H, H], H, reseed=reseed)
