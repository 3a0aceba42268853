"""The cell protocol: what a recurrent cell declares and implements.

A cell is one time step, forward and backward, and nothing else: it holds its weights but no
state and no loop. :class:`rnnkit.layers.RNN` owns the time loop (masks, ``go_backwards``,
``stateful``, initial states, dropout masks, truncated BPTT windows). See docs/cells.md for
the full protocol and a complete custom cell.

A cell

* sets ``state_size`` (list of ints, one per state array) and ``output_size`` (int) in its
  constructor;
* declares its parameters in ``build(input_dim)`` with :meth:`Cell.add_weight` (name, shape,
  initializer, regularizer, constraint); after build they are NumPy arrays readable under
  their names (``cell.kernel``, ``cell.recurrent_kernel``, ...);
* implements ``step(x_t, states, training=False) -> (y_t, new_states, cache)`` and
  ``step_backward(dy_t, dstates, cache) -> (dx_t, dstates_prev, dparams)``, ``dparams``
  holding one array per declared parameter, in declaration order (None for a parameter the
  step does not use).

Built-in cells (:class:`ProjectedCell`) additionally split a step into the input projection
``x_t @ kernel + b_in`` (computed for all steps at once by the layer) and the recurrent part,
which is what compiled kernels (:mod:`rnnkit.kernels`) are registered for.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _backend
from .. import initializers as _init
from .. import regularizers as _reg
from .._validate import check_rate, check_seed, no_unknown_kwargs


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """A declared parameter of a cell.

    Attributes:
        name: the name the array is read under (``cell.<name>``) and saved under.
        shape: tuple of ints.
        initializer: an :mod:`rnnkit.initializers` object.
        regularizer: an :mod:`rnnkit.regularizers` object or None.
        constraint: None or a callable ``w -> w`` (e.g. a norm clip) applied to the
            parameter after every optimizer update.
    """

    name: str
    shape: tuple
    initializer: object
    regularizer: object = None
    constraint: object = None


class Cell:
    """Base class of recurrent cells (user cells and the built-ins).

    Args:
        dropout: fraction of the inputs dropped during training (one mask per sequence,
            drawn and applied by the RNN layer; every cell supports it).
        recurrent_dropout: fraction of the recurrent state dropped during training (one mask
            per sequence). Only cells with ``supports_recurrent_dropout = True`` accept a
            non-zero value; they receive the (B, state_size[0]) mask as the keyword argument
            ``recurrent_mask`` of :meth:`step`.
        seed: None or an int seeding the dropout masks (the RNN layer running the cell keeps
            the generator, so that it is saved with the model).

    Subclasses set ``self.state_size`` and ``self.output_size`` in ``__init__``, declare
    parameters in :meth:`build`, and implement :meth:`step` and :meth:`step_backward`.
    ``get_config()`` must return the constructor arguments, so that ``cls(**config)``
    recreates the cell (register user cells with :func:`rnnkit.cells.register_cell` to load
    saved models that use them).
    """

    #: True when :meth:`step` accepts ``recurrent_mask=`` (see ``recurrent_dropout``).
    supports_recurrent_dropout = False
    #: True when the output ``y_t`` IS the first state (all built-in cells). The loop then
    #: carries the output of a masked step with that state (the initial state before the
    #: first step) and adds ``dL/dy_t`` to ``dstates[0]`` (passing zeros as ``dy_t``).
    #: False: a masked step repeats the previous output (zeros before the first step).
    output_is_state = False

    def __init__(self, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        no_unknown_kwargs(type(self).__name__, kwargs)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        if self.recurrent_dropout > 0 and not self.supports_recurrent_dropout:
            raise ValueError(
                f"{type(self).__name__} does not support recurrent_dropout (got "
                f"{recurrent_dropout!r}); set supports_recurrent_dropout = True on the cell class "
                "and accept recurrent_mask= in step(), or use recurrent_dropout=0.")
        self.seed = check_seed("seed", seed)
        self.params: dict[str, np.ndarray] = {}
        self.param_specs: list[ParamSpec] = []
        self.dtype = None
        self.built = False
        self._make = None

    # ------------------------------------------------------------------ parameters
    def build(self, input_dim):
        """Declare the parameters for inputs of ``input_dim`` features (override).

        Call :meth:`add_weight` once per parameter; the declaration order is the order of
        ``dparams``, of ``get_weights()`` and of the saved tensors. A cell without
        parameters need not override this.
        """

    def add_weight(self, name, shape, initializer="zeros", regularizer=None, constraint=None):
        """Declare parameter ``name`` of ``shape`` and create it; returns the array.

        Args:
            name: an identifier, unique within the cell; the array is then ``cell.<name>``.
            shape: tuple of positive ints.
            initializer: name, instance or callable ``(shape, dtype) -> array``.
            regularizer: name, instance or None.
            constraint: None or a callable ``w -> w`` applied after each optimizer update.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"add_weight: name must be an identifier such as 'kernel', got "
                             f"{name!r}.")
        if name in self.params:
            raise ValueError(f"add_weight: {type(self).__name__} already declared a parameter "
                             f"named {name!r}; give each parameter its own name.")
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise ValueError(f"add_weight({name!r}): shape must be a tuple of ints, got "
                             f"{shape!r}.") from None
        if any(s <= 0 for s in shape):
            raise ValueError(f"add_weight({name!r}): every dimension must be positive, got "
                             f"{shape}.")
        if constraint is not None and not callable(constraint):
            raise TypeError(f"add_weight({name!r}): constraint must be None or a callable "
                            f"w -> w, got {constraint!r}.")
        spec = ParamSpec(name, shape, _init.get(initializer), _reg.get(regularizer), constraint)
        if self._make is not None:
            value = self._make(spec)
        else:
            value = np.ascontiguousarray(spec.initializer(shape, self.dtype), self.dtype)
        self.params[name] = value
        self.param_specs.append(spec)
        return value

    def build_weights(self, input_dim, dtype=None, make=None):
        """Create the parameters: runs :meth:`build` once.

        Args:
            input_dim: number of input features F.
            dtype: float dtype of the parameters (default :func:`rnnkit.floatx`).
            make: optional ``make(spec) -> array`` that creates each declared parameter (the
                RNN layer passes one that registers the array as a layer weight, so that
                optimizers, saving and loading see it); default runs the initializer.
        """
        self.dtype = np.dtype(dtype or _backend.floatx()).name
        self.params, self.param_specs = {}, []
        self._make = make
        try:
            self.build(int(input_dim))
        finally:
            self._make = None
        self.built = True

    def __getattr__(self, name):
        # parameters read as attributes (cell.kernel), as in Keras; only called when normal
        # attribute lookup fails
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}"
                             + (" (its parameters are created by build)"
                                if not self.__dict__.get("built", False) else ""))

    @property
    def param_names(self):
        """Names of the declared parameters, in declaration order."""
        return [s.name for s in self.param_specs]

    # ------------------------------------------------------------------ one step
    def step(self, x_t, states, training=False):
        """One step forward (override).

        Args:
            x_t: (B, F) input of this step.
            states: list of (B, n) arrays, ``n`` = ``state_size[k]``.
            training: True during training.

        Returns:
            ``(y_t, new_states, cache)``: y_t (B, output_size), new_states a list like
            ``states``, cache anything :meth:`step_backward` needs.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def step_backward(self, dy_t, dstates, cache):
        """One step backward (override).

        Args:
            dy_t: (B, output_size) dL/dy_t (zeros where the output is not used).
            dstates: list of (B, n) dL/d(new_states).
            cache: what :meth:`step` returned.

        Returns:
            ``(dx_t, dstates_prev, dparams)``: dx_t (B, F), dstates_prev a list of (B, n)
            dL/d(states), dparams one array per declared parameter in declaration order
            (None for a parameter this step does not touch).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step_backward()")

    # ------------------------------------------------------------------ config
    def get_config(self):
        """Constructor arguments (override and extend with your own)."""
        return {"dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """``cls(**config)`` (``custom_objects``: for cells holding other cells)."""
        return cls(**config)

    def clone(self):
        """A new, unbuilt cell with this configuration (no registry involved, so it works for
        unregistered user cells too)."""
        return type(self).from_config(self.get_config())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # rnnkit's own cells are loadable by name; user cells must be registered explicitly
        if cls.__module__.startswith("rnnkit.") and not cls.__name__.startswith("_") and \
                "_abstract" not in cls.__dict__:
            _CLASSES[cls.__name__] = cls

    def __repr__(self):
        return f"<{type(self).__name__} state_size={getattr(self, 'state_size', None)}>"


class ProjectedCell(Cell):
    """A cell whose input enters only through ``x_t @ kernel + b_in`` (all built-in cells).

    The RNN layer then computes the projection for all steps as one matrix product before
    the loop (and the kernel gradient as one product after it), and only the recurrent part
    runs per step, in a registered compiled kernel (:mod:`rnnkit.kernels`) or in the generic
    loop over :meth:`recurrent_step`. :meth:`step` and :meth:`step_backward` are defined
    from those two pieces, so the math is written once.

    Subclasses declare a parameter ``kernel`` (F, G) and implement :meth:`recurrent_step`,
    :meth:`recurrent_step_backward`, and, when the bias is not just ``b_in``,
    :meth:`split_bias` / :meth:`collect_grads`.
    """

    output_is_state = True
    _abstract = True     # not loadable by name

    # -- the pieces a subclass provides ----------------------------------------------------
    def split_bias(self):
        """``(b_in, b_rec)``: the (G,) bias added to the projection (or None) and the (G,)
        bias used inside the recurrent step (or None). Default: ``bias`` is all input bias."""
        return self.params.get("bias"), None

    def recurrent_step(self, xw_t, states, recurrent_mask=None):
        """The recurrent part of a step (override).

        Args:
            xw_t: (B, G) this step's projection ``x_t @ kernel + b_in``.
            states: list of (B, H) states.
            recurrent_mask: (B, H) scaled recurrent-dropout mask or None.

        Returns:
            ``(y_t, new_states, cache)``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement recurrent_step()")

    def recurrent_step_backward(self, dy_t, dstates, cache):
        """Backward of :meth:`recurrent_step` (override).

        Returns:
            ``(dxw_t, dstates_prev, (dU, db_rec))``: dxw_t (B, G), dU (H, G) the gradient of
            ``recurrent_kernel`` (None when the cell has none), db_rec (G,) the gradient of
            the recurrent bias (None when ``split_bias()[1]`` is None).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement recurrent_step_backward()")

    def collect_grads(self, dW, db_in, dU, db_rec):
        """The gradients in declaration order (``kernel``, ``recurrent_kernel``, ``bias``)
        from their parts; override when the bias layout differs."""
        out = []
        for name in self.param_names:
            out.append({"kernel": dW, "recurrent_kernel": dU, "bias": db_in}.get(name))
        return out

    # -- the protocol, from the pieces --------------------------------------------------------
    def step(self, x_t, states, training=False, recurrent_mask=None):
        """``recurrent_step(x_t @ kernel + b_in, states)``; see :meth:`Cell.step`."""
        b_in, _ = self.split_bias()
        xw = x_t @ self.params["kernel"]
        if b_in is not None:
            xw = xw + b_in
        y, new, cache = self.recurrent_step(xw, states, recurrent_mask)
        return y, new, (x_t, cache)

    def step_backward(self, dy_t, dstates, cache):
        """See :meth:`Cell.step_backward`; ``dparams`` in declaration order."""
        x_t, inner = cache
        dxw, dprev, (dU, db_rec) = self.recurrent_step_backward(dy_t, dstates, inner)
        dx = dxw @ self.params["kernel"].T
        b_in, _ = self.split_bias()
        db_in = None if b_in is None else dxw.sum(axis=0)
        return dx, dprev, self.collect_grads(x_t.T @ dxw, db_in, dU, db_rec)


def overrides_protocol(cell) -> bool:
    """True when ``cell`` is not a :class:`ProjectedCell` or its class overrides ``step`` or
    ``step_backward``: then only the generic loop over those methods gives its numbers."""
    t = type(cell)
    return not isinstance(cell, ProjectedCell) or t.step is not ProjectedCell.step or \
        t.step_backward is not ProjectedCell.step_backward


#: cell classes loadable by name: rnnkit's own (registered when defined) and registered ones
_CLASSES: dict[str, type] = {}


def register_cell(cls):
    """Register a custom :class:`Cell` subclass so that saved models using it can be loaded.

    Loading never imports or runs code named in a file: a cell class is found by its name
    among the built-in and registered cells only. Usable as a decorator::

        @rnnkit.cells.register_cell
        class MyCell(rnnkit.cells.Cell): ...
    """
    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        raise TypeError(f"register_cell expects a Cell subclass, got {cls!r}.")
    _CLASSES[cls.__name__] = cls
    return cls


def get_cell_class(name, custom_objects=None):
    """The cell class called ``name``: built-in, registered, or given in ``custom_objects``."""
    classes = {**_CLASSES, **(custom_objects or {})}
    cls = classes.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Cell)):
        known = sorted(k for k, v in classes.items() if isinstance(v, type) and issubclass(v, Cell))
        raise ValueError(f"Unknown cell class {name!r}. Known cells: {known}. Register custom "
                         "cells with rnnkit.cells.register_cell.")
    return cls


def serialize(cell):
    """``{"class_name": ..., "config": {...}}`` for ``cell`` (JSON-ready)."""
    return {"class_name": type(cell).__name__, "config": cell.get_config()}


def deserialize(spec, custom_objects=None):
    """A cell from :func:`serialize`'s output; only built-in and registered classes (or
    ``custom_objects``) are instantiated, never a class imported by name from a file."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or \
            not isinstance(spec.get("config", {}), dict):
        raise ValueError(f"A cell spec must be a dict with 'class_name' and 'config', got "
                         f"{spec!r}.")
    cls = get_cell_class(spec["class_name"], custom_objects)
    return cls.from_config(dict(spec.get("config", {})), custom_objects=custom_objects)
