"""Benchmark worker: runs the issue-8 workloads for ONE framework and prints JSON.

Run by ``benchmarks/run.py`` in a fresh subprocess per framework (and per memory probe), so
imports, thread pools and peak memory never mix. Can also be run by hand::

    python benchmarks/workloads.py --framework rnnkit --workloads seed_train --repeats 3

Frameworks: ``rnnkit``, ``torch`` (nn.Module + torch.optim.Adam), ``keras-torch`` and
``keras-jax`` (Keras 3 on that backend; the backend is chosen through KERAS_BACKEND, which
run.py sets). Special workloads: ``gemm`` (float32 matmul rate), ``compile`` (rnnkit
kernel first-use time), ``compile_train`` (``rnnkit train --epochs 1``), ``memory`` (peak
RSS training seed_train at T=1000).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

# model kind, batch B, sequence length T, input features F, training or inference
WORKLOADS = {
    "seed_train": dict(model="seed", B=64, T=50, F=32, train=True),
    "gru_small_train": dict(model="gru_small", B=32, T=100, F=8, train=True),
    "rnn_train": dict(model="rnn", B=64, T=100, F=32, train=True),
    "lstm_large_train": dict(model="lstm_large", B=128, T=100, F=128, train=True),
    "seed_predict": dict(model="seed", B=256, T=50, F=32, train=False),
    "step_latency": dict(model="step", B=1, T=1, F=32, train=False),
    # one step through the per-call model API: predict_on_batch on a stateful LSTM(128)
    "step_keras_path": dict(model="step_model", B=1, T=1, F=32, train=False),
}
# issue 14: one row per cell at the speed target's size (T=1000, B=32, 128 units), rnnkit
# only (no peer has most of these cells); "lstm_t1000_train" is the LSTM they are compared to
# (the parallel-scan cells' target: at least 5x faster). Run them by name, e.g.
#   python benchmarks/workloads.py --framework rnnkit --workloads lstm_t1000_train,mingru_train
CELL_WORKLOADS = {
    "lstm_t1000_train": "LSTM", "gru_t1000_train": "GRU", "mingru_train": "MinGRU",
    "minlstm_train": "MinLSTM", "lru_train": "LRU", "indrnn_train": "IndRNN",
    "slstm_train": "sLSTM", "lnlstm_train": "LayerNormLSTM", "lngru_train": "LayerNormGRU",
    "lstm_peephole_train": "LSTM:use_peepholes", "lstm_proj_train": "LSTM:proj_size",
    "lstm_zoneout_train": "LSTM:zoneout", "gru_zoneout_train": "GRU:zoneout",
}
for _name, _cell in CELL_WORKLOADS.items():
    WORKLOADS[_name] = dict(model="cell:" + _cell, B=32, T=1000, F=32, train=True)
N_OUT = {"seed": 10, "gru_small": 1, "rnn": 10, "lstm_large": 10}


def make_data(model, B, T, F, n_batches, seed=0):
    """Synthetic float32 inputs (n*B, T, F) and targets (one-hot, or (n*B, 1) for MSE)."""
    rng = np.random.default_rng(seed)
    n = B * n_batches
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    k = N_OUT.get(model, 10)
    if k == 1:
        y = rng.standard_normal((n, 1)).astype(np.float32)
    else:
        y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
    return x, y


def cell_layer(L, spec, units):
    """The rnnkit layer of a cell workload: ``Name`` or ``Name:option`` (``LSTM:proj_size``,
    ``GRU:zoneout``, ...)."""
    name, _, option = spec.partition(":")
    kw = {"use_peepholes": {"use_peepholes": True}, "proj_size": {"proj_size": units // 2},
          "zoneout": {"zoneout": 0.1}, "": {}}[option]
    if name == "sLSTM":
        kw["num_heads"] = 4
    return getattr(L, name)(units, **kw)


# ------------------------------------------------------------------------------- rnnkit ---
class Rnnkit:
    name = "rnnkit"

    def __init__(self):
        import rnnkit
        self.rk = rnnkit
        rnnkit.utils.set_random_seed(0)

    def build(self, model, F):
        L = self.rk.layers
        if model.startswith("cell:"):
            layers = [cell_layer(L, model[5:], 128), L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        elif model == "seed":
            layers = [L.LSTM(128, return_sequences=True), L.LSTM(64),
                      L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        elif model == "gru_small":
            layers, loss = [L.GRU(64), L.Dense(1)], "mse"
        elif model == "rnn":
            layers = [L.SimpleRNN(128), L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        else:
            layers = [L.LSTM(512), L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        m = self.rk.Sequential([L.Input((None, F))] + layers)
        m.compile(optimizer=self.rk.optimizers.Adam(1e-3), loss=loss)
        return m

    def train(self, m, x, y, B):
        m.fit(x, y, batch_size=B, epochs=1, verbose=0, shuffle=False)

    def predict(self, m, x, B):
        return m.predict(x, batch_size=B, verbose=0)

    def stepper(self, F, H=128, mode="stream"):
        """A function running one LSTM step on a (1, F) input, carrying state, through the
        public streaming API ``model.stream().step`` (mode "layer": a stateful layer call)."""
        L = self.rk.layers
        x = np.random.default_rng(0).standard_normal((1, 1, F)).astype(np.float32)
        if mode == "layer":
            layer = L.LSTM(H, stateful=True)
            layer(x)
            return lambda: layer(x)
        model = self.rk.Sequential([L.Input((None, F)), L.LSTM(H)])
        stream = model.stream(batch_size=1)
        x2 = x[:, 0, :]
        return lambda: stream.step(x2)

    def model_stepper(self, F, H=128):
        """One step through ``predict_on_batch`` of a stateful Sequential LSTM(H), batch 1."""
        L = self.rk.layers
        x = np.random.default_rng(0).standard_normal((1, 1, F)).astype(np.float32)
        model = self.rk.Sequential([L.Input((None, F)), L.LSTM(H, stateful=True)])
        return lambda: model.predict_on_batch(x)


# -------------------------------------------------------------------------------- torch ---
class Torch:
    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch
        torch.manual_seed(0)
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

    def build(self, model, F):
        if model.startswith("cell:"):
            raise ValueError(f"{model}: the issue-14 cell workloads are rnnkit-only.")
        torch, nn = self.torch, self.torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                if model == "seed":
                    self.r1 = nn.LSTM(F, 128, batch_first=True)
                    self.r2 = nn.LSTM(128, 64, batch_first=True)
                    self.out = nn.Linear(64, 10)
                elif model == "gru_small":
                    self.r1, self.r2, self.out = nn.GRU(F, 64, batch_first=True), None, \
                        nn.Linear(64, 1)
                elif model == "rnn":
                    self.r1, self.r2, self.out = nn.RNN(F, 128, batch_first=True), None, \
                        nn.Linear(128, 10)
                else:
                    self.r1, self.r2, self.out = nn.LSTM(F, 512, batch_first=True), None, \
                        nn.Linear(512, 10)

            def forward(self, x):
                h, _ = self.r1(x)
                if self.r2 is not None:
                    h, _ = self.r2(h)
                return self.out(h[:, -1])      # logits; softmax is inside the loss

        net = Net()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        lossf = nn.MSELoss() if model == "gru_small" else nn.CrossEntropyLoss()
        return net, opt, lossf, model

    def train(self, m, x, y, B):
        torch = self.torch
        net, opt, lossf, model = m
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(y if model == "gru_small" else y.argmax(1))
        net.train()
        for s in range(0, len(x), B):
            opt.zero_grad()
            loss = lossf(net(xt[s:s + B]), yt[s:s + B])
            loss.backward()
            opt.step()

    def predict(self, m, x, B):
        torch = self.torch
        net = m[0]
        net.eval()
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            return [torch.softmax(net(xt[s:s + B]), -1).numpy() for s in range(0, len(x), B)]

    def stepper(self, F, H=128, mode="cell"):
        torch = self.torch
        cell = torch.nn.LSTMCell(F, H)
        x = torch.randn(1, F)
        state = [torch.zeros(1, H), torch.zeros(1, H)]

        def step():
            with torch.inference_mode():
                state[0], state[1] = cell(x, (state[0], state[1]))
        return step

    def model_stepper(self, F, H=128):
        """One eager step of an nn.LSTM module carrying its state, numpy in and out."""
        torch = self.torch
        lstm = torch.nn.LSTM(F, H, batch_first=True)
        x = np.random.default_rng(0).standard_normal((1, 1, F)).astype(np.float32)
        state = [(torch.zeros(1, 1, H), torch.zeros(1, 1, H))]

        def step():
            with torch.inference_mode():
                y, state[0] = lstm(torch.from_numpy(x), state[0])
            return y.numpy()
        return step


# -------------------------------------------------------------------------------- keras ---
class Keras:
    def __init__(self):
        import keras
        self.keras = keras
        self.name = "keras-" + keras.backend.backend()
        keras.utils.set_random_seed(0)
        if keras.backend.backend() == "torch":
            import torch
            torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

    def build(self, model, F):
        if model.startswith("cell:"):
            raise ValueError(f"{model}: the issue-14 cell workloads are rnnkit-only.")
        k = self.keras
        L = k.layers
        if model == "seed":
            layers = [L.LSTM(128, return_sequences=True), L.LSTM(64),
                      L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        elif model == "gru_small":
            layers, loss = [L.GRU(64), L.Dense(1)], "mse"
        elif model == "rnn":
            layers = [L.SimpleRNN(128), L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        else:
            layers = [L.LSTM(512), L.Dense(10, activation="softmax")]
            loss = "categorical_crossentropy"
        m = k.Sequential([k.Input((None, F))] + layers)
        m.compile(optimizer=k.optimizers.Adam(1e-3), loss=loss)
        return m

    def train(self, m, x, y, B):
        m.fit(x, y, batch_size=B, epochs=1, verbose=0, shuffle=False)

    def predict(self, m, x, B):
        return m.predict(x, batch_size=B, verbose=0)

    def stepper(self, F, H=128, mode="cell"):
        k = self.keras
        cell = k.layers.LSTMCell(H)
        x = np.random.default_rng(0).standard_normal((1, F)).astype(np.float32)
        state = [np.zeros((1, H), np.float32), np.zeros((1, H), np.float32)]
        cell(x, state)

        def step():
            _, new = cell(x, state)
            state[:] = new
        return step

    def model_stepper(self, F, H=128):
        """One step through ``predict_on_batch`` of a stateful Sequential LSTM(H), batch 1."""
        k = self.keras
        x = np.random.default_rng(0).standard_normal((1, 1, F)).astype(np.float32)
        model = k.Sequential([k.Input((None, F), batch_size=1), k.layers.LSTM(H, stateful=True)])
        return lambda: model.predict_on_batch(x)


def framework(name):
    if name == "rnnkit":
        return Rnnkit()
    if name == "torch":
        return Torch()
    if name.startswith("keras"):
        return Keras()
    raise ValueError(f"unknown framework {name!r}; expected rnnkit, torch, keras-torch or "
                     "keras-jax.")


# ------------------------------------------------------------------------------ runners ---
def _time(fn, repeats, warmup=1, cpu=None):
    """Wall seconds of ``repeats`` calls after ``warmup``; CPU seconds appended to ``cpu``."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return out


