"""Default ``rnnkit train --task forecast`` against seasonal-naive and exponential smoothing.

One command::

    python benchmarks/forecast.py [--seeds 0] [--wheels DIR]

Series: the built-in airline passengers (last 36 months held out, as in docs/results.md),
and two public series from the aeon 1.6.0 wheel (read with ``zipfile``, see
``benchmarks/ucr_data.py`` for the download command): Lynx (annual trappings 1821-1934, last
14 years held out) and ShampooSales (monthly, 1991-1993, last 12 months held out). For each
it runs ``rnnkit train --task forecast --data <csv> --horizon H --json`` with default
settings, and computes two baselines on the same training part in this process: seasonal
naive (the last season repeated; the last value when there is no season) and exponential
smoothing (simple, Holt's linear trend, and additive Holt-Winters when the series holds two
seasons, smoothing constants chosen on a grid by in-sample one-step squared error, the
form with the lowest AIC). Prints the test MAPE of each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ucr_data  # noqa: E402

#: name -> (source, horizon, season)
SERIES = {
    "airline": ("builtin:airline", 36, 12),
    "Lynx": ("aeon/datasets/data/Lynx/Lynx.csv", 14, None),
    "ShampooSales": ("aeon/datasets/data/ShampooSales/ShampooSales.csv", 12, 12),
}


def series_values(name, wheels):
    """(values, path of a CSV that rnnkit reads) for one series."""
    src = SERIES[name][0]
    if src.startswith("builtin:"):
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
        from rnnkit.data import load_airline
        return np.asarray(load_airline(), np.float64).ravel(), src
    import zipfile
    folder = ucr_data.wheel_dir(wheels)
    ucr_data.ensure_wheels(folder, ["aeon"])
    rows = zipfile.ZipFile(os.path.join(folder, ucr_data.WHEELS["aeon"])).read(src).decode()
    rows = [r.split(",") for r in rows.strip().splitlines()[1:]]
    values = np.array([float(r[1]) for r in rows])
    cache = os.path.join(HERE, ".ucr")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"{name}.csv")
    with open(path, "w") as f:
        f.write("date,value\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows))
    return values, path


def mape(actual, forecast):
    return float(np.mean(np.abs((actual - forecast) / actual)))


def seasonal_naive(train, horizon, season):
    m = season or 1
    return np.array([train[len(train) - m + (h % m)] for h in range(horizon)])


def _ets_fit(y, alpha, beta, gamma, m):
    """One-step errors and the final state of additive ETS (beta/gamma None: off)."""
    level = y[0] if not m else y[:m].mean()
    trend = 0.0 if beta is None else (y[1] - y[0] if not m else (y[m:2 * m].mean()
                                                                   - y[:m].mean()) / m)
    seas = np.zeros(m) if not m else y[:m] - y[:m].mean()
    errs = []
    start = 1 if not m else m
    for t in range(start, len(y)):
        s = seas[t % m] if m else 0.0
        pred = level + trend + s
        errs.append(y[t] - pred)
        new_level = alpha * (y[t] - s) + (1 - alpha) * (level + trend)
        if beta is not None:
            trend = beta * (new_level - level) + (1 - beta) * trend
        if m:
            seas[t % m] = gamma * (y[t] - new_level) + (1 - gamma) * s
        level = new_level
    return np.array(errs), level, trend, seas, len(y)


def exponential_smoothing(train, horizon, season):
    """Forecast of the best (lowest AIC) of simple / Holt / additive Holt-Winters smoothing."""
    grid = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    forms = [("simple", None, None, 0), ("holt", 0, None, 0)]
    if season and len(train) >= 2 * season + 2:
        forms.append(("holt-winters", 0, 0, season))
    best = None
    for name, b_on, g_on, m in forms:
        for alpha, beta, gamma in itertools.product(grid, grid if b_on is not None else [None],
                                                    grid if g_on is not None else [None]):
            errs, level, trend, seas, n = _ets_fit(train, alpha, beta, gamma, m)
            k = 1 + (beta is not None) + (gamma is not None) + 1 + (m or 0)
            aic = len(errs) * np.log(np.mean(errs ** 2) + 1e-12) + 2 * k
            if best is None or aic < best[0]:
                best = (aic, name, level, trend, seas, n, m)
    _, name, level, trend, seas, n, m = best
    fc = np.array([level + (h + 1) * trend + (seas[(n + h) % m] if m else 0.0)
                   for h in range(horizon)])
    return fc, name


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0", help="comma list of seeds (default 0)")
    p.add_argument("--wheels", default=None, help="folder with the aeon wheel")
    p.add_argument("--train-args", default="", help="extra rnnkit train options, quoted")
    a = p.parse_args(argv)
    src = os.path.join(os.path.dirname(HERE), "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"{'series':<14}{'H':>4}{'rnnkit MAPE':>13}{'seasonal naive':>16}"
          f"{'exp. smoothing':>16}  form{'':<10}{'time/run':>9}", flush=True)
    for name, (_, horizon, season) in SERIES.items():
        values, data = series_values(name, a.wheels)
        train, test = values[:-horizon], values[-horizon:]
        scores, walls = [], []
        for seed in [int(s) for s in a.seeds.split(",") if s]:
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "rnnkit", "train", "--task", "forecast",
                       "--data", data, "--horizon", str(horizon), "--seed", str(seed),
                       "--json", "--quiet", "--out", os.path.join(tmp, "f.rnnkit")]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd + shlex.split(a.train_args), capture_output=True,
                                      text=True, env=env)
                walls.append(time.perf_counter() - t0)
            if proc.returncode:
                raise RuntimeError(f"{name}: rnnkit train failed:\n{proc.stderr[-3000:]}")
            rec = json.loads(proc.stdout.strip().splitlines()[-1])
            fc = np.asarray(rec["forecast"], np.float64).ravel()[:horizon]
            scores.append(mape(test, fc))
        ets, form = exponential_smoothing(train, horizon, season)
        net = f"{np.mean(scores):.4f}" + (f" ±{np.std(scores):.3f}" if len(scores) > 1 else "")
        print(f"{name:<14}{horizon:>4}{net:>13}"
              f"{mape(test, seasonal_naive(train, horizon, season)):>16.4f}"
              f"{mape(test, ets):>16.4f}  {form:<14}{np.mean(walls):>8.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
