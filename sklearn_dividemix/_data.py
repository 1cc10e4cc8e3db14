"""The data seam: where the training loop and prediction get their batches.

Everything that reads samples goes through one small interface,
:class:`DataSource`: its length, a stream of batches gathered by index onto
the device (training), and an in-order stream of batches (division passes,
final probabilities, prediction). Two implementations sit behind it:

- :class:`ArraySource`, in-memory arrays kept as they came (uint8 stays
  uint8, channels-last stays channels-last): on the device when they fit,
  else in (pinned) host memory; each batch is converted on the device.
- :class:`DatasetSource`, a map-style ``torch.utils.data.Dataset`` read
  through ``DataLoader`` objects whose options are set the skorch way
  (``iterator_train__num_workers=4``, ``iterator_valid__pin_memory=True``).
  The epoch's index batches are known before it starts, so they are handed
  to the loader as its ``batch_sampler`` and its workers read ahead.
"""

from __future__ import annotations

import mmap
import warnings
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from ._layout import Preprocess
from ._samples import SampleReader

__all__ = [
    "ArraySource",
    "DataSource",
    "DatasetSource",
    "collate_inputs",
    "is_dataset",
]

# Share of free GPU memory an array may take to be kept on the device.
DEVICE_MEMORY_SHARE = 0.5
# DataLoader arguments DivideMix sets itself.
_RESERVED_LOADER_ARGS = frozenset(
    {"batch_size", "shuffle", "sampler", "batch_sampler", "drop_last", "collate_fn"}
)


