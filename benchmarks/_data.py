"""The benchmarks' one data loader: archives, digits, subsets, flat pixels.

Every benchmark reads its data through here, so that a data set is found,
missing or subsampled the same way everywhere:

* :func:`archive`, the arrays of ``../shared/data/<name>.npz`` as stored
  (uint8 images, integer labels), with one message when the file is absent;
* :func:`subsets`, class-stratified train and test subsets of an archive
  (the seeds are the caller's: a study may draw its training subset per
  seed, its test subset once);
* :func:`digits`, scikit-learn's 8x8 digits scaled to [0, 1];
* :func:`flat`, uint8 images as float32 feature rows in [0, 1];
* :func:`load_dataset` and :func:`stratified_subset`, the quality
  benchmark's fixed, cached float32 subsets (defined in ``quality_data``,
  which owns that benchmark's cache, and re-exported here).
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from ._common import DATA_DIR
from .quality_data import SUBSET_SEED, Dataset, load_dataset, stratified_subset

__all__ = [
    "SPLITS",
    "SUBSET_SEED",
    "Dataset",
    "archive",
    "digits",
    "flat",
    "load_dataset",
    "stratified_subset",
    "subsets",
]

# The arrays every archive of ../shared/data holds (some hold more).
SPLITS = ("x_train", "y_train", "x_test", "y_test")


def archive(name: str, keys: tuple[str, ...] = SPLITS) -> dict[str, np.ndarray]:
    """The arrays of ``../shared/data/<name>.npz``, as stored.

    Parameters
    ----------
    name : {'mnist', 'fashion_mnist', 'cifar10'}
        The archive; images are uint8 (n, H, W) or (n, H, W, C).
    keys : tuple of str, default=SPLITS
        The arrays to read (only these are decompressed).

    Returns
    -------
    arrays : dict of ndarray
        One entry per key.
    """
    path = DATA_DIR / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: this benchmark needs ../shared/data "
            "(see shared/data/README.md)."
        )
    with np.load(path) as data:
        return {key: data[key] for key in keys}


def subsets(
    name: str,
    n_train: int | None,
    n_test: int | None,
    *,
    train_seed: int = SUBSET_SEED,
    test_seed: int = SUBSET_SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified subsets of an archive: uint8 images and int64 labels.

    Returns ``X_train, y_train, X_test, y_test``; a size of ``None`` keeps
    the whole split.
    """
    arrays = archive(name)
    y_train = arrays["y_train"].astype(np.int64)
    y_test = arrays["y_test"].astype(np.int64)
    train = stratified_subset(y_train, n_train, train_seed)
    test = stratified_subset(y_test, n_test, test_seed)
    x_train, x_test = arrays["x_train"][train], arrays["x_test"][test]
    return x_train, y_train[train], x_test, y_test[test]


def digits(scale: float = 16.0, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: 64 features divided by ``scale`` (16: [0, 1])."""
    X, y = load_digits(return_X_y=True)
    return (X / scale).astype(dtype), y


def flat(x: np.ndarray) -> np.ndarray:
    """uint8 images as float32 rows of pixels in [0, 1]."""
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32)
