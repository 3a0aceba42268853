"""Sequence kernels: a cell run over all T steps, forward and backward (BPTT).

* :mod:`rnnkit.kernels.reference` — the generic loop over the cell's own step: the ground
  truth, and the path of every cell without a registered kernel.
* Compiled (numba) kernels, one module per cell (:mod:`.simple`, :mod:`.lstm`, :mod:`.gru`),
  registered for the EXACT cell class they were written for (:func:`register`). A subclass
  of a registered cell never runs its parent's kernel: it gets the generic loop (its own
  math) until a kernel is registered for it.

A kernel is any object (usually a module) with

* ``supports(cell, dtype) -> bool`` — the options and dtype it implements;
* ``forward(cell, xs, states0, mask=None, rmask=None, ws=None) -> (ys, states, cache)`` and
  ``backward(cell, cache, dys, dstates, mask=None, rmask=None, ws=None)``, with the contract
  of :func:`rnnkit.kernels.reference.forward` / :func:`~rnnkit.kernels.reference.backward`
  for a :class:`~rnnkit.cells.ProjectedCell` (``xs`` is the input projection, backward
  returns ``(dxw, dstates0, dU, db_rec)``), or of :func:`~rnnkit.kernels.reference.forward_steps`
  / :func:`~rnnkit.kernels.reference.backward_steps` for any other cell (``xs`` is the
  input, backward returns ``(dxs, dstates0, dparams)``) — a whole-sequence training path
  such as a parallel scan over a linear recurrence plugs in here. Two keywords are passed
  when the kernel's function declares them: ``ws`` (the layer's reusable-buffer
  :class:`.threads.Workspace`, or None) to ``forward`` and ``backward``, and ``training``
  (training-only randomness such as zoneout depends on it) to ``forward``;
* a compiled ``forward`` for a projected cell must not keep ``xs`` in its cache: the layer
  reuses that buffer for ``dxw`` (it owns it through :class:`.threads.Workspace`);
* optionally ``infer(cell, x, states0, mask, go_backwards, return_sequences)`` (cache-free
  inference, or None when not served) and ``stream_step(cell, x, states)`` (one compiled
  step for streaming, or None).

``RNNKIT_KERNELS=reference`` in the environment or :func:`set_kernel_mode` ``('reference')``
runs the generic loop everywhere.
"""

from __future__ import annotations

import importlib
import inspect
import os

from .. import cells as _cells

_MODE = os.environ.get("RNNKIT_KERNELS", "auto")

#: exact cell class -> list of kernels (or names of modules to import on first use, so that
#: numba loads only when a compiled kernel is first needed)
_REGISTRY: dict = {
    _cells.SimpleRNNCell: ["rnnkit.kernels.simple"],
    _cells.LSTMCell: ["rnnkit.kernels.lstm", "rnnkit.kernels.lstm_options"],
    _cells.GRUCell: ["rnnkit.kernels.gru", "rnnkit.kernels.gru_zoneout"],
    _cells.MinGRUCell: ["rnnkit.kernels.minrnn"],
    _cells.MinLSTMCell: ["rnnkit.kernels.minrnn"],
    _cells.LRUCell: ["rnnkit.kernels.lru"],
    _cells.IndRNNCell: ["rnnkit.kernels.indrnn"],
    _cells.sLSTMCell: ["rnnkit.kernels.slstm"],
    _cells.LayerNormLSTMCell: ["rnnkit.kernels.layernorm"],
    _cells.LayerNormGRUCell: ["rnnkit.kernels.layernorm"],
}


def register(cell_type, kernel):
    """Register ``kernel`` for cells of exactly ``cell_type`` (subclasses not included).

    Args:
        cell_type: a :class:`~rnnkit.cells.Cell` subclass.
        kernel: an object or module with ``supports`` / ``forward`` / ``backward`` (see the
            module docstring), or the dotted name of such a module, imported on first use.
            Kernels registered later are tried first.
    """
    if not (isinstance(cell_type, type) and issubclass(cell_type, _cells.Cell)):
        raise TypeError(f"register expects a Cell subclass, got {cell_type!r}.")
    if not isinstance(kernel, str) and not all(
            callable(getattr(kernel, a, None)) for a in ("supports", "forward", "backward")):
        raise TypeError(f"register: the kernel must provide supports(), forward() and "
                        f"backward() (or be a module name), got {kernel!r}.")
    global VERSION
    _REGISTRY.setdefault(cell_type, []).insert(0, kernel)
    _RESOLVED.discard(cell_type)
    VERSION += 1


#: bumped by every change of what serves a cell (:func:`register`, :func:`set_kernel_mode`),
#: so that callers may cache :func:`kernel_for`'s answer (the streaming step does)
VERSION = 0
_RESOLVED = set()   # cell types whose registry entries are all imported


def _resolve(entries):
    for k, e in enumerate(list(entries)):
        if isinstance(e, str):
            try:
                entries[k] = importlib.import_module(e)
            except ImportError:       # numba or its BLAS missing: the generic loop is correct
                entries[k] = None
    return [e for e in entries if e is not None]


def kernel_for(cell, dtype):
    """The registered kernel serving ``cell`` (exact class, options, ``dtype``), else None.

    In mode ``'fast'`` a missing kernel is an error (tests use it so that a silent fallback
    cannot hide a bug); in mode ``'reference'`` the answer is always None.
    """
    if _MODE == "reference":
        return None
    t = type(cell)
    entries = _REGISTRY.get(t)
    if entries:
        if t not in _RESOLVED:
            entries[:] = _resolve(entries)
            _RESOLVED.add(t)
        for k in entries:
            if k.supports(cell, dtype):
                return k
    if _MODE == "fast":
        raise ValueError(f"No compiled kernel serves {cell!r} with dtype {dtype}; use mode "
                         "'auto'.")
    return None


