"""Small argument-checking helpers shared by the ``rnnkit.data`` modules."""

from __future__ import annotations

import numbers


def check_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as a Python ``int`` after checking it is an integer >= ``minimum``.

    Booleans are rejected even though ``bool`` is a subclass of ``int``, because
    ``window=True`` is always a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an integer >= {minimum}, got {value!r} "
            f"(type {type(value).__name__}); pass a whole number such as {max(minimum, 1)}."
        )
    value = int(value)
    if value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}, got {value}; "
            f"pass a value of at least {minimum}."
        )
    return value
