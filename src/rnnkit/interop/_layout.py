"""Gate-order and layout maps between rnnkit (= Keras), PyTorch and ONNX, in plain NumPy.

Every map is written out explicitly and every array's shape is checked on the way in.

=========  ====================  ===================  ===========================
           rnnkit / Keras        PyTorch              ONNX
=========  ====================  ===================  ===========================
LSTM       i, f, c, o            i, f, g, o           i, o, f, c
GRU        z, r, h               r, z, n              z, r, h
kernel     (F, G)                weight_ih (G, F)     W [dirs, G, F]
recurrent  (u, G)                weight_hh (G, u)     R [dirs, G, u]
bias       (G,) or GRU (2, G)    b_ih (G,), b_hh (G,) B [dirs, 2G] = [Wb, Rb]
=========  ====================  ===================  ===========================
"""

from __future__ import annotations

import numpy as np

# Block permutations: new[k] = old[PERM[k]] (blocks of `units` rows/columns).
TORCH_GRU_FROM_KERAS = (1, 0, 2)   # keras z, r, h -> torch r, z, n
KERAS_GRU_FROM_TORCH = (1, 0, 2)   # torch r, z, n -> keras z, r, h
ONNX_LSTM_FROM_KERAS = (0, 3, 1, 2)  # keras i, f, c, o -> onnx i, o, f, c

N_GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


def check_shape(what, array, shape):
    """Return ``array`` as a NumPy array after checking that its shape is ``shape``.

    Raises:
        ValueError: naming ``what``, the expected and the received shape.
    """
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise ValueError(
            f"{what}: expected shape {tuple(shape)}, got {array.shape}. The weights do not "
            "match the layer's configuration (units, input features or gate count)."
        )
    return array


def permute_blocks(a, perm, units, axis):
    """Reorder the gate blocks (each ``units`` long) of ``a`` along ``axis`` as ``perm``."""
    a = np.asarray(a)
    if a.shape[axis] != len(perm) * units:
        raise ValueError(
            f"permute_blocks: axis {axis} of shape {a.shape} must be {len(perm)} gates x "
            f"{units} units = {len(perm) * units}."
        )
    blocks = np.split(a, len(perm), axis=axis)
    return np.concatenate([blocks[p] for p in perm], axis=axis)


def _keras_kernels(kind, units, weights):
    """``(G, kernel (F, G), recurrent_kernel (u, G))`` from Keras-layout ``weights``, checked."""
    G = N_GATES[kind] * units
    kernel, rec = weights[0], weights[1]
    F = np.shape(kernel)[0]
    kernel = check_shape(f"{kind} kernel", kernel, (F, G))
    rec = check_shape(f"{kind} recurrent_kernel", rec, (units, G))
    return G, kernel, rec


# --------------------------------------------------------------------------- PyTorch
def torch_to_keras(kind, units, input_size, w_ih, w_hh, b_ih=None, b_hh=None):
    """One direction of one PyTorch RNN layer -> rnnkit/Keras weights.

    Args:
        kind: 'SimpleRNN', 'LSTM' or 'GRU'.
        units, input_size: hidden size u and input features F.
        w_ih: (G, F); w_hh: (G, u); b_ih, b_hh: (G,) or None (``bias=False``), G = gates*u.

    Returns:
        ``[kernel (F, G), recurrent_kernel (u, G)]`` plus the bias: (G,) = b_ih + b_hh for
        SimpleRNN/LSTM, (2, G) = [b_ih, b_hh] (reordered) for GRU (reset_after=True).
    """
    G = N_GATES[kind] * units
    w_ih = check_shape(f"torch {kind} weight_ih", w_ih, (G, input_size))
    w_hh = check_shape(f"torch {kind} weight_hh", w_hh, (G, units))
    if (b_ih is None) != (b_hh is None):
        raise ValueError(f"torch {kind}: got only one of bias_ih / bias_hh; expected both or none.")
    if b_ih is not None:
        b_ih = check_shape(f"torch {kind} bias_ih", b_ih, (G,))
        b_hh = check_shape(f"torch {kind} bias_hh", b_hh, (G,))
    if kind == "GRU":
        def fix(a):
            return permute_blocks(a, KERAS_GRU_FROM_TORCH, units, axis=0)
        out = [fix(w_ih).T, fix(w_hh).T]
        if b_ih is not None:
            out.append(np.stack([fix(b_ih), fix(b_hh)]))           # (2, 3u)
        return [np.ascontiguousarray(w) for w in out]
    # SimpleRNN and LSTM (i, f, g, o is Keras's i, f, c, o): transpose, sum the two biases.
    out = [w_ih.T, w_hh.T]
    if b_ih is not None:
        out.append(b_ih + b_hh)
    return [np.ascontiguousarray(w) for w in out]


