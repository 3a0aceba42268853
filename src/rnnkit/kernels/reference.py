"""The generic time loop over a cell's own step: forward and backpropagation through time.

This is the reference every compiled kernel is tested against, and the path every cell
without a registered kernel runs (user cells, subclasses, unusual activations). Time-major
arrays throughout: ``(T, B, ...)``. Two entry pairs share one loop:

* :func:`forward` / :func:`backward` — the kernel contract of a
  :class:`~rnnkit.cells.ProjectedCell` (built-in cells): the input is the projection
  ``xw = x @ kernel + b_in`` for all steps and the loop runs ``cell.recurrent_step``.
* :func:`forward_steps` / :func:`backward_steps` — any cell: the loop runs ``cell.step`` /
  ``cell.step_backward`` on the raw inputs and sums the per-step ``dparams``.

Masks: a masked step carries the states unchanged, and the output too (the previous output;
see :attr:`rnnkit.cells.Cell.output_is_state`), so its gradient flows to the carried values.
"""

from __future__ import annotations

import numpy as np


def _forward_loop(step, xs, states0, mask, output_is_state):
    T = len(xs)
    states = list(states0)
    ys, y_prev, caches = None, (states[0] if output_is_state else None), []
    for t in range(T):
        y, new, cache = step(xs[t], states)
        if mask is not None:
            m = mask[t][:, None]
            new = [np.where(m, n, s) for n, s in zip(new, states)]
            if output_is_state:
                y = new[0]
            else:
                y = np.where(m, y, 0 if y_prev is None else y_prev)
        if ys is None:
            ys = np.empty((T,) + y.shape, dtype=y.dtype)
        ys[t] = y
        y_prev, states = y, list(new)
        caches.append(cache)
    return ys, states, caches


def _backward_loop(step_backward, caches, shapes, dys, dstates, mask, output_is_state,
                   n_params, state_grads=None):
    """Returns (dxs (T, B, .), dstates0 list, dparams list of n_params arrays or None)."""
    T = len(caches)
    y_shape, state_shapes, dt = shapes
    d = [np.zeros(s, dt) if g is None else np.array(g, dtype=dt)
         for s, g in zip(state_shapes, dstates)]
    zero_dy = np.zeros(y_shape, dt)
    dy_carry = None
    acc = [None] * n_params
    dxs = None
    for t in range(T - 1, -1, -1):
        dy = None if dys is None else dys[t]
        if output_is_state:
            if dy is not None:
                d[0] = d[0] + dy
            dy_in = zero_dy
        else:
            dy_in = zero_dy if dy is None else dy
            if dy_carry is not None:
                dy_in = dy_in + dy_carry
        for rec, v in zip(state_grads or (), d):
            rec[t] = v
        if mask is not None:
            m = mask[t][:, None]
            d_new = [np.where(m, v, 0) for v in d]
            d_carry = [np.where(m, 0, v) for v in d]
            if not output_is_state:
                dy_carry = np.where(m, 0, dy_in)
                dy_in = np.where(m, dy_in, 0)
        else:
            d_new = d
        dx, d_prev, dp = step_backward(dy_in, d_new, caches[t])
        if dxs is None:
            dxs = np.empty((T,) + np.shape(dx), dtype=dt)
        dxs[t] = dx
        for k, g in enumerate(dp):
            if g is not None:
                acc[k] = np.array(g, dtype=dt) if acc[k] is None else acc[k] + g
        d = list(d_prev) if mask is None else [a + b for a, b in zip(d_prev, d_carry)]
    return dxs, d, acc


def _shapes(ys, states0):
    return ys.shape[1:], [np.shape(s) for s in states0], ys.dtype