def flush_denormals(name):
    """Flush subnormal numbers to zero in this worker (``--flush-denormals``; ``run.py
    --flush-denormals`` passes it as BENCH_FLUSH_DENORMALS=1), before any worker thread
    starts (threads created later inherit the mode). On x86 arithmetic on subnormals takes a
    slow microcode path, and a gradient that decays over T = 1000 steps walks through them:
    the LSTM row at T = 1000 measured about 10x slower without this on an Intel Xeon
    (docs/new_cells.md). rnnkit and PyTorch only."""
    if name == "rnnkit":
        from rnnkit.kernels._math import subnormals_to_zero
        subnormals_to_zero()
    elif name in ("torch", "keras-torch"):
        import torch
        torch.set_flush_denormal(True)
    else:
        raise SystemExit(f"--flush-denormals is supported for rnnkit, torch and keras-torch, "
                         f"not {name!r}; run that framework without it.")


def run_workload(fw, wl, repeats, quick):
    spec = WORKLOADS[wl]
    if spec["model"] in ("step", "step_model"):
        step = (fw.stepper if spec["model"] == "step" else fw.model_stepper)(spec["F"])
        n = 200 if quick else (2000 if spec["model"] == "step" else 500)

        def many():
            for _ in range(n):
                step()
        cpu = []
        secs = _time(many, repeats, warmup=2, cpu=cpu)
        return {"unit": "us/step", "values": [s / n * 1e6 for s in secs],
                "cpu_values": [c / n * 1e6 for c in cpu], "lower_is_better": True}
    B, T, F = spec["B"], spec["T"], spec["F"]
    n_batches = 2 if quick else (4 if spec["model"] == "lstm_large" else 8)
    x, y = make_data(spec["model"], B, T, F, n_batches)
    m = fw.build(spec["model"], F)
    cpu = []
    if spec["train"]:
        fw.train(m, x[:B], y[:B], B)                 # build + compile + first step
        secs = _time(lambda: fw.train(m, x, y, B), repeats, cpu=cpu)
    else:
        fw.predict(m, x[:B], B)
        secs = _time(lambda: fw.predict(m, x, B), repeats, cpu=cpu)
    # cpu_values: samples per CPU-second of this process (all its threads) - a fairer
    # comparison than wall time when the machine is shared and busy.
    return {"unit": "samples/s", "values": [len(x) / s for s in secs],
            "cpu_values": [len(x) / c for c in cpu], "lower_is_better": False}


