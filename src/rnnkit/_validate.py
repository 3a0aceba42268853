"""Argument checks shared by every constructor (layers, cells, optimizers, schedules,
callbacks): each error names the argument (and, where given, its owner), what was expected
and what was received (``units must be a positive integer, got 0.``, ``Adam: beta_1 must be a
number in [0.0, 1.0), got 1.0.``)."""

from __future__ import annotations

import math
import numbers
import os

import numpy as np


def _where(owner, name):
    return f"{owner}: {name}" if owner else name


def _interval(lo, hi, lo_open, hi_open):
    left = "(" if lo_open else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def number(owner, name, value, lo=None, hi=None, lo_open=False, hi_open=False,
           integer=False, allow_none=False):
    """Return ``value`` (float, or int when ``integer``) after checking type and range.

    Args:
        owner: who checks (class name), the message's prefix (None: no prefix).
        name: the argument's name.
        value: what was passed.
        lo, hi: bounds (None: unbounded); ``lo_open``/``hi_open`` exclude them.
        integer: require an integer (a bool is not one).
        allow_none: also accept None (returned as is).

    Raises:
        TypeError: not a number (or not an integer when ``integer``).
        ValueError: NaN, infinite or out of range.
    """
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a number"
    ok_type = numbers.Integral if integer else numbers.Real
    where = _where(owner, name)
    rng = _interval(lo, hi, lo_open, hi_open)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise TypeError(f"{where} must be {kind} in {rng}"
                        f"{' or None' if allow_none else ''}, got {value!r:.80} "
                        f"({type(value).__name__}).")
    if not integer and not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number in {rng}, got {value!r}.")
    if ((lo is not None and (value < lo or (lo_open and value == lo)))
            or (hi is not None and (value > hi or (hi_open and value == hi)))):
        raise ValueError(f"{where} must be {kind} in {rng}, got {value!r}.")
    return int(value) if integer else float(value)


def check_positive_int(name, value):
    """``value`` as an int; ValueError unless it is a positive integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_rate(name, value):
    """``value`` as a float; ValueError unless it is a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (0.0 <= float(value) < 1.0):
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}.")
    return float(value)


def check_seed(name, value):
    """``value``: None or a non-negative integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be None or a non-negative integer, got {value!r}.")
    return int(value)


def check_bool(name, value, owner=None):
    """``value`` as a bool; TypeError unless it is a bool or NumPy bool
    (``reset_after="no"`` is refused). ``owner`` (a class name) prefixes the message."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_where(owner, name)} must be True or False, got {value!r:.80} "
                        f"({type(value).__name__}).")
    return bool(value)


def check_choice(name, value, choices, owner=None):
    """``value`` unchanged; ValueError unless it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{_where(owner, name)} must be one of "
                         f"{', '.join(repr(c) for c in choices)}, got {value!r:.80}.")
    return value


def string(owner, name, value, choices=None, allow_none=False):
    """Return ``value`` after checking that it is a string (one of ``choices`` if given)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{_where(owner, name)} must be a string, got {value!r:.80} "
                        f"({type(value).__name__}).")
    return value if choices is None else check_choice(name, value, choices, owner)


def path(owner, name, value):
    """Return ``os.fspath(value)`` after checking that it is a str or path-like object."""
    try:
        return os.fspath(value)
    except TypeError:
        raise TypeError(f"{_where(owner, name)} must be a file path (str or os.PathLike), got "
                        f"{value!r:.80} ({type(value).__name__}).") from None


def callable_(owner, name, value, allow_none=False):
    """Return ``value`` after checking that it is callable (or None when allowed)."""
    if (value is None and allow_none) or callable(value):
        return value
    raise TypeError(f"{_where(owner, name)} must be a function, got {value!r:.80} "
                    f"({type(value).__name__}).")


def no_unknown_kwargs(owner, kwargs, *signatures):
    """TypeError naming every unexpected keyword argument of ``owner``'s constructor.

    Args:
        owner: the class name.
        kwargs: dict of the unexpected keyword arguments.
        *signatures: optional functions whose parameters are the valid ones (e.g. each
            ``__init__`` of the class's MRO); they are listed in the message.
    """
    if not kwargs:
        return
    names = ", ".join(sorted(kwargs))
    if not signatures:
        raise TypeError(f"{owner}() got unexpected keyword argument(s): {names}. Check the "
                        "spelling against the class docstring.")
    import inspect
    valid = []
    for fn in signatures:
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self" \
                    and p.name not in valid:
                valid.append(p.name)
    raise TypeError(f"{owner}() got unexpected keyword argument(s): {names}. Valid arguments "
                    f"are {valid}.")


def check_shape(name, value):
    """``value`` as a tuple; ValueError unless it is a sequence of positive ints or None."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of positive ints or None, got {value!r}.") \
            from None
    for s in out:
        if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer))
                              or s <= 0):
            raise ValueError(f"{name} must be a tuple of positive ints or None (unknown), got "
                             f"{value!r}.")
    return tuple(None if s is None else int(s) for s in out)


def get_named(module, name, value):
    """``module.get(value)`` (an activation, initializer or regularizer) with an error that
    names the argument ``name``."""
    try:
        return module.get(value)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{name}: {e}") from None
