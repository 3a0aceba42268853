"""What the compiled kernels are doing on this machine: which path each cell takes, where
numba's on-disk cache lives, and which compiled functions it already holds.

Used by ``rnnkit info --kernels``; importing this module compiles nothing.
"""

from __future__ import annotations

import importlib
import os
import pkgutil


def _cache_location(dispatcher):
    """(directory, why) of numba's on-disk cache for ``dispatcher``."""
    path = dispatcher._cache.cache_path
    if os.environ.get("NUMBA_CACHE_DIR"):
        why = "NUMBA_CACHE_DIR"
    elif os.path.dirname(path) == os.path.dirname(dispatcher.py_func.__code__.co_filename):
        why = "next to the package (its __pycache__ is writable)"
    else:
        why = "per-user directory (the package directory is not writable)"
    return path, why


def _openblas_core(path):
    """The kernel OpenBLAS picked for this processor (e.g. 'SkylakeX'), or None."""
    import ctypes
    try:
        lib = ctypes.CDLL(path)
    except (OSError, TypeError):
        return None
    for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                 "openblas_get_corename"):
        if hasattr(lib, name):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_char_p
            return fn().decode()
    return None


def _cached_signatures(dispatcher):
    """Number of compiled versions of ``dispatcher`` in numba's on-disk cache."""
    try:
        index = dispatcher._cache._cache_file._load_index()
    except Exception:  # no index yet, unreadable, or a numba without this internal
        return 0
    return len(index)


def compiled_functions():
    """Every numba-compiled function of :mod:`rnnkit.kernels`, as a list of dicts.

    Keys: ``name`` (module.function), ``cached`` (versions on disk: compiled by an earlier
    process, loaded on first use), ``loaded`` (versions this process took from the cache),
    ``compiled`` (versions this process compiled), ``parallel`` (a numba parallel region).
    """
    from numba.core.registry import CPUDispatcher

    from .. import kernels

    out, seen = [], set()
    for info in pkgutil.iter_modules(kernels.__path__):
        try:
            mod = importlib.import_module(f"{kernels.__name__}.{info.name}")
        except ImportError:     # e.g. a compiled kernel module without its BLAS
            continue
        for name, obj in sorted(vars(mod).items()):
            if not isinstance(obj, CPUDispatcher) or id(obj) in seen:
                continue
            if (obj.py_func.__module__ != mod.__name__
                    or obj.targetoptions.get("inline", "never") != "never"):
                continue        # imported from another module, or inlined into its callers
            seen.add(id(obj))
            out.append({"name": f"{info.name}.{name}", "cached": _cached_signatures(obj),
                        "loaded": sum(obj._cache_hits.values()),
                        "compiled": sum(obj._cache_misses.values()),
                        "parallel": bool(obj.targetoptions.get("parallel")),
                        "dispatcher": obj})
    return out


