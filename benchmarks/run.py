"""Benchmark rnnkit against PyTorch and Keras 3 (torch and JAX backends).

One command, from a clean clone (run from anywhere; paths are relative to this file)::

    python benchmarks/run.py --setup          # prepare the peers' venvs under .bench/, then run
    python benchmarks/run.py                  # run (uses .bench/ venvs when they exist)
    python benchmarks/run.py --quick --json out.json

Each framework runs in its own subprocess (``benchmarks/workloads.py``) with 2 threads,
fixed seeds, a warm-up and several timed repeats; the frameworks take turns for ``--rounds``
rounds (default 3; the order reverses every other round) so that a slow period of the machine
is spread over all of them, and the repeats of all rounds are pooled into one median. Prints
medians, min-max and the ratio to the fastest peer, the machine's float32 GEMM rate and
lstm_large_train as a share of it, peak memory training seed_train at T=1000 (rnnkit vs
PyTorch), and rnnkit's kernel compile time (cold numba cache vs warm).

Interpreters: rnnkit runs on this Python (with the repository's ``src`` first on the path).
A peer runs on ``.bench/<name>/bin/python`` when that venv exists, else on this Python,
unless ``--python-for NAME=PATH`` or the environment variable ``RNNKIT_BENCH_PYTHON_<NAME>``
(``-`` -> ``_``, upper case, e.g. ``RNNKIT_BENCH_PYTHON_KERAS_JAX``) names another.
``--setup`` creates the venvs with the ordinary ``pip``: ``.bench/keras-jax`` (keras, jax)
always, and ``.bench/torch`` (torch, keras; serves torch and keras-torch) only when this
Python lacks torch or keras. ``.bench/`` is git-ignored. A framework whose packages are
missing is reported as "not installed".

OpenBLAS: some machines pin NumPy's OpenBLAS to an older kernel through
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (on the issue-8 machine ``Haswell``, the AVX2
kernel, on an AVX-512 processor: half the matmul rate). When either is set, every workload
runs in both settings, alternating within each round, and two tables are printed: the
environment as it is, and with both variables unset (as NumPy runs on a machine that does
not set them). ``--openblas-env kept|unset`` runs one of them only. Each table prints the
kernel its runs used (threadpoolctl) and its own GEMM rate, the yardstick of
lstm_large_train in that setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH_DIR = os.path.join(ROOT, ".bench")
WORKER = os.path.join(HERE, "workloads.py")
WORKLOADS = ["seed_train", "gru_small_train", "rnn_train", "lstm_large_train",
             "seed_predict", "step_latency", "step_keras_path"]
FRAMEWORKS = ["rnnkit", "torch", "keras-torch", "keras-jax"]
NEEDS = {"rnnkit": ["rnnkit", "numba"], "torch": ["torch"], "keras-torch": ["keras", "torch"],
         "keras-jax": ["keras", "jax"]}
# venv under .bench/ -> the packages --setup installs there, and the frameworks it serves.
VENVS = {"keras-jax": (["keras", "jax", "numpy", "threadpoolctl"], ["keras-jax"]),
         "torch": (["torch", "keras", "numpy", "threadpoolctl"], ["torch", "keras-torch"])}
# rnnkit / fastest peer that issue 18 asks for (step_latency also: <= 10 us).
TARGET = {"seed_train": 1.1, "gru_small_train": 1.25, "rnn_train": 1.25, "seed_predict": 1.1,
          "step_latency": 1.0, "step_keras_path": 2.0}
OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def venv_python(name):
    return os.path.join(BENCH_DIR, name, "bin", "python")


def python_for(fw, overrides):
    if fw in overrides:
        return overrides[fw]
    env = os.environ.get("RNNKIT_BENCH_PYTHON_" + fw.replace("-", "_").upper())
    if env:
        return env
    if fw != "rnnkit":
        for name, (_, serves) in VENVS.items():
            if fw in serves and os.path.exists(venv_python(name)):
                return venv_python(name)
    return sys.executable


def setup():
    """Create the peers' venvs under .bench/ (see the module docstring)."""
    for name, (packages, serves) in VENVS.items():
        if name != "keras-jax" and all(installed(sys.executable, fw) for fw in serves):
            print(f"setup: {', '.join(serves)} run on this Python ({sys.executable})",
                  file=sys.stderr)
            continue
        py = venv_python(name)
        if not os.path.exists(py):
            print(f"setup: creating {os.path.dirname(os.path.dirname(py))}", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", os.path.dirname(os.path.dirname(py))],
                           check=True)
        print(f"setup: pip install {' '.join(packages)} into .bench/{name}", file=sys.stderr)
        subprocess.run([py, "-m", "pip", "install", "--quiet", *packages], check=True)


