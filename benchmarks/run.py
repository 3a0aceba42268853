"""Benchmark rnnkit against PyTorch and Keras 3 (torch and JAX backends) — issue 8.

One command::

    python benchmarks/run.py [--quick] [--json out.json] [--python-for keras-jax=/path/python]

Each framework runs in its own subprocess (``benchmarks/workloads.py``) with 2 threads,
fixed seeds, a warm-up and several timed repeats. Prints medians, min-max and the ratio to
the fastest peer, the machine's float32 GEMM rate and lstm_large_train as a share of it,
peak memory training seed_train at T=1000 (rnnkit vs PyTorch), and rnnkit's kernel compile
time (cold numba cache vs warm).

Interpreters: every framework uses this Python unless ``--python-for NAME=PATH`` or the
environment variable ``RNNKIT_BENCH_PYTHON_<NAME>`` (``-`` -> ``_``, upper case, e.g.
``RNNKIT_BENCH_PYTHON_KERAS_JAX``) names another. keras-jax defaults to
``/work/benchvenv/bin/python`` when that exists (jax lives in a separate venv). A framework
whose packages are missing is reported as "not installed".

OpenBLAS: some machines pin NumPy's OpenBLAS to an older kernel through
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (on the issue-8 machine ``Haswell``, the AVX2
kernel, on an AVX-512 processor: half the matmul rate). The worker processes run without
those two variables, as NumPy runs on a machine that does not set them; the table prints the
kernel each run used (threadpoolctl). ``--keep-openblas-env`` keeps them. The GEMM rate
(the yardstick of lstm_large_train) is measured under the same setting as rnnkit.
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
WORKER = os.path.join(HERE, "workloads.py")
WORKLOADS = ["seed_train", "gru_small_train", "rnn_train", "lstm_large_train",
             "seed_predict", "step_latency"]
FRAMEWORKS = ["rnnkit", "torch", "keras-torch", "keras-jax"]
NEEDS = {"rnnkit": ["rnnkit", "numba"], "torch": ["torch"], "keras-torch": ["keras", "torch"],
         "keras-jax": ["keras", "jax"]}
DEFAULT_PY = {"keras-jax": "/work/benchvenv/bin/python"}
TARGET = {"seed_train": 1.25, "gru_small_train": 1.25, "rnn_train": 1.25, "seed_predict": 1.25}


def python_for(fw, overrides):
    if fw in overrides:
        return overrides[fw]
    env = os.environ.get("RNNKIT_BENCH_PYTHON_" + fw.replace("-", "_").upper())
    if env:
        return env
    default = DEFAULT_PY.get(fw)
    if default and os.path.exists(default):
        return default
    return sys.executable


OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
KEEP_OPENBLAS_ENV = False


def env_for(fw, threads, extra=None):
    env = dict(os.environ)
    if not KEEP_OPENBLAS_ENV:
        for k in OPENBLAS_PINS:
            env.pop(k, None)
    n = str(threads)
    env.update(OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
               BENCH_THREADS=n, PYTHONHASHSEED="0")
    src = os.path.join(os.path.dirname(HERE), "src")
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


def worker(py, fw, workloads, repeats, quick, threads, extra_env=None, timeout=3600):
    cmd = [py, WORKER, "--framework", fw, "--workloads", ",".join(workloads),
           "--repeats", str(repeats)] + (["--quick"] if quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=env_for(fw, threads, extra_env),
                       timeout=timeout)
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="rnnkit vs PyTorch / Keras benchmark (issue 8).")
    ap.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every framework this many times, interleaved (busy machines)")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--python-for", action="append", default=[], metavar="NAME=PATH",
                    help="interpreter for a framework, e.g. keras-jax=/work/benchvenv/bin/python")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the workers")
    args = ap.parse_args(argv)
    global KEEP_OPENBLAS_ENV
    KEEP_OPENBLAS_ENV = args.keep_openblas_env
    repeats = args.repeats or (3 if args.quick else 7)
    bad = [kv for kv in args.python_for if "=" not in kv or kv.split("=", 1)[0] not in FRAMEWORKS]
    if bad:
        ap.error(f"--python-for expects NAME=PATH with NAME one of {FRAMEWORKS}, got {bad}")
    overrides = dict(kv.split("=", 1) for kv in args.python_for)
    fws = args.frameworks.split(",")
    wls = args.workloads.split(",")
    out = {"machine": machine(), "threads": args.threads, "repeats": repeats,
           "rounds": args.rounds,
           "quick": args.quick, "command": " ".join([os.path.basename(sys.executable)] +
                                                    sys.argv), "frameworks": {}}

    py_rnnkit = python_for("rnnkit", overrides)
    print("measuring float32 GEMM rate ...", file=sys.stderr)
    g = worker(py_rnnkit, "rnnkit", ["gemm"], repeats, args.quick, args.threads)["gemm"]
    gemm = max(g["values"])
    out["gemm_gflops"] = {**summarize(g["values"]), "best": gemm}
    out["blas"] = g.get("blas")
    out["openblas_env"] = {k: os.environ.get(k) for k in OPENBLAS_PINS}
    out["openblas_env_kept"] = args.keep_openblas_env

    live = []
    for fw in fws:
        py = python_for(fw, overrides)
        if not installed(py, fw):
            print(f"{fw}: not installed (interpreter {py})", file=sys.stderr)
            out["frameworks"][fw] = {"status": "not installed", "python": py}
            continue
        out["frameworks"][fw] = {"status": "ok", "python": py, "versions": versions(py, fw),
                                 "results": {}}
        live.append((fw, py))
    # Rounds: every framework runs once per round, in turn, so that a slow period of a shared
    # machine is spread over all of them; the repeats of all rounds are pooled.
    for rnd in range(args.rounds):
        for fw, py in live:
            print(f"round {rnd + 1}/{args.rounds}: {fw} ({py}) ...", file=sys.stderr)
            res = worker(py, fw, wls, repeats, args.quick, args.threads)
            acc = out["frameworks"][fw]["results"]
            for wl, r in res.items():
                if wl not in acc or "error" in r:
                    acc[wl] = r
                elif "values" in r and "values" in acc[wl]:
                    acc[wl]["values"] += r["values"]
                    acc[wl]["cpu_values"] += r["cpu_values"]
    for fw, _ in live:
        for r in out["frameworks"][fw]["results"].values():
            if "values" in r:
                r.update(summarize(r["values"]))
                r["cpu_median"] = statistics.median(r["cpu_values"])

    if not args.no_memory:
        out["memory"] = {}
        for fw in ("rnnkit", "torch"):
            py = python_for(fw, overrides)
            if fw in fws and installed(py, fw):
                print(f"peak memory {fw} (seed_train, T=1000) ...", file=sys.stderr)
                r = worker(py, fw, ["memory"], 1, False, args.threads)["memory"]
                out["memory"][fw] = r
    if not args.no_compile and "rnnkit" in fws:
        with tempfile.TemporaryDirectory() as d:
            cold = worker(py_rnnkit, "rnnkit", ["compile"], 1, False, args.threads,
                          {"NUMBA_CACHE_DIR": d})["compile"]
            warm = worker(py_rnnkit, "rnnkit", ["compile"], 1, False, args.threads,
                          {"NUMBA_CACHE_DIR": d})["compile"]
        out["compile"] = {"cold": cold, "warm": warm}

    report(out, wls, gemm)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\nJSON written to {args.json}")
    return out


def report(out, wls, gemm):
    fr = out["frameworks"]
    m = out["machine"]
    print(f"\nMachine: {m.get('cpu', '?')}, {m['cores']} cores, load {m.get('loadavg_at_start')}"
          f"; {out['threads']} threads; {out['rounds']} round(s) x {out['repeats']} repeats"
          + (" (quick)" if out["quick"] else ""))
    print(f"float32 GEMM rate (numpy 2048^3, best): {gemm:.1f} GFLOP/s; BLAS: {out.get('blas')}")
    pins = {k: v for k, v in out.get("openblas_env", {}).items() if v is not None}
    if pins:
        print(f"  this shell sets {pins}: "
              + ("kept for the workers" if out.get("openblas_env_kept")
                 else "unset for the workers (--keep-openblas-env keeps them)"))
    for fw, r in fr.items():
        if r["status"] == "ok":
            print(f"  {fw}: {r['python']}  {r.get('versions', {})}")
    head = f"\n{'workload':18s} {'unit':10s}" + "".join(f" {fw:>28s}" for fw in fr)
    head += f"{'rnnkit/best peer':>18s}"
    print(head)
    print("-" * len(head))
    for wl in wls:
        cells, peers, unit, mine = [], [], "", None
        for fw, r in fr.items():
            if r["status"] != "ok":
                cells.append("not installed")
                continue
            x = r["results"].get(wl, {})
            if "error" in x:
                cells.append("error")
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
                best = min(p["median"] for p in peers)
                ratio = f"{best / mine['median']:.2f}x"
            else:
                best = max(p["median"] for p in peers)
                ratio = f"{mine['median'] / best:.2f}x"
        print(f"{wl:18s} {unit:10s}" + "".join(f" {c:>28s}" for c in cells) + f"{ratio:>18s}")
    print("\nSame runs, per CPU-second of each process (all its threads; fairer on a busy "
          "machine; us/step is CPU time):")
    print(f"{'workload':18s}" + "".join(f"{fw:>14s}" for fw in fr) + f"{'rnnkit/best':>14s}")
    for wl in wls:
        row, mine, peers = [], None, []
        for fw, r in fr.items():
            x = r.get("results", {}).get(wl, {})
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
    errors = [(fw, wl, x["error"]) for fw, r in fr.items() if r["status"] == "ok"
              for wl, x in r["results"].items() if "error" in x]
    for fw, wl, e in errors:
        print(f"  error {fw}/{wl}: {e}")

    from workloads import WORKLOADS as SPEC
    s = SPEC["lstm_large_train"]
    flops_per_sample = 6 * s["T"] * 4 * 512 * (s["F"] + 512)
    print("\nlstm_large_train as % of the GEMM rate (FLOPs = 6*T*B*4H*(D+H)):")
    for fw, r in fr.items():
        x = r.get("results", {}).get("lstm_large_train", {})
        if "median" in x:
            rate = x["median"] * flops_per_sample / 1e9
            print(f"  {fw:12s} {rate:7.1f} GFLOP/s = {100 * rate / gemm:5.1f}% of {gemm:.1f}")
    if out.get("memory"):
        print("\nPeak RSS training seed_train at T=1000 (B=64, 2 batches):")
        for fw, r in out["memory"].items():
            if "peak_rss_mib" in r:
                print(f"  {fw:12s} {r['peak_rss_mib']:8.1f} MiB")
            else:
                print(f"  {fw:12s} error: {r.get('error')}")
    if out.get("compile"):
        c = out["compile"]
        print("\nrnnkit kernel compile (import + first call of every kernel, f32+f64):")
        for k in ("cold", "warm"):
            if "first_use_s" in c[k]:
                print(f"  {k} cache: import {c[k]['import_s']:.2f} s, "
                      f"first use {c[k]['first_use_s']:.2f} s")
            else:
                print(f"  {k} cache: error {c[k].get('error')}")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
