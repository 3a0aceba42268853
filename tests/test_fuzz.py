"""Fuzz suite (issue 20): mutated model files and hostile CLI argument vectors.

Every case must end in success or in rnnkit's own error (``RnnkitFileError`` from the
loader; exit status 1 or 2 with one short ``rnnkit CMD: error:`` line from the CLI): never
another exception, never a message of 1 KB or more, never a hang (``CASE_SECONDS`` per case).

Files: one tiny model per task (classify, forecast, lm) is trained once; each example picks
a file and mutates 1-3 places of its header: any leaf of any JSON record (``config``,
``compile``, ``training``, ``preprocessing``, ``weight_layers``), the plain metadata
strings, or any field of any tensor entry (dtype, shape, offsets), by deleting it or setting
a hostile value. The file then goes through ``load_model`` and the ``info``, ``predict``
and ``evaluate`` commands. Argument vectors: a command, 1-4 options with values from a
hostile pool (NaN, inf, negatives, zero, huge, non-numbers) or small valid ones, and a
valid, missing or mutated model file, run in-process through ``rnnkit.cli.main``.

The number of cases tried is printed at the end of the module (``pytest -s``).
"""

import collections
import json
import os
import signal
import threading

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from modelfiles import JSON_RECORDS, join, leaves, make_models, split

import rnnkit
from rnnkit import RnnkitFileError
from rnnkit.cli import EXIT_DATA, EXIT_OK, EXIT_USAGE, main

CASE_SECONDS = 20
COUNTS = collections.Counter()
STATUS = collections.Counter()
#: Examples per test: 500 in CI (derandomized, so every run tries the same cases); set
#: RNNKIT_FUZZ_EXAMPLES for a longer campaign (then the examples are random).
EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize="RNNKIT_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = make_models(tmp_path_factory.mktemp("fuzz"))
    yield out
    print(f"\nfuzz: {COUNTS['files']} mutated model files ({COUNTS['file_loads_ok']} loaded, "
          f"{COUNTS['file_errors']} refused with RnnkitFileError), {COUNTS['cli_runs']} CLI "
          f"runs on them; {COUNTS['argv']} argument vectors (exit statuses "
          f"{dict(sorted(STATUS.items()))})")


class Hang(Exception):
    pass