def env_for(fw, threads, extra=None, openblas_pins=True):
    """The worker's environment; ``openblas_pins=False`` removes OPENBLAS_CORETYPE/L2_SIZE."""
    env = dict(os.environ)
    if not openblas_pins:
        for k in OPENBLAS_PINS:
            env.pop(k, None)
    n = str(threads)
    env.update(OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
               BENCH_THREADS=n, PYTHONHASHSEED="0")
    src = os.path.join(ROOT, "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if fw.startswith("keras-"):
        env["KERAS_BACKEND"] = fw.split("-", 1)[1]
    if fw == "keras-jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=true "
                            f"intra_op_parallelism_threads={n}").strip()
        env.setdefault("JAX_PLATFORMS", "cpu")
    env.update(extra or {})
    return env


def installed(py, fw):
    code = "import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) " \
           f"for m in {NEEDS[fw]!r}) else 1)"
    try:
        return subprocess.run([py, "-c", code], capture_output=True,
                              env=env_for(fw, 1)).returncode == 0
    except OSError:
        return False


def worker(py, fw, workloads, repeats, quick, threads, extra_env=None, timeout=3600,
           openblas_pins=True):
    cmd = [py, WORKER, "--framework", fw, "--workloads", ",".join(workloads),
           "--repeats", str(repeats)] + (["--quick"] if quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=env_for(fw, threads, extra_env, openblas_pins))
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-3:]
        return {wl: {"error": " | ".join(tail) or f"exit code {p.returncode}"}
                for wl in workloads}
    return json.loads(p.stdout.strip().splitlines()[-1])


def machine():
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    return info


