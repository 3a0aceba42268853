"""The compiled LayerNormLSTM / LayerNormGRU kernels (rnnkit.kernels.layernorm) equal the
generic loop over the cells' own step: outputs, final states and every gradient, float32 and
float64, with masks, zoneout (training draws and the inference expectation), rows split
across threads; and float64 central differences through the layers with the kernel forced."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad
from test_gradients import check_layer

from rnnkit import cells, kernels, layers
from rnnkit.kernels import _loops, layernorm, reference

CELLS = {"lstm": cells.LayerNormLSTMCell, "gru": cells.LayerNormGRUCell}
TOL = {np.float32: 2e-5, np.float64: 1e-12}
MASKS = ["right_padding", "interior", "full_rows"]


@pytest.fixture
def kernel_mode():
    old = kernels.get_kernel_mode()
    yield kernels.set_kernel_mode
    kernels.set_kernel_mode(old)


def _mask(kind, T, B, rng):
    if kind is None:
        return None
    if kind == "right_padding":                   # sequences of different lengths
        lengths = rng.integers(1, T + 1, B)
        return np.arange(T)[:, None] < lengths[None, :]
    m = rng.random((T, B)) > 0.35                 # interior holes
    if kind == "full_rows":
        m[:, ::2] = False                         # rows masked at every step
    return m


def _cell(name, dtype, H, F, rng, **kw):
    cell = CELLS[name](H, seed=3, **kw)
    cell.build(F)
    for k in cell.params:
        cell.params[k] = rng.normal(0, 0.5, cell.params[k].shape).astype(dtype)
    return cell


def _run(mode, cell, xs, s0, mask, dys, dst, training, input_grad=True):
    """forward_steps + backward_steps in kernel mode ``mode``, zoneout masks from seed 11."""
    kernels.set_kernel_mode(mode)
    try:
        cell.zoneout_rng = np.random.default_rng(11)
        ys, states, cache = kernels.forward_steps(cell, xs, s0, mask, None, training)
        assert (cache[0] is layernorm) == (mode == "fast")
        ys = np.array(ys)
        dxs, d0, dp = kernels.backward_steps(cell, cache, dys, dst, mask,
                                             input_grad=input_grad)
    finally:
        kernels.set_kernel_mode("auto")
    out = {"ys": ys, "dxs": dxs}
    out.update({f"state{k}": s for k, s in enumerate(states)})
    out.update({f"dstate0_{k}": s for k, s in enumerate(d0)})
    out.update({f"d{n}": g for n, g in zip(cell.param_names, dp)})
    return out


def _compare(got, want, dtype, what):
    assert got.keys() == want.keys(), what
    tol = TOL[dtype]
    for k, w in want.items():
        g = got[k]
        if w is None:
            assert g is None, f"{what} {k}"
            continue
        assert g.dtype == w.dtype == np.dtype(dtype), f"{what} {k}: dtype {g.dtype} vs {w.dtype}"
        assert g.shape == w.shape, f"{what} {k}: shape {g.shape} vs {w.shape}"
        scale = max(1.0, float(np.abs(w).max()))       # layer norm gradients can be large
        if not np.allclose(g, w, rtol=tol, atol=tol * scale):
            i = np.unravel_index(np.argmax(np.abs(g - w)), g.shape)
            raise AssertionError(f"{what} {k}: rnnkit vs reference at {i}: {g[i]!r} vs "
                                 f"{w[i]!r} (max abs diff {np.abs(g - w).max():.3g})")


def _case(name, dtype, B=4, T=7, F=3, H=5, mask_kind=None, dys=True, dstates=True,
          zoneout=0.0, training=False, use_bias=True, seed=0):
    rng = np.random.default_rng(seed)
    cell = _cell(name, dtype, H, F, rng, zoneout=zoneout, use_bias=use_bias)
    xs = rng.normal(0, 1.0, (T, B, F)).astype(dtype)
    s0 = [rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in cell.state_size]
    d = rng.normal(size=(T, B, H)).astype(dtype) if dys else None
    ds = [rng.normal(size=(B, H)).astype(dtype) if dstates else None for _ in cell.state_size]
    mask = _mask(mask_kind, T, B, rng)
    args = (cell, xs, s0, mask, d, ds, training)
    assert layernorm.supports(cell, dtype)
    _compare(_run("fast", *args), _run("reference", *args), dtype,
             f"{name} {np.dtype(dtype).name} B={B} T={T} H={H} mask={mask_kind} dys={dys} "
             f"dstates={dstates} zoneout={zoneout} training={training} bias={use_bias}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("B,T,H", [(1, 5, 4), (4, 7, 5), (9, 3, 8)])
def test_fast_equals_reference_shapes(name, dtype, B, T, H):
    _case(name, dtype, B=B, T=T, H=H)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("mask_kind", MASKS)
def test_fast_equals_reference_masks(name, dtype, mask_kind):
    _case(name, dtype, B=6, mask_kind=mask_kind)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dys,dstates", [(True, False), (False, True), (False, False)])
def test_fast_equals_reference_gradient_sources(name, dtype, dys, dstates):
    _case(name, dtype, mask_kind="interior", dys=dys, dstates=dstates)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("training", [True, False])
def test_fast_equals_reference_zoneout(name, dtype, training):
    """Training: the kernel's masks (all steps drawn at once) are the cell's own stream;
    inference: the expectation."""
    _case(name, dtype, zoneout=0.3, training=training)
    _case(name, dtype, B=6, zoneout=0.3, training=training, mask_kind="full_rows", seed=1)


@pytest.mark.parametrize("name", list(CELLS))
def test_fast_equals_reference_without_bias(name):
    _case(name, np.float64, use_bias=False, mask_kind="interior")


@pytest.mark.parametrize("name", list(CELLS))
def test_zoneout_masks_drawn_in_chunks_are_the_same_stream(name, monkeypatch):
    """However the (T, B, H) draw is cut (one step, several steps, more than B*H values),
    the masks equal T successive (B, H) draws of the cell's generator."""
    cell = CELLS[name](3, zoneout=0.4)
    T, B, H = 7, 2, 3
    rng = np.random.default_rng(5)
    want = np.stack([rng.random((B, H)) < 0.4 for _ in range(T)]).astype(np.float32)
    for chunk in (1, B * H, 2 * B * H + 1, 1 << 20):
        monkeypatch.setattr(layernorm, "_DRAW_CHUNK", chunk)
        cell.zoneout_rng = np.random.default_rng(5)
        np.testing.assert_array_equal(layernorm._zoneout_masks(cell, T, B, H, np.float32), want)
    _case(name, np.float64, zoneout=0.4, training=True, mask_kind="interior")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fast_rows_split_across_threads_equal_reference(monkeypatch, name, dtype, threads):
    """The loops split by batch rows (uneven blocks of 11 rows) equal the reference, with
    masks and zoneout."""
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: threads)
    assert len(_loops.split(11, 1, 1)) == threads
    for mask_kind in (None, "interior", "full_rows"):
        _case(name, dtype, B=11, T=6, H=6, mask_kind=mask_kind, seed=threads,
              zoneout=0.25 if mask_kind else 0.0, training=mask_kind == "interior")


