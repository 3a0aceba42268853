"""Scratch: step forward/backward of issue-14 cells, protocol-shaped, before i13's base lands.

Each cell: params dict (declaration order), step(x, states, training) -> (y, states, cache),
step_backward(dy, dstates, cache) -> (dx, dstates_prev, dparams list).
"""
import numpy as np


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def g_pos(z):            # minGRU's g: x + 0.5 for x >= 0, sigmoid below (positive, continuous)
    return np.where(z >= 0, z + 0.5, sigmoid(z))


def g_pos_grad(z):
    s = sigmoid(z)
    return np.where(z >= 0, 1.0, s * (1.0 - s))


class MinGRU:
    # k = x W + b, layout (z, h):  z = sig(k_z), ht = g(k_h), h = (1 - z) h_prev + z ht
    def __init__(self, params):
        self.p = params  # kernel (F, 2H), bias (2H,)

    def step(self, x, states, training=False):
        (hp,) = states
        H = hp.shape[1]
        k = x @ self.p["kernel"] + self.p["bias"]
        z, kh = sigmoid(k[:, :H]), k[:, H:]
        ht = g_pos(kh)
        h = (1 - z) * hp + z * ht
        return h, [h], (x, hp, z, kh, ht)

    def step_backward(self, dy, dstates, cache):
        x, hp, z, kh, ht = cache
        dh = dy + dstates[0]
        dk = np.concatenate([dh * (ht - hp) * z * (1 - z), dh * z * g_pos_grad(kh)], axis=1)
        return dk @ self.p["kernel"].T, [dh * (1 - z)], [x.T @ dk, dk.sum(0)]


class MinLSTM:
    # layout (i, f, h): f' = sig f / (sig f + sig i), h = f' h_prev + (1 - f') g(k_h)
    def __init__(self, params):
        self.p = params

    def step(self, x, states, training=False):
        (hp,) = states
        H = hp.shape[1]
        k = x @ self.p["kernel"] + self.p["bias"]
        si, sf, kh = sigmoid(k[:, :H]), sigmoid(k[:, H:2 * H]), k[:, 2 * H:]
        fp = sf / (sf + si)
        ht = g_pos(kh)
        h = fp * hp + (1 - fp) * ht
        return h, [h], (x, hp, si, sf, fp, kh, ht)

    def step_backward(self, dy, dstates, cache):
        x, hp, si, sf, fp, kh, ht = cache
        dh = dy + dstates[0]
        dfp = dh * (hp - ht)
        s2 = (sf + si) ** 2
        dsf = dfp * si / s2
        dsi = -dfp * sf / s2
        dk = np.concatenate([dsi * si * (1 - si), dsf * sf * (1 - sf),
                             dh * (1 - fp) * g_pos_grad(kh)], axis=1)
        return dk @ self.p["kernel"].T, [dh * fp], [x.T @ dk, dk.sum(0)]


class LRU:
    # lam = exp(-exp(nu_log) + i exp(theta_log)); gamma = exp(gamma_log)
    # h = lam h_prev + gamma (x B); y = Re(h C) + x D ; states (h_re, h_im)
    def __init__(self, params):
        self.p = params

    def lam(self):
        r = np.exp(-np.exp(self.p["nu_log"]))
        ph = np.exp(self.p["theta_log"])
        return r * np.cos(ph), r * np.sin(ph)

    def step(self, x, states, training=False):
        p = self.p
        hr_p, hi_p = states
        lr, li = self.lam()
        gam = np.exp(p["gamma_log"])
        ur, ui = x @ p["B_re"], x @ p["B_im"]
        hr = lr * hr_p - li * hi_p + gam * ur
        hi = li * hr_p + lr * hi_p + gam * ui
        y = hr @ p["C_re"] - hi @ p["C_im"] + x @ p["D"]
        return y, [hr, hi], (x, hr_p, hi_p, hr, hi, ur, ui, lr, li, gam)

    def step_backward(self, dy, dstates, cache):
        p = self.p
        x, hr_p, hi_p, hr, hi, ur, ui, lr, li, gam = cache
        dCr, dCi, dD = hr.T @ dy, -hi.T @ dy, x.T @ dy
        dhr = dstates[0] + dy @ p["C_re"].T
        dhi = dstates[1] - dy @ p["C_im"].T
        dlr = (dhr * hr_p + dhi * hi_p).sum(0)
        dli = (-dhr * hi_p + dhi * hr_p).sum(0)
        r = np.exp(-np.exp(p["nu_log"]))
        ph = np.exp(p["theta_log"])
        dr = dlr * np.cos(ph) + dli * np.sin(ph)
        dph = -dlr * li + dli * lr
        dnu = dr * r * (-np.exp(p["nu_log"]))
        dth = dph * ph
        dgam = ((dhr * ur + dhi * ui).sum(0)) * gam
        dur, dui = dhr * gam, dhi * gam
        dBr, dBi = x.T @ dur, x.T @ dui
        dx = dy @ p["D"].T + dur @ p["B_re"].T + dui @ p["B_im"].T
        dhp_r = lr * dhr + li * dhi
        dhp_i = -li * dhr + lr * dhi
        return dx, [dhp_r, dhp_i], [dnu, dth, dgam, dBr, dBi, dCr, dCi, dD]


