"""The epoch loop of a fit: warm-up, co-divide, MixMatch, bookkeeping.

:func:`run_epochs` drives both nets through ``max_epochs`` epochs and returns
the estimator's ``history_``; the per-phase work lives in ``_training``.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from skorch.history import History

from ._division import (
    Division,
    LossWindow,
    auto_lambda_u,
    estimate_noise_rate,
    warmup_should_continue,
)
from ._losses import linear_rampup
from ._training import (
    TrainingData,
    compute_division,
    run_mixmatch_epoch,
    run_warmup_epoch,
)

__all__ = ["DivisionWarning", "EpochReporter", "run_epochs"]

_COLUMNS = (
    "epoch",
    "phase",
    "loss_net1",
    "loss_net2",
    "labeled_net1",
    "labeled_net2",
    "dur",
)


class DivisionWarning(UserWarning):
    """A division came out empty, tiny or not bimodal; training went on."""


@dataclass
class _Phase:
    """When warm-up ended, the ``lambda_u`` chosen then, the last good splits."""

    warmup_end: int | None = None
    lambda_u: float | None = None
    separation: float | None = None
    # per net: (epoch, division) of its last bimodal division, or None
    healthy: list = field(default_factory=lambda: [None, None])

    def keep_healthy(self, divisions: list[Division], epoch: int):
        """Replace each degenerate division by the net's last bimodal one.

        A split of losses that are not bimodal is little better than chance
        (at high noise it can swing to calling most wrong labels clean in one
        epoch), and MixMatch would train the peer on it. The net's last
        bimodal split, though older, is the better guess. Returns the
        divisions to use and a note for each replacement.
        """
        kept, notes = [], []
        for i, division in enumerate(divisions):
            last = self.healthy[i]
            if not division.degenerate:
                self.healthy[i] = (epoch, division)
                kept.append(division)
            elif last is None:
                kept.append(division)
            else:
                kept.append(last[1])
                notes.append(
                    f"net{i + 1}'s division: losses not bimodal (separation "
                    f"{division.separation:.2f}); reusing its division of epoch "
                    f"{last[0] + 1}"
                )
        return kept, notes


def _max_warmup_epochs(est) -> int:
    limit = getattr(est, "max_warmup_epochs", "auto")
    if limit == "auto":
        # at least half of the budget is left for MixMatch
        limit = est.max_epochs // 2
    return max(est.warmup_epochs, limit)


class EpochReporter:
    """Prints one line per epoch (``verbose >= 1``) and a bar (``verbose >= 2``)."""

    def __init__(self, verbose: int, stream=None) -> None:
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self._bar = None

    def start_epoch(self, n_steps: int, description: str) -> None:
        if self.verbose >= 2:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=n_steps, desc=description, leave=False)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        """Close the progress bar of an epoch that did not finish."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def end_epoch(self, row: dict, n_samples: int) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose < 1:
            return
        if row["epoch"] == 1:
            header = "{:>5}  {:<8}  {:>9}  {:>9}  {:>12}  {:>12}  {:>6}"
            print(header.format(*_COLUMNS), file=self.stream)
        line = "{:>5}  {:<8}  {:>9.4f}  {:>9.4f}  {:>12.1%}  {:>12.1%}  {:>6.2f}"
        print(
            line.format(
                row["epoch"],
                row["phase"],
                row["loss_net1"],
                row["loss_net2"],
                row["labeled_net1"] / n_samples,
                row["labeled_net2"] / n_samples,
                row["dur"],
            ),
            file=self.stream,
            flush=True,
        )


def _division_notes(division: Division, name: str, p_threshold: float, n_classes: int):
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


