"""CSV time-series reader built on the standard-library :mod:`csv` module."""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CSVColumns", "CSVSeries", "MISSING_MARKERS", "csv_column_roles", "load_csv",
           "load_csv_sequences"]

#: Cell contents (compared case-insensitively, after stripping whitespace)
#: that :func:`load_csv` reads as a missing value (``NaN``).
MISSING_MARKERS: frozenset[str] = frozenset({"", "?", "na", "n/a", "nan", "null", "none"})


@dataclass(frozen=True, eq=False)
class CSVSeries:
    """A multichannel time series read from a CSV file.

    Attributes
    ----------
    values : numpy.ndarray, shape (T, C), float32
        One row per CSV data row, one column per selected column. Missing
        values are ``NaN``.
    columns : list of str
        Names of the ``C`` columns of ``values``, in order.
    dates : list of str or None
        The raw contents of the date column (one string per row, whitespace
        stripped), or ``None`` when no ``date_column`` was requested.
    """

    values: np.ndarray
    columns: list[str]
    dates: list[str] | None = None

    def __len__(self) -> int:
        """Number of time steps ``T``."""
        return int(self.values.shape[0])


def _missing_column_error(name: str, wanted: str, header: list[str], what: str) -> ValueError:
    hint = ""
    if len(header) == 1:
        hint = (
            " The header has a single column, so the file may use another delimiter; "
            "pass e.g. delimiter=';' or delimiter='\\t'."
        )
    return ValueError(
        f"{name}: {what} {wanted!r} not found in the header; available columns: {header}.{hint}"
    )


def load_csv(
    path: str | os.PathLike[str],
    columns: str | Sequence[str] | None = None,
    date_column: str | None = None,
    delimiter: str = ",",
) -> CSVSeries:
    """Read a time series stored as a CSV file with a header row.

    Each data row is one time step. Numeric columns are selected by header
    name; an optional date (or any label) column is returned separately as
    strings, unparsed.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file (UTF-8, an optional byte-order mark is ignored). The first
        non-blank row is the header; blank lines are skipped.
    columns : str or sequence of str, optional
        Names of the numeric columns to read, in the order wanted. Defaults
        to every column except ``date_column``.
    date_column : str, optional
        Name of a column to return as ``dates`` (list of str) instead of
        parsing it as numbers.
    delimiter : str, default ","
        One-character field separator, e.g. ``";"`` or ``"\\t"``.

    Returns
    -------
    CSVSeries
        ``values`` of shape ``(T, C)`` float32, ``columns`` (the ``C`` names)
        and ``dates`` (``T`` strings, or ``None``).

    Raises
    ------
    ValueError
        If the file is empty or has no data rows, a header name is repeated,
        a requested column is missing, a row has the wrong number of fields,
        or a cell is not a number. Cell errors name the file, line and
        column. Empty cells and the markers ``?``, ``NA``, ``N/A``, ``NaN``,
        ``null`` and ``None`` (any case) are not errors: they become ``NaN``.
    FileNotFoundError
        If ``path`` does not exist.

    Examples
    --------
    >>> s = load_csv("airline.csv", date_column="Date")  # doctest: +SKIP
    >>> s.values.shape, s.columns, s.dates[0]  # doctest: +SKIP
    ((144, 1), ['Passengers'], '1949-01')
    """
    path = Path(path)
    name = path.name
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(
            f"`delimiter` must be a single character such as ',' or ';', got {delimiter!r}."
        )
    if isinstance(columns, str):
        columns = [columns]
    elif columns is not None:
        columns = list(columns)
        if not columns:
            raise ValueError(
                "`columns` is an empty list; pass None to read every column, or the "
                "names of the columns to read."
            )

    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next((row for row in reader if row), None)
        if header is None:
            raise ValueError(f"{name}: the file is empty; expected a header row of column names.")
        header_line = reader.line_num
        header = [h.strip() for h in header]

        seen: dict[str, int] = {}
        for position, col in enumerate(header):
            if col in seen:
                raise ValueError(
                    f"{name} line {header_line}: column name {col!r} appears twice in the "
                    f"header (fields {seen[col] + 1} and {position + 1}); column names "
                    "must be unique."
                )
            seen[col] = position

        date_index: int | None = None
        if date_column is not None:
            if date_column not in seen:
                raise _missing_column_error(name, date_column, header, "date_column")
            date_index = seen[date_column]

        if columns is None:
            columns = [c for c in header if c != date_column]
            if not columns:
                raise ValueError(
                    f"{name}: the only column is the date column {date_column!r}; there are "
                    "no value columns to read."
                )
        for col in columns:
            if col not in seen:
                raise _missing_column_error(name, col, header, "column")
        indices = [seen[c] for c in columns]

        rows: list[list[float]] = []
        dates: list[str] | None = [] if date_index is not None else None
        for row in reader:
            if not row:  # blank line
                continue
            lineno = reader.line_num
            if len(row) != len(header):
                raise ValueError(
                    f"{name} line {lineno}: expected {len(header)} fields like the header "
                    f"({delimiter.join(header)}), got {len(row)}; check for missing or "
                    "extra delimiters, and quote fields that contain the delimiter."
                )
            values = []
            for col, index in zip(columns, indices, strict=True):
                cell = row[index].strip()
                if cell.lower() in MISSING_MARKERS:
                    values.append(math.nan)
                    continue
                try:
                    values.append(float(cell))
                except ValueError:
                    raise ValueError(
                        f"{name} line {lineno}: column {col!r} has the non-numeric value "
                        f"{cell!r}; expected a number, or an empty cell / NA / NaN / ? for a "
                        "missing value. Fix the cell, or leave the column out via `columns=` "
                        "(or pass it as `date_column=`)."
                    ) from None
            rows.append(values)
            if dates is not None:
                dates.append(row[date_index].strip())

    if not rows:
        raise ValueError(
            f"{name}: the file has a header ({delimiter.join(header)}) but no data rows."
        )
    return CSVSeries(
        values=np.asarray(rows, dtype=np.float32).reshape(len(rows), len(columns)),
        columns=list(columns),
        dates=dates,
    )