def keras_to_torch(kind, units, weights, reset_after=True, use_bias=True):
    """rnnkit/Keras weights of one recurrent layer -> PyTorch (w_ih, w_hh, b_ih, b_hh).

    Args:
        kind: 'SimpleRNN', 'LSTM' or 'GRU'.
        weights: ``[kernel (F, G), recurrent_kernel (u, G), bias]`` as from ``get_weights()``.

    Returns:
        w_ih (G, F), w_hh (G, u), b_ih (G,), b_hh (G,) (biases None when ``use_bias=False``).
        SimpleRNN/LSTM put the whole bias in b_ih and zeros in b_hh.
    """
    G, kernel, rec = _keras_kernels(kind, units, weights)
    bias = weights[2] if use_bias else None
    if kind == "GRU":
        if not reset_after:
            raise ValueError(
                "GRU with reset_after=False has no PyTorch equivalent (torch.nn.GRU applies the "
                "reset gate after the recurrent product, i.e. reset_after=True). Retrain with "
                "GRU(reset_after=True) to export to PyTorch."
            )
        def fix(a):
            return permute_blocks(a, TORCH_GRU_FROM_KERAS, units, axis=0)
        w_ih, w_hh = fix(kernel.T), fix(rec.T)
        if bias is not None:
            bias = check_shape("GRU bias", bias, (2, G))
            return w_ih, w_hh, fix(bias[0]), fix(bias[1])
        return w_ih, w_hh, None, None
    w_ih, w_hh = np.ascontiguousarray(kernel.T), np.ascontiguousarray(rec.T)
    if bias is not None:
        bias = check_shape(f"{kind} bias", bias, (G,))
        return w_ih, w_hh, bias.copy(), np.zeros_like(bias)
    return w_ih, w_hh, None, None


# --------------------------------------------------------------------------- ONNX
def keras_to_onnx(kind, units, weights, reset_after=True, use_bias=True):
    """rnnkit/Keras weights of one direction -> ONNX (W (G, F), R (G, u), B (2G,)).

    The caller stacks directions into ``[num_directions, ...]``. ONNX gate orders: LSTM
    i, o, f, c; GRU z, r, h (same as Keras); B = [Wb, Rb].
    """
    G, kernel, rec = _keras_kernels(kind, units, weights)
    if not use_bias:
        wb = rb = np.zeros((G,), kernel.dtype)
    elif kind == "GRU" and reset_after:
        bias = check_shape("GRU bias", weights[2], (2, G))
        wb, rb = bias[0], bias[1]
    else:
        wb = check_shape(f"{kind} bias", weights[2], (G,))
        rb = np.zeros_like(wb)
    if kind == "LSTM":
        def fix(a):
            return permute_blocks(a, ONNX_LSTM_FROM_KERAS, units, axis=0)
    else:
        def fix(a):
            return a
    W, R = fix(kernel.T), fix(rec.T)
    B = np.concatenate([fix(wb), fix(rb)])
    return (np.ascontiguousarray(W), np.ascontiguousarray(R), np.ascontiguousarray(B))


def recurrent_kind(layer):
    """'SimpleRNN', 'LSTM' or 'GRU' when ``layer`` is an RNN layer (a preset or ``RNN(cell)``)
    whose cell is EXACTLY a built-in cell (a subclass may change the math, so it has no
    counterpart elsewhere), else None."""
    from ..cells import GRUCell, LSTMCell, SimpleRNNCell
    from ..layers.rnn import RNN
    if not isinstance(layer, RNN):
        return None
    return {SimpleRNNCell: "SimpleRNN", LSTMCell: "LSTM", GRUCell: "GRU"}.get(type(layer.cell))


def recurrent_spec(layer):
    """(kind, [(sub_layer, is_backward)], merge_mode or None) for a recurrent or Bidirectional
    layer with built-in cells, else None. ``sub_layer.cell`` holds the cell's options."""
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        f, b = layer.forward_layer, layer.backward_layer
        kind = recurrent_kind(f)
        if kind is None or recurrent_kind(b) != kind:
            raise ValueError(f"Bidirectional layer {layer.name!r} wraps {type(f).__name__} and "
                             f"{type(b).__name__}; expected the same SimpleRNN/LSTM/GRU type "
                             "(or RNN with the same built-in cell).")
        return kind, [(f, False), (b, True)], getattr(layer, "merge_mode", "concat")
    kind = recurrent_kind(layer)
    if kind is None:
        from ..layers.rnn import RNN
        if isinstance(layer, RNN):
            raise ValueError(
                f"Layer {layer.name!r} runs a {type(layer.cell).__name__}, which has no "
                "counterpart in other frameworks; only RNN layers with a built-in cell "
                "(SimpleRNNCell, LSTMCell, GRUCell, not subclasses) can be exported.")
        return None
    return kind, [(layer, False)], None


def unwrap_time_distributed(layer):
    """TimeDistributed(Dense / Activation / Dropout) acts on the last axis like the inner layer."""
    from .. import layers as L
    inner = getattr(layer, "layer", None)
    if type(layer).__name__ == "TimeDistributed" and isinstance(inner, (L.Dense, L.Activation,
                                                                        L.Dropout)):
        return inner
    return layer
