"""Argument checks shared by every constructor: each error names the argument, what was
expected and what was received."""

from __future__ import annotations

import numpy as np


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


def check_bool(name, value):
    """``value`` unchanged; TypeError unless it is a bool (``reset_after="no"`` is refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} "
                        f"({type(value).__name__}).")
    return bool(value)


def check_seed(name, value):
    """``value``: None or a non-negative integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be None or a non-negative integer, got {value!r}.")
    return int(value)


def check_choice(name, value, choices):
    """``value`` unchanged; ValueError unless it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, "
                         f"got {value!r}.")
    return value


def no_unknown_kwargs(owner, kwargs):
    """TypeError naming every unexpected keyword argument of ``owner``'s constructor."""
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(f"{owner}() got unexpected keyword argument(s): {names}. Check the "
                        "spelling against the class docstring.")


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
