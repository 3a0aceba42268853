"""The time budget of ``rnnkit train`` at the issue-16 limit: 1,000 training series of 1,000 steps.

One command::

    python benchmarks/budget.py [--series 1000] [--steps 1000] [--threads N]
                                [--train-args "--time-budget 600"]

Writes a synthetic univariate .ts training file (``--series`` series of ``--steps`` steps, 4
classes: a wave whose shape is the class, at a random phase, in noise) and a test file of
200 series, runs ``rnnkit train --data ... --test ... --json`` with default settings in a
fresh process (exactly what a user runs), and prints its wall time, its CPU time (user +
system of the process and its threads), the test accuracy and the choices it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def write_ts(path, n, steps, seed, classes=4, period=25):
    """``n`` univariate series of ``steps`` steps; class = the shape of a wave repeating every
    ``period`` steps, starting at a random phase, plus Gaussian noise (std 1)."""
    rng = np.random.default_rng(seed)
    shapes = np.random.default_rng(12345).normal(size=(classes, period))
    lines = ["@problemName Budget", "@timeStamps false", "@missing false",
             "@univariate true", "@equalLength true", f"@seriesLength {steps}",
             "@classLabel true " + " ".join(str(c) for c in range(classes)), "@data"]
    reps = steps // period + 2
    for i in range(n):
        c = i % classes
        start = int(rng.integers(period))
        s = np.tile(shapes[c], reps)[start:start + steps] + rng.normal(0, 1.0, steps)
        lines.append(",".join(f"{v:.4f}" for v in s) + f":{c}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=1000, help="training series (default 1000)")
    p.add_argument("--steps", type=int, default=1000, help="steps per series (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of the run")
    p.add_argument("--threads", type=int, default=None, help="threads of the run (default: "
                   "rnnkit's default, all cores)")
    p.add_argument("--train-args", default="", help="extra rnnkit train options, quoted")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs rnnkit")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        train, test = os.path.join(tmp, "b_TRAIN.ts"), os.path.join(tmp, "b_TEST.ts")
        write_ts(train, a.series, a.steps, a.seed)
        write_ts(test, 200, a.steps, a.seed + 1)
        cmd = [a.python, "-m", "rnnkit", "train", "--data", train, "--test", test,
               "--seed", str(a.seed), "--json", "--out", os.path.join(tmp, "m.rnnkit")] \
            + shlex.split(a.train_args)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(os.path.dirname(HERE), "src") + os.pathsep \
            + env.get("PYTHONPATH", "")
        if a.threads:
            env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(a.threads)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; threads: {a.threads or 'default'}; train args: "
          f"{a.train_args or '(defaults)'}")
    print(f"{a.series} series x {a.steps} steps: wall {wall:.0f} s, CPU {cpu:.0f} s, test "
          f"accuracy {rec['test']['accuracy']:.4f}, {rec.get('networks')} network(s)")
    for c in rec.get("choices", []):
        print(f"  {c['name']:<14}{c['value']!s:<10} {c['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
