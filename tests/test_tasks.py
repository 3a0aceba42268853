"""Unit tests of the task pipelines in rnnkit.tasks (classification, regression, forecasting,
character language model)."""

import math

import numpy as np
import pytest

import rnnkit
from rnnkit.tasks import (
    CharLanguageModel,
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    detect_period,
    forecast_metrics,
    load_task,
    mae,
    mape,
    natural_sort,
    rmse,
    sample_from_probs,
    seasonal_naive,
    smape,
    unigram_cross_entropy,
)
from rnnkit.tasks._common import units_list
from rnnkit.tasks._sequence import stratified_split
from rnnkit.tasks.forecasting import _difference, _undifference


def toy_sequences(n_per_class=12, labels=("cat", "dog", "emu"), seed=0, offset=0.0):
    """Variable-length 2-channel sequences; the class sets the level of channel 0."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k, lab in enumerate(labels):
        for _ in range(n_per_class):
            T = int(rng.integers(4, 9))
            x = rng.normal(0, 0.3, size=(T, 2)).astype(np.float32)
            x[:, 0] += 3.0 * k + offset
            x[:, 1] = x[:, 1] * 10 + 100 + offset  # large scale: standardisation matters
            xs.append(x)
            ys.append(lab)
    order = rng.permutation(len(xs))
    return [xs[i] for i in order], np.array(ys)[order]


# ------------------------------------------------------------------------------- helpers
def test_units_list_forms():
    assert units_list("128,64") == [128, 64]
    assert units_list(32, layers=3) == [32, 32, 32]
    assert units_list(None, None, (128, 64)) == [128, 64]
    assert units_list(None, 3, (128, 64)) == [128, 128, 128]
    with pytest.raises(ValueError, match="layers=3"):
        units_list([8, 4], layers=3)
    with pytest.raises(ValueError, match="comma-separated"):
        units_list("8,x")


def test_stratified_split_keeps_every_class():
    groups = np.array([0] * 10 + [1] * 5 + [2] * 2)
    tr, va = stratified_split(groups, 0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(17))
    assert set(groups[va]) == {0, 1, 2}
    assert set(groups[tr]) == {0, 1, 2}
    assert (groups[va] == 0).sum() == 2


def test_natural_sort():
    assert natural_sort(["10", "2", "1"]) == ["1", "2", "10"]
    assert natural_sort(["b", "a10", "a2"]) == ["a2", "a10", "b"]


# ------------------------------------------------------------------------------- classification
def test_classifier_scaler_fitted_on_training_data_only(tmp_path):
    x, y = toy_sequences()
    x_test, y_test = toy_sequences(seed=1, offset=50.0)  # very different statistics
    clf = SequenceClassifier(units=8, epochs=1, verbose=0, validation_split=0.0).fit(x, y)
    flat = np.concatenate(x).astype(np.float64)
    np.testing.assert_allclose(clf.scaler.mean_, flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(clf.scaler.scale_, flat.std(0), rtol=1e-5)
    before = clf.scaler.mean_.copy()
    clf.evaluate(x_test, y_test)
    clf.predict(x_test)
    np.testing.assert_array_equal(clf.scaler.mean_, before)
    clf.save(tmp_path / "c.rnnkit")
    again = SequenceClassifier.load(tmp_path / "c.rnnkit")
    np.testing.assert_allclose(again.scaler.mean_, before)


def test_classifier_learns_and_maps_labels_back(tmp_path):
    x, y = toy_sequences()
    clf = SequenceClassifier(units=16, epochs=25, learning_rate=1e-2, verbose=0,
                             validation_split=0.2, patience=25, seed=3).fit(x, y)
    assert clf.classes_ == ["cat", "dog", "emu"]
    pred = clf.predict(x)
    assert set(pred.tolist()) <= {"cat", "dog", "emu"}
    acc = float(np.mean(pred == y))
    assert acc > 0.9, f"toy accuracy {acc}"
    res = clf.evaluate(x, y)
    assert set(res) == {"loss", "accuracy"}
    path = tmp_path / "clf.rnnkit"
    clf.save(path)
    loaded = load_task(path)
    assert isinstance(loaded, SequenceClassifier)
    np.testing.assert_array_equal(loaded.predict(x), pred)
    np.testing.assert_allclose(loaded.predict_proba(x), clf.predict_proba(x), rtol=1e-6)


def test_classifier_rejects_unknown_label_and_wrong_channels():
    x, y = toy_sequences(n_per_class=4)
    clf = SequenceClassifier(units=4, epochs=1, verbose=0, validation_split=0).fit(x, y)
    with pytest.raises(ValueError, match="'yak'.*training labels"):
        clf.evaluate(x[:2], np.array(["cat", "yak"]))
    with pytest.raises(ValueError, match="3 channel.*trained on 2"):
        clf.predict([np.zeros((5, 3), np.float32)])


def test_classifier_numeric_labels_roundtrip(tmp_path):
    x, y = toy_sequences(n_per_class=4, labels=(7, 2, 10))
    clf = SequenceClassifier(units=4, epochs=1, verbose=0, validation_split=0).fit(x, y)
    assert clf.classes_ == [2, 7, 10]
    clf.save(tmp_path / "n.rnnkit")
    again = load_task(tmp_path / "n.rnnkit")
    assert again.classes_ == [2, 7, 10]
    assert set(again.predict(x).tolist()) <= {2, 7, 10}


def test_regressor_predicts_in_original_units(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 1)).astype(np.float32)
    y = 1000.0 + 50.0 * x[:, :, 0].sum(1)
    reg = SequenceRegressor(units=8, epochs=30, learning_rate=1e-2, verbose=0,
                            validation_split=0).fit(x, y)
    np.testing.assert_allclose(reg.y_scaler.mean_, [y.mean()], rtol=1e-6)
    pred = reg.predict(x)
    assert pred.shape == (64, 1)
    assert abs(pred.mean() - 1000) < 50
    res = reg.evaluate(x, y)
    assert res["mae"] < np.abs(y - y.mean()).mean()
    reg.save(tmp_path / "r.rnnkit")
    np.testing.assert_allclose(load_task(tmp_path / "r.rnnkit").predict(x), pred, rtol=1e-6)


# ------------------------------------------------------------------------------- forecasting
def test_metrics_against_hand_computed_values():
    a = np.array([100.0, 200.0, 400.0])
    f = np.array([110.0, 180.0, 400.0])
    assert mae(a, f) == pytest.approx((10 + 20 + 0) / 3)
    assert rmse(a, f) == pytest.approx(math.sqrt((100 + 400 + 0) / 3))
    assert mape(a, f) == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert smape(a, f) == pytest.approx((20 / 210 + 40 / 380 + 0) / 3)
    m = forecast_metrics(a, f)
    assert set(m) == {"mae", "rmse", "mape", "smape"}
    assert forecast_metrics([0.0, 1.0], [0.0, 1.0])["mape"] is None
    assert smape([0.0], [0.0]) == 0.0
    with pytest.raises(ValueError, match="same length"):
        mae([1, 2], [1])


def test_seasonal_naive():
    np.testing.assert_array_equal(seasonal_naive([1, 2, 3, 4, 5], 4, period=2), [4, 5, 4, 5])
    np.testing.assert_array_equal(seasonal_naive([1, 2, 3], 2), [3, 3])
    y = rnnkit.data.load_airline()
    fc = seasonal_naive(y[:-36], 36, 12)
    assert mape(y[-36:], fc) == pytest.approx(0.1319, abs=5e-4)  # the published 0.132


def test_detect_period():
    t = np.arange(120)
    series = np.exp(0.01 * t) * (10 + 3 * np.sin(2 * np.pi * t / 12))
    assert detect_period(series) == 12
    assert detect_period(rnnkit.data.load_airline()[:-36]) == 12
    assert detect_period(np.random.default_rng(0).normal(size=200)) is None


def test_difference_roundtrip():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2)).cumsum(0)
    lags = [1, 12]
    d = _difference(z, lags)
    assert d.shape == (60 - 13, 2)
    cont = _undifference(z[:40], d[40 - 13:], lags)   # integrate the last 20 diffs back
    np.testing.assert_allclose(cont, z[40:], atol=1e-9)


def test_forecaster_windows_and_horizon():
    series = np.arange(1.0, 61.0)
    f = Forecaster(horizon=5, window=4, strategy="direct", difference="none", log=False,
                   seasonal_period=None, epochs=1, ensemble=1, verbose=0)
    f._resolve(series[:, None])
    X, Y = f._windows(series[:, None])
    assert X.shape == (60 - 4 - 5 + 1, 4, 1) and Y.shape == (52, 5)
    np.testing.assert_array_equal(X[0, :, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(Y[0], [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(Y[-1], [56, 57, 58, 59, 60])
    f.strategy = "recursive"
    X, Y = f._windows(series[:, None])
    assert X.shape == (56, 4, 1) and Y.shape == (56, 1)
    np.testing.assert_array_equal(Y[0], [5])


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_forecaster_fit_forecast_save_load(tmp_path, strategy):
    y = rnnkit.data.load_airline()
    train, test = y[:-12], y[-12:]
    f = Forecaster(horizon=12, strategy=strategy, epochs=3, ensemble=2, verbose=0).fit(train)
    assert f.log_channels_ == [0] and f.lags_ == [1, 12] and f.period_ == 12
    fc = f.forecast()
    assert fc.shape == (12,) and np.all(np.isfinite(fc))
    members = f.member_forecasts()
    np.testing.assert_allclose(fc, np.median(members, axis=0))
    res = f.evaluate(test)
    assert {"mae", "rmse", "mape", "smape", "baseline"} <= set(res)
    assert res["baseline"]["mape"] == pytest.approx(mape(test, seasonal_naive(train, 12, 12)))
    path = tmp_path / "f.rnnkit"
    f.save(path)
    g = load_task(path)
    assert isinstance(g, Forecaster) and len(g.members) == 2
    np.testing.assert_allclose(g.forecast(), fc, rtol=1e-6)
    # a longer history: the forecast uses only its last context_length steps
    np.testing.assert_allclose(g.forecast(train), fc, rtol=1e-6)


def test_forecaster_errors():
    with pytest.raises(ValueError, match="strategy"):
        Forecaster(strategy="sideways")
    f = Forecaster(horizon=50, strategy="direct", epochs=1, ensemble=1, verbose=0)
    with pytest.raises(ValueError, match="too few"):
        f.fit(np.arange(1.0, 40.0))
    g = Forecaster(horizon=3, epochs=1, ensemble=1, verbose=0).fit(np.arange(1.0, 80.0))
    with pytest.raises(ValueError, match="at least"):
        g.forecast(np.arange(1.0, 4.0))


# ------------------------------------------------------------------------------- language model
def test_sampling_temperature_and_top_k_distributions():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    rng = np.random.default_rng(0)
    n = 20000
    for T in (1.0, 0.5, 2.0):
        want = p ** (1 / T) / (p ** (1 / T)).sum()
        draws = np.bincount([sample_from_probs(p, T, None, rng) for _ in range(n)],
                            minlength=4) / n
        np.testing.assert_allclose(draws, want, atol=0.015,
                                   err_msg=f"temperature {T}: rnnkit vs reference")
    top2 = np.bincount([sample_from_probs(p, 1.0, 2, rng) for _ in range(n)], minlength=4) / n
    np.testing.assert_allclose(top2, [0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=0.015)
    assert all(sample_from_probs(p, 1.0, 1, rng) == 0 for _ in range(50))
    assert sample_from_probs(p, 0.0) == 0
    with pytest.raises(ValueError, match="temperature"):
        sample_from_probs(p, -1.0)


def test_unigram_cross_entropy_hand_computed():
    # vocab: 0 pad, 1 unk, 2 'a', 3 'b'; train counts a=3, b=1 -> smoothed (4, 2) / 6
    got = unigram_cross_entropy([2, 2, 2, 3], [2, 3], 4)
    assert got == pytest.approx(-(math.log(4 / 6) + math.log(2 / 6)) / 2)


@pytest.fixture(scope="module")
def tiny_lm():
    rnnkit.utils.set_random_seed(0)
    text = "the quick brown fox jumps over the lazy dog. " * 12
    return CharLanguageModel(units=16, seq_len=16, epochs=2, verbose=0).fit(text), text


def test_lm_streaming_equals_full_sequence(tiny_lm):
    lm, text = tiny_lm
    ids = lm.vocab.encode(text[:30])
    full = lm.model.predict(ids[None].astype(np.int64), verbose=0)[0]     # (30, V)
    stream, rows = None, []
    for i in ids[:10]:
        probs, stream = lm.step([i], stream)
        rows.append(probs[0])
    probs, stream = lm.step(ids[10:], stream)        # a chunk continues the same stream
    rows.extend(probs)
    np.testing.assert_allclose(np.array(rows), full, atol=1e-6,
                               err_msg="streamed vs full-sequence probabilities")


def test_lm_generate_reproducible_and_saved(tmp_path, tiny_lm):
    lm, text = tiny_lm
    a = lm.generate(25, temperature=0.8, top_k=5, seed=1, prime="the ")
    b = lm.generate(25, temperature=0.8, top_k=5, seed=1, prime="the ")
    assert a == b and len(a) == 25 and set(a) <= set(text)
    res = lm.evaluate(text[:100])
    assert {"loss", "bits_per_char", "perplexity", "accuracy", "baseline_unigram"} <= set(res)
    assert res["bits_per_char"] == pytest.approx(res["loss"] / math.log(2))
    lm.save(tmp_path / "lm.rnnkit")
    again = load_task(tmp_path / "lm.rnnkit")
    assert again.vocab == lm.vocab
    assert again.generate(25, temperature=0.8, top_k=5, seed=1, prime="the ") == a
    probs = again.next_char_probs("the quick brown fo")
    assert max(probs, key=probs.get) in set(text)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)


def test_lm_text_too_short():
    with pytest.raises(ValueError, match="seq_len"):
        CharLanguageModel(units=4, seq_len=50, epochs=1, verbose=0,
                          validation_split=0).fit("short text")


def test_classifier_explicit_validation_data_and_early_stopping():
    x, y = toy_sequences(n_per_class=6)
    xv, yv = toy_sequences(n_per_class=2, seed=5)
    clf = SequenceClassifier(units=4, epochs=3, patience=1, verbose=0).fit(
        x, y, validation_data=(xv, yv))
    assert "val_loss" in clf.history_.history
    assert 1 <= clf.best_epoch_ <= len(clf.history_.epoch) <= 3


# ------------------------------------------------------------------------------- adaptive defaults
def _choices(clf):
    return {c["name"]: c["value"] for c in clf.choices_}


def _shapes(n, length, channels, classes=2, vary=False, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(length // 3, length + 1, n) if vary else np.full(n, length)
    x = [rng.normal(size=(int(t), channels)).astype(np.float32) for t in lengths]
    return x, np.arange(n) % classes


def test_plan_long_univariate_series_are_normalised_per_series_and_patched():
    x, y = _shapes(40, 500, 1)
    x = [(s - s.mean()) / s.std() for s in x]          # z-normalised, as in the UCR archive
    clf = SequenceClassifier(verbose=0, view="time", crop="off")  # trials: below
    ch = {c["name"]: c for c in clf.plan(x, y)}
    assert ch["normalize"]["value"] == "series" and "univariate" in ch["normalize"]["reason"]
    assert ch["patch"]["value"] == 8 and "at most 63 steps" in ch["patch"]["reason"]
    assert ch["spectrum"]["value"] is True                 # patches of 8 steps
    assert ch["bidirectional"]["value"] is True and clf.bidirectional
    assert ch["units"]["value"] == [64] and ch["batch_size"]["value"] == 8
    assert ch["epochs"]["value"] == 200            # 1000 updates / 5 batches
    assert 1 <= ch["ensemble"]["value"] <= 3
    assert all(c["reason"] for c in clf.choices_)


def test_plan_keeps_level_and_scale_of_series_that_are_not_z_normalised(tmp_path):
    x, y = _shapes(30, 40, 1, classes=2)
    x = [s * (1 + 2 * (i % 2)) + 5 * (i % 2) for i, s in enumerate(x)]   # class = level/scale
    clf = SequenceClassifier(verbose=0, epochs=40, ensemble=1, units=8, embed=8,
                             view="time", crop="off")
    assert _choices(clf) == {} and clf.plan(x, y)[0]["value"] == "series+level"
    assert _choices(clf)["spectrum"] is False and _choices(clf)["patch"] == 1
    clf.fit(x, y)
    assert clf.scaler.mean_.shape == (2,)          # scales the (mean, log std) inputs
    assert clf._prepare_x(x)[0].shape[1] == 3      # the value, then mean and log std
    assert float(np.mean(clf.predict(x) == y)) == 1.0     # the level alone separates them
    clf.save(tmp_path / "l.rnnkit")
    np.testing.assert_array_equal(load_task(tmp_path / "l.rnnkit").predict_proba(x),
                                  clf.predict_proba(x))


def test_plan_short_multivariate_series_per_channel_without_patches():
    x, y = _shapes(300, 20, 3, classes=3)
    clf = SequenceClassifier(verbose=0)
    ch = _choices(clf) if clf.plan(x, y) else {}
    assert ch["normalize"] == "channel" and ch["patch"] == 1
    assert ch["batch_size"] == 30 and ch["epochs"] == 100


def test_plan_variable_lengths_patch_by_the_longest_and_size_grows_with_data():
    x, y = _shapes(1200, 1000, 1, vary=True)
    clf = SequenceClassifier(verbose=0, view="time", crop="off")
    ch = _choices(clf) if clf.plan(x, y) else {}
    assert ch["patch"] == -(-max(len(s) for s in x) // 64)
    assert ch["units"] == [128] and ch["batch_size"] == 64


def test_plan_time_budget_limits_epochs_and_ensemble_and_user_settings_win():
    x, y = _shapes(1000, 1000, 1)
    big = SequenceClassifier(verbose=0, time_budget=10_000, view="time", crop="off")
    small = SequenceClassifier(verbose=0, time_budget=30, view="time", crop="off")
    b, s = (_choices(c) if c.plan(x, y) else {} for c in (big, small))
    assert b["ensemble"] == 3 and s["ensemble"] == 1
    assert s["epochs"] < b["epochs"] and "budget" in small.choices_[-1]["reason"] + str(
        small.choices_)
    fixed = SequenceClassifier(verbose=0, patch=4, normalize="channel", units=16, epochs=3,
                               ensemble=2, batch_size=5, bidirectional=False)
    names = {c["name"] for c in fixed.plan(x, y)}
    assert not names & {"patch", "normalize", "units", "epochs", "ensemble", "batch_size",
                        "bidirectional"}
    assert (fixed.patch, fixed.normalize, fixed.units, fixed.epochs, fixed.ensemble,
            fixed.bidirectional) == (4, "channel", [16], 3, 2, False)


def test_spectrum_view_is_the_log_magnitude_spectrum_without_the_mean():
    from rnnkit.tasks._sequence import spectrum_view

    t = np.arange(64)
    s = (3.0 + np.sin(2 * np.pi * 5 * t / 64))[:, None]        # level 3, 5 cycles
    v = spectrum_view([s, np.roll(s, 7)])
    assert v[0].shape == (33, 1) and v[0].dtype == np.float32
    assert int(np.argmax(v[0][:, 0])) == 5 and v[0][0, 0] < 1e-6   # the mean is gone
    np.testing.assert_allclose(v[0], v[1], atol=1e-5)          # a shift changes nothing
    np.testing.assert_allclose(v[0][5, 0], np.log1p(32.0), rtol=1e-6)   # |rfft| = A*T/2
    with_nan = s.copy()
    with_nan[3] = np.nan
    assert np.isfinite(spectrum_view([with_nan])[0]).all()


def _rhythm_classes(n, length, seed=0):
    """Class = the frequency of a rhythm at a random phase, buried in noise (the values at a
    given time say nothing about the class; the spectrum says it all)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(length)
    x = [(np.sin(2 * np.pi * (4 + 5 * c) * t / length + rng.uniform(0, 2 * np.pi))
          + rng.normal(0, 0.5, length))[:, None].astype(np.float32) for c in y]
    return x, y


