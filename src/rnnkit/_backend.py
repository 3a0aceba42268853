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


def set_rng_state(state: dict) -> None:
    """Restore the global generator's state returned by :func:`get_rng_state`."""
    global _RNG
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    _RNG = np.random.Generator(bg)
