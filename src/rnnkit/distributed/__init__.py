"""Beyond one machine: data-parallel training over MPI, hyper-parameter sweeps on Ray Tune.

Both are optional extras, imported only when used:

* ``pip install "rnnkit[mpi]"``: :func:`init` inside a script run by
  ``mpiexec -n N python -m mpi4py script.py`` (or ``mpiexec -n N rnnkit train --distributed``)
  makes every ``fit`` synchronous data-parallel (:mod:`rnnkit.distributed.mpi`).
* ``pip install "rnnkit[tune]"``: :func:`sweep` (or ``rnnkit sweep sweep.toml``) searches
  settings on Ray Tune with random search or Optuna's TPE and ASHA early stopping
  (:mod:`rnnkit.distributed.tune`).

See docs/distributed.md and docs/scaling.md.
"""

from .mpi import DistributedError, GradientReducer, current, init, is_root, shutdown
from .spec import SweepSpec, load_sweep_spec
from .tune import SweepResult, sweep

__all__ = ["init", "shutdown", "current", "is_root", "GradientReducer", "DistributedError",
           "sweep", "SweepResult", "SweepSpec", "load_sweep_spec"]
