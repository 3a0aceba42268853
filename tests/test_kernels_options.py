"""The compiled kernels of the cell options (rnnkit.kernels.lstm_options: LSTM with peepholes,
proj_size, zoneout, alone and combined; rnnkit.kernels.gru_zoneout: GRU with zoneout, both
reset_after variants) equal the generic loop over the cell's own step.

* random cases through :func:`rnnkit.kernels.forward_steps` / ``backward_steps`` in mode
  'fast' against mode 'reference': outputs, final states and every gradient, float32 and
  float64, masks (right padding, interior, fully masked rows), dys / dL/d(final state) given or
  None, training (zoneout masks from the same seeded stream) and inference, recurrent dropout,
  one and several batch rows, rows split over 1 and 2 threads;
* float64 central differences through the layers with the compiled kernels forced on (masks,
  initial states, Bidirectional, training with fixed zoneout masks);
* dispatch: the options only, exact types, default activations, float32/float64.
"""

import numpy as np
import pytest
from test_gradients import check_layer

import rnnkit
from rnnkit import cells, kernels, layers
from rnnkit.kernels import _loops, gru_zoneout, lstm_options

CELLS = {
    "peep": lambda **k: cells.LSTMCell(5, use_peepholes=True, **k),
    "proj": lambda **k: cells.LSTMCell(5, proj_size=3, **k),
    "zone": lambda **k: cells.LSTMCell(5, zoneout=0.3, **k),
    "peep_proj_zone": lambda **k: cells.LSTMCell(5, use_peepholes=True, proj_size=3,
                                                 zoneout=0.3, **k),
    "gru_zone": lambda **k: cells.GRUCell(5, zoneout=0.3, **k),
    "gru_before_zone": lambda **k: cells.GRUCell(5, zoneout=0.3, reset_after=False, **k),
}
FAST = {"peep": lstm_options, "proj": lstm_options, "zone": lstm_options,
        "peep_proj_zone": lstm_options, "gru_zone": gru_zoneout, "gru_before_zone": gru_zoneout}
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture
def kernel_mode():
    yield kernels.set_kernel_mode
    kernels.set_kernel_mode("auto")


def _mask(kind, T, B, rng):
    if kind is None:
        return None
    m = np.ones((T, B), bool)
    if kind == "right":                       # trailing padding, a different length per row
        for b in range(B):
            m[rng.integers(1, T + 1):, b] = False
    elif kind == "interior":
        m = rng.random((T, B)) > 0.4
    elif kind == "full_rows":                 # some rows never see a real step
        m = rng.random((T, B)) > 0.3
        m[:, ::2] = False
    return m


def _run(mode, cell, xs, s0, mask, rmask, dys, dst, training, zone_seed):
    """forward_steps + backward_steps in kernel ``mode``; zoneout masks from a fresh
    generator seeded ``zone_seed`` (the cell's own, or the global one when None)."""
    kernels.set_kernel_mode(mode)
    try:
        if hasattr(cell, "zoneout_rng"):
            if cell.seed is None:
                rnnkit.utils.set_random_seed(zone_seed)
            else:
                cell.zoneout_rng = np.random.default_rng(zone_seed)
        ys, states, cache = kernels.forward_steps(cell, xs, s0, mask, rmask, training)
        assert (cache[0] is None) == (mode == "reference")
        rng = cell.zoneout_rng or rnnkit._backend.rng()
        after = rng.random()              # both paths leave the generator in the same state
        dxs, d0, dparams = kernels.backward_steps(cell, cache, dys, dst, mask, rmask)
    finally:
        kernels.set_kernel_mode("auto")
    out = {"ys": np.array(ys), "dxs": dxs, "rng_after": np.array(after)}
    out.update({f"state{k}": s for k, s in enumerate(states)})
    out.update({f"dstate0_{k}": s for k, s in enumerate(d0)})
    out.update({f"d{n}": g for n, g in zip(cell.param_names, dparams)})
    return out


def _compare(got, want, dtype, what):
    assert got.keys() == want.keys(), what
    for k in want:
        g, w = np.asarray(got[k]), np.asarray(want[k])
        if k != "rng_after":
            assert g.dtype == w.dtype == np.dtype(dtype), f"{what} {k}: dtype {g.dtype} vs {w.dtype}"
        assert g.shape == w.shape, f"{what} {k}: shape {g.shape} vs {w.shape}"
        if not np.allclose(g, w, **TOL[dtype]):
            i = np.unravel_index(np.argmax(np.abs(g - w)), g.shape)
            raise AssertionError(f"{what} {k}: rnnkit vs reference at {i}: {g[i]!r} vs {w[i]!r} "
                                 f"(max abs diff {np.abs(g - w).max():.3g})")


