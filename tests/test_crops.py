"""Window slicing ("crop") in the sequence classifier: training on random contiguous windows
of each series, predicting by averaging the probabilities of windows covering it, the
cross-validated choice of crop against whole series, saving, and the CLI option."""

import json
import math

import numpy as np
import pytest
from modelfiles import edit_record

from rnnkit import RnnkitFileError
from rnnkit.cli import main
from rnnkit.data import load_ts
from rnnkit.tasks import SequenceClassifier, SequenceRegressor, load_task
from rnnkit.tasks._sequence import (
    CROP_WINDOWS,
    _CropBatches,
    covering_windows,
    crop_length,
    random_windows,
)
from rnnkit.tasks.classification import pick_candidate

TINY = dict(units=6, embed=6, epochs=3, ensemble=1, verbose=0, seed=3)


def _series(n, length, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    y = np.arange(n) % classes
    x = [(np.sin(2 * np.pi * (2 + 3 * c) * t / length + rng.uniform(0, 6.3))
          + rng.normal(0, 0.2, length))[:, None].astype(np.float32) for c in y]
    return x, y


def waveforms(n, length=256, classes=4, period=16, noise=0.5, seed=0):
    """Class = the shape of a wave repeating every ``period`` steps, at a random phase:
    where a series starts in the cycle says nothing, any long enough window says it all."""
    rng = np.random.default_rng(seed)
    shapes = np.random.default_rng(99).normal(size=(classes, period))
    y = np.arange(n) % classes
    x = []
    for c in y:
        start = rng.integers(period)
        s = np.tile(shapes[c], length // period + 2)[start:start + length]
        x.append((s + rng.normal(0, noise, length))[:, None].astype(np.float32))
    return x, y


def bumps(n, length=128, seed=0):
    """Class = where a bump sits (a fifth or four fifths in): position is the class, and a
    window of a quarter of the series usually misses the bump."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(length)
    x = [(np.exp(-0.5 * ((t - (0.2 if c == 0 else 0.8) * length) / 4.0) ** 2) * 3
          + rng.normal(0, 0.3, length))[:, None].astype(np.float32) for c in y]
    return x, y


# ------------------------------------------------------------------------------ windows
@pytest.mark.parametrize("length,crop", [(2000, 0.25), (7, 0.5), (10, 0.999), (1, 0.3),
                                         (33, 0.1)])
def test_random_windows_lie_inside_the_series_and_have_the_crop_length(length, crop):
    s = np.arange(length, dtype=np.float32)[:, None]
    w = crop_length(length, crop)
    assert w == min(length, max(1, math.ceil(crop * length)))
    assert crop_length(length, 0.0) == length                 # no crop: whole series
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        win = random_windows([s], crop, rng)[0]
        assert win.shape == (w, 1)
        start = int(win[0, 0])
        assert 0 <= start <= length - w
        np.testing.assert_array_equal(win, s[start:start + w])   # contiguous, in order
        starts.add(start)
    assert starts == set(range(length - w + 1)) or len(starts) > 20   # every position drawn
    again = random_windows([s], crop, np.random.default_rng(0))[0]
    np.testing.assert_array_equal(again, random_windows([s], crop, np.random.default_rng(0))[0])


def test_covering_windows_span_every_step_from_the_start_to_the_end():
    seqs = [np.arange(t, dtype=np.float32)[:, None] for t in (100, 9, 1, 40)]
    windows, owner = covering_windows(seqs, 0.25)
    assert owner.tolist() == sorted(owner.tolist()) and set(owner.tolist()) == {0, 1, 2, 3}
    for i, s in enumerate(seqs):
        mine = [w for w, o in zip(windows, owner) if o == i]
        w = crop_length(len(s), 0.25)
        assert all(len(m) == w for m in mine)
        assert len(mine) == min(len(s) - w + 1, max(CROP_WINDOWS, math.ceil(2 * len(s) / w) - 1))
        assert mine[0][0, 0] == 0 and mine[-1][-1, 0] == len(s) - 1     # start and end
        covered = np.zeros(len(s), bool)
        for m in mine:
            covered[m[:, 0].astype(int)] = True
        assert covered.all()
    whole, owner = covering_windows(seqs, 0.0)
    assert [len(w) for w in whole] == [100, 9, 1, 40] and owner.tolist() == [0, 1, 2, 3]


def test_training_batches_draw_fresh_windows_every_epoch_reproducibly():
    x, y = _series(12, 80)
    clf = SequenceClassifier(**TINY, crop=0.25, view="time").fit(x, y)
    y_enc = clf._encode_y(y)
    a = _CropBatches(clf, x, y_enc, 5, seed=7)
    first, second = list(a), list(a)
    assert len(first) == len(a) == 3 and sum(len(b[1]) for b in first) == 12
    assert first[0][0].shape[1] == math.ceil(20 / clf.patch)        # windows of 20 steps
    assert any(not np.array_equal(p[0], q[0]) for p, q in zip(first, second))   # fresh
    again = list(_CropBatches(clf, x, y_enc, 5, seed=7))
    for p, q in zip(first, again):
        np.testing.assert_array_equal(p[0], q[0])
        np.testing.assert_array_equal(p[1], q[1])


# --------------------------------------------------------------------------- prediction
def test_prediction_averages_the_probabilities_of_the_covering_windows():
    x, y = _series(16, 120, classes=3)
    clf = SequenceClassifier(**{**TINY, "ensemble": 2}, crop=0.3, view="time").fit(x, y)
    assert clf.crop == 0.3 and len(clf.members) == 2
    windows, owner = covering_windows(x, 0.3)
    xin = clf._model_input(clf._prepare_x(windows))
    per_window = sum(m.predict(xin, verbose=0).astype(np.float64) for m in clf.members) / 2
    expected = np.stack([per_window[owner == i].mean(0) for i in range(len(x))])
    np.testing.assert_allclose(clf.predict_proba(x), expected, rtol=1e-5, atol=1e-7)
    ev = clf.evaluate(x, y)
    assert ev["accuracy"] == float(np.mean(expected.argmax(-1) == y))
    xs, ys = clf.transform(x, y)                       # what the network reads: windows
    assert len(xs) == len(owner) and ys.shape == (len(owner), 3)


def test_plan_keeps_the_patch_of_whole_series_and_reads_as_many_steps_with_crops():
    x, y = _series(40, 640)
    whole = SequenceClassifier(verbose=0, view="time", crop="off")
    crop = SequenceClassifier(verbose=0, view="time", crop=0.25)
    w, c = ({d["name"]: d for d in p.plan(x, y)} for p in (whole, crop))
    assert w["patch"]["value"] == c["patch"]["value"] == 10
    assert "(16 on a window of 25%)" in c["patch"]["reason"]
    assert c["epochs"]["value"] == 4 * w["epochs"]["value"]    # 4x the updates of 1/4 steps
    assert "crop" not in c and "view" not in c                 # both given: no trials


# ------------------------------------------------------------------------------- choice
def test_pick_candidate_prefers_the_simplest_unless_beaten_by_more_than_one_se():
    assert pick_candidate({"a": 0.80, "b": 0.83, "c": 0.84}, 100) == "a"   # within noise
    assert pick_candidate({"a": 0.50, "b": 0.83, "c": 0.84}, 100) == "b"   # b is close enough
    assert pick_candidate({"a": 0.50, "b": 0.60, "c": 0.95}, 100) == "c"
    assert pick_candidate({"a": 0.50, "b": 0.55}, 20) == "a"      # one series: 1/n is noise
    assert pick_candidate({"a": 0.99, "b": 1.0}, 100) == "a"      # exactly, despite rounding
    assert pick_candidate({"a": 0.98, "b": 1.0}, 100) == "b"
    with pytest.raises(ValueError, match="at least one candidate"):
        pick_candidate({}, 10)


@pytest.mark.slow
def test_auto_crops_where_the_position_in_the_cycle_varies():
    x, y = waveforms(32)
    clf = SequenceClassifier(verbose=0, units=8, embed=8, ensemble=1, view="time", seed=0)
    ch = {c["name"]: c for c in clf.plan(x, y)}
    assert ch["crop"]["value"] == 0.25 and clf.crop == 0.25
    assert "cross-validation" in ch["crop"]["reason"] and "time+crop 0.25" in \
        ch["crop"]["reason"]


@pytest.mark.slow
def test_auto_reads_whole_series_where_the_position_is_the_class():
    x, y = bumps(24)
    clf = SequenceClassifier(verbose=0, units=8, embed=8, ensemble=1, view="time", seed=0)
    ch = {c["name"]: c for c in clf.plan(x, y)}
    assert ch["crop"]["value"] == "off" and clf.crop == 0.0
    assert "whole series" in ch["crop"]["reason"]


# -------------------------------------------------------------------------------- files
def test_saved_crop_model_reloads_and_predicts_identically(tmp_path):
    x, y = _series(16, 100, classes=2)
    clf = SequenceClassifier(**{**TINY, "ensemble": 2}, crop=0.4, view="spectrum").fit(x, y)
    clf.save(tmp_path / "c.rnnkit")
    again = load_task(tmp_path / "c.rnnkit")
    assert again.crop == 0.4 and again.view == "spectrum" and len(again.members) == 2
    xt, yt = _series(10, 130, classes=2, seed=5)       # other lengths than in training
    np.testing.assert_array_equal(again.predict_proba(xt), clf.predict_proba(xt))
    assert again.evaluate(xt, yt) == clf.evaluate(xt, yt)

    def bad(rec):
        rec["params"]["crop"] = 1.5
    (tmp_path / "bad.rnnkit").write_bytes(
        edit_record((tmp_path / "c.rnnkit").read_bytes(), "preprocessing", bad))
    with pytest.raises(RnnkitFileError, match=r"params\.crop"):
        load_task(tmp_path / "bad.rnnkit")


def test_bad_crop_values_are_clear_errors_naming_the_argument(tmp_path, capsys):
    for bad in (1.5, -0.1, 1.0, "half", True, float("nan"), [0.2]):
        with pytest.raises(ValueError, match=r"crop must be a number in \(0, 0.999\]"):
            SequenceClassifier(crop=bad)
    for ok, value in ((0, 0.0), ("off", 0.0), (False, 0.0), (0.5, 0.5)):
        assert SequenceClassifier(crop=ok).crop == value
    assert SequenceClassifier(crop="auto")._requested["crop"] is None
    data = tmp_path / "t.ts"
    x, y = _series(8, 40)
    data.write_text("@problemName T\n@univariate true\n@equalLength true\n@classLabel true 0 1"
                    "\n@data\n" + "\n".join(",".join(f"{v:.3f}" for v in s[:, 0]) + f":{c}"
                                            for s, c in zip(x, y)) + "\n")
    for bad in ("2", "half", "0", "nan"):
        code = main(["train", "--data", str(data), "--crop", bad, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "option 'crop'" in err and "(0, 0.999]" in err, err
    config = tmp_path / "run.toml"
    config.write_text('crop = "sometimes"\n')
    assert main(["train", "--data", str(data), "--config", str(config), "--quiet"]) == 2
    assert "run.toml: option 'crop'" in capsys.readouterr().err
    assert main(["train", "--data", "builtin:airline", "--crop", "0.5", "--quiet"]) == 2
    assert "applies to task(s) ['classify']" in capsys.readouterr().err


def test_cli_and_sequence_classifier_give_the_same_result_with_crop(tmp_path, capsys):
    x, y = _series(16, 120)
    data = tmp_path / "w.ts"
    data.write_text("@problemName W\n@univariate true\n@equalLength true\n@classLabel true a b"
                    "\n@data\n" + "\n".join(",".join(f"{v:.4f}" for v in s[:, 0])
                                            + (":a" if c else ":b") for s, c in zip(x, y))
                    + "\n")
    args = ["--units", "8", "--embed", "8", "--epochs", "4", "--ensemble", "2", "--seed", "5",
            "--crop", "0.3"]
    assert main(["train", "--data", str(data), "--test", str(data), "--json",
                 "--out", str(tmp_path / "w.rnnkit"), *args]) == 0
    out, err = capsys.readouterr()
    rec = json.loads(out.strip().splitlines()[-1])
    assert rec["settings"]["crop"] == 0.3
    assert "crop" not in {c["name"] for c in rec["choices"]}     # given, not decided
    xs, ys = load_ts(data)
    clf = SequenceClassifier(units=8, embed=8, epochs=4, ensemble=2, seed=5, crop=0.3,
                             verbose=0)
    assert rec["test"] == clf.fit(xs, ys).evaluate(xs, ys)
    cli_model = load_task(tmp_path / "w.rnnkit")
    assert cli_model.crop == 0.3
    np.testing.assert_array_equal(cli_model.predict_proba(xs), clf.predict_proba(xs))
    # left to decide, the crop is printed with its reason
    assert main(["train", "--data", str(data), "--units", "4", "--embed", "4", "--epochs",
                 "1", "--ensemble", "1", "--time-budget", "20", "--out",
                 str(tmp_path / "a.rnnkit")]) == 0
    printed = "".join(capsys.readouterr())
    line = next(ln for ln in printed.splitlines() if ln.strip().startswith("crop"))
    assert "cross-validation" in line and ("whole series" in line or "window" in line)


def test_regressor_with_crop_averages_windows_and_reports_its_loss():
    x, _ = _series(12, 60)
    target = np.array([float(np.std(s)) for s in x])
    reg = SequenceRegressor(units=4, epochs=2, crop=0.5, seed=1, verbose=0,
                            validation_split=0).fit(x, target)
    res = reg.evaluate(x, target)
    enc = reg._encode_y(target)
    np.testing.assert_allclose(res["loss"], np.mean((reg._raw_predict(x) - enc) ** 2),
                               rtol=1e-5)
    assert set(res) == {"loss", "mse", "mae"}
