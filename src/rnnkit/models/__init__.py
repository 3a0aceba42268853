"""Models: the functional :class:`Model` (a graph of layers), :class:`Sequential` (a stack),
and the training engine they share (:mod:`.engine`, truncated BPTT in :mod:`.tbptt`)."""

from .engine import Engine
from .functional import Model
from .sequential import Sequential

__all__ = ["Engine", "Model", "Sequential"]
