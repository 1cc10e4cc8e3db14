"""Data sets of the quality benchmark: fixed, stratified, cached subsets.

Every method of a benchmark cell sees exactly the same arrays: the train and
test subsets are drawn once per data set with a fixed seed (independent of the
run's seed, which only drives the label noise and the training), and cached as
``.npy`` files under ``benchmarks/cache/`` because CIFAR-10 takes half a
minute to decompress.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ._common import CACHE_DIR, DATA_DIR

__all__ = ["DATA_DIR", "Dataset", "load_dataset", "stratified_subset"]

SUBSET_SEED = 0
# Per-channel statistics of the full CIFAR-10 train set (data/README.md).
CIFAR_MEAN = np.array([0.4913, 0.4821, 0.4465], dtype=np.float32)
CIFAR_STD = np.array([0.2452, 0.2428, 0.2606], dtype=np.float32)


@dataclass
class Dataset:
    """Float32 train and test arrays with their true labels."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.y_train.max()) + 1


def stratified_subset(y: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified subset (all indices if no size)."""
    if size is None or size >= len(y):
        return np.arange(len(y))
    index, _ = train_test_split(
        np.arange(len(y)), train_size=size, stratify=y, random_state=seed
    )
    return np.sort(index)


def _digits(n_train: int | None, n_test: int | None) -> Dataset:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=SUBSET_SEED
    )
    train = stratified_subset(y_train, n_train, SUBSET_SEED)
    test = stratified_subset(y_test, n_test, SUBSET_SEED)
    return Dataset("digits", X_train[train], y_train[train], X_test[test], y_test[test])


def _to_float_images(x: np.ndarray, name: str) -> np.ndarray:
    """uint8 images to float32 (n, C, H, W): grey in [0, 1], colour standardised.

    Grey digits and clothes keep a zero background, so the zero padding of
    random crops looks like background; colour images are standardised per
    channel as in the paper.
    """
    x = x.astype(np.float32) / 255.0
    if x.ndim == 3:
        return x[:, None]
    if name == "cifar10":
        x = (x - CIFAR_MEAN) / CIFAR_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _cached_npz_subset(
    name: str, n_train: int | None, n_test: int | None
) -> dict[str, np.ndarray]:
    key = f"{name}_{n_train or 'all'}_{n_test or 'all'}_s{SUBSET_SEED}"
    paths = {k: CACHE_DIR / f"{key}_{k}.npy" for k in ("x_train", "y_train")}
    paths.update({k: CACHE_DIR / f"{key}_{k}.npy" for k in ("x_test", "y_test")})
    if all(p.exists() for p in paths.values()):
        return {k: np.load(p) for k, p in paths.items()}
    # the benchmarks' one loader (imported here: it re-exports this module)
    from ._data import archive

    data = archive(name)
    train = stratified_subset(data["y_train"], n_train, SUBSET_SEED)
    test = stratified_subset(data["y_test"], n_test, SUBSET_SEED)
    arrays = {
        "x_train": data["x_train"][train],
        "y_train": data["y_train"][train],
        "x_test": data["x_test"][test],
        "y_test": data["y_test"][test],
    }
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for k, path in paths.items():
        np.save(path, arrays[k])
    return arrays


def load_dataset(name: str, n_train: int | None, n_test: int | None) -> Dataset:
    """Load the fixed subset of one benchmark data set.

    Parameters
    ----------
    name : {'digits', 'mnist', 'fashion_mnist', 'cifar10'}
        ``digits`` is scikit-learn's 8x8 digits as 64 features in [0, 1]
        (a 70/30 stratified split); the others are images from
        ``../shared/data`` as (n, C, H, W) float32.
    n_train, n_test : int or None
        Sizes of the stratified subsets; ``None`` keeps every sample.
    """
    if name == "digits":
        return _digits(n_train, n_test)
    arrays = _cached_npz_subset(name, n_train, n_test)
    return Dataset(
        name,
        _to_float_images(arrays["x_train"], name),
        arrays["y_train"].astype(np.int64),
        _to_float_images(arrays["x_test"], name),
        arrays["y_test"].astype(np.int64),
    )
