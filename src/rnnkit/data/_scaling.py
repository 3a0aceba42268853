"""Per-channel standardisation of time series."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["StandardScaler"]


def _split_input(X: Any, what: str) -> tuple[list[np.ndarray], bool]:
    """Normalise scaler input to a list of arrays; report whether it was a list.

    A list/tuple of numpy arrays is a list of series (possibly of different
    lengths); anything else (including nested Python lists) is one array.
    """
    if isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(a, np.ndarray) for a in X):
        for i, a in enumerate(X):
            if a.ndim not in (1, 2):
                raise ValueError(
                    f"{what}: element {i} of the list has shape {a.shape}; list elements "
                    "must be series of shape (T_i,) or (T_i, C)."
                )
        return list(X), True
    try:
        arr = np.asarray(X)
    except ValueError:
        raise ValueError(
            f"{what}: could not make one array from the input (ragged nested lists?); pass "
            "an array, or a list of numpy arrays of shape (T_i, C)."
        ) from None
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(
            f"{what}: expected a non-empty array of shape (N, T, C), (T, C) or (T,), or a "
            f"list of (T_i, C) numpy arrays, got {arr!r}."
        )
    return [arr], False


def _channels(a: np.ndarray) -> int:
    return 1 if a.ndim == 1 else a.shape[-1]


def _check_numeric(a: np.ndarray, what: str) -> None:
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(
            f"{what}: data must be numeric, got dtype {a.dtype}; convert it with "
            "np.asarray(x, dtype=np.float32)."
        )


class StandardScaler:
    """Standardise each channel to zero mean and unit variance.

    Statistics are computed per channel (the last axis) over every other
    axis, i.e. over all samples and time steps, ignoring ``NaN``. Fit on the
    training data only, then apply the same transform to validation and test
    data so no information leaks from them.

    Accepted inputs (for :meth:`fit`, :meth:`transform` and
    :meth:`inverse_transform`):

    * an array of shape ``(N, T, C)`` (a batch), ``(T, C)`` (one series) or
      ``(T,)`` (one univariate series, ``C = 1``);
    * a list of numpy arrays of shape ``(T_i, C)`` or ``(T_i,)`` with
      varying ``T_i``, e.g. the output of :func:`load_ts` (nested Python
      lists are converted to a single array instead).

    A 2-D array is always read as ``(T, C)``: reshape a univariate batch
    ``(N, T)`` to ``(N, T, 1)`` first.

    Attributes
    ----------
    mean_ : numpy.ndarray, shape (C,), float64
        Per-channel mean of the training data.
    scale_ : numpy.ndarray, shape (C,), float64
        Per-channel standard deviation (population, ``ddof=0``). Channels
        whose standard deviation is zero (constant channels) get a scale of 1,
        so they are only centred and never produce ``NaN`` or ``inf``.

    Examples
    --------
    >>> x = np.array([[1.0, 10.0], [3.0, 10.0]])
    >>> scaler = StandardScaler().fit(x)
    >>> scaler.transform(x)
    array([[-1.,  0.],
           [ 1.,  0.]])
    >>> StandardScaler.from_config(scaler.to_config()).inverse_transform([[0.0, 0.0]])
    array([[ 2., 10.]])
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any) -> StandardScaler:
        """Compute per-channel mean and standard deviation, ignoring NaN.

        Parameters
        ----------
        X : array-like or list of array-like
            Training data, shape ``(N, T, C)``, ``(T, C)``, ``(T,)`` or a list
            of ``(T_i, C)`` arrays (see the class docstring).

        Returns
        -------
        StandardScaler
            ``self``, fitted.

        Raises
        ------
        ValueError
            If the list elements disagree on ``C``, the data is not numeric or
            contains ``inf``, or a channel has no non-NaN value.
        """
        arrays, _ = _split_input(X, "StandardScaler.fit")
        n_channels = _channels(arrays[0])
        for i, a in enumerate(arrays):
            _check_numeric(a, "StandardScaler.fit")
            if _channels(a) != n_channels:
                raise ValueError(
                    f"StandardScaler.fit: element {i} has {_channels(a)} channel(s) but element "
                    f"0 has {n_channels}; all series must have the same number of channels C."
                )
        flat = np.concatenate([a.reshape(-1, n_channels) for a in arrays]).astype(np.float64)
        if flat.shape[0] == 0:
            raise ValueError("StandardScaler.fit: the data has no time steps; nothing to fit.")
        if np.isinf(flat).any():
            bad = np.flatnonzero(np.isinf(flat).any(axis=0)).tolist()
            raise ValueError(
                f"StandardScaler.fit: channel(s) {bad} contain inf; replace infinite values "
                "(e.g. with NaN, which is ignored) before fitting."
            )
        finite = ~np.isnan(flat)
        counts = finite.sum(axis=0)
        if (counts == 0).any():
            bad = np.flatnonzero(counts == 0).tolist()
            raise ValueError(
                f"StandardScaler.fit: channel(s) {bad} have no values other than NaN, so no "
                "mean or standard deviation can be computed; drop those channels or fit on "
                "data that has values for them."
            )
        filled = np.where(finite, flat, 0.0)
        mean = filled.sum(axis=0) / counts
        var = (np.where(finite, flat - mean, 0.0) ** 2).sum(axis=0) / counts
        std = np.sqrt(var)
        # Treat a standard deviation at rounding-error level as zero (constant channel).
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        self.mean_ = mean
        self.scale_ = np.where(std > tiny, std, 1.0)
        return self

    # ------------------------------------------------------------ transform
    @property
    def n_channels(self) -> int:
        """Number of channels ``C`` the scaler was fitted on."""
        self._check_fitted("n_channels")
        return int(self.mean_.shape[0])

    def _check_fitted(self, method: str) -> None:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError(
                f"StandardScaler.{method}: the scaler is not fitted; call fit(X_train) first "
                "(or build it with StandardScaler.from_config(config))."
            )

    def _apply(self, X: Any, method: str, inverse: bool) -> Any:
        self._check_fitted(method)
        arrays, is_list = _split_input(X, f"StandardScaler.{method}")
        out = []
        for i, a in enumerate(arrays):
            _check_numeric(a, f"StandardScaler.{method}")
            if _channels(a) != self.n_channels:
                where = f"element {i} has" if is_list else "the data has"
                raise ValueError(
                    f"StandardScaler.{method}: {where} {_channels(a)} channel(s) (shape "
                    f"{a.shape}), but the scaler was fitted on {self.n_channels}; pass data "
                    f"with {self.n_channels} channel(s) on the last axis."
                )
            dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)
            mean = self.mean_ if a.ndim > 1 else self.mean_[0]
            scale = self.scale_ if a.ndim > 1 else self.scale_[0]
            result = a * scale + mean if inverse else (a - mean) / scale
            out.append(np.asarray(result, dtype=dtype))
        return out if is_list else out[0]

    def transform(self, X: Any) -> Any:
        """Standardise ``X`` with the fitted statistics: ``(X - mean_) / scale_``.

        Parameters
        ----------
        X : array-like or list of array-like
            Same layouts as :meth:`fit`, with the fitted number of channels.

        Returns
        -------
        numpy.ndarray or list of numpy.ndarray
            Same shape (and list structure) as ``X``; the dtype of ``X`` if it
            is floating point, otherwise float32. ``NaN`` stays ``NaN``.
        """
        return self._apply(X, "transform", inverse=False)

    def inverse_transform(self, X: Any) -> Any:
        """Undo :meth:`transform`: ``X * scale_ + mean_``.

        Parameters
        ----------
        X : array-like or list of array-like
            Standardised data, same layouts as :meth:`fit`.

        Returns
        -------
        numpy.ndarray or list of numpy.ndarray
            Data in the original units, same shape (and list structure) as ``X``.
        """
        return self._apply(X, "inverse_transform", inverse=True)

    def fit_transform(self, X: Any) -> Any:
        """Fit on ``X`` and return ``transform(X)``."""
        return self.fit(X).transform(X)

    # --------------------------------------------------------------- config
    def to_config(self) -> dict[str, Any]:
        """Return a JSON-serialisable description of the fitted scaler.

        Returns
        -------
        dict
            ``{"class_name": "StandardScaler", "mean": [...], "scale": [...]}``
            with one float per channel.
        """
        self._check_fitted("to_config")
        return {
            "class_name": "StandardScaler",
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StandardScaler:
        """Rebuild a fitted scaler from :meth:`to_config` output.

        Raises
        ------
        ValueError
            If the config is for another class, lacks ``mean``/``scale``, or
            they differ in length or hold non-finite or non-positive scales.
        """
        name = config.get("class_name", "StandardScaler")
        if name != "StandardScaler":
            raise ValueError(
                f"StandardScaler.from_config: the config is for {name!r}, not 'StandardScaler'."
            )
        try:
            mean = np.asarray(config["mean"], dtype=np.float64)
            scale = np.asarray(config["scale"], dtype=np.float64)
        except KeyError as exc:
            raise ValueError(
                f"StandardScaler.from_config: the config has no {exc.args[0]!r} entry; expected "
                "the dict produced by StandardScaler.to_config()."
            ) from None
        if mean.ndim != 1 or mean.shape != scale.shape or mean.size == 0:
            raise ValueError(
                f"StandardScaler.from_config: 'mean' and 'scale' must be equally long non-empty "
                f"lists (one value per channel), got shapes {mean.shape} and {scale.shape}."
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(
                "StandardScaler.from_config: 'mean' must be finite and 'scale' finite and "
                f"positive, got mean={mean.tolist()}, scale={scale.tolist()}."
            )
        scaler = cls()
        scaler.mean_, scaler.scale_ = mean, scale
        return scaler

    def __repr__(self) -> str:
        if self.mean_ is None:
            return "StandardScaler(unfitted)"
        return f"StandardScaler(n_channels={self.n_channels})"
