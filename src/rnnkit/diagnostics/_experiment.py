"""The adding-problem experiment: SimpleRNN vs LSTM vs GRU as the sequences get longer.

The tutorial's claim: a plain RNN cannot carry a signal across many steps because its
gradient vanishes, while gated cells can. The adding problem (:func:`rnnkit.data.adding_problem`)
tests exactly this: the target is the sum of two values marked somewhere in the sequence, and
predicting the constant 1 gives a mean squared error of 2/12 ≈ 0.167. A model that beats this
baseline has carried information across up to ``T`` steps. Next to the test MSE the experiment
records the gradient flow (:func:`rnnkit.diagnostics.gradient_flow`) at initialisation and
after training, which explains the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time

BASELINE_MSE = 2.0 / 12.0
CELLS = ("SimpleRNN", "LSTM", "GRU")


@dataclasses.dataclass
class AddingExperiment:
    """Results of :func:`run_adding_experiment`.

    Attributes:
        config: the settings used (dict).
        rows: one dict per (T, cell): ``T, cell, test_mse, beats_baseline, horizon_init,
            verdict_init, ratio_init, horizon_trained, verdict_trained, ratio_trained, seconds``.
        flows_init / flows_trained: ``{(T, cell): GradientFlowResult}``.
        histories: ``{(T, cell): History}``.
        files: paths written (figures, JSON, markdown table).
    """

    config: dict
    rows: list
    flows_init: dict
    flows_trained: dict
    histories: dict
    files: list

    def table(self):
        """The results as a Markdown table (str)."""
        head = ("| T | cell | test MSE | vs 0.167 baseline | horizon at init | verdict at init "
                "| horizon trained | verdict trained | time (s) |")
        lines = [head, "|" + "---|" * 9]
        for r in self.rows:
            lines.append(
                f"| {r['T']} | {r['cell']} | {r['test_mse']:.4f} | "
                f"{'beats' if r['beats_baseline'] else 'fails'} ({r['test_mse'] / BASELINE_MSE:.0%}) | "
                f"{r['horizon_init']}/{r['T'] - 1} | {r['verdict_init']} | "
                f"{r['horizon_trained']}/{r['T'] - 1} | {r['verdict_trained']} | {r['seconds']:.0f} |")
        return "\n".join(lines)


@contextlib.contextmanager
def _one_blas_thread():
    """Small matrix products run much faster on one BLAS thread (no thread hand-offs)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def _build(cell, units, lr, clipnorm, seed):
    import rnnkit
    rnnkit.utils.set_random_seed(seed)
    layer = getattr(rnnkit.layers, cell)(units)
    model = rnnkit.Sequential([layer, rnnkit.layers.Dense(1)])
    model.compile(optimizer=rnnkit.optimizers.Adam(lr, clipnorm=clipnorm), loss="mse")
    return model