class time_limit:
    """Fail a case that runs longer than ``seconds`` (SIGALRM; main thread only)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        self.armed = threading.current_thread() is threading.main_thread()
        if self.armed:
            def fire(signum, frame):
                raise Hang(f"case ran longer than {self.seconds} s")
            self.old = signal.signal(signal.SIGALRM, fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)


def run_cli(capsys, argv):
    """``main(argv)`` in-process under the time limit; checks the rnnkit error contract."""
    with time_limit(CASE_SECONDS):
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code in (EXIT_OK, EXIT_DATA, EXIT_USAGE), (argv, code, err[-3000:])
    assert "Traceback" not in err and "internal error" not in err, (argv, err[-3000:])
    if code != EXIT_OK:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert lines and "error:" in lines[-1], (argv, err[-3000:])
        assert len(lines[-1].encode("utf-8", "replace")) < 1024, (argv, lines[-1][:300])
    return code


# ----------------------------------------------------------------------------- file mutation
HOSTILE = (st.none() | st.booleans()
           | st.sampled_from([0, 1, -1, 2, 3, 7, 10**9, 2**31, 2**63, -(2**63), 10**30,
                              0.5, -0.5, 1e308, -1e308, 1e-300])
           | st.integers(-10, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=8)
           | st.sampled_from(["\ud800", "a" * 5000, "classify", "forecast", "lm", "regress",
                              "direct", "recursive", "LSTM", "F32", "I64", "PCG64", "adam",
                              "<pad>", "auto", "none"]))
VALUES = st.recursive(HOSTILE, lambda c: st.lists(c, max_size=4)
                      | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=6)


def _mutate(data, draw, n):
    """Apply ``n`` random edits to a header; returns the new file bytes."""
    header, body = split(data)
    meta = header.pop("__metadata__")
    doc = {"tensors": header,
           "meta": {k: json.loads(v) if k in JSON_RECORDS else v for k, v in meta.items()}}
    sections = [("tensors",), ("meta",)] + [("meta", k) for k in JSON_RECORDS
                                            if k in doc["meta"]]
    for _ in range(n):
        section = draw(st.sampled_from(sections + [("meta", "preprocessing")] * 3))
        paths = [p for p in leaves(doc, max_items=50)
                 if len(p) > len(section) and p[:len(section)] == section
                 and (len(section) == 2 or len(p) == 2 or p[0] == "tensors")]
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        value = parent[path[-1]]
        choice = draw(st.integers(0, 5))
        if choice == 0:
            del parent[path[-1]]
        elif choice == 1 and type(value) is int:     # nearby and far integers
            parent[path[-1]] = value + draw(st.sampled_from([-1, 1, -value - 1, 10**6,
                                                             value * 10**6]))
        elif choice == 2 and isinstance(value, list):
            parent[path[-1]] = value[:draw(st.integers(0, max(0, len(value) - 1)))]
        else:
            parent[path[-1]] = draw(VALUES)
    new_meta = {k: json.dumps(v) if k in JSON_RECORDS else v for k, v in doc["meta"].items()}
    return join({**doc["tensors"], "__metadata__": new_meta}, body)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_model_files(tmp_path, capsys, models, data):
    task = data.draw(st.sampled_from(sorted(models)))
    raw, dataset = models[task][0].read_bytes(), models[task][1]
    mutated = _mutate(raw, data.draw, data.draw(st.integers(1, 3)))
    p = tmp_path / "m.rnnkit"
    p.write_bytes(mutated)
    COUNTS["files"] += 1
    try:
        with time_limit(CASE_SECONDS):
            rnnkit.load_model(p)
        COUNTS["file_loads_ok"] += 1
    except RnnkitFileError as e:
        COUNTS["file_errors"] += 1
        assert len(str(e).encode("utf-8", "replace")) < 1024, str(e)[:300]
        assert "m.rnnkit" in str(e)
    for argv in (["info", p], ["info", p, "--json"], ["predict", p, "--data", dataset],
                 ["evaluate", p, "--data", dataset]):
        run_cli(capsys, argv)
        COUNTS["cli_runs"] += 1


# ----------------------------------------------------------------------------- argument vectors
BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "0", "-0.5", "1e400", "1e30", "999999999999",
               "abc", "", "0x10", "1,2", "--", "1.5"]
#: Options per command and small valid values for them (the rest of the pool is hostile).
OPTIONS = {
    "train": {"--units": ["2", "3,2"], "--layers": ["1"], "--epochs": ["1"],
              "--batch-size": ["8"], "--lr": ["0.01"], "--clipnorm": ["1"], "--seed": ["3"],
              "--dropout": ["0.1"], "--validation-split": ["0"], "--patience": ["1"],
              "--horizon": ["2"], "--window": ["4", "auto"], "--stride": ["2"],
              "--ensemble": ["1"], "--season": ["none", "4"], "--l2": ["0.001"],
              "--seq-len": ["8"], "--embedding-dim": ["3"], "--sample-length": ["5"],
              "--temperature": ["0.5"], "--cell": ["gru", "rnn", "lstm"]},
    "predict": {"--top": ["1", "3"]},
    "evaluate": {},
    "generate": {"--length": ["5"], "--temperature": ["0", "0.7"], "--top-k": ["2"],
                 "--seed": ["1"], "--prime": ["the ", "\u00e9"]},
    "info": {},
    "diagnose": {"--samples": ["4"], "--T": ["3"], "--seed": ["1"]},
}


@FUZZ
@given(data=st.data())
def test_fuzz_cli_argument_vectors(tmp_path, capsys, models, data):
    cmd = data.draw(st.sampled_from(sorted(OPTIONS)))
    task = data.draw(st.sampled_from(sorted(models)))
    raw, dataset = models[task][0].read_bytes(), models[task][1]
    model = tmp_path / "m.rnnkit"
    kind = data.draw(st.sampled_from(["valid", "valid", "missing", "mutated"]))
    if kind == "valid":
        model.write_bytes(raw)
    elif kind == "mutated":
        model.write_bytes(_mutate(raw, data.draw, 1))
    argv = [cmd]
    if cmd == "train":
        argv += ["--data", dataset, "--out", tmp_path / "t.rnnkit", "--quiet", "--epochs", "1",
                 "--units", "2"]
    else:
        argv += [model]
        if cmd in ("predict", "evaluate", "diagnose"):
            argv += ["--data", data.draw(st.sampled_from([str(dataset), "builtin:adding",
                                                          str(tmp_path / "none.csv")]))]
        if cmd == "diagnose":
            argv += ["--out", tmp_path / "d.png"]
    options = OPTIONS[cmd]
    if options:
        for flag in data.draw(st.lists(st.sampled_from(sorted(options)), min_size=1,
                                       max_size=4, unique=True)):
            pool = BAD_NUMBERS if data.draw(st.booleans()) else options[flag]
            argv += [flag, data.draw(st.sampled_from(pool))]
    if cmd == "diagnose":  # keep the measurement small: only hostile numbers get through
        assume(any(a in BAD_NUMBERS for a in argv[1:]))
    COUNTS["argv"] += 1
    STATUS[run_cli(capsys, argv)] += 1
