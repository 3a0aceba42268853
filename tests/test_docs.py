"""The README and docs say what a user gets: every fenced block marked runnable runs.

Mark a block by putting an HTML comment (invisible on GitHub) on the line before its fence:

    <!-- runnable -->
    ```python
    ...
    ```

``<!-- runnable: OLD => NEW; OLD2 => NEW2 -->`` runs the block with those text substitutions,
to keep CI fast (e.g. ``epochs=10 => epochs=1``); the substitutions are in the file for
anyone to see. ``python`` blocks run with ``python``, ``bash`` blocks with ``bash -e``
(``rnnkit`` resolves to ``python -m rnnkit`` of this checkout). The runnable blocks of one
document run in order in one fresh temporary folder (a block may use the files an earlier
one wrote) and each must exit with status 0. In a python block, a shape written in a comment
after an assignment (``x = ...   # (270, 26, 12)``) is asserted too.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
MARK = re.compile(r"^<!--\s*runnable(?::\s*(?P<subs>.*?))?\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>\w+)?\s*$")


def runnable_blocks(path):
    """``[(line, lang, code)]`` of the blocks marked runnable in ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = MARK.match(line.strip())
        if not m:
            continue
        fence = FENCE.match(lines[i + 1].strip()) if i + 1 < len(lines) else None
        assert fence and fence.group("lang") in ("python", "bash"), (
            f"{path.name}:{i + 1}: a runnable marker must stand right before a ```python or "
            "```bash fence")
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        code = "\n".join(lines[i + 2:end]) + "\n"
        for sub in filter(None, (s.strip() for s in (m.group("subs") or "").split(";"))):
            old, new = (p.strip() for p in sub.split("=>"))
            assert old in code, f"{path.name}:{i + 1}: substitution {old!r} not in the block"
            code = code.replace(old, new)
        if fence.group("lang") == "python":
            code = check_shape_comments(code)
        out.append((i + 2, fence.group("lang"), code))
    return out


SHAPE_COMMENT = re.compile(r"^(?P<indent>\s*)(?P<name>\w+) = [^#]*#\s*(?P<shape>\(\d+(, \d+)*,?\))")


def check_shape_comments(code):
    """After every ``name = ...  # (270, 26, 12)`` line, assert that shape: shapes written in
    comments are claims the reader relies on."""
    out = []
    for line in code.splitlines():
        out.append(line)
        m = SHAPE_COMMENT.match(line)
        if m:
            out.append(f"{m['indent']}assert __import__('numpy').shape({m['name']}) == "
                       f"{m['shape']}, ('shape comment', {m['name']!r}, "
                       f"__import__('numpy').shape({m['name']}))")
    return "\n".join(out) + "\n"


RUNNABLE = {p: runnable_blocks(p) for p in DOCS}
RUNNABLE = {p: b for p, b in RUNNABLE.items() if b}


def test_docs_have_runnable_blocks():
    names = {p.name for p in RUNNABLE}
    assert {"README.md", "cli.md", "datasets.md", "pytorch.md"} <= names, names


@pytest.mark.parametrize("path", list(RUNNABLE), ids=[p.name for p in RUNNABLE])
def test_runnable_blocks(path, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("KERAS_BACKEND", "torch")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "rnnkit"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rnnkit "$@"\n')
    shim.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    work = tmp_path / "work"
    work.mkdir()
    for k, (line, lang, code) in enumerate(RUNNABLE[path]):
        if lang == "python":
            (work / f"block{k}.py").write_text(code)
            cmd = [sys.executable, f"block{k}.py"]
        else:
            cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, (
            f"{path.name}:{line} ({lang}) failed with status {res.returncode}\n--- code\n"
            f"{code}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}")


def test_cli_doc_defaults_match_the_code():
    """docs/cli.md's option table states the same per-task defaults as `--help`."""
    from rnnkit.cli.train import options

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    opts = {o.name: o for o in options()}
    for flag, name in (("--lr LR", "lr"), ("--epochs N", "epochs"),
                       ("--batch-size N", "batch_size"), ("--patience N", "patience")):
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| `{flag}`"))
        default = row.rsplit("|", 2)[-2]
        for task in ("classify", "regress", "forecast", "lm"):
            want = opts[name].default_for(task)
            if want is None:    # decided from the data: the row must say how
                assert f"{task}: " in default, (
                    f"docs/cli.md's {flag} row does not say how {task} decides it: {default}")
                continue
            m = re.search(rf"{task} ([0-9.e-]+)", default)
            got = m.group(1) if m else re.search(r"others ([0-9.e-]+)", default).group(1)
            assert float(got) == float(want), (
                f"docs/cli.md says {flag} defaults to {got} for {task}; the code: {want}")