def versions(py, fw):
    mods = {"rnnkit": ["numpy", "numba"], "torch": ["torch", "numpy"],
            "keras-torch": ["keras", "torch"], "keras-jax": ["keras", "jax", "numpy"]}[fw]
    code = ("import importlib.metadata as m, json; print(json.dumps({k: m.version(k) for k in "
            f"{mods!r}}}))")
    p = subprocess.run([py, "-c", code], capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(x):
    return f"{x:,.1f}" if x >= 100 else f"{x:.3g}"


def settings_to_run(choice):
    """[(label, keep OpenBLAS pins?)] for ``--openblas-env``; one setting when none is set."""
    pins = {k: os.environ[k] for k in OPENBLAS_PINS if k in os.environ}
    if not pins:
        return [("environment as it is (no OpenBLAS pins set)", True)]
    kept = (f"environment as it is ({', '.join(f'{k}={v}' for k, v in pins.items())})", True)
    unset = (f"{' and '.join(pins)} unset", False)
    return {"both": [kept, unset], "kept": [kept], "unset": [unset]}[choice]


def main(argv=None):
    ap = argparse.ArgumentParser(description="rnnkit vs PyTorch / Keras benchmark.")
    ap.add_argument("--setup", action="store_true",
                    help="first create the peers' venvs under .bench/ (pip), then run")
    ap.add_argument("--setup-only", action="store_true", help="create the venvs and stop")
    ap.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3,
                    help="run every framework this many times, interleaved")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--python-for", action="append", default=[], metavar="NAME=PATH",
                    help="interpreter for a framework, e.g. keras-jax=/path/to/venv/bin/python")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--openblas-env", choices=("both", "kept", "unset"), default="both",
                    help="with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE set: run the workers with "
                         "them (kept), without them (unset) or both (default), one table each")
    ap.add_argument("--flush-denormals", action="store_true",
                    help="flush subnormal numbers to zero in the timed workers (rnnkit, torch; "
                         "see workloads.flush_denormals)")
    args = ap.parse_args(argv)
    if args.setup or args.setup_only:
        setup()
        if args.setup_only:
            return None
    repeats = args.repeats or (2 if args.quick else 3)
    bad = [kv for kv in args.python_for if "=" not in kv or kv.split("=", 1)[0] not in FRAMEWORKS]
    if bad:
        ap.error(f"--python-for expects NAME=PATH with NAME one of {FRAMEWORKS}, got {bad}")
    overrides = dict(kv.split("=", 1) for kv in args.python_for)
    fws = args.frameworks.split(",")
    wls = args.workloads.split(",")
    sys.path.insert(0, HERE)
    from workloads import CELL_WORKLOADS  # issue 14: one row per cell (--workloads NAME,...)
    known = WORKLOADS + list(CELL_WORKLOADS)
    unknown = [x for x in fws if x not in FRAMEWORKS] + [x for x in wls if x not in known]
    if unknown:
        ap.error(f"unknown framework/workload {unknown}; frameworks: {FRAMEWORKS}, "
                 f"workloads: {WORKLOADS} (default), cell rows: {list(CELL_WORKLOADS)}")
    settings = settings_to_run(args.openblas_env)
    out = {"machine": machine(), "threads": args.threads, "repeats": repeats,
           "rounds": args.rounds, "quick": args.quick,
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
           "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_PINS},
           "flush_denormals": args.flush_denormals,
           "pythons": {}, "settings": {}}

    live = []
    for fw in fws:
        py = python_for(fw, overrides)
        if not installed(py, fw):
            print(f"{fw}: not installed (interpreter {py}; `python benchmarks/run.py --setup` "
                  "prepares the peers)", file=sys.stderr)
            out["pythons"][fw] = {"status": "not installed", "python": py}
            continue
        out["pythons"][fw] = {"status": "ok", "python": py, "versions": versions(py, fw)}
        live.append((fw, py))

    py_rnnkit = python_for("rnnkit", overrides)
    for label, pins in settings:
        print(f"measuring float32 GEMM rate ({label}) ...", file=sys.stderr)
        g = worker(py_rnnkit, "rnnkit", ["gemm"], repeats, args.quick, args.threads,
                   openblas_pins=pins)["gemm"]
        out["settings"][label] = {
            "openblas_pins_kept": pins, "blas": g.get("blas"),
            "gemm_gflops": {**summarize(g["values"]), "best": max(g["values"])},
            "frameworks": {fw: {"results": {}} for fw, _ in live}}
    # Rounds: in each round every framework runs once in every setting, in turn; the repeats
    # of all rounds are pooled. The order reverses every other round: on a shared guest the
    # second of two back-to-back processes ran up to ~10% slower (docs/performance.md), which
    # a fixed order would charge to the same frameworks every round.
    for rnd in range(args.rounds):
        for label, pins in settings:
            for fw, py in (live if rnd % 2 == 0 else live[::-1]):
                print(f"round {rnd + 1}/{args.rounds}, {label}: {fw} ...", file=sys.stderr)
                res = worker(py, fw, wls, repeats, args.quick, args.threads,
                             {"BENCH_FLUSH_DENORMALS": "1"} if args.flush_denormals else None,
                             openblas_pins=pins)
                acc = out["settings"][label]["frameworks"][fw]["results"]
                for wl, r in res.items():
                    if wl not in acc or "error" in r:
                        acc[wl] = r
                    elif "values" in r and "values" in acc[wl]:
                        acc[wl]["values"] += r["values"]
                        acc[wl]["cpu_values"] += r["cpu_values"]
    for st in out["settings"].values():
        for r in st["frameworks"].values():
            for x in r["results"].values():
                if "values" in x:
                    x.update(summarize(x["values"]))
                    x["cpu_median"] = statistics.median(x["cpu_values"])

    if not args.no_memory:
        out["memory"] = {}
        for fw in ("rnnkit", "torch"):
            py = python_for(fw, overrides)
            if fw in fws and installed(py, fw):
                print(f"peak memory {fw} (seed_train, T=1000) ...", file=sys.stderr)
                r = worker(py, fw, ["memory"], 1, False, args.threads)["memory"]
                out["memory"][fw] = r
    if not args.no_compile and "rnnkit" in fws:
        print("rnnkit compile time (cold, then warm numba cache) ...", file=sys.stderr)
        out["compile"] = {}
        for what in ("compile_train", "compile"):
            with tempfile.TemporaryDirectory() as d:
                cold = worker(py_rnnkit, "rnnkit", [what], 1, False, args.threads,
                              {"NUMBA_CACHE_DIR": d})[what]
                warm = worker(py_rnnkit, "rnnkit", [what], 1, False, args.threads,
                              {"NUMBA_CACHE_DIR": d})[what]
            out["compile"][what] = {"cold": cold, "warm": warm}

    report(out, wls)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\nJSON written to {args.json}")
    return out


