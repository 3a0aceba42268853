"""Interop with PyTorch, Keras 3 and ONNX: weight import/export and ONNX export.

rnnkit's native weight layout is Keras's, so Keras files map one to one; PyTorch and ONNX
weights are converted by the explicit gate maps in :mod:`rnnkit.interop._layout`.
torch, keras, h5py, onnx and onnxruntime are imported only inside the functions that use them.

* :func:`from_torch`, :func:`from_torch_state_dict` -> rnnkit Sequential
* :func:`to_torch` -> torch.nn.Module with the same outputs
* :func:`from_keras` (reads ``.keras`` / ``.weights.h5`` with h5py, no keras needed)
* :func:`to_keras` -> ``.keras`` file that ``keras.saving.load_model`` loads
* :func:`export_onnx` -> ONNX graph with ONNX's own RNN / LSTM / GRU operators

See docs/interop.md for the layout table.
"""

from ._keras import from_keras, to_keras
from ._torch_export import to_torch
from ._torch_import import from_torch, from_torch_state_dict
from .onnx import export_onnx

__all__ = ["from_torch", "from_torch_state_dict", "to_torch", "from_keras", "to_keras",
           "export_onnx"]