def _case(name, dtype, B=4, T=6, F=3, mask_kind=None, dys=True, dstates=True, training=True,
          rdrop=False, seed=0, cell_seed=11, use_bias=True):
    rng = np.random.default_rng(seed)
    cell = CELLS[name](seed=cell_seed, use_bias=use_bias)
    cell.build_weights(F, dtype)
    for v in cell.params.values():
        v[...] = rng.normal(0, 0.6, v.shape)
    P = cell.state_size[0]
    xs = rng.normal(0, 1.0, (T, B, F)).astype(dtype)
    s0 = [rng.normal(0, 0.5, (B, n)).astype(dtype) for n in cell.state_size]
    mask = _mask(mask_kind, T, B, rng)
    rm = ((rng.random((B, P)) > 0.3) / 0.7).astype(dtype) if rdrop else None
    d = rng.normal(size=(T, B, P)).astype(dtype) if dys else None
    ds = [rng.normal(size=(B, n)).astype(dtype) if dstates else None for n in cell.state_size]
    assert kernels.kernel_for(cell, dtype) is FAST[name]
    args = (cell, xs, s0, mask, rm, d, ds, training, seed + 100)
    want = _run("reference", *args)
    got = _run("fast", *args)
    _compare(got, want, dtype, f"{name} {np.dtype(dtype).name} B={B} T={T} mask={mask_kind} "
             f"dys={dys} dstates={dstates} training={training} rdrop={rdrop}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("B,T", [(1, 1), (1, 7), (6, 5)])
def test_fast_equals_reference_shapes(name, dtype, training, B, T):
    _case(name, dtype, B=B, T=T, training=training, seed=B * 10 + T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("mask_kind", ["right", "interior", "full_rows"])
def test_fast_equals_reference_masks_and_recurrent_dropout(name, dtype, mask_kind):
    for training in (True, False):
        _case(name, dtype, B=6, T=8, mask_kind=mask_kind, rdrop=True, training=training,
              seed=len(mask_kind))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dys,dstates", [(True, False), (False, True), (False, False)])
def test_fast_equals_reference_gradient_sources(name, dtype, dys, dstates):
    _case(name, dtype, B=3, T=5, mask_kind="interior", dys=dys, dstates=dstates, seed=7)


@pytest.mark.parametrize("name", list(CELLS))
def test_fast_equals_reference_global_generator_no_bias_and_larger(name):
    """Zoneout masks from rnnkit's global generator (a cell without seed), no bias, and a size
    where BLAS takes its blocked path."""
    _case(name, np.float64, cell_seed=None, use_bias=False, seed=3)
    _case(name, np.float64, B=13, T=7, F=9, mask_kind="interior", rdrop=True, seed=4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("threads", [1, 2])
def test_fast_rows_split_across_threads_equal_reference(monkeypatch, name, dtype, threads):
    """The loop split by batch rows over 1 and 2 threads (uneven blocks, 9 rows)."""
    monkeypatch.setattr(_loops, "_MIN_ROWS", 1)
    monkeypatch.setattr(_loops, "_MIN_WORK", 0)
    monkeypatch.setattr(_loops._blas, "num_threads", lambda: threads)
    assert len(_loops.split(9, 1, 1)) == threads
    for mask_kind in (None, "full_rows"):
        _case(name, dtype, B=9, T=6, mask_kind=mask_kind, rdrop=mask_kind is not None,
              seed=threads)


def test_all_zoneout_masks_drawn_at_once_are_the_per_step_stream():
    """What the kernels rely on: one (T, B, n) draw is the T per-step (B, n) draws."""
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    whole = a.random((4, 3, 2)) < 0.3
    steps = np.stack([b.random((3, 2)) < 0.3 for _ in range(4)])
    np.testing.assert_array_equal(whole, steps)
    assert a.random() == b.random()


@pytest.mark.parametrize("name", list(CELLS))
def test_input_grad_false_skips_dx_and_keeps_the_weight_gradients(name):
    rng = np.random.default_rng(0)
    cell = CELLS[name](seed=2)
    cell.build_weights(3, "float64")
    xs = rng.normal(size=(5, 2, 3))
    s0 = [np.zeros((2, n)) for n in cell.state_size]
    dys = rng.normal(size=(5, 2, cell.state_size[0]))
    res = []
    for input_grad in (True, False):
        cell.zoneout_rng = np.random.default_rng(1)
        _, _, cache = kernels.forward_steps(cell, xs, s0, training=True)
        res.append(kernels.backward_steps(cell, cache, dys, [None] * len(s0),
                                          input_grad=input_grad))
    assert res[0][0] is not None and res[1][0] is None
    for a, b in zip(res[0][2], res[1][2]):
        np.testing.assert_array_equal(a, b)


def test_supports_options_only_exact_types_default_activations():
    class MyLSTM(cells.LSTMCell):
        pass
    for plain, fast in ((cells.LSTMCell(4), lstm_options), (cells.GRUCell(4), gru_zoneout)):
        assert not fast.supports(plain, "float32")
    from rnnkit.kernels import gru, lstm
    assert kernels.kernel_for(cells.LSTMCell(4), "float32") is lstm
    assert kernels.kernel_for(cells.GRUCell(4), "float32") is gru
    assert kernels.kernel_for(cells.LSTMCell(4, zoneout=0.2), "float32") is lstm_options
    assert kernels.kernel_for(cells.GRUCell(4, zoneout=0.2), "float64") is gru_zoneout
    assert not lstm_options.supports(MyLSTM(4, use_peepholes=True), "float32")
    assert not lstm_options.supports(cells.LSTMCell(4, proj_size=2, activation="relu"),
                                     "float32")
    assert not gru_zoneout.supports(cells.GRUCell(4, zoneout=0.2,
                                                  recurrent_activation="hard_sigmoid"),
                                    "float32")
    assert not lstm_options.supports(cells.LSTMCell(4, use_peepholes=True), "float16")
    assert kernels.kernel_for(MyLSTM(4, use_peepholes=True), "float32") is None


def test_kernel_status_lists_the_options():
    from rnnkit.kernels.status import kernel_status
    st = kernel_status()["cells"]
    assert st["LSTM"] == "compiled (rnnkit.kernels.lstm)"
    for k in ("LSTM (use_peepholes)", "LSTM (proj_size)", "LSTM (zoneout)"):
        assert st[k] == "compiled (rnnkit.kernels.lstm_options)"
    assert st["GRU (zoneout)"] == "compiled (rnnkit.kernels.gru_zoneout)"


# -- float64 central differences through the layers, compiled kernels forced on ---------------
LAYERS = [
    ("lstm_peep", lambda **k: layers.LSTM(3, use_peepholes=True, **k)),
    ("lstm_proj", lambda **k: layers.LSTM(3, proj_size=2, **k)),
    ("lstm_zone", lambda **k: layers.LSTM(3, zoneout=0.3, **k)),
    ("lstm_all", lambda **k: layers.LSTM(4, use_peepholes=True, proj_size=2, zoneout=0.3, **k)),
    ("gru_zone", lambda **k: layers.GRU(3, zoneout=0.3, **k)),
    ("gru_before_zone", lambda **k: layers.GRU(3, zoneout=0.3, reset_after=False, **k)),
]
MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
RNG = np.random.default_rng(0)


def _x(B=3, T=5, F=2):
    return RNG.normal(0, 1.0, (B, T, F))


def _fixed_zoneout(layer, cell):
    """Every forward pass of check_layer draws the same zoneout masks."""
    reset = layer.reset_dropout_rng

    def same_masks():
        reset()
        cell.zoneout_rng = np.random.default_rng(7)
    layer.reset_dropout_rng = same_masks


@pytest.mark.parametrize("name,make", LAYERS)
def test_gradients_through_the_layer_with_the_compiled_kernel(name, make, kernel_mode):
    kernel_mode("fast")
    layer = make(dtype="float64", return_sequences=True, return_state=True)
    x = _x()
    layer.maybe_build(x.shape)
    states = [RNG.normal(0, 0.5, (3, n)) for n in layer.cell.state_size]
    check_layer(layer, x, initial_state=states, mask=MASK)                   # inference
    layer = make(dtype="float64", go_backwards=True)
    _fixed_zoneout(layer, layer.cell)
    check_layer(layer, _x(), mask=MASK, training=True)


@pytest.mark.parametrize("name,make", LAYERS)
def test_bidirectional_gradients_with_the_compiled_kernel(name, make, kernel_mode):
    kernel_mode("fast")
    bi = layers.Bidirectional(make(return_sequences=True), dtype="float64")
    check_layer(bi, _x(), mask=MASK)


def test_zoneout_training_gradients_numerically_with_mask_and_recurrent_dropout(kernel_mode):
    """Training mode end to end (zoneout masks and, through the seed, recurrent dropout masks
    fixed per pass)."""
    kernel_mode("fast")
    layer = layers.LSTM(4, use_peepholes=True, proj_size=3, zoneout=0.4, recurrent_dropout=0.3,
                        seed=5, return_sequences=True, dtype="float64")
    _fixed_zoneout(layer, layer.cell)
    x = _x()
    check_layer(layer, x, mask=MASK, training=True)
    layer = layers.GRU(3, zoneout=0.4, recurrent_dropout=0.3, seed=5, return_sequences=True,
                       dtype="float64")
    _fixed_zoneout(layer, layer.cell)
    check_layer(layer, x, mask=MASK, training=True)
