"""Shared fixtures: small data sets with known label noise.

The tiny training budgets the tests fit them with are in ``_budgets.py``
(a module, so that test files can import them).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import train_test_split

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Two threads per test process at most: the suite runs under xdist on 2 cores.
torch.set_num_threads(1)


def flip_labels(y, noise_rate, n_classes, seed):
    """Symmetric noise, new label drawn from the other classes only."""
    rng = np.random.RandomState(seed)
    flipped = rng.rand(len(y)) < noise_rate
    y_noisy = y.copy()
    y_noisy[flipped] = (
        y[flipped] + rng.randint(1, n_classes, flipped.sum())
    ) % n_classes
    return y_noisy, flipped


@pytest.fixture(scope="session")
def noisy_digits():
    """Digits scaled to [0, 1], 70/30 split, 40 % symmetric noise on train."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    y_noisy, flipped = flip_labels(y_train, 0.4, 10, seed=0)
    return {
        "X_train": X_train,
        "X_test": X_test,
        "y_train": y_train,
        "y_test": y_test,
        "y_noisy": y_noisy,
        "flipped": flipped,
    }


@pytest.fixture(scope="session")
def tiny_images():
    """60 random 3x12x12 'images' whose class is the brightest channel."""
    rng = np.random.RandomState(0)
    X = rng.rand(60, 3, 12, 12).astype(np.float32)
    y = np.arange(60) % 3
    X[np.arange(60), y] += 0.5
    return X, y


@pytest.fixture(scope="session")
def blobs():
    """60 samples of 3 blobs in 4 features, float32, clean labels."""
    X, y = make_blobs(60, n_features=4, centers=3, random_state=0)
    return X.astype(np.float32), y
