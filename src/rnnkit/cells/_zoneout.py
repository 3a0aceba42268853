"""Zoneout (Krueger et al. 2016) on a cell's hidden state, as in haste.

Training: each unit keeps its previous value with probability ``rate`` (a fresh Bernoulli mask
every step) and takes the new value otherwise; inference uses the expectation::

    training:  h_t = m_t * h_{t-1} + (1 - m_t) * h~_t,   m_t ~ Bernoulli(rate)
    inference: h_t = rate * h_{t-1} + (1 - rate) * h~_t
"""

from __future__ import annotations

import numpy as np

from .. import _backend


def generator(seed):
    """The masks' generator of a cell: seeded by the cell's ``seed``, or None (rnnkit's global
    generator, :func:`rnnkit.utils.set_random_seed`). Cells keep it as ``zoneout_rng``."""
    return None if seed is None else np.random.default_rng(seed)


def apply(rng, rate, h_prev, h_new, training):
    """``(h_t, m)``: the zoned-out state and the keep-previous weight ``m`` (a (B, H) 0/1
    mask in training, the scalar ``rate`` at inference) that :func:`backward` needs.
    ``rng``: the cell's ``zoneout_rng`` (None: the global generator)."""
    if training:
        m = ((rng or _backend.rng()).random(h_new.shape) < rate).astype(h_new.dtype)
    else:
        m = rate
    return h_new + m * (h_prev - h_new), m


def backward(dh, m):
    """``(dh_new, dh_prev)``: dL/dh~_t and the part of dL/dh_{t-1} through the zoneout."""
    return dh * (1 - m), dh * m
