"""The state the epoch loop carries from one epoch to the next.

Everything a fit changes between epochs, besides the nets (weights and
optimizers) and the data's random streams, lives in one :class:`FitState`:
the history, each net's loss window, where warm-up ended and what it chose,
the last bimodal division of each net, and the stream that seeds the
divisions. It is what a checkpoint saves with the nets, and what a resumed
fit continues from; nothing else of the loop outlives an epoch. Beside it,
what the loop reads and never changes: the frozen :class:`LoopSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skorch.history import History

from ._division import Division, LossWindow
from ._schedule import auto_warmup_epochs, warmup_limit

__all__ = ["FitState", "LoopSettings", "Phase", "checkpoint_due"]


@dataclass(frozen=True)
class LoopSettings:
    """The estimator parameters the epoch loop reads, resolved and frozen."""

    max_epochs: int = 30
    warmup_epochs: int = 10
    max_warmup_epochs: int = 15
    lr_decay: float = 0.1
    lambda_u: float | str = "auto"
    p_threshold: float = 0.5
    temperature: float = 0.5
    # 'auto': resolved when warm-up ends, from the first division
    alpha: float | str = 0.5
    # 'auto': resolved when warm-up ends, from the epochs left
    rampup_epochs: int | str = 16
    lr_warmup_epochs: int = 0
    loss_window: int = 1
    confidence_penalty: bool = False
    division: str = "global"
    steps_per_epoch: str = "labeled"
    # weight the labeled loss's classes by their labeled counts; 'auto':
    # resolved when warm-up ends, from the first division
    balance_labeled: bool | str = False
    noise_floor: bool | str = False
    samples_per_epoch: int | float | None = None
    divide_over: str = "sample"

    @classmethod
    def from_params(
        cls, params: dict, steps_per_epoch: int | None = None
    ) -> LoopSettings:
        """From ``get_params()``, with the ``'auto'`` epoch counts resolved.

        ``steps_per_epoch`` (optimiser steps of one warm-up epoch) sizes an
        ``'auto'`` warm-up in steps; None sizes it by the budget alone.
        """
        names = [name for name in cls.__dataclass_fields__ if name in params]
        values = {name: params[name] for name in names}
        max_epochs = values["max_epochs"]
        if values.get("warmup_epochs", "auto") == "auto":
            values["warmup_epochs"] = auto_warmup_epochs(max_epochs, steps_per_epoch)
        values["max_warmup_epochs"] = warmup_limit(
            max_epochs,
            values["warmup_epochs"],
            values.get("max_warmup_epochs", "auto"),
        )
        if values.get("lr_warmup_epochs", "auto") == "auto":
            # as lr='auto': the built-in small nets were tuned without it
            values["lr_warmup_epochs"] = 0 if params.get("module") is None else 1
        return cls(**values)


def checkpoint_due(settings: LoopSettings, every: int, epoch: int, row: dict[str, Any]):
    """Whether a checkpoint is written after ``epoch`` epochs (this ``row``).

    Every ``every`` epochs, after the last epoch, and after each warm-up
    epoch that may be the last one (from ``warmup_epochs`` on, warm-up ends
    when the division's evidence says so).
    """
    return (
        epoch % every == 0
        or epoch == settings.max_epochs
        or (row.get("phase") == "warmup" and epoch >= settings.warmup_epochs)
    )


@dataclass
class Phase:
    """When warm-up ended, what it chose then, and each net's last good split."""

    warmup_end: int | None = None
    lambda_u: float | None = None
    # mixup's alpha as resolved when warm-up ended (None: not yet, or a
    # checkpoint written before alpha could be 'auto')
    alpha: float | None = None
    # balance_labeled as resolved when warm-up ends (None: not yet, or a
    # checkpoint written before it existed)
    balance_labeled: bool | None = None
    rampup_epochs: int = 0
    # each net's share of unlabeled samples at the first division
    first_noise_rates: list[float] | None = None
    # noise_floor as resolved when warm-up ended ('auto' from the rates above)
    noise_floor: bool = False
    separation: float | None = None
    # per net: (epoch, division, scope) of its last bimodal division, or None
    healthy: list = field(default_factory=lambda: [None, None])

    def keep_healthy(self, divisions: list[Division], epoch: int, scope=None):
        """Replace each degenerate division by the net's last bimodal one.

        A split of losses that are not bimodal is little better than chance
        (at high noise it can swing to calling most wrong labels clean in one
        epoch), and MixMatch would train the peer on it. The net's last
        bimodal split, though older, is the better guess. ``scope`` names the
        rows a division covers (None: the whole set; an epoch's sample
        otherwise), and a division of other rows never stands in. Returns the
        divisions to use and a note for each replacement.
        """
        kept, notes = [], []
        for i, division in enumerate(divisions):
            last = self.healthy[i]
            if not division.degenerate:
                self.healthy[i] = (epoch, division, scope)
                kept.append(division)
            elif last is None or last[2] != scope:
                kept.append(division)
            else:
                kept.append(last[1])
                notes.append(
                    f"net{i + 1}'s division: losses not bimodal (separation "
                    f"{division.separation:.2f}); reusing its division of epoch "
                    f"{last[0] + 1}"
                )
        return kept, notes


@dataclass
class FitState:
    """What the epoch loop changes, besides the nets and the data streams.

    Attributes
    ----------
    epoch : int
        Epochs completed.
    history : skorch.History
        One row per completed epoch.
    windows : list of LossWindow
        Each net's window of normalised losses.
    phase : Phase
        Warm-up's end and choices, the last bimodal divisions.
    rng : numpy.random.RandomState
        The stream that seeds each epoch's divisions.
    """

    history: History
    windows: list[LossWindow]
    phase: Phase
    rng: np.random.RandomState
    epoch: int = 0

    @classmethod
    def start(cls, n_nets: int, loss_window: int, seed: int) -> FitState:
        """The state of a fit before its first epoch."""
        return cls(
            history=History(),
            windows=[LossWindow(loss_window) for _ in range(n_nets)],
            phase=Phase(),
            rng=np.random.RandomState(seed),
        )
