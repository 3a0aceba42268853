"""Task pipelines: from a dataset to a trained, saved model with its preprocessing.

* :class:`SequenceClassifier` -- variable-length sequences -> class labels;
* :class:`SequenceRegressor` -- sequences -> numbers (e.g. the adding problem);
* :class:`Forecaster` -- a time series -> its next ``horizon`` values;
* :class:`CharLanguageModel` -- text -> a character-level language model and a generator.

Every pipeline saves one ``.rnnkit`` file whose ``model.preprocessing`` records the task, the
scalers / vocabulary / labels and the settings; :func:`load_task` reopens any of them.
``rnnkit train`` is a thin command-line layer over these classes (see ``docs/cli.md``).
"""

from ._common import CELLS, task_of
from .classification import CLASSIFY_DEFAULTS, SequenceClassifier, natural_sort
from .forecasting import (
    FORECAST_DEFAULTS,
    Forecaster,
    detect_period,
    forecast_metrics,
    mae,
    mape,
    rmse,
    seasonal_naive,
    smape,
)
from .language_model import LM_DEFAULTS, CharLanguageModel, sample_from_probs, unigram_cross_entropy
from .regression import REGRESS_DEFAULTS, SequenceRegressor

#: Task name -> pipeline class.
TASKS = {"classify": SequenceClassifier, "regress": SequenceRegressor, "forecast": Forecaster,
         "lm": CharLanguageModel}


def pipeline_from_model(model):
    """Wrap a loaded model in the pipeline that trained it (from ``model.preprocessing``)."""
    task = task_of(model)
    if task not in TASKS:
        raise ValueError(
            f"the model has no known rnnkit task record (got task {task!r}; expected one of "
            f"{sorted(TASKS)}): it was not saved by an rnnkit.tasks pipeline or `rnnkit train`."
        )
    return TASKS[task].from_model(model)


def load_task(path):
    """Load a model file saved by a pipeline (or ``rnnkit train``) as that pipeline object."""
    from ..saving import load_model
    return pipeline_from_model(load_model(path))


__all__ = [
    "CELLS", "TASKS", "SequenceClassifier", "SequenceRegressor", "Forecaster",
    "CharLanguageModel", "load_task", "pipeline_from_model", "natural_sort", "mae", "rmse",
    "mape", "smape", "forecast_metrics", "seasonal_naive", "detect_period",
    "sample_from_probs", "unigram_cross_entropy", "CLASSIFY_DEFAULTS", "REGRESS_DEFAULTS",
    "FORECAST_DEFAULTS", "LM_DEFAULTS", "task_of",
]