class DataSource(Protocol):
    """What the training loop and prediction need from the data."""

    def __len__(self) -> int: ...

    def batches(self, index_batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        """The samples of each index batch, converted, on the device, in turn."""
        ...

    def stream(
        self, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[torch.Tensor]:
        """Samples ``start:stop`` (all by default) in order, in batches of
        ``batch_size``, for inference."""
        ...


def is_dataset(X: object) -> bool:
    """True for a torch ``Dataset`` (map-style or iterable)."""
    return isinstance(X, Dataset)


def collate_inputs(items: list) -> torch.Tensor:
    """Stack the inputs of tuple (or bare) dataset items into one raw batch."""
    return SampleReader().collate(items)


def check_loader_params(params: dict, prefix: str) -> dict:
    """``iterator_*__`` parameters as DataLoader keywords, minus reserved ones."""
    reserved = sorted(_RESERVED_LOADER_ARGS & set(params))
    if reserved:
        names = [f"{prefix}{name}" for name in reserved]
        raise ValueError(
            f"{names} cannot be set: DivideMix chooses its own batches (use "
            "batch_size and eval_batch_size) and converts samples itself."
        )
    return params


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


def _file_backed(X: np.ndarray) -> bool:
    """True for a memory-mapped array or a view of one (validation drops the
    ``np.memmap`` subclass but keeps the mapping as the base)."""
    while X is not None:
        if isinstance(X, np.memmap | mmap.mmap):
            return True
        X = getattr(X, "base", None)
    return False


def host_tensor(X: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``X``'s memory (a memory-mapped array stays on disk)."""
    with warnings.catch_warnings():
        # torch warns that a read-only array (np.memmap, np.load's) could be
        # written through the tensor; the data is only ever read.
        warnings.filterwarnings("ignore", message="The given NumPy array")
        return torch.from_numpy(np.ascontiguousarray(X))


class ArraySource:
    """An in-memory array, converted batch by batch on the device.

    Parameters
    ----------
    X : ndarray
        The samples, in the layout and dtype they came in.
    preprocess : Preprocess
        Layout, dtype and standardisation of each batch.
    device : str or torch.device
        Where batches are delivered.
    keep_on_host : bool, default=False
        Never copy ``X`` to the device or into pinned memory, even if it
        fits (prediction streams chunks instead of holding a second copy).
    """

    def __init__(
        self,
        X: np.ndarray,
        preprocess: Preprocess,
        device: str | torch.device,
        *,
        keep_on_host: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.preprocess = preprocess
        tensor = host_tensor(X)
        if self.device.type != "cpu" and not keep_on_host:
            if _fits_on_device(tensor.nbytes, self.device):
                tensor = tensor.to(self.device)
            elif not _file_backed(X):
                # Page-locked memory lets each batch copy overlap compute; a
                # memory-mapped array stays on disk instead (pinning would
                # read all of it into memory).
                tensor = tensor.pin_memory()
        self.X = tensor

    def __len__(self) -> int:
        return len(self.X)

    def batches(self, index_batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        for index in index_batches:
            if index.device != self.X.device:
                index = index.to(self.X.device)
            yield self.preprocess(self.X[index], self.device)

    def stream(
        self, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[torch.Tensor]:
        stop = len(self.X) if stop is None else stop
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            yield self.preprocess(self.X[first:last], self.device)


class _IndexBatches:
    """A batch sampler whose batches are replaced before each pass.

    One DataLoader serves every epoch of a fit: with persistent workers
    (the default when there are workers) they start once per fit, not once
    per epoch, and the sampler, iterated in the main process, hands them
    each epoch's batches.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _loader_kwargs(params: dict) -> dict:
    kwargs = dict(params)
    if kwargs.get("num_workers", 0) > 0:
        kwargs.setdefault("persistent_workers", True)
    return kwargs


class DatasetSource:
    """A map-style torch Dataset read through DataLoaders.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Yields ``x``, ``(x, label)`` or dicts; ``x`` a tensor, array or PIL
        image, all of one shape.
    preprocess : Preprocess
        Layout, dtype and standardisation of each batch.
    device : str or torch.device
        Where batches are delivered.
    train_loader_params, eval_loader_params : dict
        DataLoader keywords (``num_workers``, ``pin_memory``, ...) of the
        training batches and of the in-order streams. With workers,
        ``persistent_workers`` defaults to True: they start once per fit.
    reader : SampleReader, default=None
        Splits each item into input and label; None reads tuple items.
    """

    def __init__(
        self,
        dataset: Dataset,
        preprocess: Preprocess,
        device: str | torch.device,
        train_loader_params: dict | None = None,
        eval_loader_params: dict | None = None,
        reader: SampleReader | None = None,
    ) -> None:
        if isinstance(dataset, IterableDataset):
            raise TypeError(
                "DivideMix needs a map-style Dataset (with __getitem__ and "
                "__len__): every epoch reads samples by index. Got an "
                f"IterableDataset, {type(dataset).__name__}."
            )
        self.dataset = dataset
        self.reader = reader if reader is not None else SampleReader()
        self.preprocess = preprocess
        self.device = torch.device(device)
        self.train_loader_params = dict(train_loader_params or {})
        self.eval_loader_params = dict(eval_loader_params or {})
        self._train_batches = _IndexBatches()
        self._train_loader: DataLoader | None = None
        self._eval_batches = _IndexBatches()
        self._eval_loader: DataLoader | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _convert(self, batches: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        for raw in batches:
            yield self.preprocess(raw, self.device)

    def batches(self, index_batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        self._train_batches.batches = [index.tolist() for index in index_batches]
        if self._train_loader is None:
            self._train_loader = DataLoader(
                self.dataset,
                batch_sampler=self._train_batches,
                collate_fn=self.reader.collate,
                **_loader_kwargs(self.train_loader_params),
            )
        # iter() now, not at the first next(): the batches are fixed here
        return self._convert(iter(self._train_loader))

    def stream(
        self, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[torch.Tensor]:
        stop = len(self.dataset) if stop is None else stop
        self._eval_batches.batches = [
            list(range(first, min(first + batch_size, stop)))
            for first in range(start, stop, batch_size)
        ]
        if self._eval_loader is None:
            self._eval_loader = DataLoader(
                self.dataset,
                batch_sampler=self._eval_batches,
                collate_fn=self.reader.collate,
                **_loader_kwargs(self.eval_loader_params),
            )
        return self._convert(iter(self._eval_loader))

    def labelled_stream(self, batch_size: int) -> Iterator[tuple[torch.Tensor, list]]:
        """Raw batches with the items' labels, in order (one scan in fit)."""
        return iter(
            DataLoader(
                self.dataset,
                batch_size=batch_size,
                shuffle=False,
                collate_fn=self.reader.collate_with_labels,
                **self.eval_loader_params,
            )
        )


def gather(source: DataSource, index: torch.Tensor) -> torch.Tensor:
    """One batch of ``source`` by index (the first-batch checks)."""
    return next(iter(source.batches([index])))