def _warmup(est, nets, data, reporter) -> dict[str, Any]:
    reporter.start_epoch(2 * -(-len(data.X) // data.batch_size), "warm-up")
    row: dict[str, Any] = {"phase": "warmup", "unlabeled_weight": 0.0}
    for i, net in enumerate(nets, start=1):
        terms = run_warmup_epoch(
            net, data, confidence_penalty=est.confidence_penalty, progress=reporter.step
        )
        row[f"loss_net{i}"] = terms.pop("loss", float("nan"))
        row[f"loss_terms_net{i}"] = terms
        row[f"labeled_net{i}"] = len(data.X)
        row[f"gmm_means_net{i}"] = None
        row[f"division_net{i}"] = None
    row["notes"] = []
    return row


def _co_divide(nets, data, windows, seeds) -> list[Division]:
    # Co-divide: both divisions exist before either net trains this epoch.
    return [
        compute_division(net, data, window, seed)
        for net, window, seed in zip(nets, windows, seeds, strict=True)
    ]


def _end_of_warmup(est, nets, data, divisions, epoch, phase, reporter):
    """A warm-up row while the divisions are not healthy yet, else None.

    When warm-up ends, fixes the epoch MixMatch starts at (for the ramp-up)
    and resolves ``lambda_u='auto'`` from this first division.
    """
    if phase.warmup_end is not None:
        return None
    separation = min(d.separation for d in divisions)
    limit = _max_warmup_epochs(est)
    if warmup_should_continue(separation, phase.separation, epoch, limit):
        phase.separation = separation
        row = _warmup(est, nets, data, reporter)
        row["notes"].append(
            "warm-up extended: losses not bimodal yet (separation "
            f"{separation:.2f}; warm-up goes on while it grows, up to epoch {limit})"
        )
        return row
    phase.warmup_end = epoch
    phase.lambda_u = est.lambda_u
    if est.lambda_u == "auto":
        noise_rate = estimate_noise_rate(divisions, est.p_threshold)
        phase.lambda_u = auto_lambda_u(noise_rate, data.onehot.shape[1])
    return None


def _mixmatch(
    est, nets, data, windows, epoch, seeds, reporter, *, divisions=None, phase=None
) -> dict[str, Any]:
    if divisions is None:
        divisions = _co_divide(nets, data, windows, seeds)
    warmup_end = est.warmup_epochs if phase is None else phase.warmup_end
    lambda_u = est.lambda_u if phase is None else phase.lambda_u
    n_classes = data.onehot.shape[1]
    row: dict[str, Any] = {"phase": "mixmatch", "notes": [], "lambda_u": lambda_u}
    for i, division in enumerate(divisions, start=1):
        row[f"gmm_means_net{i}"] = division.means
        row[f"division_net{i}"] = division.summary()
        row["notes"] += _division_notes(division, f"net{i}", est.p_threshold, n_classes)
    peer_proba = [
        torch.as_tensor(d.clean_proba, dtype=torch.float32, device=data.X.device)
        for d in divisions[::-1]
    ]
    n_steps = sum(
        -(-int((w > est.p_threshold).sum()) // data.batch_size) for w in peer_proba
    )
    reporter.start_epoch(n_steps, "mixmatch")
    for i, (net, peer, clean_proba) in enumerate(
        zip(nets, nets[::-1], peer_proba, strict=True), 1
    ):

        def unlabeled_weight(fraction: float) -> float:
            ramp = linear_rampup(
                epoch + fraction,
                warmup_epochs=warmup_end,
                rampup_epochs=est.rampup_epochs,
            )
            return lambda_u * ramp

        terms = run_mixmatch_epoch(
            net,
            peer,
            data,
            clean_proba,
            p_threshold=est.p_threshold,
            temperature=est.temperature,
            alpha=est.alpha,
            unlabeled_weight=unlabeled_weight,
            progress=reporter.step,
        )
        row[f"loss_net{i}"] = terms.pop("loss", float("nan"))
        row[f"loss_terms_net{i}"] = terms
        row[f"labeled_net{i}"] = int((clean_proba > est.p_threshold).sum())
    row["unlabeled_weight"] = unlabeled_weight(1.0)
    return row


def _check_finite(row: dict, epoch: int, nets) -> None:
    for i, net in enumerate(nets, start=1):
        loss = row[f"loss_net{i}"]
        # The last step's update can be non-finite although every loss was
        # finite; the final division and predict would then be NaN.
        state = net.module_.state_dict().values()
        if not np.isfinite(loss):
            problem = f"loss is {loss} in epoch {epoch}"
        elif not all(bool(t.isfinite().all()) for t in state if t.is_floating_point()):
            problem = f"weights are not finite after epoch {epoch}"
        else:
            continue
        raise FloatingPointError(
            f"Training diverged: net{i}'s {problem} ({row['phase']} phase). "
            "Lower lr, check X for extreme values, or use amp=None."
        )


def _epoch(est, nets, data, windows, epoch, rng, reporter, phase) -> dict:
    if epoch == est.max_epochs // 2 and est.lr_decay != 1.0 and epoch > 0:
        for net in nets:
            for group in net.optimizer_.param_groups:
                group["lr"] *= est.lr_decay
    for net in nets:
        # skorch's own on_epoch_begin adds the history row and records 'epoch'
        net.notify("on_epoch_begin", dataset_train=None, dataset_valid=None)
    if epoch < est.warmup_epochs:
        row = _warmup(est, nets, data, reporter)
    else:
        seeds = [int(s) for s in rng.randint(2**31, size=2)]
        divisions = _co_divide(nets, data, windows, seeds)
        row = _end_of_warmup(est, nets, data, divisions, epoch, phase, reporter)
        if row is None:
            divisions, notes = phase.keep_healthy(divisions, epoch)
            row = _mixmatch(
                est,
                nets,
                data,
                windows,
                epoch,
                seeds,
                reporter,
                divisions=divisions,
                phase=phase,
            )
            row["notes"] += notes
    for i, net in enumerate(nets, start=1):
        net.history.record("train_loss", row[f"loss_net{i}"])
        net.history.record("phase", row["phase"])
        net.history.record("labeled", row[f"labeled_net{i}"])
        net.notify("on_epoch_end", dataset_train=None, dataset_valid=None)
    row["lr"] = nets[0].optimizer_.param_groups[0]["lr"]
    return row


def run_epochs(est, nets, data: TrainingData, reporter: EpochReporter):
    """Train both nets for ``est.max_epochs`` epochs.

    Returns the history, each net's loss window and the phase bookkeeping
    (for the final division: ``phase.keep_healthy``).
    A ``KeyboardInterrupt`` ends training early, as in skorch: the history's
    last row then has ``interrupted=True`` and the estimator stays usable.
    """
    history = History()
    windows = [LossWindow(est.loss_window) for _ in nets]
    rng = np.random.RandomState(int(data.rng.randint(2**31)))
    warned: set[str] = set()
    phase = _Phase()
    for net in nets:
        net.notify("on_train_begin", X=None, y=None)
    for epoch in range(est.max_epochs):
        start = time.perf_counter()
        try:
            row = _epoch(est, nets, data, windows, epoch, rng, reporter, phase)
        except KeyboardInterrupt:
            reporter.close()
            name = "warmup" if phase.warmup_end is None else "mixmatch"
            history.append({"epoch": epoch + 1, "phase": name, "interrupted": True})
            break
        row = {"epoch": epoch + 1, **row, "dur": time.perf_counter() - start}
        _check_finite(row, epoch + 1, nets)
        for note in row["notes"]:
            kind = note.split(": ", 1)[1].split(" (")[0]
            if kind not in warned:
                warned.add(kind)
                warnings.warn(
                    f"Epoch {epoch + 1}, {note}.", DivisionWarning, stacklevel=5
                )
        history.append(row)
        reporter.end_epoch(row, len(data.X))
    for net in nets:
        net.notify("on_train_end", X=None, y=None)
    return history, windows, phase
