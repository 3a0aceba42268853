"""Measure the times the README quotes, on this machine, and print them with the conditions.

    python benchmarks/readme_times.py                 # rnnkit train (cold and warm cache)
    python benchmarks/readme_times.py --all           # + the airline forecast and the suite

What is timed (wall clock, each in a fresh process, from the repository root):

* ``train-cold``: ``rnnkit train`` with an empty numba cache (the first run after install
  compiles the kernels);
* ``train``: ``rnnkit train`` again, with the cache the cold run filled;
* ``airline``: ``rnnkit train --data builtin:airline --horizon 36`` (with ``--all``);
* ``suite``: ``python -m pytest`` (the README's command 2 after install; with ``--all``).

The machine (CPU model, cores, memory) and its load average before and after each run are
printed, because on a shared machine the numbers say as much about the neighbours as about
rnnkit. Nothing is written into the repository; models go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine():
    """A one-line description of the CPU, core count and memory."""
    model = platform.processor() or "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"model name\s*:\s*(.+)", text)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.1f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{model}, {os.cpu_count()} logical cores{mem}, Python {platform.python_version()}"


def load():
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def timed(name, cmd, env):
    before = load()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    tail = (res.stdout.strip().splitlines() or [""])[-1]
    if res.returncode != 0:
        tail = f"FAILED (status {res.returncode}): {res.stderr.strip()[-300:]}"
    print(f"{name:<11} {seconds:8.1f} s   [{before}; after: {load()}]   {tail[:160]}",
          flush=True)
    return {"name": name, "seconds": round(seconds, 1), "status": res.returncode,
            "load_before": before, "load_after": load(), "last_line": tail}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true",
                        help="also time the airline forecast and the whole test suite")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="rnnkit_times_"))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "numba_cache"), KERAS_BACKEND="torch")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    rnnkit = [sys.executable, "-m", "rnnkit"]
    print(f"machine: {machine()}")
    print(f"rnnkit from {ROOT}, numba cache {env['NUMBA_CACHE_DIR']}")
    out = [timed("train-cold", rnnkit + ["train", "--out", str(tmp / "jv.rnnkit")], env),
           timed("train", rnnkit + ["train", "--out", str(tmp / "jv.rnnkit")], env)]
    if args.all:
        out.append(timed("airline", rnnkit + ["train", "--data", "builtin:airline",
                                              "--horizon", "36", "--out",
                                              str(tmp / "air.rnnkit")], env))
        out.append(timed("suite", [sys.executable, "-m", "pytest", "-q", "-x"], env))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "runs": out}, indent=1))
    return 0 if all(r["status"] == 0 for r in out) else 1


if __name__ == "__main__":
    sys.exit(main())