@pytest.mark.parametrize("name", list(CELLS))
def test_input_grad_false_skips_dx_only(name):
    rng = np.random.default_rng(0)
    cell = _cell(name, np.float64, 4, 3, rng)
    xs = rng.normal(size=(5, 2, 3))
    s0 = [np.zeros((2, 4)) for _ in cell.state_size]
    dys = rng.normal(size=(5, 2, 4))
    res = {}
    for ig in (True, False):
        _, _, cache = layernorm.forward(cell, xs, s0)
        res[ig] = layernorm.backward(cell, cache, dys, [None] * len(s0), input_grad=ig)
    assert res[False][0] is None and res[True][0].shape == xs.shape
    for a, b in zip(res[True][2], res[False][2]):
        np.testing.assert_array_equal(a, b)


def test_backward_consumes_the_cache():
    rng = np.random.default_rng(0)
    cell = _cell("gru", np.float64, 4, 3, rng)
    _, _, cache = layernorm.forward(cell, rng.normal(size=(3, 2, 3)), [np.zeros((2, 4))])
    layernorm.backward(cell, cache, None, [np.ones((2, 4))])
    with pytest.raises(RuntimeError, match="already used by a backward call"):
        layernorm.backward(cell, cache, None, [np.ones((2, 4))])


def test_recurrent_mask_runs_the_cells_own_step(monkeypatch):
    """rmask is no option of these cells: the kernel hands it to the generic loop (which asks
    the cell's step), and backward follows."""
    rng = np.random.default_rng(0)
    cell = _cell("lstm", np.float64, 4, 3, rng)
    seen, original = [], reference.forward_steps

    def fwd(*a):
        seen.append(a[4])
        return original(a[0], a[1], a[2], a[3], None, a[5])
    monkeypatch.setattr(reference, "forward_steps", fwd)
    xs, s0 = rng.normal(size=(3, 2, 3)), [np.zeros((2, 4))] * 2
    rm = np.ones((2, 4))
    ys, _, cache = layernorm.forward(cell, xs, s0, rmask=rm)
    assert seen and seen[0] is rm and "reference" in cache
    dxs, d0, dp = layernorm.backward(cell, cache, np.ones_like(ys), [None, None], rmask=rm)
    assert dxs.shape == xs.shape and len(dp) == len(cell.param_names)


def test_supports_exact_types_and_float_dtypes_only(kernel_mode):
    class MyLN(cells.LayerNormLSTMCell):
        pass
    for cls in CELLS.values():
        assert layernorm.supports(cls(3, zoneout=0.2), np.float32)
        assert layernorm.supports(cls(3), "float64")
        assert not layernorm.supports(cls(3), np.float16)
        assert kernels.kernel_for(cls(3), np.dtype("float32")) is layernorm
    assert not layernorm.supports(MyLN(3), np.float64)
    assert kernels.kernel_for(MyLN(3), np.float64) is None
    kernel_mode("fast")
    with pytest.raises(ValueError, match="No compiled kernel serves"):
        kernels.kernel_for(MyLN(3), np.float64)


