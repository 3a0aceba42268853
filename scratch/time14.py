import sys, time
import numpy as np
sys.path.insert(0, "scratch")
import scan14 as S
T, B, F, H = 1000, 32, 128, 128
rng = np.random.default_rng(0)
x = rng.standard_normal((T, B, F)).astype(np.float32)
W = (rng.standard_normal((F, 2 * H)) * 0.1).astype(np.float32)
h0 = np.zeros((B, H), np.float32)
m = np.zeros((0, 0), bool)
def step():
    K = (x.reshape(T * B, F) @ W).reshape(T, B, 2 * H)
    Hs = np.empty((T, B, H), np.float32)
    S.mingru_fwd(K, h0, m, Hs, 0, B)
    dY = np.ones_like(Hs)
    dK = np.empty_like(K); g = np.zeros((B, H), np.float32)
    S.mingru_bwd(K, Hs, h0, dY, m, dK, g, 0, B)
    dW = x.reshape(T * B, F).T @ dK.reshape(T * B, -1)
    dx = dK.reshape(T * B, -1) @ W.T
step()
t = time.perf_counter(); 
for _ in range(3): step()
print("mingru raw step", (time.perf_counter() - t) / 3)
K = (x.reshape(T * B, F) @ W).reshape(T, B, 2 * H)
Hs = np.empty((T, B, H), np.float32)
for name, f in [("mm", lambda: x.reshape(T * B, F) @ W), ("fwd", lambda: S.mingru_fwd(K, h0, m, Hs, 0, B)),
                ("bwd", lambda: S.mingru_bwd(K, Hs, h0, np.ones_like(Hs), m, np.empty_like(K), np.zeros((B, H), np.float32), 0, B))]:
    t = time.perf_counter(); f(); print(name, time.perf_counter() - t)