# ----------------------------------------------------------------------------- column roles
#: Header names pandas (and others) give a row-index column written by ``to_csv()``.
INDEX_NAMES = frozenset({"", "unnamed: 0", "index"})
#: Header names of columns that hold labels of whole sequences rather than measurements.
LABEL_NAMES = frozenset({"label", "labels", "class", "classes", "category", "species",
                         "activity", "y"})
#: Header names of sequence / sample identifiers.
ID_NAMES = frozenset({"id", "series", "series_id", "sequence", "sequence_id", "seq", "seq_id",
                      "sample", "sample_id", "subject", "case", "case_id"})
_DATE_NAMES = frozenset({"date", "time", "datetime", "timestamp", "period", "month", "year",
                         "day", "week", "ds", "t", "step", "timestep", "time_step"})
_DATE_RE = re.compile(r"^\d{1,4}([-/.:T ]\d{1,2}){1,6}([.,]\d+)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class CSVColumns:
    """What each column of a CSV file holds, decided from its header and cells.

    Attributes
    ----------
    header : list of str
        Column names in file order.
    roles : dict of str -> str
        ``'index'`` (an unnamed leading column: a row index such as pandas' ``to_csv()``
        writes), ``'date'`` (dates or times as text, or a numeric column named like a date),
        ``'counter'`` (integers rising by a constant step: row numbers, years), ``'id'``
        (a sequence identifier: named like one, or consecutive integers each repeated in a
        run), ``'text'``
        (any other non-numeric column: labels), ``'value'`` (numbers: measurements).
    reasons : dict of str -> str
        Why a column got its role (shown to the user when it is left out).
    n_rows : int
        Number of data rows.
    """

    header: list
    roles: dict
    reasons: dict
    n_rows: int

    def named(self, role):
        """Names of the columns with ``role``, in file order."""
        return [c for c in self.header if self.roles[c] == role]

    def suggests_labels(self):
        """The columns that make the file look like labelled sequences (empty if none):
        text columns, columns named like labels, and sequence-id columns."""
        return [c for c in self.header if self.roles[c] in ("text", "id")
                or c.strip().lower() in LABEL_NAMES]


def _number(cell):
    c = cell.strip()
    if c.lower() in MISSING_MARKERS:
        return math.nan
    try:
        return float(c)
    except ValueError:
        return None


def csv_column_roles(path, delimiter=","):
    """Decide what every column of a CSV file holds (see :class:`CSVColumns`).

    Args:
        path: CSV file with a header row.
        delimiter: field separator.

    Returns:
        :class:`CSVColumns`.

    Raises:
        ValueError: the file is empty or has no data rows.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f, delimiter=delimiter) if r]
    if not rows:
        raise ValueError(f"{path.name}: the file is empty; expected a header row of column names.")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if len(r) == len(header)]
    if not body:
        raise ValueError(f"{path.name}: the file has a header ({delimiter.join(header)}) but no "
                         "data rows.")
    roles, reasons = {}, {}
    for j, name in enumerate(header):
        cells = [r[j] for r in body]
        nums = [_number(c) for c in cells]
        key = name.lower()
        if j == 0 and key in INDEX_NAMES:
            roles[name], reasons[name] = "index", "unnamed leading column: a row index"
            continue
        text = [c.strip() for c, v in zip(cells, nums) if v is None]
        if len(text) * 2 > len(cells):     # mostly text (a few bad cells stay 'value' and
            # are reported by line when read)
            if all(_DATE_RE.match(t) for t in text):
                roles[name], reasons[name] = "date", "dates or times"
            elif key in ID_NAMES:
                roles[name], reasons[name] = "id", "sequence identifiers"
            else:
                roles[name], reasons[name] = "text", f"text such as {text[0]!r}"
            continue
        vals = np.array([math.nan if v is None else v for v in nums], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        integral = finite.size > 0 and np.all(finite == np.round(finite))
        steps = np.diff(finite)
        if key in _DATE_NAMES:
            roles[name], reasons[name] = "date", f"named {name!r}: a date, time or step"
        elif key in ID_NAMES or (integral and len(finite) >= 4 and np.all(np.isin(steps, (0, 1)))
                                 and 1 < len(np.unique(finite)) <= len(finite) // 2):
            # consecutive integers, each repeated: 0, 0, 0, 1, 1, 2, 2, 2, ...
            roles[name], reasons[name] = "id", "sequence identifiers (integers in runs)"
        elif integral and len(finite) >= 3 and len(finite) == len(vals) and steps[0] > 0 \
                and np.all(steps == steps[0]):
            roles[name], reasons[name] = "counter", (
                f"a counter ({finite[0]:g}, {finite[1]:g}, ... rising by {steps[0]:g})")
        else:
            roles[name], reasons[name] = "value", "numbers"
    return CSVColumns(header=header, roles=roles, reasons=reasons, n_rows=len(body))


def load_csv_sequences(path, label, id_column=None, time_column=None, columns=None,
                       delimiter=","):
    """Read labelled sequences from a CSV file, in one of two layouts.

    *Long* (``id_column`` given): one row per time step; the rows sharing an id form one
    sequence (in file order, or sorted by ``time_column``), the value columns are its
    channels, and ``label`` must be the same on every row of a sequence.
    *Wide* (no ``id_column``): one row per sequence; the value columns, left to right, are
    its time steps (one channel).

    Row-index columns (an unnamed first column), date and counter columns are never used as
    channels or time steps; ``columns`` picks the value columns explicitly.

    Args:
        path: CSV file with a header row.
        label: name of the label column, or None for unlabelled sequences (``y`` is None).
        id_column: name of the sequence-id column (long layout), or None (wide layout).
        time_column: long layout: column that orders the steps of a sequence (numbers or
            ISO dates), or None for file order.
        columns: names of the value columns (default: every column whose role is 'value').
        delimiter: field separator.

    Returns:
        ``(x, y, channels)``: a list of N float32 arrays ``(T_i, C)``, an (N,) array of
        label strings (None without ``label``), and the names of the columns used (channels, or time steps in the
        wide layout).

    Raises:
        ValueError: a named column is missing, a label changes within a sequence, or a
            value cell is not a number (the message names the file, line and column).
    """
    path = Path(path)
    roles = csv_column_roles(path, delimiter)
    header = roles.header
    for what, name in (("label", label), ("id_column", id_column),
                       ("time_column", time_column)):
        if name is not None and name not in header:
            raise _missing_column_error(path.name, name, header, what)
    taken = {label, id_column, time_column}
    if columns is None:
        columns = [c for c in roles.named("value") if c not in taken]
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
        for c in columns:
            if c not in header:
                raise _missing_column_error(path.name, c, header, "column")
    if not columns:
        raise ValueError(f"{path.name}: no value columns left besides label {label!r}"
                         + (f" and id {id_column!r}" if id_column else "")
                         + f"; the columns are {header} with roles {roles.roles}. Pass the "
                         "value columns with columns=[...] (--columns).")
    index = {c: i for i, c in enumerate(header)}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(r for r in reader if r)
        records = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path.name} line {reader.line_num}: expected {len(header)} "
                                 f"fields like the header, got {len(row)}.")
            vals = []
            for c in columns:
                v = _number(row[index[c]])
                if v is None:
                    raise ValueError(f"{path.name} line {reader.line_num}: column {c!r} has "
                                     f"the non-numeric value {row[index[c]].strip()!r}; "
                                     "expected a number (or NA for a missing value).")
                vals.append(v)
            records.append((reader.line_num, row, vals))
    def label_of(row):
        return "" if label is None else row[index[label]].strip()

    if id_column is None:
        x = [np.asarray(v, np.float32)[:, None] for _, _, v in records]
        y = np.asarray([label_of(row) for _, row, _ in records], dtype=object)
        return x, (None if label is None else y), columns
    groups: dict[str, list] = {}
    for line, row, vals in records:
        groups.setdefault(row[index[id_column]].strip(), []).append((line, row, vals))
    x, y = [], []
    for sid, items in groups.items():
        labels = {label_of(row) for _, row, _ in items}
        if len(labels) > 1:
            raise ValueError(f"{path.name}: sequence {id_column}={sid!r} has more than one "
                             f"label {sorted(labels)} (lines {items[0][0]}-{items[-1][0]}); "
                             "a label must be constant within a sequence.")
        if time_column is not None:
            def order(item):
                cell = item[1][index[time_column]].strip()
                v = _number(cell)
                return (0, v, "") if v is not None else (1, 0.0, cell)
            items = sorted(items, key=order)
        x.append(np.asarray([v for _, _, v in items], np.float32))
        y.append(labels.pop())
    return x, (None if label is None else np.asarray(y, dtype=object)), columns