def set_kernel_mode(mode: str) -> None:
    """Choose 'auto' (registered kernels where they serve), 'reference' (the generic loop
    everywhere) or 'fast' (registered kernels, and an error where none serves)."""
    global _MODE, VERSION
    if mode not in ("auto", "reference", "fast"):
        raise ValueError(f"kernel mode must be 'auto', 'reference' or 'fast', got {mode!r}.")
    _MODE = mode
    VERSION += 1


def get_kernel_mode() -> str:
    """The current mode (see :func:`set_kernel_mode`)."""
    return _MODE


def forward_sequence(cell, xw, states0, mask=None, rmask=None, ws=None):
    """Run a projected cell over time with its kernel (or the generic loop).

    Args: as :func:`rnnkit.kernels.reference.forward`. Returns ``(hs, states, cache)``.
    """
    from . import reference
    impl = kernel_for(cell, xw.dtype) or reference
    hs, states, cache = impl.forward(cell, xw, states0, mask, rmask, ws=ws)
    return hs, states, (impl, cache)


def reuses_input_buffer(cache):
    """True when the kernel behind ``cache`` (from :func:`forward_sequence`) is a compiled one,
    which keeps nothing of its input projection: the layer may then hand that buffer to
    backward for dL/d(X @ W). (A cell's own ``recurrent_step`` may keep views of it.)"""
    from . import reference
    return cache[0] is not reference


def backward_sequence(cell, cache, dhs, dstates, mask=None, rmask=None, ws=None):
    """BPTT for :func:`forward_sequence`; returns ``(dxw, dstates0, dU, db_rec)``."""
    impl, inner = cache
    return impl.backward(cell, inner, dhs, dstates, mask, rmask, ws=ws)


_DECLARED = {}   # kernel function -> the keyword names it declares (None: takes **kwargs)


def _optional(fn, **kw):
    """The entries of ``kw`` that ``fn`` declares (a user kernel written before ``ws`` /
    ``training`` existed keeps working)."""
    names = _DECLARED.get(fn, False)
    if names is False:
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        names = _DECLARED[fn] = None if takes_any else frozenset(params)
    return kw if names is None else {k: v for k, v in kw.items() if k in names}


def forward_steps(cell, xs, states0, mask=None, rmask=None, training=False, ws=None):
    """Run any cell over time: a registered sequence kernel, else the generic loop.

    Args: as :func:`rnnkit.kernels.reference.forward_steps`; ``ws`` the calling layer's
    :class:`.threads.Workspace` (or None), from which a kernel may borrow its large buffers
    (reused across the batches of one ``fit``). Returns ``(ys, states, cache)``.
    """
    from . import reference
    impl = kernel_for(cell, xs.dtype)
    if impl is None:
        ys, states, cache = reference.forward_steps(cell, xs, states0, mask, rmask, training)
        return ys, states, (None, cache)
    ys, states, cache = impl.forward(cell, xs, states0, mask, rmask,
                                     **_optional(impl.forward, ws=ws, training=training))
    return ys, states, (impl, cache)


def backward_steps(cell, cache, dys, dstates, mask=None, rmask=None, input_grad=True, ws=None):
    """BPTT for :func:`forward_steps`; returns ``(dxs, dstates0, dparams)``.

    ``input_grad=False`` tells a kernel that declares ``skips_input_grad = True`` that nobody
    reads dL/dx (the first layer of a model): it may return None for ``dxs`` and save the
    product that computes it. Other kernels and the generic loop compute it anyway.
    """
    from . import reference
    impl, inner = cache
    if impl is None:
        return reference.backward_steps(cell, inner, dys, dstates, mask)
    if not input_grad and getattr(impl, "skips_input_grad", False):
        return impl.backward(cell, inner, dys, dstates, mask, rmask, input_grad=False,
                             **_optional(impl.backward, ws=ws))
    return impl.backward(cell, inner, dys, dstates, mask, rmask,
                         **_optional(impl.backward, ws=ws))


def infer_sequence(cell, x, states0, mask=None, go_backwards=False, return_sequences=True):
    """Cache-free inference with the cell's compiled kernel, or None when none serves it
    (the caller then runs :func:`forward_sequence`).

    Args: x (B, T, F) of the weights' dtype; states0 sequence of (B, H); mask (T, B) or None.
    Returns ``(out (B, T, H) or None, final states)`` or None.
    """
    impl = kernel_for(cell, x.dtype)
    infer = getattr(impl, "infer", None)
    if infer is None:
        return None
    return infer(cell, x, states0, mask, go_backwards, return_sequences)


def stream_step(cell, x, states):
    """One compiled inference step (x (B, F), states sequence of (B, H)) returning the new
    states, or None when the cell's kernel has no compiled streaming step."""
    fn = stream_step_fn(cell, x.dtype)
    return None if fn is None else fn(cell, x, states)


def stream_step_fn(cell, dtype):
    """The compiled streaming step ``fn(cell, x, states)`` serving ``cell`` in ``dtype``, or
    None. The answer holds until :data:`VERSION` changes (a caller may cache it)."""
    return getattr(kernel_for(cell, dtype), "stream_step", None)
