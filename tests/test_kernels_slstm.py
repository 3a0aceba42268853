"""The compiled sLSTM kernel (rnnkit.kernels.slstm) equals the generic loop over the cell's
own step: outputs, final states and every gradient, in float32 and float64, for 1, 2 and 4
heads, masks (right padding, interior, fully masked rows), with and without output and
final-state gradients, rows split over 1 and 2 threads, large pre-activations (where the
stabiliser m is what keeps the exponentials finite); and float64 central differences through
the layer with the compiled kernel forced on."""

import numpy as np
import pytest
from test_gradients import check_layer

from rnnkit import cells, kernels, layers
from rnnkit.kernels import _loops, reference
from rnnkit.kernels import slstm as kslstm


@pytest.fixture
def fast_mode():
    """Mode 'fast': a missing kernel is an error, so no silent fallback can hide a bug."""
    kernels.set_kernel_mode("fast")
    yield
    kernels.set_kernel_mode("auto")


def _mask(kind, T, B, rng):
    if kind is None:
        return None
    m = np.ones((T, B), bool)
    if kind == "right":                         # right padding: row b has T - b steps
        for b in range(B):
            m[T - min(b, T - 1):, b] = False
    elif kind == "interior":
        m = rng.random((T, B)) > 0.35
    elif kind == "full_rows":                   # some rows never see a step
        m[:, ::2] = False
    return m


def _setup(dtype, heads, B, T=6, F=3, H=8, x_scale=1.0, w_scale=0.7, use_bias=True, seed=0):
    rng = np.random.default_rng(seed)
    cell = cells.sLSTMCell(H, num_heads=heads, use_bias=use_bias)
    cell.build(F)
    for k, v in list(cell.params.items()):     # random weights and biases, not the init
        cell.params[k] = rng.normal(0, w_scale, v.shape).astype(dtype)
    xs = rng.normal(0, x_scale, (T, B, F)).astype(dtype)
    s0 = [rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in range(4)]
    s0[2] = np.abs(s0[2]) + 0.5                 # a normaliser state is positive
    return cell, xs, s0, rng


def _run(mode, cell, xs, s0, mask, dys, dst):
    kernels.set_kernel_mode(mode)
    try:
        ys, states, cache = kernels.forward_steps(cell, xs, [s.copy() for s in s0], mask)
        if mode == "fast":
            assert cache[0] is kslstm
        dx, d0, dp = kernels.backward_steps(cell, cache, dys, dst, mask)
    finally:
        kernels.set_kernel_mode("auto")
    return {"ys": ys, **{f"state{k}": s for k, s in enumerate(states)}, "dx": dx,
            **{f"dstate0_{k}": s for k, s in enumerate(d0)},
            **{f"d{n}": g for n, g in zip(cell.param_names, dp)}}


def _compare(got, want, dtype, what):
    tol = 2e-5 if np.dtype(dtype) == np.float32 else 1e-12
    assert got.keys() == want.keys()
    for k in want:
        a, b = got[k], want[k]
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what} {k}: {a.shape} {a.dtype}"
        assert np.all(np.isfinite(a)), f"{what} {k}: compiled kernel not finite"
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()),
                                   err_msg=f"{what} {k}: compiled kernel vs generic loop")


