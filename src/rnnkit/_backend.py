"""Process-wide settings: default float dtype and the random generator.

rnnkit draws every random number (weight initialisation, shuffling, dropout masks) from one
NumPy ``Generator`` so that :func:`rnnkit.utils.set_random_seed` makes a run bit-identical.
"""

from __future__ import annotations

import numpy as np

_FLOATX = "float32"
_RNG = np.random.default_rng()
_VALID_FLOATX = ("float16", "float32", "float64")


def floatx() -> str:
    """Return the default float dtype name used for new layers ('float32' unless changed)."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float dtype for layers built afterwards.

    Args:
        value: one of 'float16', 'float32', 'float64'.
    """
    global _FLOATX
    if value not in _VALID_FLOATX:
        raise ValueError(
            f"floatx must be one of {list(_VALID_FLOATX)}, got {value!r}. "
            "Use 'float64' for gradient checks and 'float32' for training."
        )
    _FLOATX = value


def rng() -> np.random.Generator:
    """Return rnnkit's global random generator."""
    return _RNG


def set_random_seed(seed: int) -> None:
    """Seed rnnkit's global generator: same seed, same initial weights, shuffles and dropout.

    Args:
        seed: a non-negative integer.
    """
    global _RNG
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    _RNG = np.random.default_rng(int(seed))


def get_rng_state() -> dict:
    """Return the global generator's state (JSON-serialisable) for exact resume."""
    return _RNG.bit_generator.state


#: Bit generators whose state may be restored from a file (looked up by name in this list only).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def generator_from_state(state) -> np.random.Generator:
    """Return a new ``Generator`` in ``state`` (a ``bit_generator.state`` dict).

    The state may come from an untrusted file: only the NumPy bit generators listed in
    ``_BIT_GENERATORS`` are accepted and a malformed state raises ValueError.

    Args:
        state: dict with ``'bit_generator'`` (e.g. ``'PCG64'``) and that generator's fields.

    Raises:
        ValueError: unknown bit generator or malformed state.
    """
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(
            f"a random-generator state must be a dict naming one of {list(_BIT_GENERATORS)} "
            f"as 'bit_generator', got {kind!r}."
        )
    bg = getattr(np.random, kind)()
    try:
        bg.state = state
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError) as e:
        raise ValueError(f"malformed {kind} state ({type(e).__name__}: {e}).") from None
    return np.random.Generator(bg)


def set_rng(generator: np.random.Generator) -> None:
    """Make ``generator`` rnnkit's global random generator."""
    global _RNG
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"expected a numpy.random.Generator, got {type(generator).__name__}.")
    _RNG = generator


def set_rng_state(state: dict) -> None:
    """Restore the global generator's state returned by :func:`get_rng_state`.

    Raises:
        ValueError: the state is malformed or names an unsupported bit generator.
    """
    set_rng(generator_from_state(state))
