"""Nothing silently wrong, no traceback, no hang: one test (or more) per finding of issue 20.

Test names start with the finding they pin: ``bare_traceback``, ``hang``, ``save_load``,
``silent``, ``bad_args``, ``memory``, ``smaller``.
"""

import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from modelfiles import edit_record, join, make_models, split, write_csv, write_ts

import rnnkit
from rnnkit import RnnkitFileError, TrainingDivergedError
from rnnkit.callbacks import EarlyStopping, ReduceLROnPlateau
from rnnkit.cli import main
from rnnkit.optimizers import SGD, Adam, AdamW, RMSprop
from rnnkit.tasks import CharLanguageModel, Forecaster


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("models"))


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def no_traceback(err):
    assert "Traceback" not in err and "internal error" not in err, err
    assert all(len(line) < 1024 for line in err.splitlines()), err[:2000]


def tampered(tmp_path, models, task, key, fn, name="bad.rnnkit"):
    p = tmp_path / name
    p.write_bytes(edit_record(models[task][0].read_bytes(), key, fn))
    return p


def expect_file_error(capsys, path, data, record_path, commands=("info", "predict",
                                                                   "evaluate")):
    """load_model, and every CLI command that opens the file, refuse it by name."""
    with pytest.raises(RnnkitFileError, match=record_path) as e:
        rnnkit.load_model(path)
    assert path.name in str(e.value)
    for cmd in commands:
        argv = [cmd, path] + ([] if cmd == "info" else ["--data", data])
        code, _, err = cli(capsys, *argv)
        assert code == 1, (cmd, err)
        assert path.name in err and record_path.replace("\\", "") in err, (cmd, err)
        no_traceback(err)


# ----------------------------------------------------------------------------- bare tracebacks
def test_bare_traceback_rng_state_with_short_key_is_a_file_error(tmp_path, models):
    def short_key(t):
        t["rng_state"] = {"bit_generator": "MT19937", "state": {"key": [1, 2, 3], "pos": 0}}
    p = tampered(tmp_path, models, "classify", "training", short_key)
    for kw in ({}, {"restore_random_state": True}):
        with pytest.raises(RnnkitFileError, match=r"bad.rnnkit: invalid record "
                                                  r"'training.rng_state.state.key'"):
            rnnkit.load_model(p, **kw)


def test_bare_traceback_zero_sized_huge_tensor_names_the_file(tmp_path, models):
    header, body = split(models["classify"][0].read_bytes())
    header["weights/evil"] = {"dtype": "F32", "shape": [0, 2**39, 2**39],
                              "data_offsets": [len(body), len(body)]}
    p = tmp_path / "zero.rnnkit"
    p.write_bytes(join(header, body))
    with pytest.raises(RnnkitFileError, match="zero.rnnkit: tensor 'weights/evil'"):
        rnnkit.load_model(p)


def test_bare_traceback_info_lone_surrogate_in_created(tmp_path, models, capsys):
    header, body = split(models["classify"][0].read_bytes())
    header["__metadata__"]["created"] = "\ud800"
    p = tmp_path / "sur.rnnkit"
    p.write_bytes(join(header, body))
    code, _, err = cli(capsys, "info", p)
    assert code == 1 and "sur.rnnkit" in err and "__metadata__.created" in err
    no_traceback(err)


def test_bare_traceback_info_compile_loss_as_a_string(tmp_path, models, capsys):
    p = tampered(tmp_path, models, "classify", "compile", lambda c: c.update(loss="mse"))
    assert rnnkit.load_model(p).loss.name  # a loss name is a valid compile record
    code, out, err = cli(capsys, "info", p)
    assert code == 0, err
    assert "loss: mse" in out


def _three_tokens(pre):
    """A vocabulary of 3 tokens (with matching unigram counts) for a many-output model."""
    pre["vocab"]["tokens"] = ["<pad>", "<unk>", "x"]
    pre["unigram_counts"] = [0, 0, 5]


