"""The division seam: how one net's per-sample losses become its division.

Every division of a fit (each epoch's co-divide, the warm-up checks, the final
division behind ``clean_proba_``) goes through one :class:`Divider`, resolved
once per fit from the ``division`` parameter and the given labels. The table
of strategies lives here, beside the strategies (``_division``,
``_class_division``); what a fit does with a division is the loop's business.
Observers (studies, diagnostics) see every division through the
``on_division`` callback hook, see :func:`notify_division`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from ._class_division import divide_losses_balanced, divide_losses_per_class
from ._division import Division, LossWindow, divide_losses, normalize_losses

__all__ = ["STRATEGIES", "Divider", "division_notes", "notify_division"]


def _global(losses, labels, *, n_classes, random_state) -> Division:
    # the paper's one mixture; labels and classes play no part
    return divide_losses(losses, random_state=random_state)


# division= -> how one net's normalised (and window-averaged) losses are split.
STRATEGIES: dict[str, Callable[..., Division]] = {
    "global": _global,
    "per_class": divide_losses_per_class,
    "balanced": divide_losses_balanced,
}


@dataclass(frozen=True)
class Divider:
    """One fit's way of dividing: a strategy and the labels it splits by.

    Parameters
    ----------
    strategy : str or callable
        A key of :data:`STRATEGIES`, or a callable with their signature,
        ``split(losses, labels, *, n_classes, random_state) -> Division``.
    labels : ndarray of shape (n_samples,)
        The given labels, encoded as ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes.
    """

    strategy: str | Callable[..., Division]
    labels: np.ndarray = field(repr=False)
    n_classes: int

    def __post_init__(self) -> None:
        if not callable(self.strategy) and self.strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown division {self.strategy!r}; expected one of "
                f"{sorted(STRATEGIES)}."
            )

    def __call__(
        self, losses: np.ndarray, window: LossWindow, random_state: int
    ) -> Division:
        """Normalise, average over ``window`` and split one net's losses."""
        averaged = window.update(normalize_losses(losses))
        split = self.strategy
        if not callable(split):
            split = STRATEGIES[split]
        # The mixture is fitted to one column of numbers: scikit-learn's
        # OpenMP threads (its k-means initialisation) gain nothing there and,
        # next to torch's, wait on each other; one thread makes the fit 2-10x
        # faster and changes no result.
        with _openmp_controller().limit(limits=1, user_api="openmp"):
            return split(
                averaged,
                self.labels,
                n_classes=self.n_classes,
                random_state=random_state,
            )

    def divide_all(
        self,
        losses: Sequence[np.ndarray],
        windows: Sequence[LossWindow],
        seeds: Sequence[int],
    ) -> list[Division]:
        """Each net's division (co-divide: all of them before any training)."""
        return [
            self(loss, window, int(seed))
            for loss, window, seed in zip(losses, windows, seeds, strict=True)
        ]


def division_notes(
    division: Division, name: str, p_threshold: float, n_classes: int
) -> list[str]:
    """What ``history_`` notes about one net's division: an empty or tiny
    side, losses that are not bimodal."""
    n_labeled = int((division.clean_proba > p_threshold).sum())
    n_unlabeled = len(division.clean_proba) - n_labeled
    notes = []
    for label, size in (("labeled", n_labeled), ("unlabeled", n_unlabeled)):
        if size == 0:
            notes.append(f"{name}'s division: empty {label} set")
        elif size < n_classes:
            notes.append(f"{name}'s division: tiny {label} set ({size} samples)")
    if division.degenerate:
        notes.append(
            f"{name}'s division: losses not bimodal (separation "
            f"{division.separation:.2f}); the split is unreliable"
        )
    return notes


def notify_division(
    nets: Sequence,
    *,
    epoch: int,
    stage: str,
    losses: Sequence[np.ndarray],
    divisions: Sequence[Division],
    used: Sequence[Division] | None,
    sample: np.ndarray | None = None,
) -> None:
    """Call ``on_division`` on every callback of each net that defines it.

    A skorch-style hook for observers: ``cb.on_division(net, epoch=...,
    stage=..., losses=..., division=..., used=..., sample=...)`` where
    ``net`` made the division from its own per-sample ``losses`` (raw
    cross-entropy against the given labels), ``division`` is its split, and
    ``used`` is what the peer trains on (a degenerate split is replaced by
    the net's last bimodal one; None at a warm-up check, which trains
    nobody). ``stage`` is ``'warmup_check'``, ``'mixmatch'`` or ``'final'``;
    ``epoch`` counts the epochs trained so far. ``sample`` is None when the
    losses cover the whole training set, else the indices of the rows they
    cover (``samples_per_epoch`` with ``divide_over='sample'``). Callbacks
    without the method are skipped, so skorch's own callbacks need nothing.
    """
    for i, net in enumerate(nets):
        for _, callback in getattr(net, "callbacks_", ()):
            hook = getattr(callback, "on_division", None)
            if hook is None:
                continue
            hook(
                net,
                epoch=epoch,
                stage=stage,
                losses=losses[i],
                division=divisions[i],
                used=None if used is None else used[i],
                sample=sample,
            )


@functools.cache
def _openmp_controller() -> ThreadpoolController:
    # Scanning the loaded libraries takes milliseconds: do it once.
    return ThreadpoolController()
