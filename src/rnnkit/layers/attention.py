"""Attention layers: Attention (Luong), AdditiveAttention (Bahdanau), MultiHeadAttention.

The encoder–decoder attention recurrent sequence-to-sequence models use: a decoder's states
(the query, (B, Tq, d)) look at the encoder's states (the value, (B, Tv, d), which is also the
key unless a key is given):

    scores  S = score(q, k)                          (B, Tq, Tv)
    weights A = softmax(S over Tv)   (masked value steps and, with use_causal_mask, future
                                      steps get S - 1e9, as in Keras)
    output    = A @ v                                (B, Tq, d)

Backward: ``dA = dout @ vᵀ``, ``dv = Aᵀ @ dout``, ``dS = A ⊙ (dA − Σ_j dA ⊙ A)``, then through
the score function. Names, arguments, defaults, weight layouts and masks follow Keras 3.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .. import initializers as _init
from .. import regularizers as _reg
from .base import Layer, as_float_array, check_positive_int, check_rate

_BIG = 1.0e9


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(dA, A):
    return A * (dA - (dA * A).sum(axis=-1, keepdims=True))


def _query_mask(mask):
    """The output of an attention layer carries the query's mask (Keras)."""
    if not isinstance(mask, (list, tuple)) or mask[0] is None:
        return None
    return mask[0]


def _causal(Tq, Tv):
    """(Tq, Tv) True where query step i may see value step j (j <= i), as Keras builds it."""
    return np.arange(Tv)[None, :] <= np.arange(Tq)[:, None]


class _BaseDenseAttention(Layer):
    """Shared call/mask logic of Attention and AdditiveAttention (Keras' BaseDenseAttention)."""

    list_inputs = True

    def __init__(self, use_scale=False, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)
        self.dropout = check_rate("dropout", dropout)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _split(self, inputs, what="inputs"):
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} must be called on a list "
                             f"[query, value] or [query, value, key], got {what} "
                             f"{type(inputs).__name__}"
                             f"{'' if not isinstance(inputs, (list, tuple)) else len(inputs)}.")
        return list(inputs)

    def _check_shapes(self, shapes):
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if len(q) != 3 or len(v) != 3 or len(k) != 3:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects query, value "
                             "(and key) of shape (batch, steps, dim), got "
                             f"{[tuple(s) for s in shapes]}.")
        if None not in (q[-1], k[-1]) and q[-1] != k[-1]:
            raise ValueError(f"{type(self).__name__} layer {self.name!r}: query and key need the "
                             f"same last dimension, got {tuple(q)} and {tuple(k)}.")
        if None not in (k[1], v[1]) and k[1] != v[1]:
            raise ValueError(f"{type(self).__name__} layer {self.name!r}: key and value need the "
                             f"same number of steps, got {tuple(k)} and {tuple(v)}.")

    def build(self, input_shape):
        shapes = self._split(input_shape, "shapes")
        self._check_shapes(shapes)
        self._build_scores(shapes[0][-1])
        super().build(input_shape)

    def forward(self, inputs, training=False, mask=None, return_attention_scores=False,
                use_causal_mask=False):
        """Args: inputs ``[query, value]`` or ``[query, value, key]``; mask ``[query_mask,
        value_mask]`` (each (B, T) or None). Returns the output (B, Tq, dim_v), and the
        attention weights (B, Tq, Tv) with ``return_attention_scores``."""
        xs = [as_float_array(x, f"{type(self).__name__} {self.name!r} input", self.dtype)
              for x in self._split(inputs)]
        self._check_shapes([x.shape for x in xs])
        q, v = xs[0], xs[1]
        k = xs[2] if len(xs) > 2 else v
        qm, vm = (None, None) if mask is None else (list(mask) + [None, None])[:2]
        S, score_cache = self._scores(q, k)
        keep = None if vm is None else np.asarray(vm, bool)[:, None, :]      # (B, 1, Tv)
        if use_causal_mask:
            c = _causal(q.shape[1], k.shape[1])[None]
            keep = c if keep is None else keep & c
        if keep is not None:
            S = np.where(keep, S, S - _BIG)
        A = _softmax(S)
        drop = None
        if training and self.dropout > 0:
            rng = self._rng if self._rng is not None else _backend.rng()
            drop = ((rng.random(A.shape) >= self.dropout) / (1 - self.dropout)).astype(self.dtype)
        Ad = A if drop is None else A * drop
        out = Ad @ v
        qkeep = None if qm is None else np.asarray(qm, bool)[:, :, None]
        if qkeep is not None:
            out = np.where(qkeep, out, 0).astype(self.dtype)
        self._cache = (q, k, v, A, Ad, drop, qkeep, score_cache, len(xs))
        return [out, A] if return_attention_scores else out

    def backward(self, dy):
        q, k, v, A, Ad, drop, qkeep, score_cache, n = self._cache
        if isinstance(dy, (list, tuple)):
            dout, dA_extra = dy
        else:
            dout, dA_extra = dy, None
        dout = np.asarray(dout, self.dtype)
        if qkeep is not None:
            dout = np.where(qkeep, dout, 0)
        dv = Ad.transpose(0, 2, 1) @ dout                                   # (B, Tv, d)
        dA = dout @ v.transpose(0, 2, 1)                                    # (B, Tq, Tv)
        if drop is not None:
            dA = dA * drop
        if dA_extra is not None:
            dA = dA + dA_extra
        dS = _softmax_backward(dA, A)
        dq, dk = self._scores_backward(dS, q, k, score_cache)
        if n == 2:
            return [dq, dv + dk]
        return [dq, dv, dk]

    def compute_mask(self, x, mask):
        return _query_mask(mask)

    def compute_output_shape(self, input_shape, return_attention_scores=False,
                             use_causal_mask=False):
        shapes = self._split(input_shape, "shapes")
        self._check_shapes(shapes)
        q, v = shapes[0], shapes[1]
        out = (q[0], q[1], v[-1])
        return [out, (q[0], q[1], v[1])] if return_attention_scores else out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(use_scale=self.use_scale, dropout=self.dropout, seed=self.seed)
        return cfg


