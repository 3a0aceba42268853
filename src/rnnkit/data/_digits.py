"""Small digit-classification sets read one step at a time (long-memory classification).

Both are generated on this machine, never downloaded: scikit-learn ships the 8x8 digits in
its wheel, and the ``mnist1d`` package builds MNIST-1D from its ten templates.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_int

__all__ = ["load_digits_sequences", "load_mnist1d"]


def load_digits_sequences(test_fraction: float = 0.25, seed: int = 0):
    """scikit-learn's 8x8 handwritten digits fed pixel by pixel: 64 steps of 1 feature.

    The whole image is seen only at the last step, so a recurrent classifier must carry what
    it saw in the first rows across up to 63 steps (the tutorial's "sequential MNIST" at a
    size a CPU trains in seconds). Pixels are scaled from 0..16 to 0..1.

    Args:
        test_fraction: share of the 1797 images held out (stratified by class), in (0, 1).
        seed: seed of the split.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: x (N, 64, 1) float32, y (N,) int64 in 0..9.

    Needs scikit-learn (``pip install rnnkit[test]`` or ``pip install scikit-learn``).
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("load_digits_sequences needs scikit-learn: pip install scikit-learn"
                          ) from e
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)[:, :, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    test = np.zeros(len(y), bool)
    for c in range(10):
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, int(round(len(idx) * test_fraction)), replace=False)] = True
    return x[~test], y[~test], x[test], y[test]


def load_mnist1d(num_samples: int = 5000, seed: int = 42):
    """MNIST-1D (Greydanus 2020): 40-step 1-D signals of the ten digits, generated offline.

    Built by the ``mnist1d`` package's own generator (its default arguments: templates
    padded, sheared, translated and noised; 80/20 split), never downloaded. The package
    seeds NumPy's global random state; it is restored afterwards.

    Args:
        num_samples: total signals (train + test), at least 100.
        seed: the generator's seed (42 is the published data set's).

    Returns:
        ``(x_train, y_train, x_test, y_test)``: x (N, 40, 1) float32, y (N,) int64.

    Needs the ``mnist1d`` package (in the ``test`` extra).
    """
    num_samples = check_int(num_samples, "num_samples", minimum=100)
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError("load_mnist1d needs the mnist1d package: pip install mnist1d") from e
    import random
    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = check_int(seed, "seed", minimum=0)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    f = np.float32
    return (d["x"].astype(f)[:, :, None], d["y"].astype(np.int64),
            d["x_test"].astype(f)[:, :, None], d["y_test"].astype(np.int64))