def _bump_classes(n, length, seed=0):
    """Class = where a bump sits (early or late): a shape at a position, phase matters."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(length)
    x = [(np.exp(-0.5 * ((t - (0.25 if c == 0 else 0.75) * length) / 3.0) ** 2) * 3
          + rng.normal(0, 0.3, length))[:, None].astype(np.float32) for c in y]
    return x, y


@pytest.mark.slow
def test_view_is_chosen_by_cross_validation_on_the_training_data(tmp_path):
    kw = dict(verbose=0, epochs=30, units=8, embed=8, ensemble=1, seed=1)
    x, y = _rhythm_classes(40, 64)
    clf = SequenceClassifier(**kw).fit(x, y)
    ch = {c["name"]: c for c in clf.choices_}
    assert ch["view"]["value"] == "spectrum" and clf.view == "spectrum"
    assert "cross-validation" in ch["view"]["reason"]
    assert clf.choices_[0]["name"] == "view"          # the rules after it read the spectrum
    assert clf._prepare_x(x)[0].shape[0] <= 33        # 33 frequencies, maybe patched
    xt, yt = _rhythm_classes(40, 64, seed=5)
    assert float(np.mean(clf.predict(xt) == yt)) >= 0.9
    clf.save(tmp_path / "v.rnnkit")
    again = load_task(tmp_path / "v.rnnkit")
    assert again.view == "spectrum"
    np.testing.assert_array_equal(again.predict_proba(xt), clf.predict_proba(xt))
    xb, yb = _bump_classes(40, 64)
    bump = SequenceClassifier(**kw)
    assert _choices(bump) == {} and bump.plan(xb, yb)[0]["value"] == "time"
    first = bump._selection
    bump.plan(xb, yb)                                  # planned again (rnnkit train): reused
    assert bump._selection is first and bump.selection_seconds_before_fit_ > 0


def test_view_short_series_or_single_member_classes_skip_the_trials():
    x, y = _shapes(30, 20, 1)
    clf = SequenceClassifier(verbose=0)
    ch = {c["name"]: c for c in clf.plan(x, y)}
    assert ch["view"]["value"] == "time" and "no cross-validation trial" in ch["view"]["reason"]
    x, y = _shapes(5, 40, 1, classes=5)               # one series per class
    ch = {c["name"]: c for c in SequenceClassifier(verbose=0).plan(x, y)}
    assert ch["view"]["value"] == "time" and "single training series" in ch["view"]["reason"]
    with pytest.raises(ValueError, match="view must be one of"):
        SequenceClassifier(view="frequency")


def test_patches_and_series_normalisation():
    from rnnkit.tasks._sequence import normalize_series, to_patches

    s = np.arange(10, dtype=np.float32).reshape(5, 2)
    p = to_patches([s], 2)[0]
    assert p.shape == (3, 4)
    np.testing.assert_array_equal(p[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(p[2], [8, 9, 0, 0])          # zero-padded last patch
    z = normalize_series([np.array([[1.0, 5.0], [3.0, 5.0]])])[0]
    np.testing.assert_allclose(z, [[-1, 0], [1, 0]])           # constant channel -> 0


def test_ensemble_save_reload_predicts_identically(tmp_path):
    x, y = _shapes(24, 150, 1, classes=3, vary=True)
    clf = SequenceClassifier(verbose=0, epochs=2, ensemble=2, units=8, embed=8, seed=4)
    clf.fit(x, y)
    assert len(clf.members) == 2 and clf.patch == 3 and clf.normalize == "series+level"
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba, (clf.members[0].predict(
        clf._model_input(clf._prepare_x(x)), verbose=0) + clf.members[1].predict(
        clf._model_input(clf._prepare_x(x)), verbose=0)) / 2, rtol=1e-5)
    clf.save(tmp_path / "e.rnnkit")
    again = load_task(tmp_path / "e.rnnkit")
    assert len(again.members) == 2 and again.patch == 3 and again.normalize == "series+level"
    assert _choices(again) == _choices(clf)
    np.testing.assert_array_equal(again.predict_proba(x), proba)
    assert again.evaluate(x, y) == clf.evaluate(x, y)


def test_cli_and_sequence_classifier_give_the_same_result(tmp_path, capsys):
    import json

    from rnnkit.cli import main
    from rnnkit.data import load_ts

    rng = np.random.default_rng(0)
    lines = ["@problemName Waves", "@timeStamps false", "@missing false", "@univariate true",
             "@equalLength true", "@seriesLength 120", "@classLabel true a b", "@data"]
    for i in range(16):
        t = np.linspace(0, 1, 120)
        v = np.sin(2 * np.pi * (2 + 2 * (i % 2)) * t) + rng.normal(0, 0.1, 120)
        lines.append(",".join(f"{a:.4f}" for a in v) + (":a" if i % 2 else ":b"))
    data = tmp_path / "w.ts"
    data.write_text("\n".join(lines) + "\n")
    args = ["--units", "8", "--embed", "8", "--epochs", "3", "--ensemble", "2", "--seed", "5"]
    assert main(["train", "--data", str(data), "--test", str(data), "--json", "--quiet",
                 "--out", str(tmp_path / "w.rnnkit"), *args]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    x, y = load_ts(data)
    clf = SequenceClassifier(units=8, embed=8, epochs=3, ensemble=2, seed=5, verbose=0)
    res = clf.fit(x, y).evaluate(x, y)
    assert rec["test"] == res
    assert {c["name"] for c in rec["choices"]} >= {"normalize", "patch", "batch_size"}
    cli_model = load_task(tmp_path / "w.rnnkit")
    np.testing.assert_array_equal(cli_model.predict_proba(x), clf.predict_proba(x))