class Attention(_BaseDenseAttention):
    """Dot-product (Luong) attention, ``keras.layers.Attention``.

    Call on ``[query, value]`` or ``[query, value, key]`` (key defaults to value):
    ``scores = query @ keyᵀ`` (× ``scale`` with ``use_scale=True``), softmax over the value
    steps, output ``weights @ value``. ``score_mode='concat'`` uses
    ``concat_score_weight · Σ tanh(scale · (q_i + k_j))`` instead.

    Args:
        use_scale: learn a scalar ``scale`` (initialised to 1).
        score_mode: 'dot' (default) or 'concat'.
        dropout: dropout rate on the attention weights (training only).
        seed: seed of that dropout.

    Call arguments: ``mask=[query_mask, value_mask]`` (set by the graph from the inputs'
    masks), ``return_attention_scores`` (also return the (B, Tq, Tv) weights),
    ``use_causal_mask`` (query step i sees value steps <= i).

    Shapes: query (B, Tq, d), value (B, Tv, d_v), key (B, Tv, d) -> (B, Tq, d_v). The output
    carries the query's mask. Weights: ``scale`` () and/or ``concat_score_weight`` ().

    Example:
        >>> import numpy as np, rnnkit
        >>> q, v = np.ones((2, 3, 4)), np.ones((2, 5, 4))
        >>> rnnkit.layers.Attention()([q, v]).shape
        (2, 3, 4)
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"score_mode must be 'dot' or 'concat', got {score_mode!r}.")
        self.score_mode = score_mode

    def _build_scores(self, dim):
        if self.use_scale:
            self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", (), "ones")

    def _scores(self, q, k):
        sc = self.params["scale"] if self.use_scale else 1.0
        if self.score_mode == "dot":
            qk = q @ k.transpose(0, 2, 1)
            return qk * sc, qk
        s = q[:, :, None, :] + k[:, None, :, :]                           # (B, Tq, Tv, d)
        u = np.tanh(sc * s)
        c = self.params["concat_score_weight"]
        return c * u.sum(axis=-1), (s, u)

    def _scores_backward(self, dS, q, k, cache):
        sc = self.params["scale"] if self.use_scale else 1.0
        if self.score_mode == "dot":
            qk = cache
            if self.use_scale:
                self.grads["scale"][...] = (dS * qk).sum()
            dq = (dS @ k) * sc
            dk = (dS.transpose(0, 2, 1) @ q) * sc
            return dq, dk
        s, u = cache
        c = self.params["concat_score_weight"]
        self.grads["concat_score_weight"][...] = (dS * u.sum(axis=-1)).sum()
        du = c * dS[..., None] * (1 - u * u)                               # d/d(sc·s)
        if self.use_scale:
            self.grads["scale"][...] = (du * s).sum()
        ds = du * sc
        return ds.sum(axis=2), ds.sum(axis=1)

    def get_config(self):
        cfg = super().get_config()
        cfg["score_mode"] = self.score_mode
        return cfg


class AdditiveAttention(_BaseDenseAttention):
    """Additive (Bahdanau) attention, ``keras.layers.AdditiveAttention``.

    ``scores[i, j] = Σ_d scale_d · tanh(q_i + k_j)_d``; the rest as :class:`Attention`.

    Args:
        use_scale: learn the (dim,) ``scale`` vector (default True, glorot_uniform).
        dropout: dropout rate on the attention weights (training only).

    Shapes: query (B, Tq, d), value (B, Tv, d_v), key (B, Tv, d) -> (B, Tq, d_v).
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _build_scores(self, dim):
        if self.use_scale:
            self.add_weight("scale", (dim,), "glorot_uniform")

    def _scores(self, q, k):
        u = np.tanh(q[:, :, None, :] + k[:, None, :, :])                  # (B, Tq, Tv, d)
        sc = self.params["scale"] if self.use_scale else 1.0
        return (u * sc).sum(axis=-1), u

    def _scores_backward(self, dS, q, k, u):
        sc = self.params["scale"] if self.use_scale else 1.0
        if self.use_scale:
            self.grads["scale"][...] = (dS[..., None] * u).sum(axis=(0, 1, 2))
        ds = dS[..., None] * sc * (1 - u * u)
        return ds.sum(axis=2), ds.sum(axis=1)


