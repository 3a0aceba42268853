import sys, time
import numpy as np
sys.path.insert(0, "scratch"); sys.path.insert(0, "tests")
import cells14 as C, scan14 as S
from gradcheck import rel_error
rng = np.random.default_rng(1)
T, B, F, H = 7, 3, 2, 4
mask = rng.random((T, B)) > 0.3
for name, cls, G, fwd, bwd in [("mingru", C.MinGRU, 2, S.mingru_fwd, S.mingru_bwd),
                               ("minlstm", C.MinLSTM, 3, S.minlstm_fwd, S.minlstm_bwd)]:
    cell = cls({"kernel": rng.standard_normal((F, G * H)), "bias": rng.standard_normal(G * H)})
    x = rng.standard_normal((T, B, F)); h0 = np.abs(rng.standard_normal((B, H)))
    dY = rng.standard_normal((T, B, H)); dhT = rng.standard_normal((B, H))
    # generic loop with masks
    h = h0; hs = []; caches = []
    for t in range(T):
        y, (hn,), c = cell.step(x[t], [h], True)
        m = mask[t][:, None]
        h = np.where(m, hn, h); hs.append(h); caches.append(c)
    ds = dhT.copy(); dW = 0; dxs = []
    for t in reversed(range(T)):
        m = mask[t][:, None]
        dtot = ds + dY[t]
        dx, (dhp,), (dw, db) = cell.step_backward(np.zeros_like(dtot), [dtot * m], caches[t])
        ds = dhp + dtot * (~m); dW = dW + dw; dxs.append(dx)
    K = x @ cell.p["kernel"] + cell.p["bias"]
    Hs = np.empty((T, B, H)); fwd(K, h0, mask, Hs, 0, B)
    print(name, "fwd", rel_error(Hs, np.stack(hs)))
    dK = np.empty_like(K); g = dhT.copy()
    bwd(K, Hs, h0, dY, mask, dK, g, 0, B)
    print(name, "bwd dW", rel_error(np.einsum("tbf,tbg->fg", x, dK), dW), "dh0", rel_error(g, ds))
# LRU
N, Y = 5, 3
p = {"nu_log": rng.standard_normal(N) * 0.3 - 1, "theta_log": rng.standard_normal(N) * 0.3,
     "gamma_log": rng.standard_normal(N) * 0.3, "B_re": rng.standard_normal((F, N)),
     "B_im": rng.standard_normal((F, N)), "C_re": rng.standard_normal((N, Y)),
     "C_im": rng.standard_normal((N, Y)), "D": rng.standard_normal((F, Y))}
cell = C.LRU(p)
x = rng.standard_normal((T, B, F)); h0r = rng.standard_normal((B, N)); h0i = rng.standard_normal((B, N))
lr, li = cell.lam(); gam = np.exp(p["gamma_log"])
Hr = np.empty((T, B, N)); Hi = np.empty((T, B, N))
S.lru_fwd(x @ p["B_re"], x @ p["B_im"], lr, li, gam, h0r, h0i, np.zeros((0, 0), bool), Hr, Hi, 0, B)
s = [h0r, h0i]; hs = []
for t in range(T):
    _, s, _ = cell.step(x[t], s); hs.append(s[0])
print("lru fwd", rel_error(Hr, np.stack(hs)))