class IndRNN:
    # h = act(x W + u * h_prev + b)
    def __init__(self, params):
        self.p = params

    def step(self, x, states, training=False):
        (hp,) = states
        z = x @ self.p["kernel"] + self.p["recurrent_kernel"] * hp + self.p["bias"]
        h = np.maximum(z, 0)
        return h, [h], (x, hp, z)

    def step_backward(self, dy, dstates, cache):
        x, hp, z = cache
        dz = (dy + dstates[0]) * (z > 0)
        return (dz @ self.p["kernel"].T, [dz * self.p["recurrent_kernel"]],
                [x.T @ dz, (dz * hp).sum(0), dz.sum(0)])


class SLSTM:
    # raw = x W + blockdiag(R) h + b, layout (i, f, z, o); exponential input gate, sigmoid f
    # m = max(logsig(f) + m_prev, i_raw); i = exp(i_raw - m); f = exp(logsig(f) + m_prev - m)
    # c = f c + i tanh(z); n = f n + i; h = sig(o) c / n ; states (h, c, n, m)
    def __init__(self, params, heads):
        self.p = params
        self.heads = heads

    def rec(self, h):                     # h (B, H) -> (B, 4H) through block-diagonal R
        R = self.p["recurrent_kernel"]     # (heads, hd, 4 hd)
        K, hd, _ = R.shape
        B = h.shape[0]
        out = np.einsum("bkd,kde->bke", h.reshape(B, K, hd), R)      # (B, K, 4hd)
        return out.reshape(B, K, 4, hd).transpose(0, 2, 1, 3).reshape(B, 4 * K * hd)

    def rec_T(self, dz):                  # transpose: (B, 4H) -> (B, H)
        R = self.p["recurrent_kernel"]
        K, hd, _ = R.shape
        B = dz.shape[0]
        d = dz.reshape(B, 4, K, hd).transpose(0, 2, 1, 3).reshape(B, K, 4 * hd)
        return np.einsum("bke,kde->bkd", d, R).reshape(B, K * hd)

    def rec_grad(self, h, dz):
        R = self.p["recurrent_kernel"]
        K, hd, _ = R.shape
        B = h.shape[0]
        d = dz.reshape(B, 4, K, hd).transpose(0, 2, 1, 3).reshape(B, K, 4 * hd)
        return np.einsum("bkd,bke->kde", h.reshape(B, K, hd), d)

    def step(self, x, states, training=False):
        hp, cp, np_, mp = states
        H = hp.shape[1]
        raw = x @ self.p["kernel"] + self.rec(hp) + self.p["bias"]
        ir, fr, zr, orr = raw[:, :H], raw[:, H:2 * H], raw[:, 2 * H:3 * H], raw[:, 3 * H:]
        logf = -np.logaddexp(0, -fr)           # log sigmoid
        a = logf + mp
        m = np.maximum(a, ir)
        ig = np.exp(ir - m)
        fg = np.exp(a - m)
        zt = np.tanh(zr)
        og = sigmoid(orr)
        c = fg * cp + ig * zt
        n = fg * np_ + ig
        h = og * c / n
        return h, [h, c, n, m], (x, hp, cp, np_, fr, a, ir, m, ig, fg, zt, og, c, n)

    def step_backward(self, dy, dstates, cache):
        x, hp, cp, np_, fr, a, ir, m, ig, fg, zt, og, c, n = cache
        dh, dc, dn, dm = dstates
        dh = dh + dy
        dog = dh * c / n
        dc = dc + dh * og / n
        dn = dn - dh * og * c / (n * n)
        dfg = dc * cp + dn * np_
        dig = dc * zt + dn
        dzt = dc * ig
        dcp = dc * fg
        dnp = dn * fg
        # ig = exp(ir - m), fg = exp(a - m)
        dir_ = dig * ig
        da = dfg * fg
        dm = dm - dig * ig - dfg * fg
        # m = max(a, ir)
        sel = a >= ir
        da = da + np.where(sel, dm, 0.0)
        dir_ = dir_ + np.where(sel, 0.0, dm)
        dmp = da                                # a = logf + m_prev
        dfr = da * sigmoid(-fr)                 # d logsig(f) / df = sig(-f)
        dzr = dzt * (1 - zt * zt)
        dor = dog * og * (1 - og)
        draw = np.concatenate([dir_, dfr, dzr, dor], axis=1)
        dhp = self.rec_T(draw)
        return (draw @ self.p["kernel"].T, [dhp, dcp, dnp, dmp],
                [x.T @ draw, self.rec_grad(hp, draw), draw.sum(0)])