def report(out, wls):
    m = out["machine"]
    print(f"\nMachine: {m.get('cpu', '?')}, {m['cores']} cores, load {m.get('loadavg_at_start')}"
          f"; {out['threads']} threads; {out['rounds']} alternating round(s) x "
          f"{out['repeats']} repeats" + (" (quick)" if out["quick"] else "")
          + ("; subnormals flushed to zero" if out.get("flush_denormals") else ""))
    for fw, r in out["pythons"].items():
        print(f"  {fw}: {r['python']}  " + (str(r.get("versions", {})) if r["status"] == "ok"
                                             else "not installed"))
    for label, st in out["settings"].items():
        gemm = st["gemm_gflops"]["best"]
        print(f"\n=== OpenBLAS setting: {label} ===")
        print(f"float32 GEMM rate (numpy 2048^3, best): {gemm:.1f} GFLOP/s; "
              f"BLAS: {st.get('blas')}")
        table(st["frameworks"], out["pythons"], wls, gemm)
    if out.get("memory"):
        print("\nPeak RSS training seed_train at T=1000 (B=64, 2 batches; environment as is):")
        for fw, r in out["memory"].items():
            if "peak_rss_mib" in r:
                print(f"  {fw:12s} {r['peak_rss_mib']:8.1f} MiB")
            else:
                print(f"  {fw:12s} error: {r.get('error')}")
    if out.get("compile"):
        print("\nrnnkit kernel compile (empty NUMBA_CACHE_DIR, then the same directory again):")
        names = {"compile_train": "`rnnkit train --epochs 1` (tutorial model and data; the "
                                  "warm run is the training itself)",
                 "compile": "every kernel and parallel launcher, float32 and float64"}
        for what, c in out["compile"].items():
            print(f"  {names[what]}:")
            for k in ("cold", "warm"):
                if "first_use_s" in c[k]:
                    print(f"    {k} cache: import {c[k]['import_s']:.2f} s, "
                          f"first use {c[k]['first_use_s']:.2f} s")
                else:
                    print(f"    {k} cache: error {c[k].get('error')}")


def table(fr, pythons, wls, gemm):
    """One setting's table: medians (min-max), rnnkit / fastest peer, CPU-time view, GEMM %."""
    head = f"\n{'workload':18s} {'unit':10s}" + "".join(f" {fw:>28s}" for fw in pythons)
    head += f"{'rnnkit/best peer':>18s}{'target':>8s}"
    print(head)
    print("-" * len(head))
    for wl in wls:
        cells, peers, unit, mine = [], [], "", None
        for fw in pythons:
            if fw not in fr:
                cells.append("not installed")
                continue
            x = fr[fw]["results"].get(wl, {})
            if "error" in x:
                cells.append("error")
                continue
            if "median" not in x:
                cells.append("-")
                continue
            unit = x["unit"]
            cells.append(f"{fmt(x['median'])} ({fmt(x['min'])}-{fmt(x['max'])})")
            if fw == "rnnkit":
                mine = x
            else:
                peers.append(x)
        ratio = ""
        if mine and peers:
            if mine["lower_is_better"]:
                ratio = f"{min(p['median'] for p in peers) / mine['median']:.2f}x"
            else:
                ratio = f"{mine['median'] / max(p['median'] for p in peers):.2f}x"
        target = f">={TARGET[wl]:g}x" if wl in TARGET else ""
        print(f"{wl:18s} {unit:10s}" + "".join(f" {c:>28s}" for c in cells)
              + f"{ratio:>18s}{target:>8s}")
    print("\nSame runs, per CPU-second of each process (all its threads; fairer on a busy "
          "machine; us/step is CPU time):")
    print(f"{'workload':18s}" + "".join(f"{fw:>14s}" for fw in pythons) + f"{'rnnkit/best':>14s}")
    for wl in wls:
        row, mine, peers = [], None, []
        for fw in pythons:
            x = fr.get(fw, {}).get("results", {}).get(wl, {})
            if "cpu_median" not in x:
                row.append("-")
                continue
            row.append(fmt(x["cpu_median"]))
            (peers.append(x) if fw != "rnnkit" else None)
            mine = x if fw == "rnnkit" else mine
        ratio = ""
        if mine and peers:
            if mine["lower_is_better"]:
                ratio = f"{min(p['cpu_median'] for p in peers) / mine['cpu_median']:.2f}x"
            else:
                ratio = f"{mine['cpu_median'] / max(p['cpu_median'] for p in peers):.2f}x"
        print(f"{wl:18s}" + "".join(f"{c:>14s}" for c in row) + f"{ratio:>14s}")
    for fw, r in fr.items():
        for wl, x in r["results"].items():
            if "error" in x:
                print(f"  error {fw}/{wl}: {x['error']}")

    from workloads import WORKLOADS as SPEC
    s = SPEC["lstm_large_train"]
    flops_per_sample = 6 * s["T"] * 4 * 512 * (s["F"] + 512)
    rates = [(fw, r["results"]["lstm_large_train"]["median"] * flops_per_sample / 1e9)
             for fw, r in fr.items() if "median" in r["results"].get("lstm_large_train", {})]
    if rates:
        print("\nlstm_large_train as % of the GEMM rate (FLOPs = 6*T*B*4H*(D+H); target 85%):")
        for fw, rate in rates:
            print(f"  {fw:12s} {rate:7.1f} GFLOP/s = {100 * rate / gemm:5.1f}% of {gemm:.1f}")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