class MultiHeadAttention(Layer):
    """Multi-head attention, ``keras.layers.MultiHeadAttention`` (Keras weight layout).

    ``mha(query, value)`` or ``mha(query, value, key)``: each of ``num_heads`` heads projects
    the query and key to ``key_dim`` and the value to ``value_dim``, attends with scaled dot
    products (1/sqrt(key_dim)) and the heads' outputs are projected back to the query's last
    dimension (or ``output_shape``).

    Args:
        num_heads: number of heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for the value (default key_dim).
        dropout: dropout rate on the attention weights (training only).
        use_bias: biases in the four projections.
        output_shape: last dimension of the output (default: the query's).
        attention_axes: only None (attend over the time axis) is supported.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as Dense.

    Call arguments: ``attention_mask`` (B, Tq, Tv) bool, ``return_attention_scores`` (also
    return the (B, num_heads, Tq, Tv) weights), ``use_causal_mask``. Masks of the query and
    value (from Masking / Embedding / ragged input) are combined with them as in Keras; masked
    scores get -1e9 and zero weight. The output carries the query's mask.

    Weights (Keras order and shapes): ``query/kernel`` (d_q, H, key_dim), ``query/bias``
    (H, key_dim), ``key/kernel`` (d_k, H, key_dim), ``key/bias``, ``value/kernel``
    (d_v, H, value_dim), ``value/bias``, ``attention_output/kernel`` (H, value_dim, d_out),
    ``attention_output/bias`` (d_out,).
    """

    list_inputs = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.value_dim = self.key_dim if value_dim is None else check_positive_int(
            "value_dim", value_dim)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError(f"output_shape must be an int (rnnkit projects the last axis), "
                                 f"got {output_shape!r}.")
            output_shape = output_shape[0]
        self.output_shape = None if output_shape is None else check_positive_int(
            "output_shape", output_shape)
        if attention_axes is not None:
            raise ValueError(f"attention_axes={attention_axes!r} is not supported: rnnkit "
                             "attends over the time axis of (batch, steps, dim) inputs; leave "
                             "attention_axes=None.")
        self.attention_axes = None
        self.kernel_initializer = _init.get(kernel_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = _reg.get(kernel_regularizer)
        self.bias_regularizer = _reg.get(bias_regularizer)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __call__(self, query, value=None, key=None, attention_mask=None, training=False,
                 return_attention_scores=False, use_causal_mask=False, mask=None, **kwargs):
        """``mha(query, value, key=None, ...)`` as in Keras (a list ``[query, value, key]``
        is also accepted as the first argument)."""
        inputs = list(query) if (value is None and isinstance(query, (list, tuple))) else (
            [query, value] + ([] if key is None else [key]))
        if value is None and not isinstance(query, (list, tuple)):
            raise ValueError(f"MultiHeadAttention layer {self.name!r} needs a query and a value: "
                             "mha(query, value) or mha(query, value, key).")
        kw = {k: v for k, v in (("return_attention_scores", return_attention_scores),
                                ("use_causal_mask", use_causal_mask)) if v}
        if attention_mask is not None:
            kw["attention_mask"] = attention_mask
        return super().__call__(inputs, training=training, mask=mask, **kw, **kwargs)

    def _dims(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not 2 <= len(shapes) <= 3 or any(
                len(s) != 3 for s in shapes):
            raise ValueError(f"MultiHeadAttention layer {self.name!r} expects query, value (and "
                             "key) of shape (batch, steps, dim), got "
                             f"{[tuple(s) for s in shapes] if isinstance(shapes, (list, tuple)) else shapes}.")
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if None not in (k[1], v[1]) and k[1] != v[1]:
            raise ValueError(f"MultiHeadAttention layer {self.name!r}: key and value need the "
                             f"same number of steps, got {tuple(k)} and {tuple(v)}.")
        return q, v, k

    def build(self, input_shape):
        q, v, k = self._dims(input_shape)
        H, K, V = self.num_heads, self.key_dim, self.value_dim
        out = self.output_shape or q[-1]
        ki, bi, kr, br = (self.kernel_initializer, self.bias_initializer,
                          self.kernel_regularizer, self.bias_regularizer)
        for name, d, size in (("query", q[-1], K), ("key", k[-1], K), ("value", v[-1], V)):
            self.add_weight(f"{name}/kernel", (d, H, size), ki, kr)
            if self.use_bias:
                self.add_weight(f"{name}/bias", (H, size), bi, br)
        self.add_weight("attention_output/kernel", (H, V, out), ki, kr)
        if self.use_bias:
            self.add_weight("attention_output/bias", (out,), bi, br)
        super().build(input_shape)

    def _proj(self, x, name):
        y = np.einsum("btd,dhk->bthk", x, self.params[f"{name}/kernel"], optimize=True)
        if self.use_bias:
            y = y + self.params[f"{name}/bias"]
        return y

    def _proj_backward(self, x, dy, name):
        self.grads[f"{name}/kernel"][...] = np.einsum("btd,bthk->dhk", x, dy, optimize=True)
        if self.use_bias:
            self.grads[f"{name}/bias"][...] = dy.sum(axis=(0, 1))
        return np.einsum("bthk,dhk->btd", dy, self.params[f"{name}/kernel"], optimize=True)

    def forward(self, inputs, training=False, mask=None, attention_mask=None,
                return_attention_scores=False, use_causal_mask=False):
        """Args: inputs ``[query, value]`` or ``[query, value, key]``, mask the inputs' masks.
        Returns (B, Tq, d_out), and the (B, H, Tq, Tv) weights with return_attention_scores."""
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"MultiHeadAttention layer {self.name!r} needs [query, value] or "
                             "[query, value, key].")
        xs = [as_float_array(x, f"MultiHeadAttention {self.name!r} input", self.dtype)
              for x in inputs]
        q, v, k = self._dims([x.shape for x in xs])
        x_q, x_v = xs[0], xs[1]
        x_k = xs[2] if len(xs) > 2 else x_v
        if x_q.shape[-1] != self.params["query/kernel"].shape[0] or \
                x_v.shape[-1] != self.params["value/kernel"].shape[0] or \
                x_k.shape[-1] != self.params["key/kernel"].shape[0]:
            raise ValueError(f"MultiHeadAttention layer {self.name!r} was built for "
                             f"{tuple(self.input_shape)}, got {[x.shape for x in xs]}.")
        masks = (list(mask) + [None] * 3)[:3] if isinstance(mask, (list, tuple)) else [None] * 3
        Tq, Tv = x_q.shape[1], x_v.shape[1]
        keep = None                                                     # (B or 1, Tq, Tv)
        if masks[0] is not None:
            keep = np.asarray(masks[0], bool)[:, :, None]
        for m in masks[1:3]:
            if m is not None:
                mm = np.asarray(m, bool)[:, None, :]
                keep = mm if keep is None else keep & mm
        if use_causal_mask:
            c = _causal(Tq, Tv)[None]
            keep = c if keep is None else keep & c
        if attention_mask is not None:
            am = np.asarray(attention_mask, bool)
            keep = am if keep is None else keep & am
        Q = self._proj(x_q, "query") / np.sqrt(self.key_dim)           # (B, Tq, H, K)
        Kp = self._proj(x_k, "key")                                     # (B, Tv, H, K)
        Vp = self._proj(x_v, "value")                                   # (B, Tv, H, V)
        S = np.einsum("bshk,bthk->bhts", Kp, Q, optimize=True)          # (B, H, Tq, Tv)
        kh = None if keep is None else keep[:, None]
        if kh is not None:
            S = np.where(kh, S, -_BIG)
        P = _softmax(S)
        A = P if kh is None else np.where(kh, P, 0).astype(self.dtype)
        drop = None
        if training and self.dropout > 0:
            rng = self._rng if self._rng is not None else _backend.rng()
            drop = ((rng.random(A.shape) >= self.dropout) / (1 - self.dropout)).astype(self.dtype)
        Ad = A if drop is None else A * drop
        O = np.einsum("bhts,bshv->bthv", Ad, Vp, optimize=True)         # (B, Tq, H, V)
        out = np.einsum("bthv,hvo->bto", O, self.params["attention_output/kernel"],
                        optimize=True)
        if self.use_bias:
            out = out + self.params["attention_output/bias"]
        self._cache = (xs, Q, Kp, Vp, P, kh, Ad, drop, O)
        return [out, A] if return_attention_scores else out

    def backward(self, dy):
        xs, Q, Kp, Vp, P, kh, Ad, drop, O = self._cache
        dout, dA_extra = (dy[0], dy[1]) if isinstance(dy, (list, tuple)) else (dy, None)
        dout = np.asarray(dout, self.dtype)
        self.grads["attention_output/kernel"][...] = np.einsum("bthv,bto->hvo", O, dout,
                                                               optimize=True)
        if self.use_bias:
            self.grads["attention_output/bias"][...] = dout.sum(axis=(0, 1))
        dO = np.einsum("bto,hvo->bthv", dout, self.params["attention_output/kernel"],
                       optimize=True)
        dAd = np.einsum("bthv,bshv->bhts", dO, Vp, optimize=True)
        dVp = np.einsum("bhts,bthv->bshv", Ad, dO, optimize=True)
        dA = dAd if drop is None else dAd * drop
        if dA_extra is not None:
            dA = dA + np.asarray(dA_extra, self.dtype)
        if kh is not None:
            dA = np.where(kh, dA, 0)               # A = where(keep, P, 0)
        dS = _softmax_backward(dA, P)
        dQ = np.einsum("bhts,bshk->bthk", dS, Kp, optimize=True) / np.sqrt(self.key_dim)
        dKp = np.einsum("bhts,bthk->bshk", dS, Q, optimize=True)
        x_q, x_v = xs[0], xs[1]
        x_k = xs[2] if len(xs) > 2 else x_v
        dq = self._proj_backward(x_q, dQ, "query")
        dk = self._proj_backward(x_k, dKp, "key")
        dv = self._proj_backward(x_v, dVp, "value")
        if len(xs) == 2:
            return [dq, dv + dk]
        return [dq, dv, dk]

    def compute_mask(self, x, mask):
        return _query_mask(mask)

    def compute_output_shape(self, input_shape, return_attention_scores=False,
                             use_causal_mask=False, attention_mask=None):
        q, v, k = self._dims(input_shape)
        out = (q[0], q[1], self.output_shape or q[-1])
        if return_attention_scores:
            return [out, (q[0], self.num_heads, q[1], v[1])]
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update(num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim,
                   dropout=self.dropout, use_bias=self.use_bias, output_shape=self.output_shape,
                   attention_axes=self.attention_axes,
                   kernel_initializer=_init.serialize(self.kernel_initializer),
                   bias_initializer=_init.serialize(self.bias_initializer),
                   kernel_regularizer=_reg.serialize(self.kernel_regularizer),
                   bias_regularizer=_reg.serialize(self.bias_regularizer), seed=self.seed)
        return cfg
