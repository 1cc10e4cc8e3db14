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

from ._division import Division, LossWindow, auto_lambda_u
from ._epoch_sample import divides_a_new_sample
from ._schedule import (
    DEFAULT_LOSS_WINDOW,
    DEFAULT_P_THRESHOLD,
    HIGH_NOISE_LOSS_WINDOW,
    auto_alpha,
    auto_balance_labeled,
    auto_loss_window,
    auto_p_threshold,
    auto_rampup_epochs,
    auto_warmup_epochs,
    warmup_limit,
)
from ._selection import resolve_noise_floor

__all__ = ["FitState", "LoopSettings", "Phase", "checkpoint_due"]


@dataclass(frozen=True)
class LoopSettings:
    """The estimator parameters the epoch loop reads, resolved and frozen."""

    max_epochs: int = 30
    warmup_epochs: int = 10
    max_warmup_epochs: int = 15
    lr_decay: float = 0.1
    lambda_u: float | str = "auto"
    # 'auto': 0.5 until warm-up ends, then resolved from the first division
    p_threshold: float | str = 0.5
    temperature: float = 0.5
    # 'auto': resolved when warm-up ends, from the first division
    alpha: float | str = 0.5
    # 'auto': resolved when warm-up ends, from the epochs left
    rampup_epochs: int | str = 16
    lr_warmup_epochs: int = 0
    # 'auto': 1 until warm-up ends, then resolved from the first division
    loss_window: int | str = 1
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
        sampled = divides_a_new_sample(
            values.get("samples_per_epoch"), values.get("divide_over", "sample")
        )
        if values.get("loss_window") == "auto" and sampled:
            # each epoch's losses are of other rows: nothing to average
            values["loss_window"] = DEFAULT_LOSS_WINDOW
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
    # p_threshold and loss_window as resolved when warm-up ends (None: not
    # yet, or a checkpoint written before they could be 'auto')
    p_threshold: float | None = None
    loss_window: int | None = None
    rampup_epochs: int = 0
    # each net's share of unlabeled samples at the first division
    first_noise_rates: list[float] | None = None
    # noise_floor as resolved when warm-up ended ('auto' from the rates above)
    noise_floor: bool = False
    separation: float | None = None
    # per net: (epoch, division, scope) of its last bimodal division, or None
    healthy: list = field(default_factory=lambda: [None, None])

    def end_warmup(
        self,
        settings: LoopSettings,
        epoch: int,
        first_noise_rates: list[float],
        n_classes: int,
    ) -> None:
        """Warm-up ends at ``epoch``: resolve the ``'auto'`` settings.

        ``lambda_u``, ``alpha``, ``balance_labeled``, ``p_threshold``,
        ``loss_window`` and ``noise_floor`` set to ``'auto'`` are chosen from
        the first division (``first_noise_rates``, each net's share of
        flagged labels), the ramp-up from the epochs left.
        """
        self.warmup_end = epoch
        self.first_noise_rates = list(first_noise_rates)
        self.noise_floor = resolve_noise_floor(
            settings.noise_floor, self.first_noise_rates
        )
        self.rampup_epochs = settings.rampup_epochs
        if settings.rampup_epochs == "auto":
            self.rampup_epochs = auto_rampup_epochs(settings.max_epochs - epoch)
        # the estimated noise rate the 'auto' choices are made from
        noise_rate = float(np.mean(self.first_noise_rates))
        rules = {
            "lambda_u": lambda rate: auto_lambda_u(rate, n_classes),
            "alpha": auto_alpha,
            "balance_labeled": auto_balance_labeled,
            "p_threshold": auto_p_threshold,
            "loss_window": auto_loss_window,
        }
        for name, rule in rules.items():
            value = getattr(settings, name)
            setattr(self, name, rule(noise_rate) if value == "auto" else value)

    def mixup_alpha(self, settings: LoopSettings) -> float:
        """Mixup's alpha in force (a checkpoint from before alpha could be
        'auto' has no resolved one)."""
        return settings.alpha if self.alpha is None else self.alpha

    def balances_labeled(self, settings: LoopSettings) -> bool:
        """Whether the labeled loss balances classes (a checkpoint from before
        balance_labeled existed has none resolved: it was off)."""
        if self.balance_labeled is None:
            return settings.balance_labeled is True
        return bool(self.balance_labeled)

    def threshold(self, settings: LoopSettings) -> float:
        """The clean probability above which a label is kept, now.

        ``p_threshold='auto'`` is 0.5 until warm-up ends (the first division
        is read at the paper's threshold), then the resolved value.
        """
        if self.p_threshold is not None:
            return float(self.p_threshold)
        if settings.p_threshold == "auto":
            return DEFAULT_P_THRESHOLD
        return float(settings.p_threshold)

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

    def end_warmup(
        self, settings: LoopSettings, first_noise_rates: list[float], n_classes: int
    ) -> None:
        """Warm-up ends now: resolve the ``'auto'`` settings
        (:meth:`Phase.end_warmup`) and size the loss windows as resolved;
        the next division averages the epochs they kept."""
        self.phase.end_warmup(settings, self.epoch, first_noise_rates, n_classes)
        if self.phase.loss_window is not None:
            for window in self.windows:
                window.size = int(self.phase.loss_window)

    @classmethod
    def start(cls, n_nets: int, loss_window: int | str, seed: int) -> FitState:
        """The state of a fit before its first epoch.

        With ``loss_window='auto'`` the windows average one epoch until warm-up
        ends but keep the most epochs 'auto' may ask for, so that the
        division after it can average the warm-up's losses too.
        """
        if loss_window == "auto":
            size, keep = DEFAULT_LOSS_WINDOW, HIGH_NOISE_LOSS_WINDOW
        else:
            size, keep = int(loss_window), None
        return cls(
            history=History(),
            windows=[LossWindow(size, keep) for _ in range(n_nets)],
            phase=Phase(),
            rng=np.random.RandomState(seed),
        )
