"""The compiled kernels (rnnkit.kernels.simple / lstm / gru) equal the generic loop over the
cell's own step (rnnkit.kernels.reference).

* random cases: forward outputs, final states and every gradient, float32 and float64, with
  masks (right, left, interior padding, fully masked rows), recurrent dropout masks, the GRU
  recurrent bias, dhs given or None and dL/d(final state) given or None;
* golden cases: constant initializers on ``np.arange`` inputs through the layers in both
  kernel modes, against numbers computed once, independently (explicit per-step equations
  in torch float64 with autograd; the generator is quoted in docs/performance.md);
* the layer gradient checks of test_gradients.py rerun with the fast kernels forced on.
"""

import numpy as np
import pytest

from rnnkit import activations as rnnkit_activations
from rnnkit import cells, initializers, kernels, layers
from rnnkit.kernels import _loops, gru, lstm, reference, simple

CELLS = {
    "simple_tanh": lambda H, **k: cells.SimpleRNNCell(H, "tanh", **k),
    "simple_relu": lambda H, **k: cells.SimpleRNNCell(H, "relu", **k),
    "lstm": lambda H, **k: cells.LSTMCell(H, **k),
    "gru_after": lambda H, **k: cells.GRUCell(H, reset_after=True, **k),
    "gru_before": lambda H, **k: cells.GRUCell(H, reset_after=False, **k),
}
FAST = {"simple_tanh": simple, "simple_relu": simple, "lstm": lstm, "gru_after": gru,
        "gru_before": gru}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def make_cell(name, H, dtype, U, W=None, b_in=None, b_rec=None, **kw):
    """A built cell of ``name`` holding exactly the given weights (absent biases: no bias)."""
    cell = CELLS[name](H, use_bias=b_in is not None or b_rec is not None, **kw)
    cell.build_weights(1 if W is None else W.shape[0], dtype)
    cell.params["recurrent_kernel"][...] = U
    if W is not None:
        cell.params["kernel"][...] = W
    if cell.use_bias:
        bias = cell.params["bias"]
        parts = (b_in, b_rec) if bias.ndim == 2 else (b_in,)
        for k, part in enumerate(parts):
            (bias[k] if bias.ndim == 2 else bias)[...] = 0 if part is None else part
    return cell


def _mask(kind, T, B, rng):
    if kind is None:
        return None
    m = np.ones((T, B), bool)
    if kind == "right":                       # trailing padding, a different length per row
        for b in range(B):
            m[rng.integers(1, T + 1):, b] = False
    elif kind == "left":
        for b in range(B):
            m[:rng.integers(0, T), b] = False
    elif kind == "interior":
        m = rng.random((T, B)) > 0.4
    elif kind == "full_rows":                 # some rows never see a real step
        m = rng.random((T, B)) > 0.3
        m[:, ::2] = False
    return m


def _run(impl, cell, xw, s0, mask, rmask, dhs, dst):
    hs, states, cache = impl.forward(cell, xw, s0, mask, rmask)
    hs = np.array(hs)
    dxw, d0, dU, db = impl.backward(cell, cache, dhs, dst, mask, rmask)
    out = {"hs": hs, "dxw": dxw, "dU": dU}
    out.update({f"state{k}": s for k, s in enumerate(states)})
    out.update({f"dstate0_{k}": s for k, s in enumerate(d0)})
    if db is not None:
        out["db_rec"] = db
    return out


def _compare(got, want, dtype, what):
    assert got.keys() == want.keys(), what
    for k in want:
        g, w = got[k], want[k]
        assert g.dtype == w.dtype == np.dtype(dtype), f"{what} {k}: dtype {g.dtype} vs {w.dtype}"
        assert g.shape == w.shape, f"{what} {k}: shape {g.shape} vs {w.shape}"
        if not np.allclose(g, w, **TOL[dtype]):
            i = np.unravel_index(np.argmax(np.abs(g - w)), g.shape)
            raise AssertionError(f"{what} {k}: rnnkit vs reference at {i}: {g[i]!r} vs {w[i]!r} "
                                 f"(max abs diff {np.abs(g - w).max():.3g})")


