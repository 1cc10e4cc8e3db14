"""The tiny training budgets the tests share, and the tiny images they fit.

A test that fits names its budget, so that two files fitting "a short fit"
fit the same one and the suite's cost is read in one place. Each budget is a
dict of ``DivideMixClassifier`` parameters; a test that needs one more
changes it where it is used (``{**LEARNING, "max_epochs": 3}``). The shared
data sets are fixtures in ``conftest.py`` (``noisy_digits``, ``tiny_images``,
``blobs``); :func:`band_images` is a function because its size varies.

Import as ``from tests._budgets import SHORT`` (pytest's ``conftest.py``
cannot be imported as a module).
"""

import numpy as np

__all__ = ["LEARNING", "SHORT", "SMOKE", "band_images"]

# One warm-up and one MixMatch epoch: the least a fit that divides needs.
SMOKE = dict(max_epochs=2, warmup_epochs=1, batch_size=16, random_state=0)
# Three epochs, one of warm-up: a fit whose outputs are checked, not its quality.
SHORT = dict(max_epochs=3, warmup_epochs=1, batch_size=16, random_state=0)
# Four epochs, two of warm-up, lr=0.1: enough for tiny data to be learned.
LEARNING = dict(max_epochs=4, warmup_epochs=2, batch_size=16, lr=0.1, random_state=0)


def band_images(n: int = 48, seed: int = 0, size: int = 9):
    """uint8 NHWC ``size`` x ``size`` images whose class (of 3) is a bright row band."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = rng.randint(0, 100, size=(n, size, size, 3)).astype(np.uint8)
    for k in range(3):
        X[y == k, 3 * k : 3 * k + 3] += 150
    return X, y