@pytest.mark.parametrize("task,edit,record_path", [
    ("classify", lambda p: p.update(classes="low,mid,high"), "preprocessing.classes"),
    ("classify", lambda p: p.update(classes=["low", "mid"]), "preprocessing.classes"),
    ("classify", lambda p: p.update(scaler=[1, 2]), "preprocessing.scaler"),
    ("forecast", lambda p: p.update(target_column=5), "preprocessing.target_column"),
    ("forecast", lambda p: p.update(log_channels=[7]), "preprocessing.log_channels"),
    ("forecast", lambda p: p.update(n_channels="1"), "preprocessing.n_channels"),
    ("classify", lambda p: p.update(task="forecast"), "preprocessing"),
    ("forecast", lambda p: p.update(horizon=None), "preprocessing.horizon"),
    ("lm", lambda p: _three_tokens(p), "preprocessing.vocab.tokens"),
])
def test_bare_traceback_bad_preprocessing_records(tmp_path, models, capsys, task, edit,
                                                  record_path):
    p = tampered(tmp_path, models, task, "preprocessing", edit)
    expect_file_error(capsys, p, models[task][1], record_path)


# ----------------------------------------------------------------------------- hang
def test_hang_forecast_horizon_of_a_billion_is_refused_at_once(tmp_path, models, capsys):
    p = tampered(tmp_path, models, "forecast", "preprocessing",
                 lambda r: r.update(horizon=10**9, strategy="recursive"))
    t0 = time.perf_counter()
    expect_file_error(capsys, p, models["forecast"][1], "preprocessing.horizon",
                      commands=("predict", "evaluate"))
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ValueError, match="horizon must be at most 10000"):
        Forecaster(horizon=10**9)


# ----------------------------------------------------------------------------- save vs load
def test_save_load_oversized_preprocessing_record_is_refused_by_save(tmp_path):
    m = rnnkit.Sequential([rnnkit.layers.Input((3, 2)), rnnkit.layers.SimpleRNN(2),
                           rnnkit.layers.Dense(1)])
    m.preprocessing = {"blob": "x" * (17 * 2**20)}
    p = tmp_path / "big.rnnkit"
    with pytest.raises(ValueError, match="header holds at most 16 MiB"):
        m.save(p)
    assert not p.exists()