def _random_case(name, dtype, B, T, H, mask_kind=None, rdrop=False, b_rec=False,
                 dhs=True, dstates=True, seed=0):
    rng = np.random.default_rng(seed)
    n_gates, n_states = CELLS[name](1).n_gates, CELLS[name](1).n_states
    G = n_gates * H
    xw = rng.normal(0, 1.0, (T, B, G)).astype(dtype)
    s0 = tuple(rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in range(n_states))
    U = rng.normal(0, 0.6 / np.sqrt(H), (H, G)).astype(dtype)
    br = rng.normal(0, 0.3, G).astype(dtype) if b_rec else None
    cell = make_cell(name, H, dtype, U, b_rec=br)
    rm = ((rng.random((B, H)) > 0.3) / 0.7).astype(dtype) if rdrop else None
    d = rng.normal(size=(T, B, H)).astype(dtype) if dhs else None
    ds = tuple(rng.normal(size=(B, H)).astype(dtype) if dstates else None
               for _ in range(n_states))
    mask = _mask(mask_kind, T, B, rng)
    args = (cell, xw, s0, mask, rm, d, ds)
    want = _run(reference, *args)
    assert FAST[name].supports(cell, dtype)
    got = _run(FAST[name], *args)
    _compare(got, want, dtype, f"{name} {np.dtype(dtype).name} B={B} T={T} H={H} "
             f"mask={mask_kind} rdrop={rdrop} b_rec={b_rec} dhs={dhs} dstates={dstates}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("B,T,H", [(1, 1, 1), (1, 7, 5), (4, 1, 3), (3, 6, 1), (5, 9, 8)])
def test_fast_equals_reference_shapes(name, dtype, B, T, H):
    _random_case(name, dtype, B, T, H, seed=B * 100 + T * 10 + H)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("mask_kind", ["right", "left", "interior", "full_rows"])
def test_fast_equals_reference_masks(name, dtype, mask_kind):
    _random_case(name, dtype, 6, 8, 4, mask_kind=mask_kind, rdrop=True,
                 b_rec=name == "gru_after", seed=len(mask_kind))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dhs,dstates", [(True, False), (False, True), (False, False)])
def test_fast_equals_reference_gradient_sources(name, dtype, dhs, dstates):
    _random_case(name, dtype, 3, 5, 4, mask_kind="interior", dhs=dhs, dstates=dstates,
                 b_rec=name == "gru_after", seed=7)


def test_fast_equals_reference_saturating_and_larger():
    """Large pre-activations (saturated gates) and a size where BLAS uses its blocked path."""
    for name in CELLS:
        _random_case(name, np.float64, 17, 12, 33, mask_kind="interior", rdrop=True,
                     b_rec=name == "gru_after", seed=3)
    rng = np.random.default_rng(0)
    xw = rng.normal(0, 30.0, (4, 2, 12))
    s0 = (np.zeros((2, 3)), np.zeros((2, 3)))
    cell = make_cell("lstm", 3, np.float64, rng.normal(0, 5.0, (3, 12)))
    args = (cell, xw, s0, None, None, np.ones((4, 2, 3)), (None, None))
    _compare(_run(lstm, *args), _run(reference, *args), np.float64, "saturated lstm")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fast_rows_split_across_threads_equal_reference(monkeypatch, name, dtype, threads):
    """The time loop split by batch rows over 1, 2 and 3 threads (uneven blocks, 11 rows),
    with masks, recurrent dropout and the GRU recurrent bias, equals the reference."""
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: threads)
    assert len(_loops.split(11, 1, 1)) == threads
    for mask_kind in (None, "interior", "full_rows"):
        _random_case(name, dtype, 11, 9, 6, mask_kind=mask_kind, rdrop=mask_kind is not None,
                     b_rec=name == "gru_after", seed=threads)