def kernel_status():
    """A summary of the kernel set-up, as a JSON-friendly dict.

    Keys: ``mode`` (:func:`rnnkit.kernels.get_kernel_mode` and where it came from),
    ``numba`` (version or None), ``fast_available`` (and ``why_not``), ``blas``,
    ``packed`` (what runs the float32 per-step products: rnnkit's packed micro-kernel, with
    its register block, or why OpenBLAS does), ``threading_layer``, ``cells`` (cell ->
    "compiled" or "reference NumPy"), ``cache_dir``
    and ``cache_dir_reason``, ``functions`` (see :func:`compiled_functions`, without the
    dispatcher objects).
    """
    from .. import cells as _cells
    from .. import kernels

    st = {"mode": kernels.get_kernel_mode(),
          "mode_source": "RNNKIT_KERNELS" if os.environ.get("RNNKIT_KERNELS") else "default"}
    try:
        import numba
        st["numba"] = numba.__version__
    except ImportError:
        st.update(numba=None, fast_available=False, why_not="numba is not installed",
                  cells={}, functions=[])
        return st
    from . import _blas
    st["fast_available"] = _blas.AVAILABLE
    st["why_not"] = None if _blas.AVAILABLE else (
        "no OpenBLAS found inside the NumPy installation (the compiled kernels call it)")
    st["blas"] = _blas.LIBRARY
    st["blas_core"] = _openblas_core(_blas.LIBRARY)
    st["blas_threads"] = _blas.num_threads() if _blas.AVAILABLE else None
    st["packed"] = _packed_status()
    try:
        st["threading_layer"] = numba.threading_layer()
    except ValueError:        # no parallel region has run in this process yet
        st["threading_layer"] = f"not started yet (configured: {numba.config.THREADING_LAYER})"
    examples = {"SimpleRNN (tanh)": _cells.SimpleRNNCell(1), "LSTM": _cells.LSTMCell(1),
                "GRU (reset_after=True)": _cells.GRUCell(1),
                "GRU (reset_after=False)": _cells.GRUCell(1, reset_after=False),
                "LSTM (use_peepholes)": _cells.LSTMCell(1, use_peepholes=True),
                "LSTM (proj_size)": _cells.LSTMCell(2, proj_size=1),
                "LSTM (zoneout)": _cells.LSTMCell(1, zoneout=0.1),
                "GRU (zoneout)": _cells.GRUCell(1, zoneout=0.1),
                "LayerNormLSTM": _cells.LayerNormLSTMCell(1),
                "LayerNormGRU": _cells.LayerNormGRUCell(1),
                "IndRNN (relu)": _cells.IndRNNCell(1), "MinGRU": _cells.MinGRUCell(1),
                "MinLSTM": _cells.MinLSTMCell(1), "LRU": _cells.LRUCell(1),
                "sLSTM": _cells.sLSTMCell(1)}
    st["cells"] = {}
    for label, cell in examples.items():
        impl = kernels.kernel_for(cell, "float32")
        st["cells"][label] = ("reference NumPy" if impl is None else
                              f"compiled ({getattr(impl, '__name__', type(impl).__name__)})")
    funcs = compiled_functions()
    st["cache_dir"], st["cache_dir_reason"] = (_cache_location(funcs[0]["dispatcher"])
                                               if funcs else (None, "no compiled functions"))
    st["functions"] = [{k: v for k, v in f.items() if k != "dispatcher"} for f in funcs]
    return st


def _packed_status():
    """One line on the float32 per-step products: :mod:`._packed` or OpenBLAS, and why."""
    from . import _packed
    if not _packed.AVAILABLE:
        return ("OpenBLAS (rnnkit's packed micro-kernel needs AVX-512F or AVX2+FMA, which "
                "this CPU lacks)")
    if not _packed.ENABLED:
        return "OpenBLAS (rnnkit's packed micro-kernel is turned off by RNNKIT_PACKED=0)"
    return (f"rnnkit's packed micro-kernel ({_packed.ISA}, {_packed.MR} x {_packed.NR} "
            "register block); float64 uses OpenBLAS")


def format_status(st):
    """``kernel_status()`` as the lines ``rnnkit info --kernels`` prints."""
    lines = [f"kernel mode: {st['mode']} ({st['mode_source']})",
             f"numba: {st['numba'] or 'not installed'}"]
    if not st.get("fast_available"):
        lines.append(f"compiled kernels: unavailable ({st.get('why_not')}); every cell runs "
                     "the reference NumPy loop")
    else:
        pins = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                if k in os.environ}
        lines.append(f"BLAS for the other products (weight gradients, float64): {st['blas']} "
                     f"(kernel {st['blas_core']}, {st['blas_threads']} thread(s)"
                     + (f"; pinned by {pins}" if pins else "") + ")")
        lines.append(f"float32 per-step and input products: {st['packed']}")
        lines.append(f"numba threading layer: {st['threading_layer']}")
    lines.append("path per cell (default activations; other activations use the reference):")
    lines += [f"  {k:24s} {v}" for k, v in st.get("cells", {}).items()]
    if st.get("functions"):
        lines.append(f"numba cache: {st['cache_dir']}")
        lines.append(f"  chosen because: {st['cache_dir_reason']}")
        n_cached = sum(1 for f in st["functions"] if f["cached"])
        lines.append(f"compiled functions: {len(st['functions'])}, {n_cached} with compiled "
                     "code in the cache (the others compile on first use)")
        lines.append(f"  {'function':38s} {'cached':>6s} {'loaded':>6s} {'compiled':>8s}")
        for f in st["functions"]:
            lines.append(f"  {f['name'] + (' [parallel]' if f['parallel'] else ''):38s} "
                         f"{f['cached']:6d} {f['loaded']:6d} {f['compiled']:8d}")
        lines.append("  (cached: versions on disk, one per dtype/argument layout; loaded / "
                     "compiled: by this process)")
    return lines
