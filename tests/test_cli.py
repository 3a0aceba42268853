"""End-to-end tests of the `rnnkit` command on tiny data: train -> evaluate -> predict ->
generate for every task, config files, and clear errors for malformed input."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.cli import SUBCOMMANDS, main

TINY = ["--units", "6", "--epochs", "2", "--quiet", "--json"]


def run_cli(capsys, *argv):
    """Run main(argv) in-process; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(stdout):
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    assert lines, "no output on stdout"
    return json.loads(lines[-1])


def write_ts(path, n_per_class=8, labels=("low", "mid", "high"), seed=0):
    """A tiny 2-dimensional, unequal-length .ts file with string labels."""
    rng = np.random.default_rng(seed)
    lines = ["# tiny test file", "@problemName Tiny", "@timeStamps false", "@missing false",
             "@univariate false", "@dimensions 2", "@equalLength false",
             f"@classLabel true {' '.join(labels)}", "@data"]
    for _ in range(n_per_class):
        for k, lab in enumerate(labels):
            T = int(rng.integers(4, 8))
            a = rng.normal(3 * k, 0.3, T)
            b = rng.normal(0, 1, T)
            lines.append(",".join(f"{v:.3f}" for v in a) + ":" + ",".join(f"{v:.3f}" for v in b)
                         + f":{lab}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path, n=60):
    t = np.arange(n)
    y = 100 + t + 10 * np.sin(2 * np.pi * t / 6)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", "sales"])
        for i in range(n):
            w.writerow([f"{2000 + i // 12}-{i % 12 + 1:02d}", f"{y[i]:.2f}"])
    return path


# ------------------------------------------------------------------------------- help
def test_help_lists_every_subcommand_subprocess():
    res = subprocess.run([sys.executable, "-m", "rnnkit", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for name in SUBCOMMANDS:
        assert name in res.stdout
    for name in ("train", "evaluate", "predict", "generate", "info"):
        assert name in SUBCOMMANDS


def test_train_help_explains_every_option(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    for flag in ("--data", "--test", "--task", "--cell", "--units", "--layers",
                 "--bidirectional", "--epochs", "--batch-size", "--lr", "--clipnorm", "--seed",
                 "--horizon", "--window", "--out", "--config", "--json", "--verbose"):
        assert flag in out, flag
    assert "builtin:japanese_vowels" in out


def test_no_command_prints_help(capsys):
    code, _, err = run_cli(capsys)
    assert code == 2 and "train" in err


# ------------------------------------------------------------------------------- classify
def test_classify_train_evaluate_predict_info(tmp_path, capsys):
    train = write_ts(tmp_path / "train.ts")
    test = write_ts(tmp_path / "test.ts", n_per_class=3, seed=1)
    model = tmp_path / "clf.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", train, "--test", test, "--out", model,
                             *TINY)
    assert code == 0, err
    rec = last_json(out)
    assert rec["task"] == "classify"           # inferred from .ts
    assert set(rec["test"]) == {"loss", "accuracy"}
    assert 0.0 <= rec["test"]["accuracy"] <= 1.0
    assert rec["classes"] == ["low", "mid", "high"] or set(rec["classes"]) == {"low", "mid",
                                                                                  "high"}
    assert rec["model"] == str(model) and model.exists()
    assert len(out.strip().splitlines()) == 1   # --json: exactly one line on stdout

    code, out, err = run_cli(capsys, "evaluate", model, "--data", test, "--json")
    assert code == 0, err
    ev = last_json(out)
    assert ev["test"]["accuracy"] == pytest.approx(rec["test"]["accuracy"])

    preds = tmp_path / "preds.csv"
    code, _, err = run_cli(capsys, "predict", model, "--data", test, "--out", preds)
    assert code == 0, err
    rows = list(csv.DictReader(open(preds)))
    assert len(rows) == 9 and {r["label"] for r in rows} <= {"low", "mid", "high"}
    assert "p_low" in rows[0]
    pj = tmp_path / "preds.json"
    assert run_cli(capsys, "predict", model, "--data", test, "--out", pj)[0] == 0
    assert len(json.loads(pj.read_text())) == 9

    code, out, _ = run_cli(capsys, "info", model)
    assert code == 0
    assert "classes (3)" in out and "Total params" in out and "rnnkit version" in out

    code, _, err = run_cli(capsys, "generate", model)
    assert code != 0 and "language model" in err


def test_builtin_default_data_one_epoch_subprocess(tmp_path):
    """`rnnkit train` with the built-in default dataset, one epoch, through the real command."""
    model = tmp_path / "jv.rnnkit"
    res = subprocess.run([sys.executable, "-m", "rnnkit", "train", "--epochs", "1", "--units",
                          "8", "--out", str(model), "--json"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    assert rec["data"] == "builtin:japanese_vowels" and rec["task"] == "classify"
    assert set(rec["test"]) == {"loss", "accuracy"} and model.exists()
    assert "test accuracy" in res.stderr     # human summary goes to stderr with --json


# ------------------------------------------------------------------------------- forecast
def test_forecast_train_evaluate_predict(tmp_path, capsys):
    data = write_csv(tmp_path / "sales.csv")
    model = tmp_path / "f.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", data, "--horizon", "4", "--ensemble",
                             "2", "--season", "6", "--out", model, *TINY)
    assert code == 0, err
    rec = last_json(out)
    assert rec["task"] == "forecast"
    assert set(rec["test"]) == {"mae", "rmse", "mape", "smape"}
    assert rec["baseline"]["method"] == "seasonal_naive(m=6)"
    assert rec["lags"] == [1, 6] and len(rec["forecast"]) == 4

    code, out, err = run_cli(capsys, "evaluate", model, "--data", data, "--json")
    assert code == 0, err
    ev = last_json(out)
    assert ev["test"]["mape"] == pytest.approx(rec["test"]["mape"], rel=1e-6)

    pj = tmp_path / "fc.json"
    code, _, err = run_cli(capsys, "predict", model, "--data", data, "--out", pj)
    assert code == 0, err
    rows = json.loads(pj.read_text())
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["date"] == "2005-01"          # the month after the file's last one


# ------------------------------------------------------------------------------- lm
def test_lm_train_evaluate_predict_generate(tmp_path, capsys):
    text = tmp_path / "poem.txt"
    text.write_text("the rain in spain stays mainly in the plain. " * 15)
    model = tmp_path / "lm.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", text, "--seq-len", "12",
                             "--sample-length", "20", "--out", model, *TINY)
    assert code == 0, err
    rec = last_json(out)
    assert rec["task"] == "lm"
    assert {"loss", "bits_per_char", "perplexity"} <= set(rec["test"])
    assert rec["baseline"]["unigram_loss"] > 0 and len(rec["sample"]) == 20

    code, out, err = run_cli(capsys, "evaluate", model, "--data", text, "--json")
    assert code == 0, err
    assert "loss" in last_json(out)["test"]

    code, out, err = run_cli(capsys, "predict", model, "--data", text, "--top", "3")
    assert code == 0, err
    assert out.splitlines()[0] == "rank,char,probability" and len(out.splitlines()) == 4

    args = ["generate", model, "--length", "30", "--temperature", "0.7", "--top-k", "4",
            "--seed", "5", "--prime", "the "]
    code, out1, err = run_cli(capsys, *args)
    assert code == 0, err
    code, out2, _ = run_cli(capsys, *args)
    assert out1 == out2 and out1.startswith("the ") and len(out1.rstrip("\n")) == 34
    code, out, _ = run_cli(capsys, *args, "--json")
    assert len(last_json(out)["text"]) == 30


# ------------------------------------------------------------------------------- config files
def test_config_file_and_flag_override(tmp_path, capsys):
    write_ts(tmp_path / "train.ts")
    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "train.ts"\nepochs = 1\nunits = [5, 3]\nseed = 2\n'
                   'batch-size = 8\nout = "from_config.rnnkit"\n')
    code, out, err = run_cli(capsys, "train", "--config", cfg, "--units", "4", "--json",
                             "--quiet")
    assert code == 0, err
    rec = last_json(out)
    s = rec["settings"]
    assert s["units"] == "4"                    # the flag wins over the file
    assert s["epochs"] == 1 and s["batch_size"] == 8 and s["seed"] == 2  # from the file
    assert (tmp_path / "from_config.rnnkit").exists()   # paths relative to the config file
    assert rec["epochs_run"] == 1


def test_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    code, _, err = run_cli(capsys, "train", "--config", bad)
    assert code == 2 and "bad.toml" in err and "line 1" in err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("epochz = 3\n")
    code, _, err = run_cli(capsys, "train", "--config", unknown)
    assert code == 2 and "epochz" in err and "valid keys" in err
    typed = tmp_path / "typed.toml"
    typed.write_text('epochs = "many"\n')
    code, _, err = run_cli(capsys, "train", "--config", typed)
    assert code == 2 and "'epochs' must be an integer" in err


# ------------------------------------------------------------------------------- bad input
def test_malformed_ts_names_file_and_line(tmp_path, capsys):
    path = write_ts(tmp_path / "broken.ts", n_per_class=2)
    lines = path.read_text().splitlines()
    lines[11] = "1,2,3:low"                    # one dimension missing on line 12
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", path, *TINY)
    assert code == 1
    assert "broken.ts line 12" in err


def test_malformed_csv_names_file_and_line(tmp_path, capsys):
    path = write_csv(tmp_path / "bad.csv", n=30)
    lines = path.read_text().splitlines()
    lines[5] = "2000-05,lots"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", path, *TINY)
    assert code == 1
    assert "bad.csv line 6" in err and "'lots'" in err


def test_bad_arguments_give_clear_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "missing.ts")
    assert code == 2 and "missing.ts" in err and "does not exist" in err
    code, _, err = run_cli(capsys, "train", "--data", "builtin:nope")
    assert code == 2 and "builtin:japanese_vowels" in err
    odd = tmp_path / "data.xyz"
    odd.write_text("1\n")
    code, _, err = run_cli(capsys, "train", "--data", odd)
    assert code == 2 and "--task" in err
    code, _, err = run_cli(capsys, "train", "--cell", "transformer")
    assert code == 2 and "invalid choice" in err
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "nothing.rnnkit")
    assert code == 2 and "nothing.rnnkit" in err
    junk = tmp_path / "junk.rnnkit"
    junk.write_bytes(b"\x00" * 64)
    code, _, err = run_cli(capsys, "info", junk)
    assert code == 1 and "junk.rnnkit" in err  # an invalid model file: status 1 (docs/cli.md)
    code, _, err = run_cli(capsys, "train", "--data", "builtin:shakespeare", "--horizon", "3")
    assert code == 2 and "--horizon" in err and "forecast" in err


# ------------------------------------------------------------------------------- regress
def test_regress_from_target_label_ts(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = ["@problemName TinyReg", "@timeStamps false", "@univariate true",
             "@equalLength false", "@targetLabel true", "@data"]
    for _ in range(30):
        v = rng.normal(size=int(rng.integers(3, 7)))
        lines.append(",".join(f"{a:.3f}" for a in v) + f":{100 + 10 * v.sum():.3f}")
    path = tmp_path / "reg.ts"
    path.write_text("\n".join(lines) + "\n")
    model = tmp_path / "reg.rnnkit"
    code, out, err = run_cli(capsys, "train", "--data", path, "--out", model, *TINY)
    assert code == 0, err
    rec = last_json(out)
    assert rec["task"] == "regress"             # inferred from @targetLabel true
    assert {"loss", "mse", "mae"} == set(rec["test"])
    code, out, err = run_cli(capsys, "predict", model, "--data", path)
    assert code == 0, err
    assert out.splitlines()[0] == "index,prediction_0" and len(out.splitlines()) == 31