def test_rows_split_follows_blas_thread_limit():
    """threadpoolctl's limit decides the split: one BLAS thread, one block of rows."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        assert _loops.split(512, 512 * 2048, 100) == [(0, 512)]
    assert _loops.split(4, 512 * 2048, 100) == [(0, 4)]             # too few rows


INFER_CELLS = [n for n in CELLS if n != "gru_before"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", INFER_CELLS)
@pytest.mark.parametrize("threads", [1, 3])
def test_cache_free_inference_equals_reference(monkeypatch, name, dtype, threads):
    """infer_sequence (per-step x @ W, (B, T, F) in, (B, T, H) out) equals the reference loop
    on X @ W + b: outputs and final states, with masks, go_backwards, biases (the GRU's
    recurrent one too), with and without return_sequences, rows split over 1 and 3 threads."""
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: threads)
    rng = np.random.default_rng(threads)
    B, T, F, H = 7, 6, 5, 4
    n_gates, n_states = CELLS[name](1).n_gates, CELLS[name](1).n_states
    G = n_gates * H
    for mask_kind in (None, "interior", "full_rows", "left"):
        for backwards in (False, True):
            x = rng.normal(size=(B, T, F)).astype(dtype)
            W = rng.normal(0, 0.5, (F, G)).astype(dtype)
            U = rng.normal(0, 0.5, (H, G)).astype(dtype)
            b_in = rng.normal(0, 0.3, G).astype(dtype)
            b_rec = rng.normal(0, 0.3, G).astype(dtype) if name == "gru_after" else None
            cell = make_cell(name, H, dtype, U, W, b_in, b_rec)
            s0 = tuple(rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in range(n_states))
            mask = _mask(mask_kind, T, B, rng)
            xt, mt = x.transpose(1, 0, 2), mask
            if backwards:
                xt, mt = xt[::-1], None if mask is None else mask[::-1]
            want, wst, _ = reference.forward(cell, xt @ W + b_in, s0, mt)
            s0_copy = tuple(a.copy() for a in s0)
            out, st = FAST[name].infer(cell, x, s0, mask, backwards)
            what = f"{name} {np.dtype(dtype).name} mask={mask_kind} backwards={backwards}"
            _compare({"out": out, **{f"s{k}": v for k, v in enumerate(st)}},
                     {"out": np.ascontiguousarray(np.asarray(want).transpose(1, 0, 2)),
                      **{f"s{k}": v for k, v in enumerate(wst)}}, dtype, what)
            for a, b in zip(s0, s0_copy):
                np.testing.assert_array_equal(a, b, err_msg="initial states were modified")
            none, st2 = FAST[name].infer(cell, x, s0, mask, backwards, return_sequences=False)
            assert none is None
            _compare({f"s{k}": v for k, v in enumerate(st2)},
                     {f"s{k}": v for k, v in enumerate(wst)}, dtype, what + " final only")


def test_infer_refuses_shapes_that_do_not_fit():
    """The inference kernels index raw memory: mismatched arrays are refused by name."""
    cell = cells.LSTMCell(5)
    B, T, F, H = 2, 3, 4, 5
    x = np.zeros((B, T, F), np.float32)
    W, U = np.zeros((F, 4 * H), np.float32), np.zeros((H, 4 * H), np.float32)
    s0 = (np.zeros((B, H), np.float32),) * 2
    ok = dict(cell=cell, x=x, W=W, U=U, b_in=None, b_rec=None, states0=s0, mask=None)
    for change, match in [(dict(x=x[0]), r"x must have shape"),
                          (dict(W=W[:-1]), r"kernel W must have shape \(4, 20\)"),
                          (dict(U=U[:, :-1]), r"recurrent_kernel U"),
                          (dict(b_in=np.zeros(3, np.float32)), r"b_in must have shape \(20,\)"),
                          (dict(states0=s0[:1]), r"states0 must hold 2"),
                          (dict(states0=(s0[0], s0[1][:1])), r"states0\[1\] must have shape"),
                          (dict(mask=np.ones((B, T), bool)), r"mask must have shape")]:
        with pytest.raises(ValueError, match=match):
            _loops.check_infer_shapes(**{**ok, **change})
    cell.build_weights(F, np.float32)
    with pytest.raises(ValueError, match=r"states0\[0\] must have shape"):
        lstm.infer(cell, x, (s0[0][:1], s0[1]))
    for name in ("gru_before",):
        gcell = make_cell(name, H, np.float32, np.zeros((H, 3 * H), np.float32))
        assert kernels.infer_sequence(gcell, np.zeros((B, T, 1), np.float32),
                                      (s0[0],)) is None
    elu = make_cell("simple_tanh", H, np.float32, np.zeros((H, H), np.float32))
    elu.activation = rnnkit_activations.get("elu")
    assert kernels.infer_sequence(elu, np.zeros((B, T, 1), np.float32), (s0[0],)) is None


def test_supports_default_activations_and_exact_types_only():
    f32 = np.float32
    assert simple.supports(cells.SimpleRNNCell(2, "tanh"), f32)
    assert simple.supports(cells.SimpleRNNCell(2, "relu"), f32)
    assert lstm.supports(cells.LSTMCell(2), f32) and gru.supports(cells.GRUCell(2, reset_after=False), f32)
    assert not simple.supports(cells.SimpleRNNCell(2, "elu"), f32)
    assert not lstm.supports(cells.LSTMCell(2, recurrent_activation="hard_sigmoid"), f32)
    assert not gru.supports(cells.GRUCell(2, activation="softsign"), f32)
    assert not lstm.supports(cells.LSTMCell(2), np.float16)
    assert not lstm.supports(type("Sub", (cells.LSTMCell,), {})(2), f32)


def test_unsupported_dtype_falls_back_to_reference():
    rng = np.random.default_rng(0)
    cell = make_cell("lstm", 2, np.float16, rng.normal(size=(2, 8)))
    xw = rng.normal(size=(3, 2, 8)).astype(np.float16)
    s0 = (np.zeros((2, 2), np.float16),) * 2
    assert kernels.kernel_for(cell, np.float16) is None
    hs, st, cache = kernels.forward_sequence(cell, xw, s0)
    want = reference.forward(cell, xw, s0)[0]
    np.testing.assert_array_equal(hs, want)
    dxw = kernels.backward_sequence(cell, cache, np.ones_like(hs), (None, None))[0]
    assert dxw.shape == xw.shape


def test_lstm_stream_matches_reference():
    rng = np.random.default_rng(1)
    F, H, B, T = 5, 7, 2, 6
    W = rng.normal(0, 0.4, (F, 4 * H)).astype(np.float32)
    U = rng.normal(0, 0.4, (H, 4 * H)).astype(np.float32)
    b = rng.normal(0, 0.2, 4 * H).astype(np.float32)
    x = rng.normal(size=(T, B, F)).astype(np.float32)
    h0 = rng.normal(size=(B, H)).astype(np.float32)
    c0 = rng.normal(size=(B, H)).astype(np.float32)
    cell = make_cell("lstm", H, np.float32, U, W, b)
    hs, (h, c), _ = reference.forward(cell, x @ W + b, (h0, c0))
    for bsz, sl in ((B, slice(None)), (1, slice(0, 1)), (9, None)):
        if sl is None:                               # batch > 4 uses the BLAS path
            xs = np.repeat(x, 5, axis=1)[:, :9]
            ref = reference.forward(cell, xs @ W + b, (np.zeros((9, H), np.float32),) * 2)[0]
            s = lstm.LSTMStream(W, U, b, batch=9)
            got = np.stack([s.step(xt).copy() for xt in xs])
        else:
            s = lstm.LSTMStream(W, U, b, batch=bsz, states=(h0[sl], c0[sl]))
            got = np.stack([s.step(xt[sl]).copy() for xt in x])
            ref = hs[:, sl]
            np.testing.assert_allclose(s.states[1], c[sl], rtol=2e-5, atol=2e-6,
                                       err_msg="rnnkit vs reference: stream cell state")
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6,
                                   err_msg="rnnkit vs reference: stream outputs")
    with pytest.raises(ValueError, match="features"):
        lstm.LSTMStream(W, U, b).step(np.zeros((1, F + 1), np.float32))


# ---------------------------------------------------------------------------- golden ---
# B=2, T=3, F=2, units=3; x = arange(12).reshape(2, 3, 2) * 0.1; kernel 0.1, recurrent 0.05,
# bias 0.01 (LSTM: unit_forget_bias -> forget bias 1). Loss = sum(out * w) with
# w = arange(1, 19).reshape(2, 3, 3) / 18. All units (and features) share one value, so
# the table keeps out[:, :, 0] and dL/dx[:, :, 0]. Mask [[1, 0, 1], [0, 1, 1]].
GOLDEN = {
    ("lstm", "plain"): ([[0.00509964331869596, 0.019953040646556734, 0.04352293562618143], [0.03972995259707703, 0.08524422685851664, 0.1361831569017566]],
        [[0.04781747950847975, 0.052944531159862356, 0.041254492111444926], [0.17120971487316605, 0.15512137418350389, 0.10815854743974068]]),
    ("lstm", "mask"): ([[0.00509964331869596, 0.00509964331869596, 0.031629128316695995], [0.0, 0.05270565491073527, 0.1096761181997273]],
        [[0.05851604274734012, 0.0, 0.040153163620029325], [0.0, 0.14974245375725684, 0.10492330341279946]]),
    ("lstm", "backwards"): ([[0.02744377273738812, 0.03700839351289734, 0.03320947548772151], [0.0663212577348952, 0.10519871254182132, 0.12227803599159925]],
        [[0.03757887459907296, 0.05290112817429297, 0.050683522830824196], [0.10286987530346865, 0.15552620104070802, 0.17924616989062342]]),
    ("gru_after", "plain"): ([[0.012346861223493889, 0.038230585086682936, 0.07105191559220463], [0.06677606500684252, 0.12166894206060606, 0.16984254955638686]],
        [[0.0589637167556074, 0.07415608326241437, 0.06001067204047999], [0.17425297303303414, 0.16299535424302816, 0.11066206557511755]]),
    ("gru_after", "mask"): ([[0.012346861223493889, 0.012346861223493889, 0.05649076557621732], [0.0, 0.0830035900805351, 0.1469646401335473]],
        [[0.09331353898087723, 0.0, 0.05931330120460957], [0.0, 0.15746041337449676, 0.10857255816982102]]),
    ("gru_after", "backwards"): ([[0.04956226175679789, 0.058878572551690184, 0.04451860565750343], [0.09821254118395985, 0.13998290913103303, 0.14710148731334227]],
        [[0.0665984990234985, 0.07442364480884285, 0.05324492912977069], [0.12632677782095733, 0.1637924361946138, 0.1525193739814925]]),
    ("gru_before", "plain"): ([[0.009898683543921464, 0.03451412461076766, 0.06665699835985635], [0.06468592416109026, 0.11834719812581343, 0.16578654688722294]],
        [[0.058983701149675966, 0.07436591285820737, 0.06032735209768896], [0.1750280202211726, 0.16394858593782552, 0.11153040673608994]]),
    ("gru_before", "mask"): ([[0.009898683543921464, 0.009898683543921464, 0.05287427662911623], [0.0, 0.08104836194463375, 0.14380967987626136]],
        [[0.09365140240664109, 0.0, 0.05966118995575002], [0.0, 0.15857039260033498, 0.10950480791896687]]),
    ("gru_before", "backwards"): ([[0.04734437178909115, 0.05519187097155123, 0.039911668607176945], [0.0963983369510294, 0.13674352981194765, 0.14281246718815727]],
        [[0.06685463922202928, 0.07463425282891517, 0.053345560538738006], [0.12711207584905934, 0.1647538447497893, 0.1534906941201315]]),
    ("simple_tanh", "plain"): ([[0.019997333759930937, 0.0629163847597688, 0.10900264595877907], [0.13909244787845806, 0.19820539197940695, 0.2446656019974903]],
        [[0.048716984001721364, 0.10268760040244294, 0.13174912308986467], [0.2184074502223331, 0.2625529593799108, 0.26637264390644155]]),
    ("simple_tanh", "mask"): ([[0.019997333759930937, 0.019997333759930937, 0.10263690103349563], [0.0, 0.17808086811733026, 0.24182553636020962]],
        [[0.13640141215759846, 0.0, 0.13192875553949873], [0.0, 0.26467932306966946, 0.26676411615649415]]),
    ("simple_tanh", "backwards"): ([[0.09966799462495582, 0.0748101687790502, 0.031211384526805736], [0.21651806149302885, 0.20933685557601767, 0.16974154445487172]],
        [[0.13320344659678932, 0.10273564802093105, 0.04825947499099836], [0.2751698789577212, 0.2625749298934845, 0.21227846344112358]]),
    ("simple_relu", "plain"): ([[0.020000000000000004, 0.063, 0.10945], [0.14000000000000004, 0.20100000000000007, 0.25015000000000004]],
        [[0.04883333333333334, 0.10333333333333333, 0.13333333333333333], [0.22470833333333334, 0.2758333333333334, 0.2833333333333333]]),
    ("simple_relu", "mask"): ([[0.020000000000000004, 0.020000000000000004, 0.10300000000000001], [0.0, 0.18000000000000005, 0.24700000000000005]],
        [[0.1366666666666667, 0.0, 0.13333333333333333], [0.0, 0.2758333333333334, 0.2833333333333333]]),
    ("simple_relu", "backwards"): ([[0.1, 0.075, 0.03125], [0.22000000000000003, 0.21300000000000005, 0.17195000000000005]],
        [[0.13333333333333333, 0.10333333333333333, 0.04883333333333334], [0.2833333333333333, 0.2758333333333334, 0.22470833333333334]]),
}
GOLDEN_MASK = np.array([[1, 0, 1], [0, 1, 1]], bool)


def _golden_layer(kind, dtype="float64", **kw):
    init = dict(kernel_initializer=initializers.Constant(0.1),
                recurrent_initializer=initializers.Constant(0.05),
                bias_initializer=initializers.Constant(0.01), return_sequences=True,
                dtype=dtype, **kw)
    if kind == "lstm":
        return layers.LSTM(3, **init)
    if kind.startswith("gru"):
        return layers.GRU(3, reset_after=kind == "gru_after", **init)
    return layers.SimpleRNN(3, activation=kind.split("_")[1], **init)


@pytest.fixture
def kernel_mode():
    old = kernels.get_kernel_mode()
    yield kernels.set_kernel_mode
    kernels.set_kernel_mode(old)


@pytest.mark.parametrize("mode", ["reference", "fast"])
@pytest.mark.parametrize("kind,case", list(GOLDEN))
def test_golden(kind, case, mode, kernel_mode):
    kernel_mode(mode)
    want_out, want_dx = (np.array(a) for a in GOLDEN[kind, case])
    layer = _golden_layer(kind, go_backwards=case == "backwards")
    x = np.arange(12, dtype=np.float64).reshape(2, 3, 2) * 0.1
    mask = GOLDEN_MASK if case == "mask" else None
    layer.maybe_build(x.shape)
    out = layer.forward(x, training=True, mask=mask)
    w = np.arange(1, 19, dtype=np.float64).reshape(2, 3, 3) / 18
    dx = layer.backward(w)
    for got, want, what in ((out, want_out, "output"), (dx, want_dx, "dL/dx")):
        assert np.allclose(got, got[:, :, :1]), f"{what}: units/features should be identical"
        if not np.allclose(got[:, :, 0], want, rtol=1e-12, atol=1e-14):
            raise AssertionError(f"golden {kind}/{case} [{mode}] {what}: rnnkit vs reference "
                                 f"{got[:, :, 0].tolist()} vs {want.tolist()}")


@pytest.mark.parametrize("kind", ["lstm", "gru_after", "simple_tanh"])
def test_golden_float32_fast(kind, kernel_mode):
    """float32 through the fast kernels agrees with the float64 golden numbers."""
    kernel_mode("fast")
    layer = _golden_layer(kind, dtype="float32")
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2) * 0.1
    layer.maybe_build(x.shape)
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :, 0], GOLDEN[kind, "plain"][0], rtol=1e-5, atol=1e-6,
                               err_msg="rnnkit vs reference (float32 fast vs golden)")


# -------------------------------------------------- gradient checks with fast kernels ---
# test_gradients.py runs in the default 'auto' mode, which already picks the fast kernels
# for these cells; forcing 'fast' here makes sure a silent fallback cannot hide a bug.
@pytest.mark.parametrize("case", ["recurrent", "initial_state", "mask", "dropout"])
def test_gradient_checks_pass_with_fast_kernels(case, kernel_mode):
    import test_gradients as tg
    kernel_mode("fast")
    fn = {"recurrent": lambda n, m: [tg.test_recurrent_gradients(n, m, o) for o in tg.OPTIONS],
          "initial_state": tg.test_recurrent_initial_state_gradients,
          "mask": tg.test_recurrent_mask_gradients,
          "dropout": tg.test_recurrent_dropout_gradients}[case]
    for name, make in tg.RECURRENT_CASES:
        fn(name, make)


@pytest.mark.parametrize("case", ["recurrent", "initial_state", "mask", "stacked"])
def test_gradient_checks_pass_with_rows_and_products_split(case, kernel_mode, monkeypatch):
    """The same float64 finite-difference checks through the multi-threaded path: loops split
    into one row per thread (3 threads), every product split (threads.matmul), inside
    threads.parallel() so the buffer reuse and the contiguous-U^T backward run too."""
    import test_gradients as tg

    from rnnkit.kernels import threads
    kernel_mode("fast")
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(threads, "_MIN_MACS", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: 3)
    assert len(_loops.split(3, 1, 1)) == 3
    with threads.parallel():
        if case == "stacked":
            for cells_ in [("lstm", "lstm"), ("gru", "simple"), ("simple", "gru_b")]:
                tg.test_stacked_model_gradients(cells_)
            return
        fn = {"recurrent": lambda n, m: [tg.test_recurrent_gradients(n, m, o)
                                         for o in tg.OPTIONS],
              "initial_state": tg.test_recurrent_initial_state_gradients,
              "mask": tg.test_recurrent_mask_gradients}[case]
        for name, make in tg.RECURRENT_CASES:
            fn(name, make)


@pytest.mark.parametrize("dt,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("B", [1, 3, 9])
def test_lstm_step_matches_reference_and_keeps_states(dt, tol, B):
    """kernels.stream_step (behind layer.step / model.stream) == one reference step."""
    rng = np.random.default_rng(5)
    F, H = 4, 3
    W, U = rng.normal(size=(F, 4 * H)).astype(dt), rng.normal(size=(H, 4 * H)).astype(dt)
    b = rng.normal(size=(4 * H,)).astype(dt)
    cell = make_cell("lstm", H, dt, U, W, b)
    x = rng.normal(size=(B, F)).astype(dt)
    s0 = (rng.normal(size=(B, H)).astype(dt), rng.normal(size=(B, H)).astype(dt))
    keep = (s0[0].copy(), s0[1].copy())
    h, c = kernels.stream_step(cell, x, s0)
    _, want, _ = reference.forward(cell, (x @ W + b)[None], s0)
    np.testing.assert_allclose(h, want[0], rtol=tol, atol=tol, err_msg="rnnkit vs reference")
    np.testing.assert_allclose(c, want[1], rtol=tol, atol=tol, err_msg="rnnkit vs reference")
    np.testing.assert_array_equal(s0[0], keep[0])
    np.testing.assert_array_equal(s0[1], keep[1])
    hard = make_cell("lstm", H, dt, U, W, b, recurrent_activation="hard_sigmoid")
    assert kernels.stream_step(hard, x, s0) is None
