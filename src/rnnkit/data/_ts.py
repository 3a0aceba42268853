"""Reader for the UCR/UEA ``.ts`` time-series classification format.

The format (used by timeseriesclassification.com and sktime) is a text file made
of three parts:

* comment lines starting with ``#``;
* header tags, one per line, such as ``@problemName``, ``@univariate``,
  ``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel``,
  ``@targetLabel``, ``@timeStamps`` and ``@missing``;
* an ``@data`` line followed by one series per line. Within a line each
  dimension is a comma-separated list of values, dimensions are separated by
  ``:`` and the class label (or regression target), when the header declares
  one, is the last ``:``-separated field. ``?`` marks a missing value.

Example (two-dimensional, labels ``a``/``b``)::

    @problemName Toy
    @univariate false
    @dimensions 2
    @equalLength false
    @classLabel true a b
    @data
    1,2,3:4,5,6:a
    7,8:9,10:b
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["load_ts"]

# Tag names as written in the format; matching is case-insensitive.
_TAG_NAMES = {
    "problemname": "@problemName",
    "timestamps": "@timeStamps",
    "missing": "@missing",
    "univariate": "@univariate",
    "dimensions": "@dimensions",
    "equallength": "@equalLength",
    "serieslength": "@seriesLength",
    "classlabel": "@classLabel",
    "targetlabel": "@targetLabel",
    "data": "@data",
}


@dataclass
class _Header:
    """Header information collected while scanning a ``.ts`` file."""

    problem_name: str | None = None
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    class_labels: list[str] | None = None  # None: no class label column
    class_label_line: int = 0
    target_label: bool = False
    seen: dict[str, int] = field(default_factory=dict)  # tag -> line number


class _Reader:
    """Stateful line-by-line parser; one instance per file."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.header = _Header()
        self.in_data = False
        self.n_dims: int | None = None
        self.expected_length: int | None = None
        self.first_length_line = 0
        self.series: list[np.ndarray] = []
        self.labels: list[str] = []

    # -- error helper -------------------------------------------------------
    def error(self, lineno: int, message: str) -> ValueError:
        return ValueError(f"{self.name} line {lineno}: {message}")

    # -- header -------------------------------------------------------------
    def parse_bool(self, lineno: int, tag: str, text: str) -> bool:
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise self.error(
                lineno,
                f"{tag} expects 'true' or 'false', got {text.strip()!r}; write e.g. '{tag} false'.",
            )
        return word == "true"

    def parse_positive_int(self, lineno: int, tag: str, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = 0
        if value < 1:
            raise self.error(
                lineno,
                f"{tag} expects a positive integer, got {text.strip()!r}; write e.g. '{tag} 3'.",
            )
        return value

    def parse_tag(self, lineno: int, line: str) -> None:
        parts = line[1:].split(None, 1)
        key = parts[0].lower() if parts else ""
        rest = parts[1] if len(parts) > 1 else ""
        if key not in _TAG_NAMES:
            known = ", ".join(_TAG_NAMES.values())
            raise self.error(
                lineno,
                f"unknown header tag {line.split()[0]!r}; expected one of {known}.",
            )
        tag = _TAG_NAMES[key]
        if self.in_data:
            raise self.error(
                lineno,
                f"header tag {tag} appears after '@data'; move all header tags above "
                "the '@data' line.",
            )
        if key in self.header.seen:
            raise self.error(
                lineno,
                f"duplicate {tag} tag (first given on line {self.header.seen[key]}); "
                "keep only one.",
            )
        self.header.seen[key] = lineno
        h = self.header

        if key == "problemname":
            if not rest.strip():
                raise self.error(lineno, "@problemName needs a name, e.g. '@problemName Toy'.")
            h.problem_name = rest.strip()
        elif key == "timestamps":
            if self.parse_bool(lineno, tag, rest):
                raise self.error(
                    lineno,
                    "'@timeStamps true' (series given as (time, value) pairs) is not "
                    "supported; convert the file to plain values and declare "
                    "'@timeStamps false'.",
                )
        elif key == "missing":
            # Informational only: '?' is always read as NaN.
            self.parse_bool(lineno, tag, rest)
        elif key == "univariate":
            h.univariate = self.parse_bool(lineno, tag, rest)
        elif key == "dimensions":
            h.dimensions = self.parse_positive_int(lineno, tag, rest)
        elif key == "equallength":
            h.equal_length = self.parse_bool(lineno, tag, rest)
        elif key == "serieslength":
            h.series_length = self.parse_positive_int(lineno, tag, rest)
        elif key == "classlabel":
            tokens = rest.split()
            if not tokens:
                raise self.error(
                    lineno,
                    "@classLabel expects 'true <label> <label> ...' or 'false', got nothing.",
                )
            has_labels = self.parse_bool(lineno, tag, tokens[0])
            labels = tokens[1:]
            if has_labels:
                if not labels:
                    raise self.error(
                        lineno,
                        "'@classLabel true' must be followed by the list of class labels, "
                        "e.g. '@classLabel true 1 2 3'.",
                    )
                duplicated = sorted({lab for lab in labels if labels.count(lab) > 1})
                if duplicated:
                    raise self.error(
                        lineno,
                        f"@classLabel lists these labels more than once: {duplicated}; "
                        "list each class label once.",
                    )
                h.class_labels = labels
                h.class_label_line = lineno
            elif labels:
                raise self.error(
                    lineno,
                    f"'@classLabel false' must not be followed by labels, got {labels}; "
                    "use '@classLabel true ...' to declare class labels.",
                )
        elif key == "targetlabel":
            h.target_label = self.parse_bool(lineno, tag, rest)
        elif key == "data":
            if rest.strip():
                raise self.error(
                    lineno,
                    f"'@data' must be alone on its line, got {line!r}; put the first "
                    "series on the next line.",
                )
            self.start_data(lineno)

    def start_data(self, lineno: int) -> None:
        """Validate the header as a whole when ``@data`` is reached."""
        h = self.header
        if h.class_labels is not None and h.target_label:
            raise self.error(
                lineno,
                "the header declares both '@classLabel true' (classification) and "
                "'@targetLabel true' (regression); a file can have only one of them.",
            )
        if h.univariate is True and h.dimensions not in (None, 1):
            raise self.error(
                lineno,
                f"the header says '@univariate true' but '@dimensions {h.dimensions}' "
                f"(line {h.seen['dimensions']}); use '@univariate false' for multivariate "
                "data or '@dimensions 1'.",
            )
        if h.univariate is False and h.dimensions == 1:
            raise self.error(
                lineno,
                f"the header says '@univariate false' but '@dimensions 1' "
                f"(line {h.seen['dimensions']}); use '@univariate true' for a single "
                "dimension.",
            )
        if h.dimensions is not None:
            self.n_dims = h.dimensions
        elif h.univariate:
            self.n_dims = 1
        if h.equal_length and h.series_length is not None:
            self.expected_length = h.series_length
            self.first_length_line = h.seen["serieslength"]
        self.in_data = True

    # -- data ---------------------------------------------------------------
    def parse_values(self, lineno: int, text: str, dim: int) -> np.ndarray:
        tokens = text.split(",")
        out = np.empty(len(tokens), dtype=np.float64)
        for i, raw in enumerate(tokens):
            token = raw.strip()
            if token == "?":
                out[i] = math.nan
                continue
            if not token:
                raise self.error(
                    lineno,
                    f"dimension {dim}, value {i + 1} is empty (stray or doubled comma?); "
                    "expected a number or '?' for a missing value.",
                )
            try:
                out[i] = float(token)
            except ValueError:
                raise self.error(
                    lineno,
                    f"dimension {dim}, value {i + 1}: {token!r} is not a number; expected "
                    "a decimal number or '?' for a missing value.",
                ) from None
        return out

    def parse_series(self, lineno: int, line: str) -> None:
        h = self.header
        fields = line.split(":")
        labelled = h.class_labels is not None or h.target_label
        label_kind = "class label" if h.class_labels is not None else "target value"

        if self.n_dims is None:  # no @dimensions / @univariate: infer from first series
            self.n_dims = len(fields) - int(labelled)
            if self.n_dims < 1:
                raise self.error(
                    lineno,
                    f"expected at least one dimension before the {label_kind}, got only {line!r}.",
                )
        expected_fields = self.n_dims + int(labelled)
        if len(fields) != expected_fields:
            if labelled:
                expected = f"{self.n_dims} dimension(s) + {label_kind}"
            else:
                expected = f"{self.n_dims} dimension(s) and no label (the header has no '@classLabel true')"
            raise self.error(
                lineno,
                f"expected {expected} = {expected_fields} ':'-separated field(s), got "
                f"{len(fields)}; check that dimensions are separated by ':'"
                + (f" and the {label_kind} is the last field." if labelled else "."),
            )

        if labelled:
            label = fields.pop().strip()
            if not label:
                raise self.error(lineno, f"the {label_kind} (last ':'-separated field) is empty.")
            if h.class_labels is not None and label not in h.class_labels:
                raise self.error(
                    lineno,
                    f"class label {label!r} is not among the labels declared by @classLabel "
                    f"on line {h.class_label_line} ({' '.join(h.class_labels)}); add it to "
                    "the @classLabel list or fix the label.",
                )
            if h.target_label:
                try:
                    float(label)
                except ValueError:
                    raise self.error(
                        lineno,
                        f"regression target {label!r} is not a number ('@targetLabel true' "
                        "needs a numeric last field).",
                    ) from None
            self.labels.append(label)

        dims = [self.parse_values(lineno, text, d + 1) for d, text in enumerate(fields)]
        length = len(dims[0])
        for d, values in enumerate(dims[1:], start=2):
            if len(values) != length:
                raise self.error(
                    lineno,
                    f"dimension {d} has {len(values)} values but dimension 1 has {length}; "
                    "all dimensions of one series must have the same length (pad the "
                    "shorter ones with '?').",
                )
        if h.equal_length:
            if self.expected_length is None:
                self.expected_length, self.first_length_line = length, lineno
            elif length != self.expected_length:
                source = (
                    f"@seriesLength on line {self.first_length_line}"
                    if h.series_length is not None
                    else f"the first series on line {self.first_length_line}"
                )
                raise self.error(
                    lineno,
                    f"series has {length} time steps but '@equalLength true' and {source} "
                    f"require {self.expected_length}; fix the series or declare "
                    "'@equalLength false'.",
                )
        self.series.append(np.stack(dims, axis=1).astype(np.float32))

    # -- driver -------------------------------------------------------------
    def feed(self, lineno: int, raw_line: str) -> None:
        line = raw_line.strip()
        if not line or line.startswith("#"):
            return
        if line.startswith("@"):
            self.parse_tag(lineno, line)
        elif not self.in_data:
            raise self.error(
                lineno,
                "found data before the '@data' line; a .ts file needs its header tags, "
                "then a line '@data', then one series per line.",
            )
        else:
            self.parse_series(lineno, line)

    def finish(self, last_line: int) -> tuple[list[np.ndarray], np.ndarray | None]:
        if not self.in_data:
            raise self.error(
                last_line,
                "reached the end of the file without an '@data' line; add '@data' after "
                "the header tags, followed by one series per line.",
            )
        if not self.series:
            raise self.error(
                last_line,
                "no series found after '@data'; expected one series per line.",
            )
        labelled = self.header.class_labels is not None or self.header.target_label
        y = np.array(self.labels, dtype=str) if labelled else None
        return self.series, y


def load_ts(path: str | os.PathLike[str]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Read a UCR/UEA ``.ts`` time-series file.

    Supports univariate and multivariate data, equal and unequal series
    lengths, string or numeric class labels (``@classLabel true ...``),
    regression targets (``@targetLabel true``), files without labels, and
    missing values written as ``?``. Only ``@timeStamps false`` files are
    supported.

    Parameters
    ----------
    path : str or os.PathLike
        Path to the ``.ts`` file (UTF-8 text).

    Returns
    -------
    X : list of numpy.ndarray
        One float32 array per series (one per line after ``@data``), each of
        shape ``(T_i, C)``: time-major with the ``C`` dimensions (channels)
        last. ``T_i`` may differ between series. Missing values (``?``) are
        ``NaN``.
    y : numpy.ndarray of str, shape (N,), or None
        The label of each series, exactly as written in the file (so ``"1"``,
        not ``1``; convert with e.g. ``y.astype(int)``). For regression files
        (``@targetLabel true``) these are the target values as strings.
        ``None`` when the header declares neither class labels nor a target.

    Raises
    ------
    ValueError
        If the file is malformed. The message names the file and line and says
        what was expected, e.g. ``"JapaneseVowels_TRAIN.ts line 12: expected 12
        dimension(s) + class label = 13 ':'-separated field(s), got 12; ..."``.
        Checked: unknown, duplicated or contradictory header tags, a missing
        ``@data`` line, a wrong number of dimensions, dimensions of different
        lengths within a series, series lengths that break ``@equalLength
        true``/``@seriesLength``, labels not declared by ``@classLabel``, and
        non-numeric values.
    FileNotFoundError
        If ``path`` does not exist.

    Notes
    -----
    When neither ``@dimensions`` nor ``@univariate true`` is given, the number
    of dimensions is taken from the first series and every other series must
    match it. ``@missing`` is informational: ``?`` is always read as ``NaN``.

    Examples
    --------
    >>> X, y = load_ts("JapaneseVowels_TRAIN.ts")  # doctest: +SKIP
    >>> len(X), X[0].shape, y[:3]  # doctest: +SKIP
    (270, (20, 12), array(['1', '1', '1'], dtype='<U1'))
    """
    path = Path(path)
    reader = _Reader(path)
    lineno = 0
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                reader.feed(lineno, line)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path.name} line {lineno + 1}: the file is not valid UTF-8 text ({exc.reason}); "
            "a .ts file must be plain text."
        ) from None
    return reader.finish(max(lineno, 1))
