"""The chunked time-parallel (log-space) scan of MinGRU / MinLSTM training
(kernels/minrnn.py, kernels/_scan.py) against the row-split sequential scan and the generic
loop: outputs, final state, dL/dx, dL/dh_0 and every parameter gradient, float32 and float64,
narrow batches, long sequences, forced chunk and piece counts, masks, missing gradients,
decays whose cumulative product underflows; a float64 central-difference check through
``layers.MinGRU`` with the chunked path forced; the rule that picks the path."""

import numpy as np
import pytest
from gradcheck import assert_close_grad, numerical_grad

from rnnkit import cells, kernels, layers
from rnnkit.kernels import _scan, minrnn
from rnnkit.kernels import threads as _threads

F, H = 3, 6
CELLS = {"mingru": cells.MinGRUCell, "minlstm": cells.MinLSTMCell}
TOL = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-10)}


@pytest.fixture(autouse=True)
def _restore_modes():
    yield
    _scan.set_scan_mode("auto")
    kernels.set_kernel_mode("auto")


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of the chunked forward / backward (so a test cannot pass on the
    row split by accident)."""
    calls = {"fwd": 0, "bwd": 0}
    fwd, bwd = minrnn._chunked_forward, minrnn._chunked_backward

    def f(*a):
        calls["fwd"] += 1
        return fwd(*a)

    def b(*a):
        calls["bwd"] += 1
        return bwd(*a)
    monkeypatch.setattr(minrnn, "_chunked_forward", f)
    monkeypatch.setattr(minrnn, "_chunked_backward", b)
    return calls


def _cell(name, dtype, seed=0, slow=True, scale=0.8):
    """A built cell; with ``slow`` a third of the units keep their state (a ~ 0.98, decays
    that last a whole chunk), a third forget fast, the rest random."""
    r = np.random.default_rng(seed)
    cell = CELLS[name](H)
    cell.build_weights(F, dtype)
    cell.params["kernel"][...] = r.normal(0, scale, cell.params["kernel"].shape)
    b = cell.params["bias"]
    b[...] = r.normal(0, 0.5, b.shape)
    if slow:
        if name == "mingru":          # z = sigma(k_z): small z keeps the state
            b[:2], b[2:4] = -4.0, 3.0
        else:                         # f' = f / (f + i): f >> i keeps it
            b[:2], b[H:H + 2] = -4.0, 4.0
            b[2:4], b[H + 2:H + 4] = 3.0, -3.0
    return cell


def _data(B, T, dtype, seed=1):
    r = np.random.default_rng(seed)
    xs = r.normal(size=(T, B, F)).astype(dtype)
    h0 = r.normal(size=(B, H)).astype(dtype)
    dys = r.normal(size=(T, B, H)).astype(dtype)
    dh = r.normal(size=(B, H)).astype(dtype)
    return xs, h0, dys, dh


def _run(cell, xs, h0, mask, dys, dh, path, chunks=None, pieces=None):
    """(ys, h_T, dxs, dh_0, dkernel, dbias) by ``path``: 'reference' (generic loop), 'rows'
    or 'time' (chunked, ``chunks`` / ``pieces`` forced)."""
    if path == "reference":
        kernels.set_kernel_mode("reference")
    else:
        kernels.set_kernel_mode("fast")
        _scan.set_scan_mode(path, chunks, pieces)
    try:
        ys, states, cache = kernels.forward_steps(cell, xs, [h0], mask)
        dxs, d0, dparams = kernels.backward_steps(cell, cache, dys, [dh], mask)
    finally:
        kernels.set_kernel_mode("auto")
        _scan.set_scan_mode("auto")
    return [ys, states[0], dxs, d0[0]] + list(dparams)


NAMES = ["ys", "h_T", "dxs", "dh_0", "dkernel", "dbias"]


def _assert_same(got, want, dtype, what):
    tol = TOL[dtype]
    for name, a, b in zip(NAMES, got, want):
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale,
                                   err_msg=f"{what}: {name}")


_REF = {}


def _reference(name, dtype, B, T, mask_kind="none"):
    key = (name, dtype, B, T, mask_kind)
    if key not in _REF:
        cell = _cell(name, dtype)
        xs, h0, dys, dh = _data(B, T, dtype)
        mask = _mask(mask_kind, B, T)
        _REF[key] = (cell, xs, h0, mask, dys, dh,
                     _run(cell, xs, h0, mask, dys, dh, "reference"),
                     _run(cell, xs, h0, mask, dys, dh, "rows"))
    return _REF[key]


def _mask(kind, B, T):
    if kind == "none":
        return None
    r = np.random.default_rng(7)
    m = np.ones((T, B), bool)
    if kind == "right":                       # right padding, a different length per row
        for b in range(B):
            m[max(1, T - 1 - (b * T) // (B + 1)):, b] = False
    elif kind == "interior":
        m = r.random((T, B)) > 0.3
    elif kind == "full_row":                  # one row entirely masked, the others interior
        m = r.random((T, B)) > 0.3
        m[:, B // 2] = False
    return m


@pytest.mark.parametrize("chunks", [2, 3, 4])
@pytest.mark.parametrize("T", [1, 7, 300, 1000])
@pytest.mark.parametrize("B", [1, 2, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_chunked_equals_sequential_and_generic_loop(name, dtype, B, T, chunks, spy):
    cell, xs, h0, mask, dys, dh, ref, rows = _reference(name, dtype, B, T)
    got = _run(cell, xs, h0, mask, dys, dh, "time", chunks)
    assert spy == {"fwd": 1, "bwd": 1}
    _assert_same(got, rows, dtype, f"chunked vs row split, C={chunks}")
    _assert_same(got, ref, dtype, f"chunked vs generic loop, C={chunks}")


@pytest.mark.parametrize("chunks,pieces", [(2, 3), (3, 2), (4, 5), (2, 1)])
@pytest.mark.parametrize("mask_kind", ["none", "right", "interior", "full_row"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_masks_and_fixup_pieces(name, dtype, mask_kind, chunks, pieces, spy):
    """Masked steps carry the state (a = 1, b = 0) in every pass; the fix-up pass cut into
    several pieces per chunk (some empty at T = 7) starts each from its snapshot."""
    for B, T in ((5, 300), (2, 7)):
        cell, xs, h0, mask, dys, dh, ref, rows = _reference(name, dtype, B, T, mask_kind)
        got = _run(cell, xs, h0, mask, dys, dh, "time", chunks, pieces)
        _assert_same(got, rows, dtype, f"{mask_kind}, C={chunks}, S={pieces}, T={T}")
        _assert_same(got, ref, dtype, f"{mask_kind}, C={chunks}, S={pieces}, T={T}")


@pytest.mark.parametrize("with_dys", [True, False])
@pytest.mark.parametrize("with_dh", [True, False])
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_missing_output_or_state_gradients(name, with_dys, with_dh):
    dtype = "float64"
    cell = _cell(name, dtype)
    xs, h0, dys, dh = _data(2, 300, dtype)
    mask = _mask("interior", 2, 300)
    dys = dys if with_dys else None
    dh = dh if with_dh else None
    ref = _run(cell, xs, h0, mask, dys, dh, "reference")
    for chunks in (2, 3):
        _assert_same(_run(cell, xs, h0, mask, dys, dh, "time", chunks), ref, dtype,
                     f"dys {with_dys}, dh {with_dh}, C={chunks}")


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_underflowing_decay_stays_finite_and_equal(name, spy):
    """Strong forgetting over T = 3000: the product of the a's underflows float32 long before
    a chunk ends; the log-space decays stay finite, nothing is NaN or Inf."""
    dtype = "float32"
    cell = _cell(name, dtype, slow=False, scale=0.3)
    b = cell.params["bias"]
    if name == "mingru":
        b[:H] = 6.0                 # z ~ 1: a = 1 - z ~ 2.5e-3 per step
    else:
        b[:H], b[H:2 * H] = 6.0, -6.0   # f' ~ 6e-6 per step
    xs, h0, dys, dh = _data(1, 3000, dtype)
    h0 *= 1e30                      # a huge initial state, forgotten within a few steps
    ref = _run(cell, xs, h0, None, dys, dh, "reference")
    for chunks in (2, 4):
        got = _run(cell, xs, h0, None, dys, dh, "time", chunks)
        for n, a in zip(NAMES, got):
            assert np.all(np.isfinite(a)), n
        _assert_same(got[:3] + got[4:], ref[:3] + ref[4:], dtype, f"C={chunks}")
        np.testing.assert_allclose(got[3], ref[3], rtol=2e-5, atol=1e-30)
    assert spy["fwd"] == 2


def test_slow_decay_whole_chunk_fixup_float32():
    """a ~ 0.999 everywhere: the fix-up runs over whole chunks (no early stop)."""
    dtype = "float32"
    cell = _cell("mingru", dtype, slow=False, scale=0.2)
    cell.params["bias"][:H] = -7.0
    xs, h0, dys, dh = _data(1, 1000, dtype)
    ref = _run(cell, xs, h0, None, dys, dh, "reference")
    for chunks, pieces in ((2, 2), (4, 3)):
        _assert_same(_run(cell, xs, h0, None, dys, dh, "time", chunks, pieces), ref, dtype,
                     f"C={chunks}, S={pieces}")


def test_gradcheck_through_layer_with_chunked_scan(spy):
    """float64 central differences through layers.MinGRU / MinLSTM (kernel, bias, inputs and
    the initial state) with the chunked path forced, 3 chunks of 14 steps, a mask."""
    _scan.set_scan_mode("time", 3, 2)
    r = np.random.default_rng(3)
    for make in (lambda: layers.MinGRU(3, dtype="float64", return_sequences=True),
                 lambda: layers.MinLSTM(3, dtype="float64", return_sequences=True)):
        layer = make()
        x = r.normal(size=(2, 42, 2))
        h0 = r.normal(size=(2, 3))
        mask = np.ones((2, 42), bool)
        mask[0, 30:] = False
        mask[1, 5:9] = False
        layer.maybe_build(x.shape)
        for w in layer.params.values():
            w[...] = r.normal(0, 0.7, w.shape)
        wy = r.normal(size=(2, 42, 3))

        def loss(layer=layer, x=x, h0=h0, mask=mask, wy=wy):
            return float((layer.forward([x, h0], training=True, mask=mask) * wy).sum())
        loss()
        dx, dh0 = layer.backward(wy)
        grads = {k: v.copy() for k, v in layer.grads.items()}
        assert_close_grad(dx, numerical_grad(loss, x), "dL/dx")
        assert_close_grad(dh0, numerical_grad(loss, h0), "dL/dh0")
        for k, v in layer.params.items():
            assert_close_grad(grads[k], numerical_grad(loss, v), k)
    assert spy["fwd"] > 0 and spy["bwd"] > 0


def test_rule_picks_chunks_for_long_narrow_batches(monkeypatch):
    monkeypatch.setattr(_threads, "count", lambda: 4)
    assert _scan.time_chunks(1, 256) == 4
    assert _scan.time_chunks(7, 10_000) == 4
    assert _scan.time_chunks(8, 10_000) == 0         # every thread gets 2 rows: row split
    assert _scan.time_chunks(1, 255) == 0            # too short
    _scan.set_scan_mode("rows")
    assert _scan.time_chunks(1, 100_000) == 0
    _scan.set_scan_mode("time")
    assert _scan.time_chunks(64, 10) == 4
    _scan.set_scan_mode("time", 3)
    assert _scan.time_chunks(64, 2) == 2             # never more chunks than steps
    monkeypatch.setattr(_threads, "count", lambda: 1)
    _scan.set_scan_mode("auto")
    assert _scan.time_chunks(1, 10**6) == 0          # one thread: nothing to split


def test_scan_mode_errors_name_the_argument():
    with pytest.raises(ValueError, match="scan mode must be 'auto', 'rows' or 'time', got 'x'"):
        _scan.set_scan_mode("x")
    with pytest.raises(ValueError, match="chunks must be a positive int or None, got 0"):
        _scan.set_scan_mode("time", 0)
    with pytest.raises(ValueError, match="pieces must be a positive int or None, got 1.5"):
        _scan.set_scan_mode("time", 2, 1.5)


def test_chunk_edges_cover_every_step_without_empty_chunks():
    for T in (1, 2, 3, 7, 300, 1001):
        for C in range(1, min(T, 6) + 1):
            for exact in ("first", "last"):
                e = _scan.chunk_edges(T, C, exact)
                assert e[0] == 0 and e[-1] == T and len(e) == C + 1
                assert np.all(np.diff(e) >= 1), (T, C, exact, e)
    e = _scan.chunk_edges(23000, 2, "first")
    assert e[1] == 13000                              # the exact chunk 1.3x the other


FUSED_TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_fused_row_split_equals_generic_loop(name, dtype, threads, monkeypatch):
    """The row split with the input projection fused into the forward scan and dW / db / dX
    into the backward by blocks of steps (kernels/minrnn.py) against the generic loop:
    outputs, final state, dL/dx, dL/dh_0, dkernel, dbias; 1-3 row blocks (one of 1 row at
    B = 5, 3 threads), masks, one block or blocks of 1 and 4 steps (T = 45 is no multiple of
    4), gradients from every step or from the final state only, dL/dx not wanted (the first
    layer), no bias."""
    calls = []
    run_rows = _scan.run_rows

    def counting(fn, *a):
        calls.append(fn)
        return run_rows(fn, *a)
    monkeypatch.setattr(_scan, "run_rows", counting)
    monkeypatch.setattr(_threads, "count", lambda: threads)
    tol = FUSED_TOL[dtype]

    def same(got, want, what):
        for n, a, b in zip(NAMES, got, want):
            if b is None:
                assert a is None, f"{what}: {n}"
                continue
            scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
            np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale,
                                       err_msg=f"{what}: {n}")

    def run(cell, xs, h0, mask, dys, dh, path, input_grad=True):
        kernels.set_kernel_mode(path)
        try:
            ys, states, cache = kernels.forward_steps(cell, xs, [h0], mask)
            dxs, d0, dparams = kernels.backward_steps(cell, cache, dys, [dh], mask,
                                                      input_grad=input_grad)
        finally:
            kernels.set_kernel_mode("auto")
        return [ys, states[0], dxs, d0[0]] + list(dparams)

    B = 5
    G = (2 if name == "mingru" else 3) * H
    rows = -(-B // threads)                     # the largest row block
    default_bytes = _scan.BLOCK_BYTES
    for T, mask_kind, steps in ((45, "none", None), (45, "interior", None), (45, "right", 1),
                                (45, "full_row", 4), (1, "none", None), (7, "interior", 1)):
        monkeypatch.setattr(_scan, "BLOCK_BYTES", default_bytes if steps is None else
                            steps * rows * G * np.dtype(dtype).itemsize)
        assert _scan.block_steps(B, G, np.dtype(dtype).itemsize, T) == (steps or T)
        cell = _cell(name, dtype)
        xs, h0, dys, dh = _data(B, T, dtype)
        mask = _mask(mask_kind, B, T)
        what = f"T={T}, {mask_kind}, {steps or T} steps a block"
        for dy in (dys, None):
            ref = run(cell, xs, h0, mask, dy, dh, "reference")
            n_calls = len(calls)
            same(run(cell, xs, h0, mask, dy, dh, "fast"), ref, what)
            assert calls[n_calls:] == list(minrnn._ROWS[type(cell)]), what
            same(run(cell, xs, h0, mask, dy, dh, "fast", input_grad=False),
                 ref[:2] + [None] + ref[3:], f"{what}, no dL/dx")
    monkeypatch.setattr(_scan, "BLOCK_BYTES", default_bytes)
    nobias = CELLS[name](H, use_bias=False)
    nobias.build_weights(F, dtype)
    nobias.params["kernel"][...] = _cell(name, dtype).params["kernel"]
    xs, h0, dys, dh = _data(B, 45, dtype)
    same(run(nobias, xs, h0, None, dys, dh, "fast"),
         run(nobias, xs, h0, None, dys, dh, "reference"), "no bias")
