"""PyTorch habits on rnnkit models: ``state_dict``, ``parameters``, ``model.train()`` and
``model.eval()``.

rnnkit names a weight ``"<layer name>.<weight name>"`` (``"lstm.kernel"``,
``"dense.bias"``) and stores it in Keras layout as a NumPy array; converting to PyTorch's own
names and layout is :func:`rnnkit.interop.to_torch`'s job (see docs/pytorch.md).
"""

from __future__ import annotations

import numpy as np


class TorchHabits:
    """Mixin for :class:`rnnkit.models.Model`: the PyTorch ``nn.Module`` calls a PyTorch user
    reaches for, with rnnkit names and NumPy arrays."""

    #: True after :meth:`train`: ``model(x)`` then runs in training mode (dropout on).
    training = False

    def named_parameters(self):
        """Yield ``(name, array)`` for every weight, in Keras order.

        The arrays are the live weights (changing them in place changes the model); names are
        ``"<layer name>.<weight name>"``, e.g. ``("lstm.recurrent_kernel", (64, 256) array)``.
        """
        for layer in self.layers:
            for wname, arr in layer.params.items():
                yield f"{layer.name}.{wname}", arr

    def parameters(self):
        """Yield every weight array (live, as :meth:`named_parameters`)."""
        for _, arr in self.named_parameters():
            yield arr

    def state_dict(self):
        """``{name: copy of the weight}`` (NumPy arrays, Keras layout, rnnkit names).

        Returns:
            dict in model order; :meth:`load_state_dict` takes it back.
        """
        return {name: arr.copy() for name, arr in self.named_parameters()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy weights in from a dict written by :meth:`state_dict`.

        Args:
            state_dict: ``{name: array}``; every array must have the weight's shape.
            strict: True (default): the names must match exactly; False: load the names both
                sides have and report the rest.

        Returns:
            ``(missing_keys, unexpected_keys)``, as ``torch.nn.Module.load_state_dict``.

        Raises:
            KeyError: ``strict`` and names differ (the message lists them).
            ValueError: an array has the wrong shape or is not numeric.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict expects a dict of name -> array, got "
                            f"{type(state_dict).__name__}.")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: names differ from model {self.name!r}'s: missing "
                f"{missing}, unexpected {unexpected}. Names are '<layer name>.<weight name>' "
                "as model.state_dict() gives; pass strict=False to load the common ones. For a "
                "PyTorch module's state dict use rnnkit.interop.from_torch_state_dict.")
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if value.dtype.kind not in "biuf":
                raise ValueError(f"load_state_dict: {name!r} must hold numbers, got dtype "
                                 f"{value.dtype}.")
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {name!r} has shape {value.shape}, the model "
                                 f"expects {target.shape}.")
            target[...] = value
        return missing, unexpected

    def train(self, mode=True):
        """Make ``model(x)`` run in training mode (dropout active), as ``nn.Module.train``.

        ``fit`` always trains and ``predict`` / ``evaluate`` never do, whatever the mode.

        Returns:
            self.
        """
        self.training = bool(mode)
        return self

    def eval(self):
        """``train(False)``: ``model(x)`` runs in inference mode. Returns self."""
        return self.train(False)
