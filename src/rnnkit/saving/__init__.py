"""Safe model files: one safetensors file holding config, weights, optimizer state, metadata.

* :mod:`rnnkit.saving._format` reads and writes the safetensors container and the model
  record (file layout in ``docs/files.md``);
* :mod:`rnnkit.saving._schema` declares the one schema every metadata record is validated
  with, on load and on save, with the size limits;
* :mod:`rnnkit.saving._atomic` writes files atomically (temporary file, fsync, rename).
"""

from ._atomic import atomic_write_bytes
from ._format import (
    FORMAT,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    MAX_LAYERS,
    MAX_NDIM,
    MIN_FORMAT_VERSION,
    RnnkitFileError,
    check_header_size,
    check_record,
    file_records,
    load_model,
    load_weights,
    save_model,
    save_weights,
)
from ._schema import SchemaError

__all__ = ["FORMAT", "FORMAT_VERSION", "MIN_FORMAT_VERSION", "MAX_HEADER_BYTES", "MAX_NDIM",
           "MAX_LAYERS", "RnnkitFileError", "SchemaError", "atomic_write_bytes",
           "check_header_size", "check_record", "file_records", "load_model", "load_weights", "save_model", "save_weights"]
