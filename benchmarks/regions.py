"""Where a training batch of rnnkit goes: time inside each kind of parallel region, serial time
between them, and this machine's thread wake-up latency (issue 18, sixth session).

    python benchmarks/regions.py                         # seed_train (B=64, T=50, F=32)
    python benchmarks/regions.py --workload lstm_large_train --batches 8

Trains the benchmark's model (``benchmarks/workloads.py``) for ``--batches`` batches per pass,
``--passes`` times, with timers around every parallel region of rnnkit's thread pool
(:mod:`rnnkit.kernels.threads`), and prints per batch, in milliseconds: the batch; the time
inside regions and the rest (serial work on the calling thread); and for each kernel run in a
region, how many regions, the calling thread's own block ("caller") and the remainder of the
region ("wait": handing the other blocks out and waiting for them). Then the round trip of a
``threading.Event`` ping-pong between two Python threads, which bounds what one hand-off
costs on this machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads  # noqa: E402


def region_timers(pool):
    """Wrap ``pool.run`` (the pool's own hand-off unchanged); returns the stats dict
    ``kernel name -> [regions, caller seconds, region seconds]``."""
    stats = collections.defaultdict(lambda: [0, 0.0, 0.0])
    run, main = pool.run, threading.main_thread()

    def timed_run(fn, args, blocks):
        s = stats[getattr(fn, "__name__", repr(fn))]

        def block(*a):
            t = time.perf_counter()
            try:
                return fn(*a)
            finally:
                if threading.current_thread() is main:
                    s[1] += time.perf_counter() - t

        t0 = time.perf_counter()
        try:
            return run(block, args, blocks)
        finally:
            s[0] += 1
            s[2] += time.perf_counter() - t0

    pool.run = timed_run
    return stats


def wake_latency(n=2000):
    """Median, 10th and 90th percentile round trip (seconds) of a two-thread Event
    ping-pong."""
    ping, pong = threading.Event(), threading.Event()

    def worker():
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()

    th = threading.Thread(target=worker)
    th.start()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        ping.set()
        pong.wait()
        pong.clear()
        lat.append(time.perf_counter() - t0)
    th.join()
    lat.sort()
    return statistics.median(lat), lat[n // 10], lat[9 * n // 10]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="seed_train",
                    choices=[k for k, v in workloads.WORKLOADS.items() if v.get("train")])
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args(argv)
    if args.batches < 1 or args.passes < 1:
        ap.error(f"--batches and --passes must be at least 1, got {args.batches} and "
                 f"{args.passes}.")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(2)
    except ImportError:
        pass
    spec = workloads.WORKLOADS[args.workload]
    fw = workloads.framework("rnnkit")
    x, y = workloads.make_data(spec["model"], spec["B"], spec["T"], spec["F"], args.batches)
    model = fw.build(spec["model"], spec["F"])
    fw.train(model, x, y, spec["B"])                       # compile and warm up
    from rnnkit.kernels import threads
    stats = region_timers(threads._POOL)
    nb = args.batches
    for p in range(args.passes):
        stats.clear()
        t = time.perf_counter()
        fw.train(model, x, y, spec["B"])
        wall = time.perf_counter() - t
        inside = sum(s[2] for s in stats.values())
        regions = sum(s[0] for s in stats.values()) / nb
        print(f"pass {p + 1}: batch {wall / nb * 1e3:.2f} ms; in {regions:.0f} regions "
              f"{inside / nb * 1e3:.2f} ms; serial {(wall - inside) / nb * 1e3:.2f} ms")
        for name, (n, caller, total) in sorted(stats.items(), key=lambda kv: -kv[1][2]):
            print(f"   {name:22s} regions {n / nb:.0f}  caller {caller / nb * 1e3:7.2f}  "
                  f"wait {(total - caller) / nb * 1e3:6.2f}  total {total / nb * 1e3:7.2f} ms")
    med, p10, p90 = wake_latency()
    print(f"thread wake-up: Event ping-pong round trip median {med * 1e6:.1f} us "
          f"(p10 {p10 * 1e6:.1f}, p90 {p90 * 1e6:.1f})")


if __name__ == "__main__":
    main()
