"""Plots of gradient flow, Jacobian spectra, training curves and gradient-norm history.

matplotlib is an optional dependency (``pip install rnnkit[plot]``), imported inside each
function. Figures are drawn with the Agg canvas directly — no pyplot, no GUI, no global
backend switch — so they work headless and in tests.
"""

from __future__ import annotations

import os

import numpy as np


def _figure(nrows=1, ncols=1, size=(7.0, 4.5)):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "rnnkit.diagnostics plots need matplotlib, which is not installed. Install it with "
            "`pip install rnnkit[plot]` (or `pip install matplotlib`)."
        ) from None
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path):
    if path is not None:
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig


def _target(ax):
    """``(figure, axes)`` to draw into: ``ax`` and its figure, or a new one-panel figure."""
    if ax is not None:
        return ax.figure, ax
    fig, axes = _figure()
    return fig, axes[0, 0]


def _finish(fig, ax, xlabel, ylabel, title, path):
    """Label the axes, add grid and legend, and save the figure to ``path`` (if given)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _named(items, what):
    """Accept a dict name -> item, a list of (name, item) pairs, or a single item."""
    if isinstance(items, dict):
        return list(items.items())
    if isinstance(items, (list, tuple)) and items and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in items):
        return list(items)
    if isinstance(items, (list, tuple)):
        return [(f"{what} {i}", it) for i, it in enumerate(items)]
    return [(what, items)]


def plot_gradient_flow(results, path=None, title="Gradient norm vs steps back in time", ax=None):
    """Gradient norm ``||dL/dh_t||`` against steps back from the end, log scale, one line per
    recurrent layer of every result.

    Args:
        results: a :class:`GradientFlowResult`, a list of them, or a dict ``label -> result``
            (e.g. ``{"SimpleRNN": r1, "LSTM": r2}``) to compare several models on one figure.
        path: PNG file to write, or None.
        title: axes title.
        ax: draw into this matplotlib Axes instead of a new figure.

    Returns:
        the matplotlib Figure.
    """
    fig, ax = _target(ax)
    for label, res in _named(results, "model"):
        many = len(res.layers) > 1
        for lf in res.layers:
            y = lf.norms_by_steps_back
            y = np.where(y > 0, y, np.nan)
            name = f"{label} / {lf.name}" if many else label
            ax.plot(lf.steps_back, y, label=f"{name} ({lf.verdict}, horizon {lf.memory_horizon})")
    ax.set_yscale("log")
    return _finish(fig, ax, "steps back from the last step (k)",
                   "mean ||dL/dh|| over the batch", title, path)


def plot_jacobian_spectrum(spectra, path=None, title="Spectral norm of the Jacobian product",
                           ax=None):
    """``log10 ||J_T ... J_{T-k+1}||`` against ``k`` for one or several :class:`JacobianSpectrum`.

    Args:
        spectra: a spectrum, a list, or a dict ``label -> spectrum``.
        path: PNG file to write, or None.
        title: axes title; ax: optional Axes.

    Returns:
        the matplotlib Figure.
    """
    fig, ax = _target(ax)
    for label, sp in _named(spectra, "layer"):
        k = np.arange(1, len(sp.log10_product_spectral_norms) + 1)
        ax.plot(k, sp.log10_product_spectral_norms, label=label)
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    return _finish(fig, ax, "k (number of steps back)",
                   "log10 spectral norm of the product of k step Jacobians", title, path)


def plot_history(histories, path=None, keys=("loss", "val_loss"), title="Training curves",
                 baseline=None, ax=None, log=False):
    """Training curves from one or several :class:`rnnkit.callbacks.History` objects.

    Args:
        histories: a History (or its ``.history`` dict), a list, or a dict ``label -> History``.
        path: PNG file to write, or None.
        keys: which logged quantities to draw (those missing from a history are skipped).
        title: axes title.
        baseline: optional horizontal reference line (e.g. 0.167, the adding-problem baseline).
        ax: optional Axes; log: log-scale y axis.

    Returns:
        the matplotlib Figure.
    """
    fig, ax = _target(ax)
    drawn = 0
    for label, h in _named(histories, "model"):
        logs = h.history if hasattr(h, "history") else h
        if not isinstance(logs, dict):
            raise TypeError(f"plot_history expects History objects or dicts of lists, got "
                            f"{type(h).__name__} for {label!r}.")
        for key in keys:
            if key in logs and len(logs[key]):
                v = np.asarray(logs[key], float)
                ax.plot(np.arange(1, len(v) + 1), v, label=f"{label} {key}",
                        ls="--" if key.startswith("val_") else "-")
                drawn += 1
    if drawn == 0:
        raise ValueError(f"plot_history: none of the keys {list(keys)} is in the histories.")
    if baseline is not None:
        ax.axhline(baseline, color="black", lw=1, ls=":", label=f"baseline {baseline:.3g}")
    if log:
        ax.set_yscale("log")
    return _finish(fig, ax, "epoch", ", ".join(keys), title, path)


def plot_gradient_history(monitor, path=None, title="Gradient norm per batch", ax=None):
    """Per-layer and global gradient norms per batch from a :class:`GradientMonitor`,
    before (solid) and after (dashed) clipping, log scale.

    Args:
        monitor: a GradientMonitor that has recorded at least one batch.
        path: PNG file to write, or None.
        title: axes title; ax: optional Axes.

    Returns:
        the matplotlib Figure.
    """
    if not getattr(monitor, "global_norms", None):
        raise ValueError("plot_gradient_history: the monitor has recorded no batch yet; pass it "
                         "in model.fit(..., callbacks=[monitor]) first.")
    fig, ax = _target(ax)
    n = np.arange(1, len(monitor.global_norms) + 1)
    line = ax.plot(n, monitor.global_norms, lw=1.5, label="global (before clipping)")[0]
    ax.plot(n, monitor.global_norms_clipped, lw=1.5, ls="--", color=line.get_color(),
            label="global (after clipping)")
    for name, v in monitor.layer_norms.items():
        if np.any(np.asarray(v) > 0):
            ln = ax.plot(n, v, lw=0.8, label=name)[0]
            ax.plot(n, monitor.layer_norms_clipped[name], lw=0.8, ls="--", color=ln.get_color())
    ax.set_yscale("log")
    return _finish(fig, ax, "batch", "gradient L2 norm",
                   f"{title} (clip rate {monitor.clip_rate:.0%})", path)
