"""GRUCell with zoneout through the compiled GRU loops of :mod:`.gru` (the cell without it
keeps :mod:`.gru`'s projected-path kernel).

Zoneout needs ``training`` in the step, which takes the cell off the projected path
(:meth:`GRUCell.projected_path`), so this module adapts :mod:`.gru`'s loops to the
``forward_steps`` contract of :mod:`rnnkit.kernels`: the raw input (T, B, F) in,
``X @ kernel + b_in`` for all steps as one product, the time loop of :mod:`.gru` (the same
gate math; zoneout applied per row by :mod:`._zoneout`), then ``dkernel`` and ``dX`` as
products over all T*B rows. Both ``reset_after`` variants, activation tanh, recurrent
activation sigmoid, float32 and float64, masks and recurrent dropout. Equations:
:mod:`rnnkit.cells.gru` and :mod:`rnnkit.cells._zoneout`. tests/test_kernels_options.py holds
every path equal to the generic loop over the cell's step.
"""

from __future__ import annotations

import numpy as np

from ..cells import GRUCell
from . import _scan, _zoneout
from . import gru as _gru
from . import threads as _threads
from ._loops import DTYPES, opt


def supports(cell, dtype) -> bool:
    """Exactly a GRUCell with tanh / sigmoid and zoneout on, in float32 / float64."""
    return type(cell) is GRUCell and cell.activation.name == "tanh" and \
        cell.recurrent_activation.name == "sigmoid" and np.dtype(dtype) in DTYPES and \
        bool(cell.zoneout)


def forward(cell, xs, states0, mask=None, rmask=None, ws=None, training=False):
    """Compiled :func:`rnnkit.kernels.reference.forward_steps` for this cell.

    Args:
        cell: a built GRUCell (:func:`supports`).
        xs: (T, B, F) inputs in processing order.
        states0: ``[h_0 (B, H)]``.
        mask: (T, B) bool or None (a masked step carries h).
        rmask: (B, H) scaled recurrent-dropout mask or None.
        ws: unused (the buffers are this call's own).
        training: zoneout draws fresh masks when True, else uses its expectation.

    Returns:
        ys (T, B, H) (a view of the state buffer), ``[h_T]``, cache for :func:`backward`.
    """
    dt = xs.dtype
    T, B, F = xs.shape
    H = cell.units
    G = 3 * H
    W = np.ascontiguousarray(cell.params["kernel"], dt)
    U = np.ascontiguousarray(cell.params["recurrent_kernel"], dt)
    xs = np.ascontiguousarray(xs)
    xw = _scan.project(xs, W, ws)                                          # (T, B, 3H)
    b_in = cell.split_bias()[0]
    if b_in is not None:
        xw += np.asarray(b_in, dt)
    hbuf = np.empty((T + 1, B, H), dt)
    hbuf[0] = states0[0]
    gates = np.empty((T, B, G), dt)
    rec = np.empty((T, B, H), dt)
    zm, zr = _zoneout.masks(cell, (T, B, H), dt, training)
    m, rm = opt(mask, np.bool_, 2), opt(rmask, dt, 2)
    hp = np.empty((B, H) if rmask is not None else (0, 0), dt)
    _gru.run_loops(cell, xw, hbuf, U, m, rm, zm, zr, gates, rec, hp)
    cache = (xs, xw, hbuf, gates, rec, zm, zr, m, rm)
    return hbuf[1:], [hbuf[T].copy()], cache


#: backward may skip dL/dx when nobody reads it (see rnnkit.kernels.backward_steps)
skips_input_grad = True


def backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None, input_grad=True):
    """BPTT of :func:`forward`.

    Args:
        cache: from :func:`forward` (its own mask and recurrent-dropout mask are used).
        dys: (T, B, H) dL/dy_t or None; dstates: ``[dL/dh_T]`` (entry may be None).
        mask, rmask, ws: as in the forward call (accepted for the contract).
        input_grad: False skips dL/dx (returned as None).

    Returns:
        dxs (T, B, F) or None; ``[dh_0 (B, H)]``; dparams in ``cell.param_names`` order.
    """
    xs, dxw, hbuf, gates, rec, zm, zr, m, rm = cache      # dxw reuses the X @ W buffer
    dt = hbuf.dtype
    T, B, H = hbuf.shape[0] - 1, hbuf.shape[1], hbuf.shape[2]
    G = 3 * H
    U = np.ascontiguousarray(cell.params["recurrent_kernel"], dt)
    UT = np.ascontiguousarray(U.T)                                            # (3H, H)
    d = np.zeros((B, H), dt) if dstates[0] is None else np.array(dstates[0], dt, order="C")
    dzrec = np.empty((T, B, G), dt) if cell.reset_after else None
    dU, db_rec = _gru.run_backward_loops(cell, hbuf, gates, rec, UT, m, rm, zm, zr,
                                         opt(dys, dt, 3), d, dxw, dzrec, np.empty((B, H), dt))
    dz2 = dxw.reshape(T * B, G)
    dW = _threads.matmul(xs.reshape(T * B, -1).T, dz2)
    db_in = None if cell.split_bias()[0] is None else dz2.sum(axis=0)
    dparams = cell.collect_grads(dW, db_in, dU, db_rec)
    if not input_grad:
        return None, [d], dparams
    WT = np.ascontiguousarray(np.asarray(cell.params["kernel"], dt).T)          # (3H, F)
    return _threads.matmul(dz2, WT).reshape(T, B, -1), [d], dparams
