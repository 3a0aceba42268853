"""Conv1D, pooling, normalisation, merging and reshaping layers: float64 central-difference
gradient checks, shapes, masks, configs and Keras parity (forward and one training step)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad

import rnnkit
from rnnkit import layers as L

RNG = np.random.default_rng(0)


def _gradcheck(layer, xs, training=True, mask=None, kwargs=None, tol=1e-6):
    """Check dL/dx for every float input and dL/dw for every weight, L = sum(y * R)."""
    kwargs = kwargs or {}
    many = isinstance(xs, list)
    inputs = xs if many else [xs]
    arg = inputs if many else inputs[0]
    layer.maybe_build([x.shape for x in inputs] if (many and layer.list_inputs) else inputs[0].shape)
    y = layer.forward(arg, training=training, mask=mask, **kwargs)
    outs = y if isinstance(y, list) else [y]
    Rs = [RNG.standard_normal(o.shape) for o in outs]

    def loss():
        out = layer.forward(arg, training=training, mask=mask, **kwargs)
        out = out if isinstance(out, list) else [out]
        return float(sum((o * r).sum() for o, r in zip(out, Rs)))

    loss()
    dx = layer.backward(Rs if isinstance(y, list) else Rs[0])
    dxs = dx if isinstance(dx, list) else [dx]
    analytic_w = {n: g.copy() for n, g in layer.grads.items()}
    for i, x in enumerate(inputs):
        if x.dtype.kind == "f":
            assert_close_grad(dxs[i], numerical_grad(loss, x), f"{layer.name} dx[{i}]", tol)
    for n in layer.trainable_param_names():
        num = numerical_grad(loss, layer.params[n])
        if np.max(np.abs(num)) < 1e-8:  # e.g. attention's key bias: softmax ignores a shift
            np.testing.assert_allclose(analytic_w[n], 0, atol=1e-8, err_msg=n)
            continue
        assert_close_grad(analytic_w[n], num, f"{layer.name} d{n}", tol)


def x64(*shape):
    return RNG.standard_normal(shape)


CONV_CASES = [
    dict(filters=4, kernel_size=3),
    dict(filters=4, kernel_size=3, padding="same"),
    dict(filters=3, kernel_size=2, padding="causal", dilation_rate=2),
    dict(filters=4, kernel_size=3, strides=2, padding="same"),
    dict(filters=4, kernel_size=2, strides=3),
    dict(filters=4, kernel_size=3, groups=2, activation="tanh"),
    dict(filters=2, kernel_size=3, data_format="channels_first", padding="same"),
]


@pytest.mark.parametrize("cfg", CONV_CASES)
def test_conv1d_gradients(cfg):
    layer = L.Conv1D(dtype="float64", bias_initializer="random_normal", **cfg)
    x = x64(2, 7, 4) if cfg.get("data_format") != "channels_first" else x64(2, 4, 7)
    _gradcheck(layer, x)


@pytest.mark.parametrize("cls,cfg", [
    (L.MaxPooling1D, {}), (L.MaxPooling1D, dict(pool_size=3, strides=2, padding="same")),
    (L.AveragePooling1D, {}), (L.AveragePooling1D, dict(pool_size=3, strides=1, padding="same")),
    (L.AveragePooling1D, dict(pool_size=2, data_format="channels_first")),
    (L.GlobalAveragePooling1D, {}), (L.GlobalMaxPooling1D, dict(keepdims=True)),
    (L.UpSampling1D, dict(size=3)), (L.ZeroPadding1D, dict(padding=(1, 2))),
    (L.Cropping1D, dict(cropping=(2, 1))), (L.Permute, dict(dims=(2, 1))),
    (L.Reshape, dict(target_shape=(-1,))),
])
def test_shape_layers_gradients(cls, cfg):
    _gradcheck(cls(dtype="float64", **cfg), x64(3, 7, 4))


def test_global_pooling_skips_masked_steps():
    x = x64(2, 5, 3)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    x_big = x.copy()
    x_big[0, 3:] = 100.0                        # padding that would win a max / shift a mean
    avg, mx = L.GlobalAveragePooling1D(dtype="float64"), L.GlobalMaxPooling1D(dtype="float64")
    np.testing.assert_allclose(avg.forward(x_big, mask=mask)[0], x[0, :3].mean(0))
    np.testing.assert_allclose(mx.forward(x_big, mask=mask)[0], x[0, :3].max(0))
    _gradcheck(L.GlobalAveragePooling1D(dtype="float64"), x_big, mask=mask)
    _gradcheck(L.GlobalMaxPooling1D(dtype="float64"), x_big, mask=mask)


def test_batchnorm_gradients_train_inference_and_mask():
    init = dict(beta_initializer="random_normal", gamma_initializer="random_normal")
    _gradcheck(L.BatchNormalization(dtype="float64", **init), x64(4, 5, 3))
    _gradcheck(L.BatchNormalization(dtype="float64", **init), x64(6, 3))
    _gradcheck(L.BatchNormalization(axis=1, dtype="float64", **init), x64(4, 3, 5))
    _gradcheck(L.BatchNormalization(dtype="float64", **init), x64(4, 5, 3), training=False)
    mask = RNG.random((4, 5)) > 0.3
    mask[:, 0] = True
    _gradcheck(L.BatchNormalization(dtype="float64", **init), x64(4, 5, 3), mask=mask)


def test_batchnorm_statistics_ignore_masked_steps_and_update_moving_averages():
    x = x64(3, 6, 2)
    mask = np.ones((3, 6), bool)
    mask[:, 4:] = False
    bn = L.BatchNormalization(momentum=0.9, dtype="float64")
    bn.build(x.shape)
    x_pad = x.copy()
    x_pad[:, 4:] = 1e3
    y = bn.forward(x_pad, training=True, mask=mask)
    real = x[:, :4].reshape(-1, 2)
    mu, var = real.mean(0), real.var(0)
    np.testing.assert_allclose(y[:, :4], (x[:, :4] - mu) / np.sqrt(var + 1e-3), rtol=1e-10)
    np.testing.assert_allclose(bn.params["moving_mean"], 0.1 * mu, rtol=1e-10)
    np.testing.assert_allclose(bn.params["moving_variance"], 0.9 + 0.1 * var, rtol=1e-10)
    assert bn.compute_mask(x, mask) is mask
    y_inf = bn.forward(x, training=False)
    np.testing.assert_allclose(y_inf, (x - 0.1 * mu) / np.sqrt(0.9 + 0.1 * var + 1e-3))
    assert [w.shape for w in bn.trainable_weights] == [(2,), (2,)]
    assert len(bn.non_trainable_weights) == 2


def test_layernorm_gradients():
    init = dict(beta_initializer="random_normal", gamma_initializer="random_normal")
    _gradcheck(L.LayerNormalization(dtype="float64", **init), x64(3, 4, 5))
    _gradcheck(L.LayerNormalization(axis=1, dtype="float64", **init), x64(3, 4, 5))


@pytest.mark.parametrize("cls,kw,shapes", [
    (L.Concatenate, {}, [(2, 5, 3), (2, 5, 4)]),
    (L.Concatenate, dict(axis=1), [(2, 3, 4), (2, 2, 4)]),
    (L.Add, {}, [(2, 5, 3), (2, 5, 3), (2, 1, 3)]),
    (L.Subtract, {}, [(2, 5, 3), (2, 5, 3)]),
    (L.Multiply, {}, [(2, 5, 3), (2, 5, 3), (2, 5, 1)]),
    (L.Average, {}, [(2, 4), (2, 4)]),
    (L.Maximum, {}, [(2, 5, 3), (2, 5, 3)]),
    (L.Minimum, {}, [(2, 5, 3), (2, 5, 3)]),
    (L.Dot, dict(axes=1), [(3, 4), (3, 4)]),
    (L.Dot, dict(axes=2), [(2, 5, 3), (2, 4, 3)]),
    (L.Dot, dict(axes=(1, 1), normalize=True), [(2, 5, 3), (2, 5, 4)]),
])
def test_merge_gradients(cls, kw, shapes):
    _gradcheck(cls(dtype="float64", **kw), [x64(*s) for s in shapes])


def test_repeat_vector_gradients():
    _gradcheck(L.RepeatVector(4, dtype="float64"), x64(3, 5))


def test_merge_masks_follow_keras():
    m1 = np.array([[1, 1, 0]], bool)
    m2 = np.array([[1, 0, 0]], bool)
    a, b = np.ones((1, 3, 2)), np.ones((1, 3, 2))
    np.testing.assert_array_equal(L.Add().compute_mask([a, b], [m1, m2]), m1 & m2)
    np.testing.assert_array_equal(L.Add().compute_mask([a, b], [m1, None]), m1)
    assert L.Add().compute_mask([a, b], [None, None]) is None
    # Keras: a missing mask counts as all-True; along the feature axis the result is an "any"
    np.testing.assert_array_equal(L.Concatenate().compute_mask([a, b], [m1, None]),
                                  np.ones((1, 3), bool))
    np.testing.assert_array_equal(L.Concatenate().compute_mask([a, b], [m1, m2]), m1 | m2)
    np.testing.assert_array_equal(L.Concatenate(axis=1).compute_mask([a, b], [m1, m2]),
                                  np.concatenate([m1, m2], axis=1))


@pytest.mark.parametrize("make,shape,msg", [
    (lambda: L.Conv1D(4, 5), (None, 3, 2), "fewer than the kernel's span 5"),
    (lambda: L.Concatenate(), [(None, 5, 3), (None, 4, 3)], "match except along axis -1"),
    (lambda: L.Add(), [(None, 5, 3), (None, 5, 4)], "same shape"),
    (lambda: L.Reshape((4, 4)), (None, 5, 3), "holds 16 values per sample"),
    (lambda: L.Dot(axes=2), [(None, 5, 3), (None, 5, 4)], "must have the same size"),
    (lambda: L.Conv1D(4, 3, groups=2), (None, 8, 3), "divisible by groups=2"),
])
def test_bad_shapes_name_the_layer(make, shape, msg):
    layer = make()
    ins = [rnnkit.Input(s[1:]) for s in shape] if isinstance(shape, list) else rnnkit.Input(shape[1:])
    with pytest.raises(ValueError, match=msg) as e:
        layer(ins)
    assert layer.name in str(e.value)


def test_conv1d_output_lengths_match_keras_formula():
    for T in (7, 8, 9):
        for pad in ("valid", "same", "causal"):
            for s, d in ((1, 1), (2, 1), (1, 2), (3, 1)):
                conv = L.Conv1D(2, 3, strides=s, dilation_rate=d, padding=pad)
                y = conv(np.ones((1, T, 2)))
                assert y.shape == conv.compute_output_shape((1, T, 2))


def test_conv1d_causal_output_does_not_see_the_future():
    conv = L.Conv1D(3, 4, padding="causal", dilation_rate=2, dtype="float64")
    x = x64(1, 12, 2)
    y = conv(x)
    x2 = x.copy()
    x2[:, 7:] = 99.0
    np.testing.assert_allclose(conv(x2)[:, :7], y[:, :7])


def test_same_padding_pooling_leaves_the_padding_out_golden_numbers():
    # TensorFlow's (and the Keras documentation's) semantics, computed by hand on 0..9
    x = np.arange(10, dtype=np.float64).reshape(1, 10, 1)
    avg = L.AveragePooling1D(4, strides=3, padding="same", dtype="float64")(x).ravel()
    np.testing.assert_allclose(avg, [(0 + 1 + 2) / 3, 3.5, 6.5, (8 + 9) / 2])
    mx = L.MaxPooling1D(3, strides=2, padding="same", dtype="float64")(x).ravel()
    np.testing.assert_allclose(mx, [2, 4, 6, 8, 9])


QV = [(2, 4, 3), (2, 5, 3)]
QVK = [(2, 4, 3), (2, 5, 2), (2, 5, 3)]
MASKS = [np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool), np.array([[1, 1, 0, 0, 0], [1] * 5], bool)]


@pytest.mark.parametrize("cls,cfg,shapes,kw,masks", [
    (L.Attention, {}, QV, {}, None),
    (L.Attention, dict(use_scale=True), QVK, dict(return_attention_scores=True), None),
    (L.Attention, dict(use_scale=True, score_mode="concat"), QV, {}, MASKS),
    (L.Attention, {}, [(2, 4, 3), (2, 4, 3)], dict(use_causal_mask=True), None),
    (L.AdditiveAttention, {}, QVK, dict(return_attention_scores=True), MASKS),
    (L.AdditiveAttention, dict(use_scale=False), QV, {}, None),
    (L.MultiHeadAttention, dict(num_heads=2, key_dim=3, bias_initializer="random_normal"),
     QVK, dict(return_attention_scores=True), None),
    (L.MultiHeadAttention, dict(num_heads=3, key_dim=2, value_dim=4, output_shape=5), QV, {},
     MASKS),
    (L.MultiHeadAttention, dict(num_heads=2, key_dim=2, use_bias=False), [(2, 4, 3)] * 2,
     dict(use_causal_mask=True), None),
])
def test_attention_gradients(cls, cfg, shapes, kw, masks):
    _gradcheck(cls(dtype="float64", **cfg), [x64(*s) for s in shapes], mask=masks, kwargs=kw)


def test_attention_masks_hide_padding_and_propagate_the_query_mask():
    q, v = x64(2, 4, 3), x64(2, 5, 3)
    vmask = np.array([[1, 1, 0, 0, 0], [1] * 5], bool)
    for layer in (L.Attention(dtype="float64"), L.AdditiveAttention(dtype="float64"),
                  L.MultiHeadAttention(2, 3, dtype="float64")):
        out, w = layer([q, v], mask=[None, vmask], return_attention_scores=True)
        v2 = v.copy()
        v2[0, 2:] = 50.0                                  # padding must not change anything
        out2 = layer([q, v2], mask=[None, vmask])
        np.testing.assert_allclose(out2, out, atol=1e-10)
        assert np.all(w[0, ..., 2:] < 1e-12)
        qmask = np.array([[1, 1, 0, 0], [1] * 4], bool)
        assert layer.compute_mask([q, v], [qmask, vmask]) is qmask
