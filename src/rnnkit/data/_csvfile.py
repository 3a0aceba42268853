"""CSV time-series reader built on the standard-library :mod:`csv` module."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CSVSeries", "MISSING_MARKERS", "load_csv"]

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


def check_utf8_text(path, chunk=1 << 20):
    """Raise ValueError naming the file unless it is UTF-8 text (no NUL bytes).

    Reads the file in chunks of ``chunk`` bytes (memory independent of its size).

    Args:
        path: file path.
        chunk: bytes per read.

    Raises:
        ValueError: the file holds a NUL byte (binary, UTF-16) or a byte sequence that is
            not UTF-8 (e.g. latin-1), with its offset and how to fix it.
    """
    import codecs

    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            nul = block.find(b"\0")
            if nul >= 0:
                raise ValueError(f"{path.name}: byte {offset + nul} is a NUL byte: this is not "
                                 "a text file (binary, or UTF-16 text). Save it as UTF-8 "
                                 "text.")
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                raise ValueError(f"{path.name}: byte {offset + e.start} (0x"
                                 f"{block[e.start:e.start + 1].hex() or '??'}) is not UTF-8; "
                                 "the file is in another encoding (latin-1, cp1252, ...). "
                                 "Save it as UTF-8 text.") from None
            if not block:
                return
            offset += len(block)


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

    check_utf8_text(path)
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