def _check(dtype, heads, B, mask_kind, with_dys, with_dst, threads, monkeypatch, **kw):
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)      # split even these small batches
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: threads)
    cell, xs, s0, rng = _setup(dtype, heads, B, **kw)
    T, H = xs.shape[0], cell.units
    mask = _mask(mask_kind, T, B, rng)
    dys = rng.normal(size=(T, B, H)).astype(dtype) if with_dys else None
    dst = [rng.normal(size=(B, H)).astype(dtype) if with_dst else None for _ in range(4)]
    if not (with_dys or with_dst):
        dst[0] = rng.normal(size=(B, H)).astype(dtype)    # some gradient must flow
    what = (f"{np.dtype(dtype).name} heads={heads} B={B} mask={mask_kind} dys={with_dys} "
            f"dstates={with_dst} threads={threads} {kw}")
    _compare(_run("fast", cell, xs, s0, mask, dys, dst),
             _run("reference", cell, xs, s0, mask, dys, dst), dtype, what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("mask_kind", [None, "right", "interior", "full_rows"])
def test_kernel_equals_generic_loop(monkeypatch, dtype, heads, mask_kind):
    for B, threads in ((1, 1), (5, 1), (5, 2)):
        _check(dtype, heads, B, mask_kind, True, True, threads, monkeypatch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_dys,with_dst", [(True, False), (False, True), (False, False)])
def test_kernel_equals_generic_loop_gradient_inputs(monkeypatch, dtype, with_dys, with_dst):
    """dys given or None, final-state gradients given or None."""
    _check(dtype, 2, 4, "interior", with_dys, with_dst, 2, monkeypatch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("heads", [1, 4])
def test_kernel_equals_generic_loop_large_preactivations(monkeypatch, dtype, heads):
    """Pre-activations of tens: exp(i~) alone would overflow float32; the stabiliser m keeps
    every exponential at most 1, and both branches of m = max(a, i~) are taken."""
    cell, xs, s0, _ = _setup(dtype, heads, 4, x_scale=12.0, w_scale=2.0)
    pre = xs @ cell.params["kernel"]
    assert np.abs(pre).max() > 60
    _check(dtype, heads, 4, "interior", True, True, 2, monkeypatch, x_scale=12.0,
           w_scale=2.0, T=8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_without_bias_and_long_sequence(monkeypatch, dtype):
    _check(dtype, 2, 3, "right", True, True, 1, monkeypatch, use_bias=False, T=40)


def test_supports_exactly_slstm_float32_float64():
    cell = cells.sLSTMCell(8, num_heads=2)

    class Sub(cells.sLSTMCell):
        pass
    assert kslstm.supports(cell, np.float32) and kslstm.supports(cell, np.float64)
    assert not kslstm.supports(cell, np.float16)
    assert not kslstm.supports(Sub(8, num_heads=2), np.float32)
    assert kernels.kernel_for(cell, np.dtype(np.float32)) is kslstm


def test_recurrent_mask_runs_the_generic_loop():
    """A recurrent-dropout mask (no option of this cell) goes to the generic loop, which
    behaves exactly as without the kernel: sLSTMCell.step takes no recurrent_mask."""
    cell, xs, s0, _ = _setup(np.float64, 2, 3)
    rmask = np.ones((3, cell.units))
    for impl in (kslstm, reference):
        fwd = impl.forward if impl is kslstm else reference.forward_steps
        with pytest.raises(TypeError, match="recurrent_mask"):
            fwd(cell, xs, s0, None, rmask)


def test_input_grad_false_skips_dx():
    cell, xs, s0, rng = _setup(np.float64, 2, 3)
    ys, _, cache = kslstm.forward(cell, xs, s0)
    dys = rng.normal(size=ys.shape)
    dx, d0, dp = kslstm.backward(cell, cache, dys, [None] * 4, input_grad=False)
    dx2, d02, dp2 = kslstm.backward(cell, cache, dys, [None] * 4)
    assert dx is None and dx2.shape == xs.shape
    for a, b in zip(d0 + dp, d02 + dp2):
        np.testing.assert_array_equal(a, b)


def test_streaming_steps_equal_whole_sequence():
    """layer.step (one step at a time, through the kernel with T=1) equals one pass."""
    x = np.random.default_rng(2).normal(size=(3, 7, 4)).astype(np.float32)
    layer = layers.sLSTM(8, num_heads=4, return_sequences=True)
    whole = layer(x)
    states, outs = None, []
    for t in range(x.shape[1]):
        y, states = layer.step(x[:, t], states)
        outs.append(y)
    np.testing.assert_allclose(np.stack(outs, 1), whole, rtol=2e-5, atol=2e-6)


MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)


def _x(B=3, T=5, F=3, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(0, scale, (B, T, F))


@pytest.mark.parametrize("heads", [1, 2])
def test_gradcheck_through_layer_with_compiled_kernel(fast_mode, heads):
    check_layer(layers.sLSTM(4, num_heads=heads, dtype="float64"), _x())
    check_layer(layers.sLSTM(4, num_heads=heads, dtype="float64", return_sequences=True),
                _x(scale=3.0), mask=MASK)
    check_layer(layers.sLSTM(4, num_heads=heads, dtype="float64", go_backwards=True,
                             use_bias=False), _x(), mask=MASK)


def test_gradcheck_initial_states_and_bidirectional_with_compiled_kernel(fast_mode):
    layer = layers.sLSTM(4, num_heads=2, dtype="float64", return_sequences=True,
                         return_state=True)
    x = _x()
    layer.maybe_build(x.shape)
    rng = np.random.default_rng(5)
    states = [np.abs(rng.normal(0, 0.5, (3, 4))) + 0.1 for _ in range(4)]
    check_layer(layer, x, initial_state=states)
    check_layer(layers.Bidirectional(layers.sLSTM(4, num_heads=2, return_sequences=True),
                                     dtype="float64"), _x(seed=1), mask=MASK)
