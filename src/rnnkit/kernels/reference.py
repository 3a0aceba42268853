"""Pure-NumPy time loop: forward propagation and backpropagation through time.

This is the ground truth that every compiled kernel is tested against.
Time-major arrays throughout: ``(T, B, ...)``.
"""

from __future__ import annotations

import numpy as np


def forward_sequence(cell, xw, states0, U, b_rec=None, mask=None, rmask=None, ws=None):
    """Run ``cell`` over all time steps.

    Args:
        cell: a cell-math object from :mod:`rnnkit.cells`.
        xw: (T, B, G) input projections ``x_t @ kernel + bias`` for every step.
        states0: tuple of (B, H) initial states (h, or h and c for LSTM).
        U: (H, G) recurrent kernel.
        b_rec: (G,) recurrent bias (GRU ``reset_after=True``) or None.
        mask: (T, B) bool or None. A masked step carries state and output unchanged.
        rmask: (B, H) recurrent-dropout mask (already scaled) or None.
        ws: reusable-buffer dict of the compiled path (:func:`rnnkit.kernels.threads.workspace`);
            accepted so both paths share one signature, unused here.

    Returns:
        hs: (T, B, H) the output ``h_t`` at every step.
        states: tuple of final (B, H) states.
        cache: what :func:`backward_sequence` needs.
    """
    T = xw.shape[0]
    states = tuple(states0)
    hs = np.empty((T,) + states[0].shape, dtype=xw.dtype)
    caches = []
    for t in range(T):
        _, new, cache = cell.forward_step(xw[t], states, U, b_rec, rmask)
        if mask is not None:
            m = mask[t][:, None]
            new = tuple(np.where(m, n, s) for n, s in zip(new, states))
        states = new
        hs[t] = states[0]
        caches.append(cache)
    return hs, states, caches


def backward_sequence(cell, caches, dhs, dstates, U, b_rec=None, mask=None, rmask=None,
                      ws=None, state_grads=None):
    """Backpropagation through time.

    Args:
        caches: the cache returned by :func:`forward_sequence`.
        dhs: (T, B, H) dL/dh_t from the outputs at every step, or None (only the final state
            receives gradient, as with ``return_sequences=False``).
        dstates: tuple of (B, H) dL/d(final state), entries may be None.
        U, b_rec, mask, rmask, ws: as in the forward call.
        state_grads: optional tuple of (T, B, H) arrays, one per state, filled with the total
            dL/d(state after step t) — the direct ``dhs[t]`` plus all that flows back from
            later steps (used by :mod:`rnnkit.diagnostics`).

    Returns:
        dxw: (T, B, G) dL/d(input projection).
        dstates0: tuple of (B, H) dL/d(initial state).
        dU: (H, G) dL/dU.
        db_rec: (G,) dL/d(recurrent bias), or None when ``b_rec`` is None.
    """
    T = len(caches)
    B, G = caches[0]["hp"].shape[0], U.shape[1]
    H = U.shape[0]
    dt = U.dtype
    d = [np.zeros((B, H), dt) if s is None else np.array(s, dtype=dt) for s in dstates]
    dxw = np.empty((T, B, G), dtype=dt)
    dzrec = np.empty((T, B, G), dtype=dt)
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            d[0] = d[0] + dhs[t]
        for rec, v in zip(state_grads or (), d):
            rec[t] = v
        if mask is not None:
            m = mask[t][:, None]
            d_new = [np.where(m, x, 0) for x in d]
            d_carry = [np.where(m, 0, x) for x in d]
        else:
            d_new = d
        dxw[t], d_prev, dzrec[t] = cell.backward_step(tuple(d_new), caches[t], U, b_rec, rmask)
        d = list(d_prev) if mask is None else [a + b for a, b in zip(d_prev, d_carry)]
    # Weight gradients: one product over all T*B rows per recurrent input.
    dU = np.zeros_like(U)
    blocks = [cell.rec_inputs(c) for c in caches]
    for j, (_, cols) in enumerate(blocks[0]):
        X = np.stack([blk[j][0] for blk in blocks]).reshape(T * B, -1)
        dU[:, cols] += X.T @ dzrec[:, :, cols].reshape(T * B, -1)
    db_rec = None if b_rec is None else dzrec.reshape(T * B, G).sum(axis=0)
    return dxw, tuple(d), dU, db_rec
