"""Data-parallel throughput and allreduce time per step, 1 and 2 MPI ranks (docs/scaling.md).

    python benchmarks/distributed.py                 # mpiexec -n 1 (1 and 2 threads), -n 2
    python benchmarks/distributed.py --runs 1:auto 4:auto   # RANKS:THREADS per rank
    python benchmarks/distributed.py --model         # only the scaling model's table

Workload: seed_train of benchmarks/workloads.py (LSTM(128) -> LSTM(64) -> Dense(10), 132k
float32 parameters, T=50, F=32), global batch 64, Adam; every rank gets the node's
cores // ranks threads (what ``rnnkit.distributed.init`` sets) unless RANKS:THREADS says. Per step it reports
the wall time, the allreduce time (one flat buffer, ``GradientReducer.last_allreduce_seconds``)
and samples/s; then an Allreduce of the same buffer alone, to measure the bandwidth between
the ranks, and the scaling model of docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

WORKLOAD = dict(batch=64, T=50, F=32, units=(128, 64), classes=10, warmup=5, steps=40)


def worker(steps, threads):
    """One rank's measurement (run under mpiexec); rank 0 prints one JSON line."""
    import numpy as np

    import rnnkit
    import rnnkit.distributed as dist

    world = dist.init(threads=threads if threads == "auto" else int(threads))
    w = WORKLOAD
    rnnkit.utils.set_random_seed(0)
    n = w["batch"] * (w["warmup"] + steps)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, w["T"], w["F"])).astype("float32")
    y = rnnkit.utils.to_categorical(rng.integers(0, w["classes"], n), w["classes"])
    model = rnnkit.Sequential([rnnkit.layers.LSTM(w["units"][0], return_sequences=True),
                               rnnkit.layers.LSTM(w["units"][1]),
                               rnnkit.layers.Dense(w["classes"], activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    times, comm = [], []

    class Clock(rnnkit.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch >= w["warmup"]:
                times.append(time.perf_counter() - self.t0)
                comm.append(world.last_allreduce_seconds)

    model.fit(x, y, batch_size=w["batch"], epochs=1, shuffle=False, verbose=0,
              callbacks=[Clock()])
    # the same buffer alone: bandwidth between the ranks
    P = model.count_params()
    buf = np.ones(P + 3, np.float32)
    out = np.empty_like(buf)
    for _ in range(5):
        world.comm.Allreduce(buf, out)
    t0 = time.perf_counter()
    reps = 200
    for _ in range(reps):
        world.comm.Allreduce(buf, out)
    alone = (time.perf_counter() - t0) / reps
    # every rank's medians, so a slow rank shows
    med = world.comm.gather((float(np.median(times)), float(np.median(comm))), root=0)
    if world.is_root:
        step = max(m[0] for m in med)
        print(json.dumps({
            "ranks": world.size, "threads_per_rank": world.threads, "params": P,
            "buffer_bytes": 4 * (P + 3), "step_ms": 1e3 * step,
            "allreduce_ms": 1e3 * max(m[1] for m in med),
            "allreduce_alone_ms": 1e3 * alone,
            "samples_per_s": w["batch"] / step}), flush=True)


def launch(ranks, threads, steps):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    cmd = [mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", str(ranks),
           sys.executable, "-m", "mpi4py", os.path.abspath(__file__), "--worker",
           "--steps", str(steps), "--threads", threads]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the scaling model (docs/scaling.md) ----------------------------------------------------
NETWORKS = {  # name: (bandwidth bytes/s per node, per-message latency s)
    "100 Gb/s InfiniBand": (10e9, 5e-6),
    "10 Gb/s Ethernet": (1.0e9, 50e-6),
}


def allreduce_seconds(nbytes, nodes, bandwidth, latency):
    """Bandwidth-optimal allreduce (reduce-scatter + allgather, MPICH's choice for large
    buffers): 2(N-1)/N of the buffer crosses each node's link, in 2·log2(N) messages."""
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) / nodes * nbytes / bandwidth + 2 * math.log2(nodes) * latency


def samples_for(efficiency, sample_seconds, ta, overlap_share=0.0):
    """Samples per node per allreduce needed for ``efficiency``: with b samples, compute is
    t_c = b·sample_seconds and E = t_c / (t_c + max(0, t_a - overlap_share·t_c))."""
    # E >= e  <=>  t_a <= t_c·((1 - e)/e + overlap_share)
    return ta / (sample_seconds * ((1 - efficiency) / efficiency + overlap_share))


def model_rows(sample_seconds, nbytes, per_node=(8, 32), backward_share=2 / 3):
    """The scaling model for 8, 64 and 512 nodes on each network.

    Returns rows ``(network, nodes, t_allreduce, {b: E without overlap}, {b: E with the
    allreduce overlapped with the backward pass}, b for 90% without, b for 90% with overlap)``
    where b = samples per node per allreduce (batch rows per node, times the accumulated
    micro-batches) and the backward pass is ``backward_share`` of the compute.
    """
    rows = []
    for net, (bw, lat) in NETWORKS.items():
        for nodes in (8, 64, 512):
            ta = allreduce_seconds(nbytes, nodes, bw, lat)
            plain, hidden = {}, {}
            for b in per_node:
                tc = b * sample_seconds
                plain[b] = tc / (tc + ta)
                hidden[b] = tc / (tc + max(0.0, ta - backward_share * tc))
            rows.append((net, nodes, ta, plain, hidden,
                         samples_for(0.9, sample_seconds, ta),
                         samples_for(0.9, sample_seconds, ta, backward_share)))
    return rows


def print_model(sample_seconds, nbytes, per_node=(8, 32)):
    print(f"\nscaling model: {nbytes / 1e6:.2f} MB gradient buffer, "
          f"{1e3 * sample_seconds:.4f} ms compute per sample per node")
    head = "".join(f"{'E b=' + str(b):>9s}" for b in per_node)
    head_o = "".join(f"{'E~ b=' + str(b):>9s}" for b in per_node)
    print(f"{'network':22s}{'nodes':>6s}{'allreduce ms':>13s}{head}{head_o}"
          f"{'b90':>7s}{'b90~':>7s}")
    for net, nodes, ta, plain, hidden, b90, b90o in model_rows(sample_seconds, nbytes,
                                                               per_node):
        cells = "".join(f"{plain[b]:9.1%}" for b in per_node)
        cells_o = "".join(f"{hidden[b]:9.1%}" for b in per_node)
        print(f"{net:22s}{nodes:6d}{1e3 * ta:13.3f}{cells}{cells_o}{b90:7.1f}{b90o:7.1f}")
    print("E: efficiency t_c/(t_c+t_a) with b samples per node per allreduce; E~: the "
          "allreduce overlapped with the backward pass (2/3 of t_c); b90, b90~: samples per "
          "node per allreduce for E = 90% without / with overlap.")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=WORKLOAD["steps"])
    p.add_argument("--threads", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--runs", nargs="+", default=["1:auto", "1:1", "2:auto"],
                   metavar="RANKS:THREADS", help="runs to make (threads per rank: a number "
                   "or auto = cores // ranks)")
    p.add_argument("--model", action="store_true", help="print only the scaling model, from "
                   "the measured compute of the tutorial model (see docs/scaling.md)")
    p.add_argument("--sample-ms", type=float, default=None,
                   help="compute per sample per node in ms for the model (default: measured "
                   "by the 1-rank runs; docs/scaling.md uses 0.169, seed_train's quiet-machine "
                   "rate in docs/performance.md)")
    a = p.parse_args()
    if a.worker:
        return worker(a.steps, a.threads)
    results = []
    if not (a.model and a.sample_ms):
        for run in (a.runs if not a.model else ["1:auto"]):
            ranks, _, threads = run.partition(":")
            results.append(launch(int(ranks), threads or "auto", a.steps))
    if not a.model:
        print(f"cores: {len(os.sched_getaffinity(0))}, load average: "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (a shared machine is noisy)")
        print(f"{'ranks':>5s}{'threads':>8s}{'step ms':>9s}{'allreduce ms':>13s}"
              f"{'alone ms':>9s}{'samples/s':>10s}{'speed-up':>9s}")
        for r in results:
            print(f"{r['ranks']:5d}{r['threads_per_rank']:8d}{r['step_ms']:9.2f}"
                  f"{r['allreduce_ms']:13.3f}{r['allreduce_alone_ms']:9.3f}"
                  f"{r['samples_per_s']:10.0f}{r['samples_per_s'] / results[0]['samples_per_s']:9.2f}")
    one = [r["step_ms"] for r in results if r["ranks"] == 1]
    sample = (a.sample_ms / 1e3 if a.sample_ms else min(one) / 1e3 / WORKLOAD["batch"])
    nbytes = results[0]["buffer_bytes"] if results else 4 * (132_490 + 3)
    print_model(sample, nbytes)


if __name__ == "__main__":
    main()