def run_adding_experiment(T_values=(50, 100, 200), cells=CELLS, units=32, epochs=30,
                          steps_per_epoch=100, batch_size=64, learning_rate=1e-2, clipnorm=1.0,
                          n_test=1000, probe_samples=256, seed=0, out_dir=None, verbose=1):
    """Train SimpleRNN, LSTM and GRU on the adding problem for every ``T``; measure gradient flow.

    Every model is ``RNN(units) -> Dense(1)``, MSE loss, Adam with ``clipnorm``, trained for
    ``epochs * steps_per_epoch`` updates on ``steps_per_epoch * batch_size`` fixed training
    sequences, validated on ``n_test`` held-out sequences (the test MSE reported).
    Gradient flow is measured on the first ``probe_samples`` test sequences before and after
    training.

    Args:
        T_values: sequence lengths. cells: cell names among 'SimpleRNN', 'LSTM', 'GRU'.
        units: hidden units. epochs, steps_per_epoch, batch_size: training length.
        learning_rate, clipnorm: Adam settings.
        n_test: test sequences. probe_samples: sequences used for gradient flow.
        seed: seeds the data and the initial weights (same init for the same cell and T).
        out_dir: folder for ``adding_results.json``, ``adding_results.md``,
            ``adding_gradient_flow.png`` and ``adding_training.png`` (nothing written if None;
            figures need matplotlib).
        verbose: 0 silent, 1 one line per model.

    Returns:
        :class:`AddingExperiment`.
    """
    from ..data import adding_problem
    from ._flow import gradient_flow

    T_values = [int(t) for t in T_values]
    if not T_values or any(t < 2 for t in T_values):
        raise ValueError(f"T_values must be sequence lengths >= 2, got {T_values}.")
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise ValueError(f"cells must be a non-empty subset of {list(CELLS)}, got {list(cells)}.")
    config = dict(T_values=T_values, cells=list(cells), units=units, epochs=epochs,
                  steps_per_epoch=steps_per_epoch, batch_size=batch_size,
                  learning_rate=learning_rate, clipnorm=clipnorm, n_test=n_test,
                  probe_samples=probe_samples, seed=seed)
    rows, flows_init, flows_trained, histories = [], {}, {}, {}
    t_start = time.perf_counter()
    with _one_blas_thread():
        for T in T_values:
            x_tr, y_tr = adding_problem(steps_per_epoch * batch_size, T, seed=seed + 1000 * T)
            x_te, y_te = adding_problem(n_test, T, seed=seed + 1000 * T + 1)
            xp, yp = x_te[:probe_samples], y_te[:probe_samples]
            for cell in cells:
                t0 = time.perf_counter()
                model = _build(cell, units, learning_rate, clipnorm, seed)
                model.build((None, T, 2))
                f0 = gradient_flow(model, xp, yp)
                hist = model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs,
                                 validation_data=(x_te, y_te), verbose=0)
                f1 = gradient_flow(model, xp, yp)
                mse = float(model.evaluate(x_te, y_te, batch_size=256, verbose=0))
                dt = time.perf_counter() - t0
                l0, l1 = f0.layers[0], f1.layers[0]
                row = dict(T=T, cell=cell, test_mse=mse,
                           beats_baseline=bool(math.isfinite(mse) and mse < 0.5 * BASELINE_MSE),
                           horizon_init=l0.memory_horizon, verdict_init=l0.verdict,
                           ratio_init=l0.ratio, horizon_trained=l1.memory_horizon,
                           verdict_trained=l1.verdict, ratio_trained=l1.ratio, seconds=dt)
                rows.append(row)
                flows_init[(T, cell)], flows_trained[(T, cell)] = f0, f1
                histories[(T, cell)] = hist
                if verbose:
                    print(f"T={T:<4d} {cell:<9s} test MSE {mse:.4f} (baseline {BASELINE_MSE:.3f}) "
                          f"horizon {l0.memory_horizon}->{l1.memory_horizon} of {T - 1} "
                          f"[{l0.verdict}->{l1.verdict}] {dt:.0f}s", flush=True)
    config["total_seconds"] = round(time.perf_counter() - t_start, 1)
    exp = AddingExperiment(config, rows, flows_init, flows_trained, histories, [])
    if out_dir is not None:
        exp.files = write_adding_report(exp, out_dir)
    return exp


def write_adding_report(exp, out_dir):
    """Write JSON, a Markdown table and the two figures of an :class:`AddingExperiment`.

    Args:
        exp: the experiment result.
        out_dir: output folder (created if needed).

    Returns:
        list of written paths.
    """
    from ._plots import _figure, plot_gradient_flow, plot_history

    os.makedirs(out_dir, exist_ok=True)
    files = []
    p = os.path.join(out_dir, "adding_results.json")
    data = {"config": exp.config, "baseline_mse": BASELINE_MSE,
            "rows": exp.rows,
            "gradient_norms_init": {f"{T}/{c}": [float(v) for v in f.layers[0].norms]
                                    for (T, c), f in exp.flows_init.items()},
            "gradient_norms_trained": {f"{T}/{c}": [float(v) for v in f.layers[0].norms]
                                       for (T, c), f in exp.flows_trained.items()}}
    with open(p, "w") as fh:
        json.dump(data, fh, indent=1, default=lambda v: None if not math.isfinite(v) else v)
    files.append(p)
    p = os.path.join(out_dir, "adding_results.md")
    with open(p, "w") as fh:
        fh.write(exp.table() + "\n")
    files.append(p)
    Ts = exp.config["T_values"]
    fig, axes = _figure(2, len(Ts), size=(5.2, 4.0))
    for j, T in enumerate(Ts):
        for i, (flows, when) in enumerate(((exp.flows_init, "at initialisation"),
                                           (exp.flows_trained, "after training"))):
            sel = {c: f for (t, c), f in flows.items() if t == T}
            plot_gradient_flow(sel, ax=axes[i, j], title=f"T = {T}, {when}")
    fig.suptitle("Adding problem: ||dL/dh_t|| vs steps back (log scale)")
    p = os.path.join(out_dir, "adding_gradient_flow.png")
    fig.savefig(p, dpi=100)
    files.append(p)
    fig, axes = _figure(1, len(Ts), size=(5.2, 4.0))
    for j, T in enumerate(Ts):
        sel = {c: h for (t, c), h in exp.histories.items() if t == T}
        plot_history(sel, ax=axes[0, j], keys=("val_loss",), baseline=BASELINE_MSE,
                     title=f"T = {T}: test MSE per epoch", log=True)
        axes[0, j].set_ylabel("test MSE (log scale)")
    fig.suptitle("Adding problem: test MSE vs the 0.167 baseline")
    p = os.path.join(out_dir, "adding_training.png")
    fig.savefig(p, dpi=100)
    files.append(p)
    return files