def layer_norm(v, gain, beta=None, eps=1e-5):
    mu = v.mean(1, keepdims=True)
    d = v - mu
    var = (d * d).mean(1, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    xh = d * inv
    out = xh * gain if beta is None else xh * gain + beta
    return out, (xh, inv)


def layer_norm_backward(dout, cache, gain):
    xh, inv = cache
    dg = (dout * xh).sum(0)
    dxh = dout * gain
    G = xh.shape[1]
    dv = inv * (dxh - dxh.mean(1, keepdims=True) - xh * (dxh * xh).sum(1, keepdims=True) / G)
    return dv, dg


class LayerNormLSTM:
    # Keras layout (i, f, c, o).  v = LN(x W) g0 + LN(h U) g1 + b; c = f c + i g;
    # h = o tanh(LN(c) gh + bh)
    def __init__(self, params):
        self.p = params

    def step(self, x, states, training=False):
        p = self.p
        hp, cp = states
        H = hp.shape[1]
        ax, cx = layer_norm(x @ p["kernel"], p["gamma"][0])
        ah, ch = layer_norm(hp @ p["recurrent_kernel"], p["gamma"][1])
        v = ax + ah + p["bias"]
        i, f, g, o = sigmoid(v[:, :H]), sigmoid(v[:, H:2 * H]), np.tanh(v[:, 2 * H:3 * H]), \
            sigmoid(v[:, 3 * H:])
        c = f * cp + i * g
        cn, cc = layer_norm(c, p["gamma_h"], p["beta_h"])
        tc = np.tanh(cn)
        h = o * tc
        return h, [h, c], (x, hp, cp, cx, ch, i, f, g, o, cc, tc)

    def step_backward(self, dy, dstates, cache):
        p = self.p
        x, hp, cp, cx, ch, i, f, g, o, cc, tc = cache
        dh, dc = dstates
        dh = dh + dy
        do = dh * tc
        dcn = dh * o * (1 - tc * tc)
        dc2, dgh = layer_norm_backward(dcn, cc, p["gamma_h"])
        dbh = dcn.sum(0)
        dc = dc + dc2
        dv = np.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g * g),
                             do * o * (1 - o)], axis=1)
        dxw, dg0 = layer_norm_backward(dv, cx, p["gamma"][0])
        dhu, dg1 = layer_norm_backward(dv, ch, p["gamma"][1])
        return (dxw @ p["kernel"].T, [dhu @ p["recurrent_kernel"].T, dc * f],
                [x.T @ dxw, hp.T @ dhu, dv.sum(0), np.stack([dg0, dg1]), dgh, dbh])