def test_save_load_record_breaking_the_schema_is_refused_by_save(tmp_path):
    m = rnnkit.Sequential([rnnkit.layers.Input((3, 2)), rnnkit.layers.SimpleRNN(2),
                           rnnkit.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    m.preprocessing = {"task": "classify", "classes": ["a", "b"]}
    p = tmp_path / "x.rnnkit"
    with pytest.raises(ValueError, match="'preprocessing.classes': lists 2 classes but the "
                                         "model has 3 outputs"):
        m.save(p)
    assert not p.exists()
    m.preprocessing = {"task": "classify", "classes": ["a", "b", "c"]}
    m.save(p)
    assert rnnkit.load_model(p).preprocessing["classes"] == ["a", "b", "c"]


def test_save_load_too_many_columns_fails_before_training(tmp_path):
    """A 200k-column CSV wrote a 216 MB file load refused; now fit fails before any step."""
    series = np.random.default_rng(0).normal(size=(44, 30_000)) + 5
    fc = Forecaster(horizon=2, window=40, units=2, epochs=50, ensemble=1, log=False,
                    difference="none", seasonal_period=None, validation_split=0, verbose=0)
    steps = []
    cb = rnnkit.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: steps.append(b))
    with pytest.raises(ValueError, match=r"a model file header holds at most 16 MiB.*"
                                         r"fewer input columns"):
        fc.fit(series, callbacks=[cb])
    assert steps == []


# ----------------------------------------------------------------------------- silent results
@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_silent_l2_nan_or_negative_is_refused(capsys, value):
    code, _, err = cli(capsys, "train", "--data", "builtin:airline", "--l2", value)
    assert code == 2 and "'l2' must be a number in [0.0" in err
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        Forecaster(l2=float(value))


def _tiny_model(loss="mse", out=1, activation=None):
    m = rnnkit.Sequential([rnnkit.layers.Input((4, 2)), rnnkit.layers.SimpleRNN(3),
                           rnnkit.layers.Dense(out, activation=activation)])
    m.compile(optimizer=SGD(0.01), loss=loss)
    return m


def test_silent_nan_or_negative_sample_and_class_weights_are_errors():
    x = np.random.default_rng(0).normal(size=(6, 4, 2)).astype("float32")
    m = _tiny_model()
    for sw in ([1, 1, np.nan, 1, 1, 1], [1, 1, -2, 1, 1, 1]):
        with pytest.raises(ValueError, match=r"sample_weight must be finite non-negative"):
            m.fit(x, np.zeros((6, 1)), sample_weight=np.array(sw), verbose=0)
    c = _tiny_model("sparse_categorical_crossentropy", 2, "softmax")
    for w in (np.nan, -1.0):
        with pytest.raises(ValueError, match=r"class_weight\[1\] must be finite non-negative"):
            c.fit(x, np.array([0, 1] * 3), class_weight={0: 1.0, 1: w}, verbose=0)


def test_silent_lm_with_3_tokens_and_71_outputs_is_refused(tmp_path, models, capsys):
    p = tampered(tmp_path, models, "lm", "preprocessing", _three_tokens)
    expect_file_error(capsys, p, models["lm"][1], "preprocessing.vocab.tokens",
                      commands=("evaluate",))


def _diverging():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5, 3)).astype("float32")
    y = (rng.normal(size=(64, 1)) * 100).astype("float32")
    m = rnnkit.Sequential([rnnkit.layers.Input((5, 3)), rnnkit.layers.SimpleRNN(4),
                           rnnkit.layers.Dense(1)])
    m.compile(optimizer=SGD(1e6), loss="mse")
    return m, x, y


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_silent_divergence_stops_fit_naming_epoch_batch_and_fix(tmp_path):
    m, x, y = _diverging()
    with pytest.raises(TrainingDivergedError, match=r"Training diverged in epoch \d+, batch "
                                                    r"\d+: .*Lower the learning rate.*clip"):
        m.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())  # the last finite weights
    m.save(tmp_path / "ok.rnnkit")                              # so it saves and loads
    assert rnnkit.load_model(tmp_path / "ok.rnnkit").count_params() == m.count_params()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_silent_divergence_guard_can_be_turned_off_and_save_refuses_nonfinite(tmp_path):
    m, x, y = _diverging()
    m.fit(x, y, epochs=5, batch_size=16, verbose=0, guard_nonfinite=False)
    m.layers[-1].params["bias"][0] = np.nan
    with pytest.raises(ValueError, match="holds 1 NaN/Inf value.*allow_nonfinite=True"):
        m.save(tmp_path / "nan.rnnkit")
    assert not (tmp_path / "nan.rnnkit").exists()
    m.save(tmp_path / "nan.rnnkit", allow_nonfinite=True)
    with pytest.warns(RuntimeWarning):
        rnnkit.load_model(tmp_path / "nan.rnnkit", allow_nonfinite=True)


