"""Shared fixtures: small data sets with known label noise.

The tiny training budgets the tests fit them with are in ``_budgets.py``
(a module, so that test files can import them).
"""

import fcntl
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import train_test_split

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Two threads per test process at most: the suite runs under xdist on 2 cores.
torch.set_num_threads(1)


@pytest.fixture
def one_multiprocess_test_at_a_time(tmp_path_factory):
    """Hold a lock shared by every xdist worker of this run for the test.

    Tests that start processes of their own (torchrun and its elastic agent,
    spawned ranks, Dask and Ray workers) run one at a time: side by side, a
    restarted torchrun hung until its timeout. The lock file lies in the
    run's base temporary directory, which all workers share (pytest-xdist's
    ``xdist_group`` would do this, but its marks are lost under pytest 9).
    """
    root = tmp_path_factory.getbasetemp()
    if root.name.startswith("popen-gw"):
        root = root.parent
    with open(root / "multiprocess-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
