"""Time-series forecasting: a history in, the next ``horizon`` values out.

What :class:`Forecaster` does, in order (every statistic comes from the training series only):

1. **Missing values** (NaN) are filled by linear interpolation (nearest value at the ends).
2. **Log transform** (``log="auto"``): each channel whose training values are all positive is
   replaced by its natural log, so multiplicative seasonality and growth become additive.
3. **Differencing** (``difference="auto"``): a first difference (lag 1) and, when a seasonal
   period is found (``seasonal_period="auto"``, see :func:`detect_period`), a seasonal
   difference at that lag. This is the Box-Jenkins "airline model" transformation; the network
   then only has to predict what changes, and the forecast is integrated back afterwards.
4. **Standardisation** of every channel of the differenced series.
5. **Windows**: inputs of ``window`` steps (default two seasons, or 24 steps) with ``stride``;
   targets are the next ``horizon`` values of the target channel (``strategy="direct"``: one
   ``Dense(horizon)`` output, all steps at once) or the next step of every channel
   (``strategy="recursive"``: ``Dense(C)``, applied ``horizon`` times, each prediction fed
   back into the window).
6. **Network**: a small recurrent stack with input dropout and an L2 weight penalty, trained
   with Adam on the mean squared error. The last ``validation_split`` of the windows is held
   out for early stopping with best-weight restore (when ``validation_split > 0``).
7. **Back to the original units**: inverse scaling, integration of the differences and
   ``exp`` turn each network's output into a forecast of the target.
8. **Ensemble**: ``ensemble`` networks trained from different seeds; their forecasts are
   combined by the median (``aggregate="median"``, robust to one network that diverged) or
   the mean.

Metrics are :func:`mae`, :func:`rmse`, :func:`mape` and :func:`smape` (MAPE and sMAPE as
fractions, not percent), and :func:`seasonal_naive` is the baseline printed beside them.

Example:
    >>> from rnnkit.data import load_airline
    >>> from rnnkit.tasks import Forecaster
    >>> y = load_airline()
    >>> f = Forecaster(horizon=12, epochs=5, ensemble=1, verbose=0).fit(y[:-12])
    >>> f.forecast().shape
    (12,)
"""

from .baselines import detect_period, seasonal_naive
from .metrics import forecast_metrics, mae, mape, rmse, smape
from .pipeline import FORECAST_DEFAULTS, Forecaster
from .transforms import _difference, _undifference  # noqa: F401  (tests use them)

__all__ = ["Forecaster", "mae", "rmse", "mape", "smape", "forecast_metrics",
           "seasonal_naive", "detect_period", "FORECAST_DEFAULTS"]