def gemm_rate(repeats, n=2048):
    """float32 NumPy matmul rate in GFLOP/s (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty_like(a)
    secs = _time(lambda: np.matmul(a, b, out=c), max(repeats, 5), warmup=2)
    return {"unit": "GFLOP/s", "values": [2 * n ** 3 / s / 1e9 for s in secs],
            "lower_is_better": False, "blas": blas_info()}


def blas_info():
    """The BLAS NumPy runs in this process and the kernel it picked (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel "
                     f"{i.get('architecture')} x{i.get('num_threads')}"
                     for i in threadpool_info() if i.get("user_api") == "blas")


def compile_time():
    """Seconds to import rnnkit and run every compiled kernel once (float32 and float64):
    training forward + backward, inference, the parallel launchers (forced on small shapes)
    and the LSTM streaming step, through the public layer API."""
    t0 = time.perf_counter()
    import rnnkit
    from rnnkit.kernels import _loops, threads
    t_import = time.perf_counter() - t0
    L = rnnkit.layers
    _loops._MIN_ROWS, _loops._MIN_WORK, threads._MIN_MACS = 1, 0, 0    # launchers too
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2))
    for make in (lambda d: L.SimpleRNN(3, dtype=d), lambda d: L.LSTM(3, dtype=d),
                 lambda d: L.GRU(3, dtype=d), lambda d: L.GRU(3, reset_after=False, dtype=d)):
        for dt in ("float32", "float64"):
            m = rnnkit.Sequential([L.Input((None, 2)), make(dt)])
            m.compile(optimizer="sgd", loss="mse")
            for batch in (4, 1):                   # split across threads, and one block
                m.fit(x.astype(dt), np.zeros((4, 3)), batch_size=batch, epochs=1, verbose=0)
                m.predict(x.astype(dt), batch_size=batch, verbose=0)
    stream = rnnkit.Sequential([L.Input((None, 2)), L.LSTM(3)]).stream(batch_size=1)
    stream.step(np.zeros((1, 2), np.float32))
    return {"import_s": t_import, "first_use_s": time.perf_counter() - t0}


