"""Tests for ``rnnkit.data``: built-in datasets, readers and preprocessing."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit.data as rdata
from rnnkit.data import (
    BUILTIN_DATASETS,
    CharVocab,
    CSVSeries,
    StandardScaler,
    WordVocab,
    adding_problem,
    load_airline,
    load_builtin,
    load_csv,
    load_japanese_vowels,
    load_shakespeare,
    load_ts,
    make_windows,
    pad_sequences,
    train_test_split_last,
)

DATA_DIR = Path(rdata.__file__).parent
BUILTIN_DIR = DATA_DIR / "builtin"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# Japanese Vowels
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def japanese_vowels():
    return load_japanese_vowels()


def test_japanese_vowels_shapes(japanese_vowels):
    x_train, y_train, x_test, y_test = japanese_vowels
    assert len(x_train) == 270 and len(x_test) == 370
    assert y_train.shape == (270,) and y_test.shape == (370,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for x in x_train + x_test:
        assert x.dtype == np.float32
        assert x.ndim == 2 and x.shape[1] == 12
        assert 7 <= x.shape[0] <= 29
        assert np.isfinite(x).all()
    lengths = [len(x) for x in x_train + x_test]
    assert min(lengths) == 7 and max(lengths) == 29
    assert len(set(lengths)) > 10  # genuinely unequal lengths


def test_japanese_vowels_labels(japanese_vowels):
    _, y_train, _, y_test = japanese_vowels
    assert sorted(set(y_train.tolist())) == list(range(9))
    assert sorted(set(y_test.tolist())) == list(range(9))
    assert np.bincount(y_train).tolist() == [30] * 9
    test_counts = np.bincount(y_test)
    assert test_counts.sum() == 370
    assert test_counts.min() == 24 and test_counts.max() == 88


def test_japanese_vowels_layout_is_time_major(japanese_vowels):
    # The first data line of the training file starts with dimension 1 =
    # "1.860936,1.891651,..." and dimension 2 = "-0.207383,...", 20 values each.
    x0 = japanese_vowels[0][0]
    assert x0.shape == (20, 12)
    np.testing.assert_allclose(x0[0, 0], 1.860936, rtol=1e-6)
    np.testing.assert_allclose(x0[1, 0], 1.891651, rtol=1e-6)
    np.testing.assert_allclose(x0[0, 1], -0.207383, rtol=1e-6)


def test_japanese_vowels_raw_labels_are_strings():
    X, y = load_ts(BUILTIN_DIR / "japanese_vowels" / "JapaneseVowels_TRAIN.ts")
    assert len(X) == 270
    assert y.dtype.kind == "U"
    assert sorted(set(y.tolist())) == [str(i) for i in range(1, 10)]


# --------------------------------------------------------------------------
# .ts reader
# --------------------------------------------------------------------------


def ts_text(X, y, *, labels=None, equal_length=None, extra_header="") -> str:
    """Serialise (T_i, C) arrays to .ts text (NaN is written as '?')."""
    C = X[0].shape[1]
    if equal_length is None:
        equal_length = len({len(x) for x in X}) == 1
    lines = [
        "# written by the rnnkit test-suite",
        "@problemName RoundTrip",
        "@timeStamps false",
        f"@missing {'true' if any(np.isnan(x).any() for x in X) else 'false'}",
        f"@univariate {'true' if C == 1 else 'false'}",
        f"@dimensions {C}",
        f"@equalLength {'true' if equal_length else 'false'}",
    ]
    if equal_length:
        lines.append(f"@seriesLength {len(X[0])}")
    if y is not None:
        lines.append("@classLabel true " + " ".join(labels or sorted(set(y))))
    else:
        lines.append("@classLabel false")
    if extra_header:
        lines.append(extra_header)
    lines.append("@data")
    for i, x in enumerate(X):
        dims = [",".join("?" if np.isnan(v) else repr(float(v)) for v in x[:, c]) for c in range(C)]
        lines.append(":".join(dims + ([y[i]] if y is not None else [])))
    return "\n".join(lines) + "\n"


def assert_series_equal(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32
        assert g.shape == e.shape
        np.testing.assert_array_equal(g, e.astype(np.float32))


@pytest.mark.parametrize(
    ("lengths", "channels", "labels", "with_missing"),
    [
        ([5, 5, 5], 1, ["1", "2", "1"], False),  # univariate, equal length
        ([3, 8, 1, 6], 3, ["1", "2", "3", "2"], False),  # multivariate, unequal
        ([4, 4], 2, ["cat", "dog"], False),  # string labels
        ([6, 2, 4], 2, ["a", "b", "a"], True),  # missing values
        ([7, 7], 1, None, False),  # no labels
    ],
)
def test_ts_round_trip(tmp_path, lengths, channels, labels, with_missing):
    rng = np.random.default_rng(sum(lengths) + channels)
    X = [rng.normal(size=(n, channels)).astype(np.float32) for n in lengths]
    if with_missing:
        X[0][1, 0] = np.nan
        X[2][-1, 1] = np.nan
    path = write(tmp_path, "rt.ts", ts_text(X, labels))
    got_X, got_y = load_ts(path)
    assert_series_equal(got_X, X)
    if labels is None:
        assert got_y is None
    else:
        assert got_y.dtype.kind == "U"
        assert got_y.tolist() == labels


def test_ts_univariate_equal_length_handwritten(tmp_path):
    path = write(
        tmp_path,
        "uni.ts",
        "#comment\n\n@problemName Uni\n@timeStamps false\n@missing false\n"
        "@univariate true\n@equalLength true\n@seriesLength 4\n@classLabel true 1 2\n"
        "@data\n1,2,3,4:1\n\n0.5, -1e-3 ,3,4.25:2\n",
    )
    X, y = load_ts(path)
    assert [x.shape for x in X] == [(4, 1), (4, 1)]
    np.testing.assert_array_equal(X[1][:, 0], np.array([0.5, -1e-3, 3, 4.25], dtype=np.float32))
    assert y.tolist() == ["1", "2"]


def test_ts_multivariate_unequal_handwritten(tmp_path):
    path = write(
        tmp_path,
        "multi.ts",
        "@problemName Multi\n@univariate false\n@dimensions 2\n@equalLength false\n"
        "@classLabel true up down\n@data\n1,2,3:4,5,6:up\n7,?:9,10:down\n",
    )
    X, y = load_ts(path)
    np.testing.assert_array_equal(X[0], [[1, 4], [2, 5], [3, 6]])
    assert X[1].shape == (2, 2)
    assert np.isnan(X[1][1, 0]) and X[1][1, 1] == 10
    assert y.tolist() == ["up", "down"]


def test_ts_tags_are_case_insensitive_and_dimensions_inferred(tmp_path):
    # Older archive files have no @dimensions tag: infer it from the first series.
    path = write(
        tmp_path,
        "old.ts",
        "@PROBLEMNAME old\n@UNIVARIATE false\n@EQUALLENGTH false\n@CLASSLABEL TRUE x y\n"
        "@DATA\n1,2:3,4:5,6:x\n7:8:9:y\n",
    )
    X, y = load_ts(path)
    assert [x.shape for x in X] == [(2, 3), (1, 3)]
    assert y.tolist() == ["x", "y"]


def test_ts_regression_target(tmp_path):
    path = write(
        tmp_path,
        "reg.ts",
        "@problemName Reg\n@univariate true\n@equalLength true\n@targetLabel true\n"
        "@data\n1,2,3:0.5\n4,5,6:-2.25\n",
    )
    X, y = load_ts(path)
    assert len(X) == 2
    assert y.tolist() == ["0.5", "-2.25"]
    np.testing.assert_allclose(y.astype(float), [0.5, -2.25])


HEADER = (
    "# a comment\n"  # line 1
    "@problemName Bad\n"  # line 2
    "@univariate false\n"  # line 3
    "@dimensions 2\n"  # line 4
    "@equalLength false\n"  # line 5
    "@classLabel true a b\n"  # line 6
    "@data\n"  # line 7
    "1,2:3,4:a\n"  # line 8
)


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        (HEADER + "1,2:b\n", 9, "expected 2 dimension(s) + class label"),
        (HEADER + "1,2:3,4:5,6:b\n", 9, "got 4"),
        (HEADER + "1,2:3,4:c\n", 9, "class label 'c' is not among the labels declared"),
        (HEADER + "1,x:3,4:a\n", 9, "'x' is not a number"),
        (HEADER + "1,,2:3,4,5:a\n", 9, "is empty"),
        (HEADER + "1,2,3:3,4:a\n", 9, "dimension 2 has 2 values but dimension 1 has 3"),
        (HEADER + "1,2:3,4:\n", 9, "class label (last ':'-separated field) is empty"),
        (HEADER + "@seriesLength 3\n", 9, "after '@data'"),
        (HEADER.replace("@data\n", "").replace("1,2:3,4:a\n", ""), 6, "without an '@data' line"),
        (HEADER.replace("@data\n", ""), 7, "found data before the '@data' line"),
        (HEADER.replace("@data\n1,2:3,4:a\n", "@data\n"), 7, "no series found"),
        (HEADER.replace("@problemName Bad", "@colour blue"), 2, "unknown header tag '@colour'"),
        (HEADER.replace("@univariate false", "@univariate maybe"), 3, "expects 'true' or 'false'"),
        (HEADER.replace("@dimensions 2", "@dimensions two"), 4, "positive integer"),
        (HEADER.replace("@equalLength false", "@timeStamps true"), 5, "not supported"),
        (HEADER.replace("@classLabel true a b", "@classLabel true"), 6, "list of class labels"),
        (HEADER.replace("@classLabel true a b", "@classLabel true a a b"), 6, "more than once"),
        (HEADER.replace("@problemName Bad", "@dimensions 2"), 4, "duplicate @dimensions"),
        (HEADER.replace("@univariate false", "@univariate true"), 7, "'@univariate true' but"),
        (
            HEADER.replace("@equalLength false", "@equalLength true\n@seriesLength 2")
            + "1,2,3:4,5,6:a\n",
            10,
            "require 2",
        ),
        (
            HEADER.replace("@equalLength false", "@equalLength true") + "1:2:b\n",
            9,
            "the first series on line 8",
        ),
        (
            HEADER.replace("@classLabel true a b", "@targetLabel true"),
            8,
            "regression target 'a' is not a number",
        ),
    ],
)
def test_ts_malformed(tmp_path, body, line, fragment):
    path = write(tmp_path, "bad.ts", body)
    with pytest.raises(ValueError) as info:
        load_ts(path)
    message = str(info.value)
    assert message.startswith(f"bad.ts line {line}: "), message
    assert fragment in message


def test_ts_error_message_example(tmp_path):
    # A Japanese-Vowels-like file whose series lacks one of its 12 dimensions.
    good = load_ts(BUILTIN_DIR / "japanese_vowels" / "JapaneseVowels_TRAIN.ts")
    source = (BUILTIN_DIR / "japanese_vowels" / "JapaneseVowels_TRAIN.ts").read_text()
    lines = source.splitlines()
    data_start = lines.index("@data") + 1
    fields = lines[data_start + 2].split(":")
    lines[data_start + 2] = ":".join(fields[:5] + fields[6:])  # drop dimension 6
    path = write(tmp_path, "JapaneseVowels_TRAIN.ts", "\n".join(lines) + "\n")
    with pytest.raises(ValueError) as info:
        load_ts(path)
    message = str(info.value)
    assert message.startswith(f"JapaneseVowels_TRAIN.ts line {data_start + 3}: ")
    assert "expected 12 dimension(s) + class label" in message
    assert "got 12" in message  # 11 dimensions + label
    assert len(good[0]) == 270


def test_ts_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_ts(tmp_path / "nope.ts")


# --------------------------------------------------------------------------
# pad_sequences
# --------------------------------------------------------------------------

SEQS = [[1, 2, 3], [4, 5], [6]]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, [[1, 2, 3], [0, 4, 5], [0, 0, 6]]),
        ({"padding": "post"}, [[1, 2, 3], [4, 5, 0], [6, 0, 0]]),
        ({"maxlen": 2}, [[2, 3], [4, 5], [0, 6]]),
        ({"maxlen": 2, "truncating": "post"}, [[1, 2], [4, 5], [0, 6]]),
        ({"maxlen": 2, "padding": "post", "truncating": "post"}, [[1, 2], [4, 5], [6, 0]]),
        ({"maxlen": 2, "padding": "post"}, [[2, 3], [4, 5], [6, 0]]),
        ({"maxlen": 4, "value": -1}, [[-1, 1, 2, 3], [-1, -1, 4, 5], [-1, -1, -1, 6]]),
        ({"maxlen": 1}, [[3], [5], [6]]),
    ],
)
def test_pad_sequences_hand_computed(kwargs, expected):
    out = pad_sequences(SEQS, **kwargs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, expected)


def test_pad_sequences_multichannel():
    a = np.arange(6, dtype=np.float32).reshape(3, 2)  # [[0,1],[2,3],[4,5]]
    b = np.array([[9, 9]], dtype=np.float32)
    out = pad_sequences([a, b], dtype="float32", value=-1.0)
    assert out.shape == (2, 3, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[1], [[-1, -1], [-1, -1], [9, 9]])
    post = pad_sequences([a, b], maxlen=2, dtype="float32", padding="post", truncating="post")
    np.testing.assert_array_equal(post[0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(post[1], [[9, 9], [0, 0]])


def test_pad_sequences_keras_quirks():
    # Empty sequences become padding; the default int32 dtype truncates floats.
    np.testing.assert_array_equal(pad_sequences([[], [1, 2]]), [[0, 0], [1, 2]])
    np.testing.assert_array_equal(pad_sequences([[1.7, 2.2]]), [[1, 2]])
    assert pad_sequences([[], []]).shape == (2, 0)
    assert pad_sequences(np.ones((2, 3))).shape == (2, 3)
    assert pad_sequences([["a", "b"], ["c"]], dtype=object, value="").tolist() == [
        ["a", "b"],
        ["", "c"],
    ]


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        ((SEQS,), {"padding": "middle"}, "`padding` must be 'pre' or 'post', got 'middle'"),
        ((SEQS,), {"truncating": "both"}, "`truncating` must be 'pre' or 'post', got 'both'"),
        (([],), {}, "`sequences` is empty"),
        (([np.zeros((2, 3)), np.zeros((2, 4))],), {}, "time-step shape (4,)"),
        (([[1, 2], 3],), {}, "`sequences[1]` is not a sequence"),
        ((SEQS,), {"value": "x"}, "not compatible with the string padding value"),
        ((SEQS,), {"maxlen": 0}, "`maxlen` must be an integer >= 1"),
    ],
)
def test_pad_sequences_errors(args, kwargs, fragment):
    with pytest.raises(ValueError) as info:
        pad_sequences(*args, **kwargs)
    assert fragment in str(info.value)


def test_pad_sequences_matches_keras(monkeypatch):
    # Keras 3 needs a backend; use torch (a test dependency) unless one is already chosen.
    if "keras" not in sys.modules and "KERAS_BACKEND" not in os.environ:
        monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras_utils = pytest.importorskip("keras.utils")
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=n).tolist() for n in (0, 1, 3, 7, 12)]
    feats = [rng.normal(size=(n, 3)) for n in (2, 5, 9)]
    for maxlen in (None, 1, 4, 20):
        for padding in ("pre", "post"):
            for truncating in ("pre", "post"):
                kw = {"maxlen": maxlen, "padding": padding, "truncating": truncating}
                np.testing.assert_array_equal(
                    pad_sequences(seqs, **kw), keras_utils.pad_sequences(seqs, **kw)
                )
                np.testing.assert_array_equal(
                    pad_sequences(feats, dtype="float32", value=-2.0, **kw),
                    keras_utils.pad_sequences(feats, dtype="float32", value=-2.0, **kw),
                )


# --------------------------------------------------------------------------
# Adding problem
# --------------------------------------------------------------------------


@pytest.mark.parametrize("T", [2, 5, 50])
def test_adding_problem_structure(T):
    x, y = adding_problem(500, T, seed=1)
    assert x.shape == (500, T, 2) and x.dtype == np.float32
    assert y.shape == (500, 1) and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers).tolist()) <= {0.0, 1.0}
    half = T // 2
    np.testing.assert_array_equal(markers.sum(axis=1), 2)
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1)
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1)
    expected = np.array(
        [values[i, markers[i] == 1].sum(dtype=np.float32) for i in range(len(x))],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(y[:, 0], expected)


def test_adding_problem_markers_cover_both_halves():
    x, _ = adding_problem(4000, 20, seed=2)
    positions = np.argwhere(x[..., 1] == 1)[:, 1]
    assert set(positions.tolist()) == set(range(20))


def test_adding_problem_baseline_mse():
    _, y = adding_problem(200_000, 10, seed=3)
    mse = float(np.mean((y - 1.0) ** 2))
    assert mse == pytest.approx(1 / 6, abs=0.003)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.005)


def test_adding_problem_is_deterministic():
    a = adding_problem(50, 30, seed=123)
    b = adding_problem(50, 30, seed=123)
    c = adding_problem(50, 30, seed=124)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    ("n", "T", "error"),
    [(0, 10, ValueError), (10, 1, ValueError), (10, 2.5, TypeError), (True, 10, TypeError)],
)
def test_adding_problem_bad_arguments(n, T, error):
    with pytest.raises(error):
        adding_problem(n, T)


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------

CSV_TEXT = (
    "Date,temp,note,rain\n"  # line 1
    "2020-01,1.5,sunny,0\n"  # line 2
    '2020-02,,"cold, dry",NA\n'  # line 3
    "\n"  # line 4 (blank, skipped)
    "2020-03, 3 ,wet,?\n"  # line 5
)


def test_load_csv_columns_dates_and_missing(tmp_path):
    path = write(tmp_path, "weather.csv", CSV_TEXT)
    s = load_csv(path, columns=["rain", "temp"], date_column="Date")
    assert isinstance(s, CSVSeries)
    assert s.columns == ["rain", "temp"]
    assert s.dates == ["2020-01", "2020-02", "2020-03"]
    assert s.values.shape == (3, 2) and s.values.dtype == np.float32
    assert len(s) == 3
    np.testing.assert_array_equal(s.values[:, 1], [1.5, np.nan, 3.0])
    assert s.values[0, 0] == 0 and np.isnan(s.values[1:, 0]).all()


def test_load_csv_defaults_and_delimiter(tmp_path):
    path = write(tmp_path, "semi.csv", "a;b\n1;2\n3;4\n")
    s = load_csv(path, delimiter=";")
    assert s.columns == ["a", "b"] and s.dates is None
    np.testing.assert_array_equal(s.values, [[1, 2], [3, 4]])
    assert load_csv(path, columns="b", delimiter=";").values.shape == (2, 1)


@pytest.mark.parametrize(
    ("text", "kwargs", "fragment"),
    [
        (
            CSV_TEXT,
            {"date_column": "Date"},
            "weather.csv line 2: column 'note' has the non-numeric value 'sunny'",
        ),
        (
            CSV_TEXT.replace(",,", ",warm,"),
            {"columns": ["temp"]},
            "weather.csv line 3: column 'temp'",
        ),
        (CSV_TEXT, {"columns": ["pressure"]}, "column 'pressure' not found in the header"),
        (CSV_TEXT, {"date_column": "Day"}, "date_column 'Day' not found"),
        (CSV_TEXT + "2020-04,1\n", {"columns": ["temp"]}, "weather.csv line 6: expected 4 fields"),
        ("Date,x,x\n1,2,3\n", {}, "column name 'x' appears twice"),
        ("Date,temp\n", {}, "no data rows"),
        ("", {}, "the file is empty"),
        ("Date;temp\n1;2\n", {"columns": ["temp"]}, "another delimiter"),
        (CSV_TEXT, {"delimiter": ",,"}, "single character"),
    ],
)
def test_load_csv_errors(tmp_path, text, kwargs, fragment):
    path = write(tmp_path, "weather.csv", text)
    with pytest.raises(ValueError) as info:
        load_csv(path, **kwargs)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------


def test_char_vocab_round_trip():
    text = "to be, or not to be"
    vocab = CharVocab(text)
    assert vocab.size == 2 + len(set(text))
    assert vocab.tokens[:2] == ["<pad>", "<unk>"]
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and ids.shape == (len(text),)
    assert ids.min() >= 2
    assert vocab.decode(ids) == text
    assert vocab.encode("toz").tolist() == [vocab.token_to_id("t"), vocab.token_to_id("o"), 1]
    assert vocab.decode(vocab.encode("toz")) == "to<unk>"
    # Padding (id 0) is skipped, so a padded row decodes to the original text.
    row = pad_sequences([vocab.encode("not")], maxlen=6)[0]
    assert row.tolist()[:3] == [0, 0, 0]
    assert vocab.decode(row) == "not"


def test_char_vocab_config_json_round_trip():
    vocab = CharVocab(["abc", "cde"])
    config = json.loads(json.dumps(vocab.to_config()))
    restored = CharVocab.from_config(config)
    assert restored == vocab
    assert restored.encode("eadx").tolist() == vocab.encode("eadx").tolist()


def test_char_vocab_on_shakespeare():
    text = load_shakespeare()
    vocab = CharVocab(text)
    assert 40 < vocab.size < 100
    assert vocab.decode(vocab.encode(text)) == text


def test_word_vocab():
    vocab = WordVocab("The cat saw the dog. The dog ran!")
    assert vocab.tokens[:5] == ["<pad>", "<unk>", "the", "dog", "cat"]  # by frequency
    assert vocab.tokenize("O'er the hills, far") == ["o'er", "the", "hills", ",", "far"]
    ids = vocab.encode("the cat ate the dog")
    assert ids.tolist() == [2, 4, 1, 2, 3]
    assert vocab.decode(ids) == "the cat <unk> the dog"
    text = "the dog saw the cat."
    assert vocab.decode(vocab.encode(text)) == " ".join(vocab.tokenize(text))


def test_word_vocab_options_and_config():
    text = "a a a b b c"
    assert WordVocab(text, min_freq=2).tokens == ["<pad>", "<unk>", "a", "b"]
    assert WordVocab(text, max_size=3).tokens == ["<pad>", "<unk>", "a"]
    cased = WordVocab("Hi hi", lower=False)
    assert cased.tokens == ["<pad>", "<unk>", "Hi", "hi"]
    config = json.loads(json.dumps(cased.to_config()))
    assert config["lower"] is False
    restored = WordVocab.from_config(config)
    assert restored == cased and restored.lower is False
    assert restored.encode("Hi HI").tolist() == [2, 1]


def test_vocab_errors():
    vocab = CharVocab("ab")
    with pytest.raises(ValueError, match="out of range; valid ids are 0 .. 3"):
        vocab.decode([2, 4])
    with pytest.raises(ValueError, match="1-D sequence"):
        vocab.decode([[2, 3]])
    with pytest.raises(RuntimeError, match="call fit"):
        CharVocab().encode("a")
    with pytest.raises(ValueError, match="text is empty"):
        CharVocab("")
    with pytest.raises(ValueError, match="config is for 'CharVocab'"):
        WordVocab.from_config(vocab.to_config())
    with pytest.raises(ValueError, match="must start with"):
        CharVocab.from_config({"tokens": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="min_freq=5"):
        WordVocab("a b", min_freq=5)


# --------------------------------------------------------------------------
# Windows and chronological split
# --------------------------------------------------------------------------


def test_make_windows_univariate():
    X, Y = make_windows(np.arange(10, dtype=np.float64), window=3, horizon=2)
    assert X.shape == (6, 3, 1) and Y.shape == (6, 2)
    assert X.dtype == np.float64
    for i in range(6):
        np.testing.assert_array_equal(X[i, :, 0], [i, i + 1, i + 2])
        np.testing.assert_array_equal(Y[i], [i + 3, i + 4])


def test_make_windows_stride_multichannel_and_target():
    series = np.stack([np.arange(10), 100 + np.arange(10)], axis=1).astype(np.float32)
    X, Y = make_windows(series, window=4, horizon=1, stride=3, target_column=1)
    assert X.shape == (2, 4, 2) and Y.shape == (2, 1)  # starts 0 and 3
    np.testing.assert_array_equal(X[1], series[3:7])
    np.testing.assert_array_equal(Y[:, 0], [104, 107])
    _, Y_last = make_windows(series, window=4, horizon=1, stride=3, target_column=-1)
    np.testing.assert_array_equal(Y_last, Y)
    # Outputs are copies: editing them leaves the series untouched.
    X[0, 0, 0] = -5
    assert series[0, 0] == 0


def test_make_windows_exact_length_and_int_input():
    X, Y = make_windows(np.array([1, 2, 3, 4], dtype=np.int32), window=3, horizon=1)
    assert X.shape == (1, 3, 1) and X.dtype == np.int32  # token ids stay integers
    assert Y.tolist() == [[4]]
    with pytest.raises(ValueError, match="must be numeric"):
        make_windows(np.array(["a", "b", "c"]), window=1, horizon=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        (
            {"window": 8, "horizon": 3},
            ValueError,
            "has 10 time steps, but window=8 + horizon=3 needs at least 11",
        ),
        ({"window": 0, "horizon": 1}, ValueError, "`window` must be an integer >= 1"),
        ({"window": 2, "horizon": 1, "stride": 0}, ValueError, "`stride`"),
        ({"window": 2, "horizon": 1, "target_column": 1}, ValueError, "out of range"),
        ({"window": 2.0, "horizon": 1}, TypeError, "`window` must be an integer"),
    ],
)
def test_make_windows_errors(kwargs, error, fragment):
    with pytest.raises(error) as info:
        make_windows(np.arange(10.0), **kwargs)
    assert fragment in str(info.value)


def test_make_windows_rejects_batches():
    with pytest.raises(ValueError, match=r"shape \(T,\) or \(T, C\)"):
        make_windows(np.zeros((2, 10, 1)), window=2, horizon=1)


def test_train_test_split_last():
    series = load_airline()
    train, test = train_test_split_last(series, horizon=12)
    assert train.shape == (132,) and test.shape == (12,)
    np.testing.assert_array_equal(np.concatenate([train, test]), series)
    assert test[-1] == 432
    multi = np.arange(20).reshape(10, 2)
    tr, te = train_test_split_last(multi, 3)
    np.testing.assert_array_equal(te, multi[7:])
    with pytest.raises(ValueError, match="leaves no training data"):
        train_test_split_last(multi, 10)
    with pytest.raises(ValueError, match="horizon"):
        train_test_split_last(multi, 0)


# --------------------------------------------------------------------------
# StandardScaler
# --------------------------------------------------------------------------


def test_scaler_batch_fit_transform_inverse():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(50, 20, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 0.0]).astype(np.float32)
    scaler = StandardScaler().fit(X)
    np.testing.assert_allclose(scaler.mean_, X.reshape(-1, 3).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        scaler.scale_, X.reshape(-1, 3).astype(np.float64).std(axis=0), rtol=1e-5
    )
    Z = scaler.transform(X)
    assert Z.shape == X.shape and Z.dtype == np.float32
    np.testing.assert_allclose(Z.reshape(-1, 3).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.reshape(-1, 3).std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-5, atol=1e-5)


def test_scaler_list_of_unequal_series(japanese_vowels):
    x_train, _, x_test, _ = japanese_vowels
    scaler = StandardScaler().fit(x_train)
    flat = np.concatenate(x_train).astype(np.float64)
    np.testing.assert_allclose(scaler.mean_, flat.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scaler.scale_, flat.std(axis=0), rtol=1e-6)
    z_test = scaler.transform(x_test)
    assert isinstance(z_test, list) and len(z_test) == len(x_test)
    assert all(a.shape == b.shape for a, b in zip(z_test, x_test, strict=True))
    back = scaler.inverse_transform(z_test)
    np.testing.assert_allclose(back[5], x_test[5], rtol=1e-5, atol=1e-5)


def test_scaler_ignores_nan():
    X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, np.nan]])
    scaler = StandardScaler().fit(X)
    np.testing.assert_allclose(scaler.mean_, [2.0, 3.0])
    np.testing.assert_allclose(scaler.scale_, [1.0, 1.0])
    Z = scaler.transform(X)
    assert np.isnan(Z[1, 0]) and np.isnan(Z[2, 1])
    np.testing.assert_allclose(Z[0], [-1.0, -1.0])


def test_scaler_zero_variance_channel():
    X = np.zeros((4, 5, 2), dtype=np.float32)
    X[..., 0] = 0.1  # constant, not exactly representable
    X[..., 1] = np.arange(5)
    scaler = StandardScaler().fit(X)
    assert scaler.scale_[0] == 1.0
    Z = scaler.transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z[..., 0], 0, atol=1e-7)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, atol=1e-6)


def test_scaler_univariate_and_config():
    y = load_airline()
    scaler = StandardScaler().fit(y[:-12])
    z = scaler.transform(y)
    assert z.shape == (144,) and z.dtype == np.float32
    config = json.loads(json.dumps(scaler.to_config()))
    restored = StandardScaler.from_config(config)
    np.testing.assert_array_equal(restored.transform(y), z)
    np.testing.assert_allclose(restored.inverse_transform(z), y, rtol=1e-5)


def test_scaler_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(np.zeros((3, 2)))
    scaler = StandardScaler().fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="fitted on 2"):
        scaler.transform(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"channel\(s\) \[1\] have no values other than NaN"):
        StandardScaler().fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(ValueError, match="same number of channels"):
        StandardScaler().fit([np.ones((3, 2)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="positive"):
        StandardScaler.from_config({"mean": [0.0], "scale": [0.0]})


# --------------------------------------------------------------------------
# Airline, Shakespeare, dispatcher, shipped files
# --------------------------------------------------------------------------


def test_airline():
    y = load_airline()
    assert y.shape == (144,) and y.dtype == np.float32
    assert y[0] == 112 and y[-1] == 432
    assert y.max() == 622
    values, dates = load_airline(return_dates=True)
    np.testing.assert_array_equal(values, y)
    assert len(dates) == 144 and dates[0] == "1949-01" and dates[-1] == "1960-12"


def test_shakespeare():
    text = load_shakespeare()
    assert isinstance(text, str) and 90_000 < len(text) < 110_000
    assert text.startswith("THE TEMPEST")
    assert "PROSPERO" in text and "\r" not in text
    assert "gutenberg" not in text.lower()


def test_load_builtin_dispatch():
    x_train, y_train, x_test, y_test = load_builtin("japanese_vowels")
    assert len(x_train) == 270 and len(y_test) == 370
    assert load_builtin("Airline").shape == (144,)
    assert isinstance(load_builtin("shakespeare"), str)
    x, y = load_builtin("adding", n_samples=16, T=8, seed=0)
    assert x.shape == (16, 8, 2) and y.shape == (16, 1)
    np.testing.assert_array_equal(x, adding_problem(16, 8, seed=0)[0])
    assert set(BUILTIN_DATASETS) == {"japanese_vowels", "adding", "airline", "shakespeare"}


@pytest.mark.parametrize("name", ["mnist", "", None, 3])
def test_load_builtin_unknown_name(name):
    with pytest.raises(ValueError) as info:
        load_builtin(name)
    message = str(info.value)
    for valid in BUILTIN_DATASETS:
        assert valid in message


def test_builtin_files_are_small_and_licensed():
    files = [p for p in BUILTIN_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    licences = (BUILTIN_DIR / "LICENSES.md").read_text(encoding="utf-8")
    for needle in ("JapaneseVowels_TRAIN.ts", "airline.csv", "tempest.txt", "CC BY 4.0", "Kudo"):
        assert needle in licences


def test_data_package_depends_only_on_numpy_and_stdlib():
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    for source in DATA_DIR.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import: must stay inside rnnkit.data
                    assert node.level == 1, f"{source.name} imports outside rnnkit.data"
                    continue
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{source.name} imports {root}"


def test_public_api_is_documented():
    for name in rdata.__all__:
        obj = getattr(rdata, name)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__) > 80, name


@pytest.mark.parametrize(
    "module",
    ["_builtin", "_csvfile", "_scaling", "_sequences", "_synthetic", "_text", "_ts", "_windows"],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"rnnkit.data.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
