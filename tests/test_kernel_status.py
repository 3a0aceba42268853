"""`rnnkit info --kernels` and numba's compiled-code cache: what it reports, and that the
cache also works when the installed package directory is read-only (a per-user directory)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit import layers as L
from rnnkit.cli import main
from rnnkit.kernels.status import kernel_status


def _fn(st, name):
    return next(f for f in st["functions"] if f["name"] == name)


def test_status_reports_paths_and_what_this_process_used():
    m = rnnkit.Sequential([L.Input((None, 3)), L.LSTM(4)])
    m.predict(np.zeros((2, 5, 3), np.float32), verbose=0)
    st = kernel_status()
    assert st["fast_available"] and st["cells"]["LSTM"] == "compiled (rnnkit.kernels.lstm)"
    infer = _fn(st, "lstm._lstm_infer")
    assert infer["loaded"] + infer["compiled"] >= 1       # this process ran it
    assert infer["cached"] >= 1                           # and its code is on disk now
    assert not infer["parallel"] and _fn(st, "indrnn._fwd_par")["parallel"]
    assert os.path.isdir(st["cache_dir"])


def test_status_names_the_path_of_the_per_step_products(monkeypatch):
    from rnnkit.kernels import _packed
    on = kernel_status()["packed"]
    if _packed.AVAILABLE:
        assert on.startswith("rnnkit's packed micro-kernel") and f"x {_packed.NR}" in on
    else:
        assert on.startswith("OpenBLAS") and "lacks" in on
    monkeypatch.setattr(_packed, "ENABLED", False)
    off = kernel_status()["packed"]
    assert off.startswith("OpenBLAS") and ("RNNKIT_PACKED=0" in off or "lacks" in off)


def test_status_follows_the_kernel_mode(monkeypatch):
    from rnnkit import kernels
    monkeypatch.setattr(kernels, "_MODE", "reference")
    assert set(kernel_status()["cells"].values()) == {"reference NumPy"}


def test_cli_info_kernels(capsys):
    assert main(["info", "--kernels"]) == 0
    out = capsys.readouterr().out
    assert "LSTM" in out and "numba cache:" in out and "indrnn._fwd_par [parallel]" in out
    assert "float32 per-step and input products:" in out
    assert main(["info", "--kernels", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["kernels"]["mode"] in ("auto", "fast")


def test_cli_info_without_model_or_kernels_says_what_to_pass(capsys):
    assert main(["info"]) == 2
    assert "needs a MODEL file to describe" in capsys.readouterr().err


_SCRIPT = """
import json, numpy as np, rnnkit
from rnnkit import layers as L
from rnnkit.kernels.status import kernel_status
m = rnnkit.Sequential([L.Input((None, 3)), L.LSTM(4)])
m.predict(np.zeros((2, 5, 3), np.float32), verbose=0)
st = kernel_status()
f = next(f for f in st["functions"] if f["name"] == "lstm._lstm_infer")
print(json.dumps({"dir": st["cache_dir"], "why": st["cache_dir_reason"], "loaded": f["loaded"],
                  "compiled": f["compiled"]}))
"""


def _read_only_command(root, argv):
    """``argv`` run so that ``root`` cannot be written: chmod for a normal user; as root
    (which ignores permissions) inside a private read-only bind mount."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)
    if os.access(root, os.W_OK):
        if shutil.which("unshare") is None:
            pytest.fail("running as root without `unshare`: cannot make a read-only copy")
        script = (f"mount --bind {root} {root} && mount -o remount,bind,ro {root} && "
                  + " ".join(f"'{a}'" for a in argv))
        return ["unshare", "-m", "sh", "-c", script]
    return argv


def test_cache_works_when_the_install_is_read_only(tmp_path):
    src = os.path.dirname(os.path.dirname(rnnkit.__file__))
    install = tmp_path / "site"
    shutil.copytree(os.path.join(src, "rnnkit"), install / "rnnkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "usercache"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(install), XDG_CACHE_HOME=str(cache), HOME=str(tmp_path))
    cmd = _read_only_command(str(install), [sys.executable, "-c", _SCRIPT])
    try:
        runs = []
        for _ in range(2):
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
            assert p.returncode == 0, p.stderr
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    finally:
        for dirpath, _, _ in os.walk(install):
            os.chmod(dirpath, 0o755)
    first, second = runs
    assert first["dir"].startswith(str(cache)) and "per-user" in first["why"]
    assert first["compiled"] == 1 and first["loaded"] == 0
    assert second["compiled"] == 0 and second["loaded"] == 1     # the per-user cache served
    assert not (install / "rnnkit" / "kernels" / "__pycache__").exists()


def test_cached_kernels_are_dropped_when_a_kernel_source_changes(tmp_path):
    # numba's cache would keep lstm.py's kernels after an edit of _math.py (their inlined
    # sigmoid) since lstm.py itself did not change; rnnkit's digest of the sources catches it
    src = os.path.dirname(os.path.dirname(rnnkit.__file__))
    install = tmp_path / "site"
    shutil.copytree(os.path.join(src, "rnnkit"), install / "rnnkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(install), NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def run():
        p = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                           env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.strip().splitlines()[-1])

    assert run()["compiled"] == 1
    assert run()["loaded"] == 1                      # unchanged sources: the cache serves
    math_py = install / "rnnkit" / "kernels" / "_math.py"
    math_py.write_text(math_py.read_text() + "\n# an edit\n")
    third = run()
    assert third["compiled"] == 1 and third["loaded"] == 0
    assert run()["loaded"] == 1                      # and the new versions are cached again
