"""Scratch: compiled linear-recurrence scans (minGRU, minLSTM, LRU), rows split across threads."""
import numpy as np
from numba import njit, prange

_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)
_PAR = dict(_JIT, parallel=True)


from rnnkit.kernels._math import consts_like, sigmoid as _sigK


@njit(**_JIT)
def mingru_fwd(K, h0, mask, Hs, r0, r1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                continue
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            for j in range(H):
                z = _sigK(kz[j], KK)
                s = _sigK(kh[j], KK)
                ht = kh[j] + half if kh[j] >= 0 else s
                ho[j] = hp[j] + z * (ht - hp[j])


@njit(**_JIT)
def mingru_bwd(K, Hs, h0, dY, mask, dK, g, r0, r1):
    """g (B, H): in dL/dh_T, out dL/dh_0. dY empty = no per-step output gradient."""
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        for t in range(T - 1, -1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            if domask and not mask[t, b]:
                dK[t, b, :] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            kz = K[t, b, :H]
            kh = K[t, b, H:]
            dz = dK[t, b, :H]
            dh = dK[t, b, H:]
            for j in range(H):
                z = _sigK(kz[j], KK)
                s = _sigK(kh[j], KK)
                pos = kh[j] >= 0
                ht = kh[j] + half if pos else s
                gd = one if pos else s * (one - s)
                gj = gb[j]
                dz[j] = gj * (ht - hp[j]) * z * (one - z)
                dh[j] = gj * z * gd
                gb[j] = gj * (one - z)


@njit(**_JIT)
def minlstm_fwd(K, h0, mask, Hs, r0, r1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    half = KK[1]
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ho = Hs[t, b]
            if domask and not mask[t, b]:
                ho[:] = hp
                continue
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            for j in range(H):
                si = _sigK(ki[j], KK)
                sf = _sigK(kf[j], KK)
                fp = sf / (sf + si)
                s = _sigK(kh[j], KK)
                ht = kh[j] + half if kh[j] >= 0 else s
                ho[j] = ht + fp * (hp[j] - ht)


@njit(**_JIT)
def minlstm_bwd(K, Hs, h0, dY, mask, dK, g, r0, r1):
    T, B, H = Hs.shape
    KK = consts_like(Hs)
    one, half = KK[0], KK[1]
    domask = mask.size > 0
    dodY = dY.size > 0
    for b in range(r0, r1):
        gb = g[b]
        for t in range(T - 1, -1, -1):
            if dodY:
                dy = dY[t, b]
                for j in range(H):
                    gb[j] += dy[j]
            if domask and not mask[t, b]:
                dK[t, b, :] = 0
                continue
            hp = h0[b] if t == 0 else Hs[t - 1, b]
            ki = K[t, b, :H]
            kf = K[t, b, H:2 * H]
            kh = K[t, b, 2 * H:]
            di = dK[t, b, :H]
            df = dK[t, b, H:2 * H]
            dh = dK[t, b, 2 * H:]
            for j in range(H):
                si = _sigK(ki[j], KK)
                sf = _sigK(kf[j], KK)
                s = sf + si
                fp = sf / s
                q = _sigK(kh[j], KK)
                pos = kh[j] >= 0
                ht = kh[j] + half if pos else q
                gd = one if pos else q * (one - q)
                gj = gb[j]
                w = gj * (hp[j] - ht) / (s * s)
                di[j] = -w * sf * si * (one - si)
                df[j] = w * si * sf * (one - sf)
                dh[j] = gj * (one - fp) * gd
                gb[j] = gj * fp


@njit(**_JIT)
def lru_fwd(UR, UI, lr, li, gam, h0r, h0i, mask, Hr, Hi, r0, r1):
    T, B, N = Hr.shape
    domask = mask.size > 0
    for b in range(r0, r1):
        for t in range(T):
            pr = h0r[b] if t == 0 else Hr[t - 1, b]
            pi = h0i[b] if t == 0 else Hi[t - 1, b]
            orr, oi = Hr[t, b], Hi[t, b]
            if domask and not mask[t, b]:
                orr[:] = pr
                oi[:] = pi
                continue
            ur, ui = UR[t, b], UI[t, b]
            for j in range(N):
                a, c = pr[j], pi[j]
                orr[j] = lr[j] * a - li[j] * c + gam[j] * ur[j]
                oi[j] = li[j] * a + lr[j] * c + gam[j] * ui[j]


@njit(**_JIT)
def lru_bwd(GR, GI, Hr, Hi, h0r, h0i, lr, li, mask, gr, gi, dlr, dli, r0, r1):
    """GR/GI (T, B, N): in dL/dh_t from the outputs, out the full dL/dh_t (through time).
    gr/gi (B, N): in dL/dh_T, out dL/dh_0. dlr/dli (B, N): per-row dL/dlambda."""
    T, B, N = Hr.shape
    domask = mask.size > 0
    for b in range(r0, r1):
        ar, ai = gr[b], gi[b]
        for t in range(T - 1, -1, -1):
            Gr, Gi = GR[t, b], GI[t, b]
            if domask and not mask[t, b]:
                for j in range(N):
                    ar[j] += Gr[j]
                    ai[j] += Gi[j]
                    Gr[j] = 0
                    Gi[j] = 0
                continue
            pr = h0r[b] if t == 0 else Hr[t - 1, b]
            pi = h0i[b] if t == 0 else Hi[t - 1, b]
            for j in range(N):
                x = ar[j] + Gr[j]
                y = ai[j] + Gi[j]
                Gr[j] = x
                Gi[j] = y
                dlr[b, j] += x * pr[j] + y * pi[j]
                dli[b, j] += y * pr[j] - x * pi[j]
                ar[j] = lr[j] * x + li[j] * y
                ai[j] = lr[j] * y - li[j] * x


@njit(**_PAR)
def mingru_fwd_par(K, h0, mask, Hs, edges):
    for i in prange(edges.shape[0] - 1):
        mingru_fwd(K, h0, mask, Hs, edges[i], edges[i + 1])


@njit(**_PAR)
def mingru_bwd_par(K, Hs, h0, dY, mask, dK, g, edges):
    for i in prange(edges.shape[0] - 1):
        mingru_bwd(K, Hs, h0, dY, mask, dK, g, edges[i], edges[i + 1])
