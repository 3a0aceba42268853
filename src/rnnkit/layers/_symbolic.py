"""Symbolic tensors: what ``rnnkit.Input`` returns and what calling a layer on one returns.

A :class:`SymbolicTensor` holds a shape (with the batch axis, entries may be None), a dtype
and the :class:`Node` that produced it. Calling a layer on symbolic tensors builds the layer
from the shapes, works out the output shape(s) and records a node; :class:`rnnkit.Model`
later walks the nodes from its outputs back to its inputs to get the graph it runs.
"""

from __future__ import annotations


class SymbolicTensor:
    """A placeholder for a batch of data flowing through a functional model.

    Attributes:
        shape: tuple ``(batch, ...)``; unknown sizes are None.
        dtype: dtype name ('float32', 'int32', ...).
        node: the :class:`Node` that produces it (an ``InputLayer`` node for a model input).
        index: which output of that node it is.
        name: readable name ('lstm/0', 'input_1', ...).
    """

    def __init__(self, shape, dtype, node=None, index=0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def name(self):
        layer = self.node.layer
        return layer.name if len(self.node.outputs) == 1 else f"{layer.name}/{self.index}"

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} name={self.name!r}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is symbolic (it stands for data that a model will receive), so it has "
            "no values. Build a model with rnnkit.Model(inputs, outputs) and call that on "
            "arrays."
        )


class Node:
    """One call of a layer in a graph: its input and output symbolic tensors.

    Attributes:
        layer: the layer called.
        inputs: list of :class:`SymbolicTensor` consumed (several for merge layers, or for a
            recurrent layer given ``initial_state=``).
        input_is_list: the layer was called on a list (its ``forward`` receives a list).
        outputs: list of :class:`SymbolicTensor` produced.
        output_is_list: the layer returns a list (``return_state=True``, attention scores).
        kwargs: other (JSON-able) call arguments, e.g. ``use_causal_mask``.
    """

    def __init__(self, layer, inputs, input_is_list, kwargs):
        self.layer = layer
        self.inputs = list(inputs)
        self.input_is_list = input_is_list
        self.kwargs = dict(kwargs)
        self.outputs = []
        self.output_is_list = False


def is_symbolic(value):
    """True when ``value`` is a SymbolicTensor or a list/tuple holding one."""
    if isinstance(value, SymbolicTensor):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, SymbolicTensor) for v in value)


def _shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def call(layer, inputs, kwargs):
    """Record ``layer(inputs, **kwargs)`` on symbolic inputs; return the symbolic output(s).

    A recurrent layer's ``initial_state=[...]`` becomes extra inputs ``[x, *states]`` (the
    form its ``forward`` accepts). Building and shape inference errors name the layer and the
    input shapes.
    """
    kwargs = dict(kwargs)
    kwargs.pop("mask", None)        # masks flow through the graph on their own
    kwargs.pop("training", None)    # set per call of the model
    init = kwargs.pop("initial_state", None)
    if init is not None:
        init = list(init) if isinstance(init, (list, tuple)) else [init]
        inputs = [inputs] + init
    input_is_list = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if input_is_list else [inputs]
    for k, v in kwargs.items():
        if is_symbolic(v):
            raise TypeError(f"Layer {layer.name!r}: argument {k}= cannot be symbolic in a "
                            "functional model; pass such tensors as inputs.")
    for i, t in enumerate(tensors):
        if not isinstance(t, SymbolicTensor):
            raise TypeError(
                f"Layer {layer.name!r} was called on a mix of symbolic tensors and "
                f"{type(t).__name__} (input {i}). In a functional model every input must come "
                "from rnnkit.Input(...) or from another layer's output."
            )
    shapes = [t.shape for t in tensors]
    shape_in = shapes if (input_is_list and layer.list_inputs) else shapes[0]
    built = layer.input_shape if (layer.built and layer.params) else None
    if built is not None and not isinstance(shape_in, list) and len(built) == len(shape_in) \
            and None not in (built[-1], shape_in[-1]) and built[-1] != shape_in[-1]:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) was built for inputs of shape "
            f"{_shape_str(built)} and cannot take shape {_shape_str(shape_in)}: a shared layer "
            "needs inputs with the same last dimension."
        )
    try:
        layer.maybe_build(shape_in)
        out_shape = layer.compute_output_shape(shape_in, **kwargs) if kwargs else \
            layer.compute_output_shape(shape_in)
    except (ValueError, TypeError, IndexError) as e:
        got = ", ".join(_shape_str(s) for s in shapes)
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) cannot take input(s) of shape "
            f"{got}: {e}"
        ) from None
    node = Node(layer, tensors, input_is_list, kwargs)
    multi = isinstance(out_shape, list)
    dtype = layer.dtype
    node.outputs = [SymbolicTensor(s, dtype, node, i)
                    for i, s in enumerate(out_shape if multi else [out_shape])]
    node.output_is_list = multi
    layer.inbound_nodes.append(node)
    return list(node.outputs) if multi else node.outputs[0]
