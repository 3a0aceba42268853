import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global seed."""
    import rnnkit
    rnnkit.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
