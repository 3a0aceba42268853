"""Datasets, file readers and preprocessing for sequence models.

Depends only on NumPy and the Python standard library.

Built-in datasets (shipped with the package, see ``docs/datasets.md``):

* :func:`load_japanese_vowels` -- 12-channel speaker recognition, unequal lengths;
* :func:`load_airline` -- monthly airline passengers 1949-1960;
* :func:`load_shakespeare` -- *The Tempest* as plain text;
* :func:`adding_problem` -- the synthetic adding problem;
* :func:`load_builtin` -- any of the above by name.

Readers: :func:`load_ts` (UCR/UEA ``.ts`` files), :func:`load_csv` (a time series),
:func:`load_csv_sequences` (labelled sequences), :func:`csv_column_roles`.

Preprocessing: :func:`pad_sequences`, :func:`make_windows`,
:func:`train_test_split_last`, :class:`StandardScaler`, :class:`CharVocab`,
:class:`WordVocab`.
"""

from ._builtin import (
    BUILTIN_DATASETS,
    load_airline,
    load_builtin,
    load_japanese_vowels,
    load_shakespeare,
)
from ._csvfile import (
    MISSING_MARKERS,
    CSVColumns,
    CSVSeries,
    csv_column_roles,
    load_csv,
    load_csv_sequences,
)
from ._scaling import StandardScaler
from ._sequences import pad_sequences
from ._synthetic import adding_problem
from ._text import CharVocab, WordVocab
from ._ts import load_ts
from ._windows import make_windows, train_test_split_last

__all__ = [
    "BUILTIN_DATASETS",
    "CSVColumns",
    "CSVSeries",
    "CharVocab",
    "MISSING_MARKERS",
    "StandardScaler",
    "WordVocab",
    "adding_problem",
    "csv_column_roles",
    "load_airline",
    "load_builtin",
    "load_csv",
    "load_csv_sequences",
    "load_japanese_vowels",
    "load_shakespeare",
    "load_ts",
    "make_windows",
    "pad_sequences",
    "train_test_split_last",
]
