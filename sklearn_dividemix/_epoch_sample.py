"""Each epoch on a class-balanced sample of the training set.

The paper's Clothing1M runs do not pass over the million images each epoch:
they draw a class-balanced sample (1,000 mini-batches' worth), warm up or
divide and train on it, and draw again the next epoch. ``samples_per_epoch``
does the same here. :class:`EpochSample` is the seam: the loop asks it for
the epoch's data, divider and divisions, and a fit without a sample gets the
whole set through the same calls. Pure functions of arrays otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import torch

from ._divider import Divider
from ._division import Division

__all__ = [
    "EpochSample",
    "check_epoch_sampling",
    "divides_a_new_sample",
    "SubsetSource",
    "class_balanced_sample",
    "draw_epoch_sample",
    "epoch_steps",
    "resolve_sample_size",
]


def divides_a_new_sample(samples_per_epoch, divide_over: str) -> bool:
    """Whether each epoch divides a different sample of the rows."""
    return samples_per_epoch is not None and divide_over == "sample"


def check_epoch_sampling(
    samples_per_epoch, divide_over: str, loss_window: int | str
) -> None:
    """Refuse a loss window over divisions of different samples.

    ``loss_window='auto'`` is never refused: it stays 1 there.
    """
    if loss_window == "auto":
        return
    if divides_a_new_sample(samples_per_epoch, divide_over) and loss_window > 1:
        raise ValueError(
            f"loss_window={loss_window} averages each sample's losses over "
            "epochs, but with samples_per_epoch and divide_over='sample' each "
            "epoch divides a different sample. Use divide_over='all' (every "
            "epoch's losses cover the whole set) or loss_window=1."
        )


def resolve_sample_size(samples_per_epoch, n_samples: int) -> int | None:
    """The number of samples an epoch draws; None for the whole set.

    An integer is a count, a float in (0, 1] a share of ``n_samples``; a
    count of the whole set or more is the whole set.
    """
    if samples_per_epoch is None:
        return None
    if isinstance(samples_per_epoch, Integral):
        size = int(samples_per_epoch)
    else:
        size = math.ceil(float(samples_per_epoch) * n_samples)
    return None if size >= n_samples else max(size, 1)


def epoch_steps(samples_per_epoch, n_samples: int, batch_size: int) -> int:
    """Optimiser steps of one warm-up epoch: its rows over the batch size."""
    rows = resolve_sample_size(samples_per_epoch, n_samples) or n_samples
    return max(1, math.ceil(rows / max(batch_size, 1)))


def class_balanced_sample(
    labels: np.ndarray, size: int, n_classes: int, rng: np.random.RandomState
) -> np.ndarray:
    """``size`` indices drawn without replacement, as evenly over classes as
    the classes allow.

    Every class gets the same quota; a class with fewer samples than its
    quota gives all of them, and what it could not give is shared among the
    others (so the sample has ``size`` indices whenever the set has).

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        The given labels, encoded as ``0 .. n_classes - 1``.
    size : int
        Number of indices to draw.
    n_classes : int
        Number of classes.
    rng : numpy.random.RandomState
        The stream the draw comes from.

    Returns
    -------
    index : ndarray of shape (min(size, n_samples),)
        Sorted indices into ``labels``.
    """
    members = [np.flatnonzero(labels == c) for c in range(n_classes)]
    quota = _quotas(np.array([len(m) for m in members]), size)
    # one permutation per class, drawn in class order: the same stream gives
    # the same sample on every process of a data-parallel fit
    chosen = [
        m[rng.permutation(len(m))[:q]] for m, q in zip(members, quota, strict=True)
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Per-class quotas summing to ``min(size, counts.sum())`` (water-filling)."""
    quota = np.zeros_like(counts)
    left = min(size, int(counts.sum()))
    open_classes = counts > 0
    while left > 0 and open_classes.any():
        share, extra = divmod(left, int(open_classes.sum()))
        room = counts - quota
        give = np.where(open_classes, share, 0)
        # the remainder goes to the first open classes, one each
        give[np.flatnonzero(open_classes)[:extra]] += 1
        give = np.minimum(give, room)
        quota += give
        left -= int(give.sum())
        open_classes = quota < counts
        if give.sum() == 0:
            break
    return quota


class SubsetSource:
    """The rows ``index`` of another data source, as a data source.

    Parameters
    ----------
    source : DataSource
        The whole training set.
    index : tensor of shape (n_rows,)
        The rows, in the order this source numbers them.
    """

    def __init__(self, source, index: torch.Tensor) -> None:
        self.source = source
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def batches(self, index_batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
        return self.source.batches([self.index[batch] for batch in index_batches])

    def stream(
        self, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[torch.Tensor]:
        stop = len(self.index) if stop is None else stop
        rows = self.index[start:stop]
        return self.source.batches([b for b in rows.split(batch_size) if len(b)])


@dataclass(frozen=True)
class EpochSample:
    """What one epoch trains and divides on: the whole set, or a sample.

    Parameters
    ----------
    index : ndarray of shape (n_rows,) or None
        The sample's rows, sorted; None for the whole set.
    epoch : int
        The epoch it was drawn for (a division of one sample never stands
        in for another's).
    divide_over : {'sample', 'all'}
        Whether divisions are made over the sample or over the whole set
        (and then restricted to the sample for training).
    """

    index: np.ndarray | None = None
    epoch: int = 0
    divide_over: str = "sample"

    @property
    def scope(self) -> int | None:
        """Identifies the rows a division of this epoch covers."""
        if self.index is None or self.divide_over == "all":
            return None
        return self.epoch

    def data(self, data):
        """The epoch's training data (``data`` itself for the whole set)."""
        if self.index is None:
            return data
        index = torch.as_tensor(self.index, device=data.y.device)
        return replace(data, source=SubsetSource(data.source, index), y=data.y[index])

    def division_data(self, data):
        """The data the epoch's divisions are made over."""
        return data if self.scope is None else self.data(data)

    def divider(self, divider: Divider) -> Divider:
        """The divider of the rows the divisions are made over."""
        if self.scope is None:
            return divider
        return replace(divider, labels=divider.labels[self.index])

    def rows_divided(self) -> np.ndarray | None:
        """The rows a division covers (None: all), for ``on_division``."""
        return None if self.scope is None else self.index

    def for_training(self, divisions: Sequence[Division]) -> list[Division]:
        """Divisions restricted to the rows the epoch trains on."""
        if self.index is None or self.scope is not None:
            return list(divisions)
        return [
            replace(d, clean_proba=np.asarray(d.clean_proba)[self.index])
            for d in divisions
        ]


def draw_epoch_sample(
    size: int | None,
    labels: np.ndarray,
    n_classes: int,
    rng: np.random.RandomState,
    *,
    epoch: int,
    divide_over: str,
) -> EpochSample:
    """The epoch's sample (the whole set when ``size`` is None; no draw)."""
    if size is None:
        return EpochSample(None, epoch, divide_over)
    index = class_balanced_sample(labels, size, n_classes, rng)
    return EpochSample(index, epoch, divide_over)
