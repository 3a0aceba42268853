"""Data larger than memory: fit / evaluate / predict on iterables and generators of batches,
with memory bounded by the batch (measured with tracemalloc)."""

import tracemalloc

import numpy as np
import pytest

import rnnkit
from rnnkit import layers

B, T, F = 64, 4, 256
BATCH_BYTES = B * T * F * 4


def batches(n, seed=0, with_weights=False, leak=None):
    """A generator of ``n`` fresh (x, y[, w]) batches; nothing is kept (unless ``leak``)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.standard_normal((B, T, F)).astype("float32")
        y = x[:, -3:, :2].mean(axis=1)  # a learnable target: (B, 2)
        if leak is not None:
            leak.append(x)
        yield (x, y, np.ones(B, "float32")) if with_weights else (x, y)


def _model():
    m = rnnkit.Sequential([layers.LSTM(8, input_shape=(T, F)), layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    return m


def _peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_memory_is_bounded_by_the_batch():
    m = _model()
    m.fit(batches(3), verbose=0)  # warm-up: caches, slots, lazily created arrays
    p10 = _peak(lambda: m.fit(batches(10), verbose=0))
    p40 = _peak(lambda: m.fit(batches(40, seed=1), verbose=0))
    total_40 = 40 * BATCH_BYTES  # what holding the data would cost: 10 MiB
    print(f"peak fit memory: 10 batches {p10 / 2**20:.2f} MiB, 40 batches "
          f"{p40 / 2**20:.2f} MiB, one batch {BATCH_BYTES / 2**20:.2f} MiB")
    assert p40 < 8 * BATCH_BYTES, p40
    assert p40 < 1.25 * p10 + BATCH_BYTES, (p10, p40)
    # control: the same measurement sees a generator that keeps its batches
    kept = []
    leaky = _peak(lambda: m.fit(batches(40, leak=kept), verbose=0))
    assert leaky > total_40 * 0.9


def test_evaluate_and_predict_memory_is_bounded():
    m = _model()
    m.fit(batches(2), verbose=0)
    e10 = _peak(lambda: m.evaluate(batches(10), verbose=0))
    e40 = _peak(lambda: m.evaluate(batches(40), verbose=0))
    assert e40 < 1.25 * e10 + BATCH_BYTES and e40 < 8 * BATCH_BYTES, (e10, e40)
    out = {}
    p40 = _peak(lambda: out.setdefault("y", m.predict(((x,) for x, _ in batches(40)))))
    assert out["y"].shape == (40 * B, 2)
    assert p40 < 8 * BATCH_BYTES + 4 * out["y"].nbytes, p40  # outputs are the result


def test_generator_training_matches_array_training():
    x = np.concatenate([b[0] for b in batches(6)])
    y = np.concatenate([b[1] for b in batches(6)])
    rnnkit.utils.set_random_seed(5)
    a = _model()
    ha = a.fit(x, y, batch_size=B, shuffle=False, epochs=1, verbose=0)
    rnnkit.utils.set_random_seed(5)
    g = _model()
    hg = g.fit(batches(6), epochs=1, verbose=0)
    for wa, wg in zip(a.get_weights(), g.get_weights()):
        np.testing.assert_array_equal(wa, wg)
    assert ha.history["loss"] == pytest.approx(hg.history["loss"])
    assert g.evaluate(batches(6), verbose=0) == pytest.approx(a.evaluate(x, y, verbose=0))
    # predict batches of 64 vs 32 rows: equal up to float32 rounding of the matrix products
    np.testing.assert_allclose(g.predict(((xb,) for xb, _ in batches(6))), a.predict(x),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.predict(batches(6)), a.predict(x), rtol=1e-5, atol=1e-6)


def test_infinite_generator_with_steps_per_epoch():
    def forever():
        while True:
            yield from batches(3)
    m = _model()
    h = m.fit(forever(), steps_per_epoch=4, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 3
    assert m.optimizer.iterations == 12


def test_sample_weights_and_validation_with_generators():
    m = _model()
    h = m.fit(batches(4, with_weights=True), validation_data=next(batches(1, seed=9)),
              verbose=0)
    assert set(h.history) == {"loss", "val_loss"}
    with pytest.raises(ValueError, match="validation_split is not supported"):
        m.fit(batches(4), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="y must be None"):
        m.fit(batches(4), np.zeros(3), verbose=0)


def test_a_reiterable_sequence_of_batches_runs_every_epoch():
    class Batches:
        """A Sequence-like dataset: len() batches, iterated afresh each epoch."""

        def __len__(self):
            return 3

        def __iter__(self):
            return batches(3)
    m = _model()
    h = m.fit(Batches(), epochs=2, verbose=0)
    assert m.optimizer.iterations == 6 and len(h.history["loss"]) == 2


def test_bad_batches_give_clear_errors():
    m = _model()
    with pytest.raises(ValueError, match="must be a tuple \\(x, y\\)"):
        m.fit(({"x": 1} for _ in range(2)), verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit(((np.zeros((4, T, F)), np.zeros((3, 2))) for _ in range(2)), verbose=0)


def test_nan_in_a_generator_batch_is_reported():
    m = _model()
    with pytest.raises(ValueError, match="NaN or Inf"):
        m.fit(((np.full((4, T, F), np.nan), np.zeros((4, 2))) for _ in range(2)), verbose=0)


# ---- Gaps found here in code owned by others (models/model.py, _data_adapter.py); the fixes
# ---- are proposed as diffs in the issue-5 report. strict=True: these fail until fixed.
def test_exhausted_generator_is_reported():
    m = _model()
    with pytest.raises(ValueError, match="ran out of data"):
        m.fit(batches(3), epochs=2, verbose=0)


def test_empty_generator_is_reported():
    m = _model()
    with pytest.raises(ValueError, match="no batches|ran out of data"):
        m.fit(batches(0), verbose=0)
    with pytest.raises(ValueError, match="no batches|no data"):
        m.evaluate(batches(0), verbose=0)


def test_predict_on_bare_x_batches():
    m = _model()
    assert m.predict((x for x, _ in batches(2))).shape == (2 * B, 2)
