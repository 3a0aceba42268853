"""Argument checks shared by constructors: type and range, with messages that name the
argument, what was expected and what was received (``Adam: beta_1 must be a number in
[0, 1), got 1.0.``)."""

from __future__ import annotations

import math
import numbers
import os


def _interval(lo, hi, lo_open, hi_open):
    left = "(" if lo_open else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def number(owner, name, value, lo=None, hi=None, lo_open=False, hi_open=False,
           integer=False, allow_none=False):
    """Return ``value`` (float, or int when ``integer``) after checking type and range.

    Args:
        owner: who checks (class name), the message's prefix.
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
    where = f"{owner}: {name}" if owner else name
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


def no_unknown(owner, unknown, *signatures):
    """Raise TypeError naming the unknown keyword arguments and the valid ones.

    Args:
        owner: the class name.
        unknown: dict of the unexpected keyword arguments.
        *signatures: the functions whose parameters are valid (e.g. each ``__init__``).
    """
    if not unknown:
        return
    import inspect
    valid = []
    for fn in signatures:
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self" \
                    and p.name not in valid:
                valid.append(p.name)
    raise TypeError(f"{owner}: unknown argument(s) {sorted(unknown)}; valid arguments are "
                    f"{valid}.")


def boolean(owner, name, value):
    """Return ``value`` after checking that it is a bool (or a NumPy bool)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r:.80} "
                        f"({type(value).__name__}).")
    return bool(value)


def string(owner, name, value, choices=None, allow_none=False):
    """Return ``value`` after checking that it is a string (from ``choices`` if given)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {name} must be a string, got {value!r:.80} "
                        f"({type(value).__name__}).")
    if choices is not None and value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {list(choices)}, got {value!r:.80}.")
    return value


def path(owner, name, value):
    """Return ``os.fspath(value)`` after checking that it is a str or path-like object."""
    try:
        return os.fspath(value)
    except TypeError:
        raise TypeError(f"{owner}: {name} must be a file path (str or os.PathLike), got "
                        f"{value!r:.80} ({type(value).__name__}).") from None


def callable_(owner, name, value, allow_none=False):
    """Return ``value`` after checking that it is callable (or None when allowed)."""
    if (value is None and allow_none) or callable(value):
        return value
    raise TypeError(f"{owner}: {name} must be a function, got {value!r:.80} "
                    f"({type(value).__name__}).")