class LayerNormGRU:
    # Keras GRU (z, r, h), reset_after; bias (2, 3H) rows input / recurrent (haste: bias,
    # recurrent_bias).  ax = LN(x W) g0 + b0; ah = LN(h U) g1 + b1;
    # z = sig(ax_z + ah_z), r = sig(ax_r + ah_r), hh = tanh(ax_h + r ah_h); h = z hp + (1-z) hh
    def __init__(self, params):
        self.p = params

    def step(self, x, states, training=False):
        p = self.p
        (hp,) = states
        H = hp.shape[1]
        ax, cx = layer_norm(x @ p["kernel"], p["gamma"][0])
        ah, ch = layer_norm(hp @ p["recurrent_kernel"], p["gamma"][1])
        ax = ax + p["bias"][0]
        ah = ah + p["bias"][1]
        z = sigmoid(ax[:, :H] + ah[:, :H])
        r = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        hh = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        h = z * hp + (1 - z) * hh
        return h, [h], (x, hp, cx, ch, ah, z, r, hh)

    def step_backward(self, dy, dstates, cache):
        p = self.p
        x, hp, cx, ch, ah, z, r, hh = cache
        H = hp.shape[1]
        dh = dy + dstates[0]
        dzh = dh * (1 - z) * (1 - hh * hh)
        dzz = dh * (hp - hh) * z * (1 - z)
        dzr = dzh * ah[:, 2 * H:] * r * (1 - r)
        dax = np.concatenate([dzz, dzr, dzh], axis=1)
        dah = np.concatenate([dzz, dzr, dzh * r], axis=1)
        dxw, dg0 = layer_norm_backward(dax, cx, p["gamma"][0])
        dhu, dg1 = layer_norm_backward(dah, ch, p["gamma"][1])
        return (dxw @ p["kernel"].T, [dh * z + dhu @ p["recurrent_kernel"].T],
                [x.T @ dxw, hp.T @ dhu, np.stack([dax.sum(0), dah.sum(0)]),
                 np.stack([dg0, dg1])])


class LSTMOpts:
    # Keras LSTM (i, f, c, o) + options.  peepholes (ONNX P order i, o, f; here three (H,)
    # weights): i += p_i c_prev, f += p_f c_prev, o += p_o c_t.  proj_size p: h = (o tanh c) P,
    # recurrent_kernel (p, 4H), h state (B, p).  zoneout on h (haste): training
    # h = m h_prev + (1 - m) h_new with m ~ Bernoulli(zoneout); inference expectation.
    def __init__(self, params, peep=False, proj=0, zoneout=0.0, zmask=None):
        self.p = params
        self.peep, self.proj, self.zo = peep, proj, zoneout
        self.zmask = zmask      # callable(shape) -> 0/1 mask (1 = keep old) in training

    def step(self, x, states, training=False):
        p = self.p
        hp, cp = states
        H = cp.shape[1]
        v = x @ p["kernel"] + hp @ p["recurrent_kernel"] + p["bias"]
        if self.peep:
            v = v.copy()
            v[:, :H] += p["input_peephole"] * cp
            v[:, H:2 * H] += p["forget_peephole"] * cp
        i, f, g = sigmoid(v[:, :H]), sigmoid(v[:, H:2 * H]), np.tanh(v[:, 2 * H:3 * H])
        c = f * cp + i * g
        vo = v[:, 3 * H:] + (p["output_peephole"] * c if self.peep else 0.0)
        o = sigmoid(vo)
        tc = np.tanh(c)
        hn = o * tc
        hq = hn @ p["projection_kernel"] if self.proj else hn
        zm = None
        if self.zo:
            if training:
                zm = self.zmask(hq.shape)
                h = zm * hp + (1 - zm) * hq
            else:
                zm = self.zo
                h = self.zo * hp + (1 - self.zo) * hq
        else:
            h = hq
        return h, [h, c], (x, hp, cp, i, f, g, o, c, tc, hn, zm)

    def step_backward(self, dy, dstates, cache):
        p = self.p
        x, hp, cp, i, f, g, o, c, tc, hn, zm = cache
        dh, dc = dstates
        dh = dh + dy
        dhp_z = 0.0
        if zm is not None:
            dhp_z = dh * zm
            dh = dh * (1 - zm)
        grads = {}
        if self.proj:
            grads["projection_kernel"] = hn.T @ dh
            dh = dh @ p["projection_kernel"].T
        do = dh * tc
        dvo = do * o * (1 - o)
        dc = dc + dh * o * (1 - tc * tc)
        if self.peep:
            dc = dc + dvo * p["output_peephole"]
        dvi = dc * g * i * (1 - i)
        dvf = dc * cp * f * (1 - f)
        dvg = dc * i * (1 - g * g)
        dcp = dc * f
        if self.peep:
            dcp = dcp + dvi * p["input_peephole"] + dvf * p["forget_peephole"]
            grads["input_peephole"] = (dvi * cp).sum(0)
            grads["forget_peephole"] = (dvf * cp).sum(0)
            grads["output_peephole"] = (dvo * c).sum(0)
        dv = np.concatenate([dvi, dvf, dvg, dvo], axis=1)
        grads["kernel"] = x.T @ dv
        grads["recurrent_kernel"] = hp.T @ dv
        grads["bias"] = dv.sum(0)
        dhp = dv @ p["recurrent_kernel"].T + dhp_z
        return dv @ p["kernel"].T, [dhp, dcp], [grads[k] for k in p]