def forward(cell, xw, states0, mask=None, rmask=None, ws=None):
    """Run a projected cell's ``recurrent_step`` over all time steps.

    Args:
        cell: a built :class:`~rnnkit.cells.ProjectedCell`.
        xw: (T, B, G) input projections ``x_t @ kernel + b_in`` for every step.
        states0: sequence of (B, H) initial states.
        mask: (T, B) bool or None. A masked step carries state and output unchanged.
        rmask: (B, H) recurrent-dropout mask (already scaled) or None.
        ws: reusable-buffer dict of the compiled kernels; accepted so all kernels share one
            signature, unused here.

    Returns:
        hs: (T, B, H) the output at every step; states: list of final (B, H) states;
        cache: what :func:`backward` needs.
    """
    def step(xw_t, states):
        return cell.recurrent_step(xw_t, states, rmask)
    hs, states, caches = _forward_loop(step, xw, states0, mask, True)
    return hs, states, (caches, _shapes(hs, states0))


def backward(cell, cache, dhs, dstates, mask=None, rmask=None, ws=None, state_grads=None):
    """Backpropagation through time for :func:`forward`.

    Args:
        cache: the cache returned by :func:`forward`.
        dhs: (T, B, H) dL/dh_t from the outputs at every step, or None (only the final state
            receives gradient, as with ``return_sequences=False``).
        dstates: sequence of (B, H) dL/d(final state), entries may be None.
        mask, rmask, ws: as in the forward call.
        state_grads: optional sequence of (T, B, H) arrays, one per state, filled with the
            total dL/d(state after step t) — the direct ``dhs[t]`` plus all that flows back
            from later steps (used by :mod:`rnnkit.diagnostics`).

    Returns:
        dxw: (T, B, G) dL/d(input projection); dstates0: list of (B, H) dL/d(initial state);
        dU: (H, G) dL/d(recurrent_kernel) or None; db_rec: (G,) dL/d(recurrent bias) or None.
    """
    caches, shapes = cache
    dxw, d0, (dU, db_rec) = _backward_loop(cell.recurrent_step_backward, caches, shapes, dhs,
                                           dstates, mask, True, 2, state_grads)
    U = cell.params.get("recurrent_kernel")
    if dU is None and U is not None:
        dU = np.zeros_like(U)
    if db_rec is None and cell.split_bias()[1] is not None:
        db_rec = np.zeros_like(cell.split_bias()[1])
    return dxw, d0, dU, db_rec


def forward_steps(cell, xs, states0, mask=None, rmask=None, training=False):
    """Run ``cell.step`` over all time steps (any cell following the protocol).

    Args:
        cell: a built :class:`~rnnkit.cells.Cell`.
        xs: (T, B, F) inputs in processing order.
        states0: sequence of (B, n) initial states.
        mask: (T, B) bool or None.
        rmask: recurrent-dropout mask passed as ``recurrent_mask=`` (cells that support it).
        training: passed to ``step``.

    Returns:
        ys: (T, B, output_size); states: list of final states; cache for
        :func:`backward_steps`.
    """
    kw = {"training": training}
    if rmask is not None:
        kw["recurrent_mask"] = rmask

    def step(x_t, states):
        return cell.step(x_t, states, **kw)
    ys, states, caches = _forward_loop(step, xs, states0, mask, cell.output_is_state)
    return ys, states, (caches, _shapes(ys, states0))


def backward_steps(cell, cache, dys, dstates, mask=None, state_grads=None):
    """Backpropagation through time for :func:`forward_steps`.

    Args:
        cache: from :func:`forward_steps`.
        dys: (T, B, output_size) dL/dy_t, or None (no output gradient).
        dstates: sequence of dL/d(final state) arrays (entries may be None).
        mask: as in the forward call.
        state_grads: optional list of (T, B, n) arrays filled as in :func:`backward`.

    Returns:
        dxs: (T, B, F); dstates0: list of dL/d(initial state); dparams: one array per declared
        parameter (zeros for a parameter no step touched), in declaration order.
    """
    caches, shapes = cache
    dxs, d0, acc = _backward_loop(cell.step_backward, caches, shapes, dys, dstates, mask,
                                  cell.output_is_state, len(cell.param_specs), state_grads)
    dparams = [np.zeros_like(cell.params[s.name]) if g is None else g
               for s, g in zip(cell.param_specs, acc)]
    return dxs, d0, dparams