def compile_train():
    """Seconds of ``rnnkit train --epochs 1`` (the tutorial's default model and data) in this
    process: run with an empty NUMBA_CACHE_DIR this is dominated by compiling what it uses."""
    import tempfile
    t0 = time.perf_counter()
    from rnnkit.cli import main as cli
    t_import = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        cli(["train", "--epochs", "1", "--quiet", "--out", os.path.join(d, "m.rnnkit")])
    return {"import_s": t_import, "first_use_s": time.perf_counter() - t0}


def peak_memory(fw, T=1000, steps=2):
    """Peak RSS (MiB) of this process after training seed_train at T=1000."""
    x, y = make_data("seed", 64, T, 32, steps)
    m = fw.build("seed", 32)
    fw.train(m, x, y, 64)
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", required=True)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--flush-denormals", action="store_true",
                    help="subnormal numbers flushed to zero in this process (rnnkit, torch)")
    args = ap.parse_args(argv)
    if args.flush_denormals or os.environ.get("BENCH_FLUSH_DENORMALS") == "1":
        flush_denormals(args.framework)
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        pass
    result = {}
    wls = args.workloads.split(",")
    if wls == ["gemm"]:
        result["gemm"] = gemm_rate(args.repeats)
    elif wls == ["compile"]:
        result["compile"] = compile_time()
    elif wls == ["compile_train"]:
        import contextlib
        with contextlib.redirect_stdout(sys.stderr):     # keep stdout for the JSON line
            result["compile_train"] = compile_train()
    else:
        fw = framework(args.framework)
        for wl in wls:
            if wl == "memory":
                result[wl] = peak_memory(fw)
                continue
            try:
                result[wl] = run_workload(fw, wl, args.repeats, args.quick)
            except Exception as e:  # reported in the table, never silently dropped
                result[wl] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