def test_silent_divergence_in_the_cli_exits_1_with_the_message(tmp_path, capsys,
                                                              monkeypatch):
    def diverge(self, *a, **k):
        raise TrainingDivergedError("Training diverged in epoch 1, batch 0: the loss is inf.")
    monkeypatch.setattr(rnnkit.Sequential, "fit", diverge)
    code, _, err = cli(capsys, "train", "--data", write_csv(tmp_path / "s.csv"), "--horizon",
                       "3", "--out", tmp_path / "m.rnnkit", "--quiet")
    assert code == 1 and "Training diverged in epoch 1, batch 0" in err
    assert not (tmp_path / "m.rnnkit").exists()


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("make,msg", [
    (lambda: Adam(beta_1=1.0), r"Adam: beta_1 must be a number in \[0.0, 1.0\), got 1.0"),
    (lambda: Adam(beta_1=2), r"Adam: beta_1 must be a number in \[0.0, 1.0\), got 2"),
    (lambda: Adam(beta_2=float("nan")), r"Adam: beta_2 must be a finite number"),
    (lambda: Adam(epsilon=0), r"Adam: epsilon must be a number in \(0.0, inf\), got 0"),
    (lambda: AdamW(weight_decay=-1), r"AdamW: weight_decay must be a number in \[0.0"),
    (lambda: RMSprop(rho=1.5), r"RMSprop: rho must be a number in \[0.0, 1.0\)"),
    (lambda: SGD(momentum="0.9"), r"SGD: momentum must be a number .* got '0.9' \(str\)"),
    (lambda: Adam(clipnorm=-1), r"Adam: clipnorm must be a number in \(0.0, inf\)"),
    (lambda: Adam(betas=(0.9, 0.99)), r"Adam\(\) got unexpected keyword argument\(s\): betas\. Valid "
                                      r"arguments are \['learning_rate', 'beta_1'"),
    (lambda: EarlyStopping(patience=-1), r"EarlyStopping: patience must be an integer in "
                                         r"\[0, inf\), got -1"),
    (lambda: EarlyStopping(mode="lowest"), r"EarlyStopping: mode must be one of"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"ReduceLROnPlateau: factor must be a number in "
                                            r"\(0.0, 1.0\)"),
    (lambda: rnnkit.optimizers.schedules.ExponentialDecay(0.1, 10, float("inf")),
     r"ExponentialDecay: decay_rate must be a finite number"),
])
def test_bad_args_rejected_at_construction(make, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        make()


def test_bad_args_huge_units_refused_with_the_memory_estimate(capsys):
    tracemalloc.start()
    t0 = time.perf_counter()
    code, _, err = cli(capsys, "train", "--units", "100000000")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 2 and "needs at least" in err and "GB of memory" in err
    assert "Use fewer --units" in err
    assert time.perf_counter() - t0 < 5 and peak < 50e6
    no_traceback(err)


# ----------------------------------------------------------------------------- memory
_MEASURE = """
import sys
from rnnkit.tasks import load_task
def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
lm = load_task(sys.argv[1])
text = ("the rain in spain " * 30_000)[:int(sys.argv[2])]
lm.next_char_probs("warm up")            # compile the kernels first
before = kb("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                          # reset the peak (VmHWM) to the current RSS
lm.next_char_probs(text)
print(kb("VmHWM:") - before)
"""


def test_memory_lm_predict_independent_of_text_length(models):
    """Peak memory (RSS above the level before the call, Linux VmHWM, in a fresh process)
    of next-character prediction on 20k vs 400k characters: the windows keep it flat (it
    grew ~1.1 GB per MB of text; main: +10 MB vs +148 MB)."""
    def grow_kb(n):
        res = subprocess.run([sys.executable, "-c", _MEASURE, str(models["lm"][0]), str(n)],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert res.returncode == 0, res.stderr[-2000:]
        return int(res.stdout.split()[-1])
    short, long = grow_kb(20_000), grow_kb(400_000)
    assert long - short < 30_000, (short, long)   # KB; 20x the text, < 30 MB more


def test_memory_lm_windows_give_the_one_pass_probabilities():
    lm = CharLanguageModel(units=8, embedding_dim=4, seq_len=16, epochs=1,
                           validation_split=0, verbose=0)
    lm.fit("abcdefghij klmnopq rstuvw xyz. " * 20)
    text = "abc def ghi " * 700                  # 8400 characters: three windows
    p = lm.step(lm.vocab.encode(text))[0][-1].astype(np.float64)
    p[:2] = 0
    p /= p.sum()
    got = lm.next_char_probs(text)
    assert max(abs(got[c] - p[lm.vocab.token_to_id(c)]) for c in got) < 1e-5


# ----------------------------------------------------------------------------- smaller
@pytest.mark.parametrize("content", [
    "date,v\n2000-01,1\n2000-02,caf\u00e9\n".encode("latin-1"),
    "date,v\n2000-01,1\n".encode("utf-16"),
    bytes(range(256)) * 4,
])
def test_smaller_csv_not_utf8_names_the_file(tmp_path, capsys, content):
    p = tmp_path / "enc.csv"
    p.write_bytes(content)
    code, _, err = cli(capsys, "train", "--data", p, "--quiet")
    assert code == 1 and "enc.csv: byte" in err and "Save it as UTF-8" in err
    no_traceback(err)


def test_smaller_huge_class_name_gives_a_short_message(tmp_path, capsys):
    p = write_ts(tmp_path / "huge.ts", labels=("a" * 3_000_000, "b"))
    code, _, err = cli(capsys, "train", "--data", p, "--quiet", "--epochs", "1", "--units", "2",
                       "--out", tmp_path / "m.rnnkit")
    assert code != 0 and len(err) < 1024 and "expected at most 1000 characters" in err


def test_smaller_invalid_model_file_exits_1_as_documented(tmp_path, capsys):
    junk = tmp_path / "junk.rnnkit"
    junk.write_bytes(b"\x00" * 64)
    for cmd in (["info", junk], ["predict", junk, "--data", "builtin:airline"],
                ["evaluate", junk, "--data", "builtin:airline"]):
        code, _, err = cli(capsys, *cmd)
        assert code == 1 and "junk.rnnkit" in err
    # the repository's docs, next to tests/ (rnnkit itself may be installed elsewhere)
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                       "cli.md")
    text = open(doc).read()
    assert "1 when a data or model file is invalid" in text and "2 for a usage error" in text


@pytest.mark.parametrize("argv,msg", [
    (["train", "--seed", "-1"], "option 'seed' must be an integer in [0, 4294967295], got -1"),
    (["predict", "m.rnnkit", "--data", "x", "--top", "0"],
     "argument --top: must be an integer in [1, 10000], got 0"),
    (["generate", "m.rnnkit", "--temperature", "nan"],
     "argument --temperature: must be a number in [0.0, 100.0], got nan"),
    (["train", "--horizon", "1000000000", "--data", "builtin:airline"],
     "option 'horizon' must be an integer in [1, 10000]"),
])
def test_smaller_numeric_option_messages(capsys, argv, msg):
    code, _, err = cli(capsys, *argv)
    assert code == 2 and msg in err


def test_smaller_cli_does_not_suggest_allow_nonfinite(tmp_path, models, capsys):
    m = rnnkit.load_model(models["forecast"][0])
    m.layers[-1].params["bias"][...] = np.nan
    p = tmp_path / "nan.rnnkit"
    m.save(p, allow_nonfinite=True)
    code, _, err = cli(capsys, "predict", p, "--data", models["forecast"][1])
    assert code == 1 and "NaN/Inf" in err and "retrain with a lower --lr" in err
    assert "Pass allow_nonfinite=True" not in err


def test_smaller_unexpected_error_points_to_debug(monkeypatch, capsys):
    import rnnkit.cli.info as info

    def boom(args):
        raise KeyError("surprise")
    monkeypatch.setattr(info, "run", boom)
    code, _, err = cli(capsys, "info", "x.rnnkit")
    assert code == 3 and "unexpected internal error KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "info", "x.rnnkit"])


def test_smaller_error_messages_are_capped(monkeypatch, capsys):
    import rnnkit.cli.info as info

    def long(args):
        raise ValueError("x" * 50_000)
    monkeypatch.setattr(info, "run", long)
    code, _, err = cli(capsys, "info", "x.rnnkit")
    assert code == 1 and len(err) < 1100 and "50000 characters in all" in err

