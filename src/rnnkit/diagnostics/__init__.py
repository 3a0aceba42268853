"""Gradient-flow diagnostics: the tutorial's vanishing / exploding gradients, measured.

rnnkit writes backpropagation through time by hand, so it can measure how much of the loss
signal reaches every step back in time:

* :func:`gradient_flow` — per-step ``||dL/dh_t||``, per-parameter gradient norms, the memory
  horizon and a verdict ('vanishing', 'exploding', 'healthy') with the reason;
* :func:`jacobian_spectrum` / :func:`step_jacobians` — singular values of the recurrent kernel
  and of the step Jacobians ``dh_t/dh_{t-1}`` (``d(h, c)_t/d(h, c)_{t-1}`` for LSTM) and of their
  products over ``k`` steps;
* :class:`GradientMonitor` — a callback recording per-layer gradient norms before and after
  clipping, the clip rate, and warning once with concrete advice;
* plots (matplotlib, optional): :func:`plot_gradient_flow`, :func:`plot_jacobian_spectrum`,
  :func:`plot_history`, :func:`plot_gradient_history`;
* :func:`run_adding_experiment` — SimpleRNN vs LSTM vs GRU on the adding problem
  (``rnnkit experiment adding``);
* :func:`run_long_memory` — every recurrent cell on the long-memory tasks (adding, copy
  memory, selective copying, sequential digits, MNIST-1D; ``rnnkit experiment long-memory``).

Example:
    >>> import rnnkit
    >>> from rnnkit.data import adding_problem
    >>> from rnnkit.diagnostics import gradient_flow
    >>> x, y = adding_problem(32, 100, seed=0)
    >>> model = rnnkit.Sequential([rnnkit.layers.SimpleRNN(16), rnnkit.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> result = gradient_flow(model, x, y)
    >>> result.verdict in ("vanishing", "exploding", "healthy")
    True
"""

from ._experiment import BASELINE_MSE, AddingExperiment, run_adding_experiment, write_adding_report
from ._flow import (
    EXPLODING_RATIO,
    HORIZON_FRACTION,
    GradientFlowResult,
    LayerFlow,
    gradient_flow,
    judge,
)
from ._jacobian import JacobianSpectrum, cell_step_jacobian, jacobian_spectrum, step_jacobians
from ._longmemory import LongMemoryResults, run_long_memory
from ._monitor import GradientMonitor
from ._plots import plot_gradient_flow, plot_gradient_history, plot_history, plot_jacobian_spectrum

__all__ = [
    "gradient_flow", "GradientFlowResult", "LayerFlow", "judge", "HORIZON_FRACTION",
    "EXPLODING_RATIO", "jacobian_spectrum", "step_jacobians", "cell_step_jacobian",
    "JacobianSpectrum", "GradientMonitor", "plot_gradient_flow", "plot_jacobian_spectrum",
    "plot_history", "plot_gradient_history", "run_adding_experiment", "write_adding_report",
    "AddingExperiment", "BASELINE_MSE", "run_long_memory", "LongMemoryResults",
]