def test_kernel_status_lists_the_layer_norm_cells():
    from rnnkit.kernels.status import kernel_status
    st = kernel_status()
    assert st["cells"]["LayerNormLSTM"] == "compiled (rnnkit.kernels.layernorm)"
    assert st["cells"]["LayerNormGRU"] == "compiled (rnnkit.kernels.layernorm)"
    names = {f["name"] for f in st["functions"]}
    assert {"layernorm._lstm_fwd", "layernorm._lstm_bwd", "layernorm._gru_fwd",
            "layernorm._gru_bwd"} <= names


# float64 central differences through the layers, compiled kernel forced ('fast' mode)

RNG = np.random.default_rng(0)
MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
LAYERS = [("lnlstm", lambda **k: layers.LayerNormLSTM(4, **k)),
          ("lngru", lambda **k: layers.LayerNormGRU(4, **k)),
          ("lnlstm_nobias", lambda **k: layers.LayerNormLSTM(3, use_bias=False, **k))]
OPTIONS = [{}, {"return_sequences": True}, {"go_backwards": True, "return_sequences": True}]


def _x(B=3, T=5, F=3):
    return RNG.normal(0, 1.0, (B, T, F))


@pytest.mark.parametrize("name,make", LAYERS)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "default")
def test_gradients_through_the_compiled_kernel(name, make, opts, kernel_mode):
    kernel_mode("fast")
    check_layer(make(dtype="float64", **opts), _x())


@pytest.mark.parametrize("name,make", LAYERS[:2])
def test_mask_initial_state_and_bidirectional_gradients(name, make, kernel_mode):
    kernel_mode("fast")
    check_layer(make(dtype="float64", return_sequences=True), _x(), mask=MASK)
    layer = make(dtype="float64", return_sequences=True, return_state=True)
    x = _x()
    layer.maybe_build(x.shape)
    states = [RNG.normal(0, 0.5, (3, n)) for n in layer.cell.state_size]
    check_layer(layer, x, initial_state=states, mask=MASK)
    check_layer(layers.Bidirectional(make(return_sequences=True), dtype="float64"), _x(),
                mask=MASK)


@pytest.mark.parametrize("name,make", LAYERS[:2])
def test_zoneout_gradients_with_fixed_masks(name, make, kernel_mode):
    """Training with zoneout: the same masks on every pass (the generator restarted), so
    central differences see the function the kernel differentiates."""
    kernel_mode("fast")
    layer = make(dtype="float64", return_sequences=True, zoneout=0.3, seed=1)
    reset = layer.reset_dropout_rng

    def same_masks():                  # check_layer calls this before every forward pass
        reset()
        layer.cell.zoneout_rng = np.random.default_rng(7)
    layer.reset_dropout_rng = same_masks
    check_layer(layer, _x(), mask=MASK, training=True)
    check_layer(make(dtype="float64", return_sequences=True, zoneout=0.3), _x(), mask=MASK)


def test_gradient_check_with_rows_split_across_threads(kernel_mode, monkeypatch):
    """The same check through the multi-threaded path (one row per thread)."""
    from rnnkit.kernels import threads
    kernel_mode("fast")
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: 2)
    with threads.parallel():
        for _, make in LAYERS[:2]:
            check_layer(make(dtype="float64", return_sequences=True), _x(), mask=MASK)


def test_layer_float32_fast_equals_reference(kernel_mode):
    """Through the layer (float32, masks, go_backwards): outputs, dL/dx and weight
    gradients of the compiled path equal the generic loop's."""
    x = _x(B=5, T=9).astype("float32")
    mask = RNG.random((5, 9)) > 0.3
    for make in (lambda: layers.LayerNormLSTM(6, return_sequences=True, go_backwards=True),
                 lambda: layers.LayerNormGRU(6, return_sequences=True)):
        layer = make()
        layer.maybe_build(x.shape)
        dy = RNG.normal(size=(5, 9, 6)).astype("float32")
        res = {}
        for mode in ("fast", "reference"):
            kernel_mode(mode)
            out = layer.forward(x, training=True, mask=mask)
            dx = layer.backward(dy)
            res[mode] = [out, dx] + [layer.grads[k].copy() for k in layer.params]
        for a, b in zip(res["fast"], res["reference"]):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * max(1, np.abs(b).max()))


def test_numerical_gradient_of_a_longer_sequence(kernel_mode):
    """T=40 through the compiled LSTM kernel: dL/dU by central differences."""
    kernel_mode("fast")
    layer = layers.LayerNormLSTM(3, dtype="float64")
    x = RNG.normal(size=(2, 40, 2))
    layer.maybe_build(x.shape)
    w = RNG.normal(size=(2, 3))

    def loss():
        return float((w * layer.forward(x)).sum())
    loss()
    layer.backward(w)
    U = layer.params["recurrent_kernel"]
    assert_close_grad(layer.grads["recurrent_kernel"], numerical_grad(loss, U),
                      "LayerNormLSTM T=40 dL/dU")
