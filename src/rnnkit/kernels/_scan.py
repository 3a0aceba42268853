"""What the compiled scans (:mod:`.minrnn`, :mod:`.lru`, :mod:`.indrnn`) share: the input
projection and its gradient as products over all T*B rows, argument normalisation, and the
row-split launch across rnnkit's threads (each row of a batch is an independent recurrence)."""

from __future__ import annotations

import numpy as np

from . import threads as _threads

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype) -> bool:
    """True for float32 and float64, the dtypes the scans are compiled for."""
    return np.dtype(dtype) in _DTYPES


def project(xs, W):
    """``xs @ W`` for (T, B, F) xs: one product over all T*B rows -> (T, B, G) (the kernels
    add the bias while they read it)."""
    T, B, F = xs.shape
    return _threads.matmul(np.ascontiguousarray(xs).reshape(T * B, F), W).reshape(T, B, -1)


def bias_arg(b, G, dt):
    """The (G,) bias as a C-contiguous array of ``dt``, or an empty one meaning "no bias"."""
    return np.zeros(0, dt) if b is None else np.ascontiguousarray(b, dt)


def project_backward(xs, dK, W, use_bias, input_grad=True):
    """``(dxs, [dW, (db)])`` of :func:`project` (plus bias) given dK (T, B, G); dxs is None
    when ``input_grad`` is False (nobody reads it)."""
    T, B, F = xs.shape
    dK2 = dK.reshape(T * B, -1)
    grads = [_threads.matmul(np.ascontiguousarray(xs).reshape(T * B, F).T, dK2)]
    if use_bias:
        grads.append(dK2.sum(axis=0))
    if not input_grad:
        return None, grads
    dxs = _threads.matmul(dK2, np.ascontiguousarray(W.T)).reshape(T, B, F)
    return dxs, grads


def mask_arg(mask):
    """(T, B) bool C-contiguous mask, or an empty (0, 0) array meaning "no mask"."""
    if mask is None:
        return np.zeros((0, 0), np.bool_)
    return np.ascontiguousarray(mask, np.bool_)


def state_grad(d, like):
    """A fresh C-contiguous copy of the state gradient ``d`` (zeros when None)."""
    if d is None:
        return np.zeros_like(like)
    return np.array(d, dtype=like.dtype, order="C")


def seq_grad(dys, dt):
    """C-contiguous (T, B, n) output gradients, or an empty (0, 0, 0) array for None."""
    if dys is None:
        return np.zeros((0, 0, 0), dt)
    return np.ascontiguousarray(dys, dt)


def run(serial, parallel, B, *args):
    """``serial(*args, 0, B)``, or ``parallel(*args, edges)`` with the B rows cut into one
    block per rnnkit thread (:mod:`.threads`) when there are several."""
    n = min(_threads.count(), B)
    if n <= 1:
        serial(*args, 0, B)
        return
    blocks = _threads.blocks(B, n)
    edges = np.array([b0 for b0, _ in blocks] + [blocks[-1][1]], np.int64)
    with _threads.launch(len(blocks)):
        parallel(*args, edges)
