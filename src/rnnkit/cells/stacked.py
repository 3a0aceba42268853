"""Several cells run as one: the output of cell k is the input of cell k+1 at the same step."""

from __future__ import annotations

from .._validate import no_unknown_kwargs
from .base import Cell, deserialize, serialize


class StackedRNNCells(Cell):
    """A stack of cells behaving as one cell, as ``keras.layers.StackedRNNCells``.

    ``RNN([cell_a, cell_b])`` builds one. The states are the concatenation of the cells'
    states (``state_size = cell_a.state_size + cell_b.state_size``); the output is the last
    cell's output. Parameters are named ``cell<k>_<name>`` (``cell0_kernel``, ...).
    Dropout inside a stack is not supported: give each cell ``dropout=0`` and
    ``recurrent_dropout=0`` (or use one RNN layer per cell).

    Args:
        cells: non-empty list of :class:`Cell` instances.

    Shapes: ``step`` maps x_t (B, F) to y_t (B, cells[-1].output_size).
    """

    def __init__(self, cells, **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        super().__init__()
        if not isinstance(cells, (list, tuple)) or not cells or not all(
                isinstance(c, Cell) for c in cells):
            raise TypeError(f"StackedRNNCells expects a non-empty list of Cell instances, got "
                            f"{cells!r}.")
        for k, c in enumerate(cells):
            if c.dropout or c.recurrent_dropout:
                raise ValueError(
                    f"cells[{k}] ({type(c).__name__}) has dropout={c.dropout} and "
                    f"recurrent_dropout={c.recurrent_dropout}; dropout inside a stack of cells "
                    "is not supported. Use one RNN layer per cell to have dropout.")
        self.cells = list(cells)
        self.state_size = [n for c in self.cells for n in c.state_size]
        self.output_size = self.cells[-1].output_size

    def build(self, input_dim):
        """Build every cell; cell k+1 gets cell k's output size as its input size."""
        dim = input_dim
        for k, cell in enumerate(self.cells):
            def make(spec, k=k):
                return self.add_weight(f"cell{k}_{spec.name}", spec.shape, spec.initializer,
                                       spec.regularizer, spec.constraint)
            cell.build_weights(dim, self.dtype, make=make)
            dim = cell.output_size

    def _split(self, states):
        out, i = [], 0
        for c in self.cells:
            n = len(c.state_size)
            out.append(list(states[i:i + n]))
            i += n
        return out

    def step(self, x_t, states, training=False):
        """Each cell's step in turn; see :meth:`Cell.step`."""
        new_states, caches = [], []
        for cell, st in zip(self.cells, self._split(states)):
            x_t, new, cache = cell.step(x_t, st, training=training)
            new_states += list(new)
            caches.append(cache)
        return x_t, new_states, caches

    def step_backward(self, dy_t, dstates, cache):
        """Each cell's backward, last to first; see :meth:`Cell.step_backward`."""
        dprev_all, dparams = [], []
        for cell, ds, c in reversed(list(zip(self.cells, self._split(dstates), cache))):
            dy_t, dprev, dp = cell.step_backward(dy_t, ds, c)
            dprev_all[:0] = list(dprev)
            dparams[:0] = list(dp)
        return dy_t, dprev_all, dparams

    def get_config(self):
        return {"cells": [serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["cells"] = [c if isinstance(c, Cell) else deserialize(c, custom_objects)
                           for c in config.get("cells", [])]
        return cls(**config)

    def clone(self):
        """A new, unbuilt stack of clones of the cells."""
        return StackedRNNCells([c.clone() for c in self.cells])
