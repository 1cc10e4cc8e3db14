"""The epoch loop of a fit: warm-up, co-divide, MixMatch, bookkeeping.

:func:`run_epochs` drives both nets through ``max_epochs`` epochs, then makes
the final division, and returns what the estimator keeps (:class:`LoopResult`);
the per-phase work lives in ``_training``. The loop sees the estimator's
parameters only as a frozen :class:`LoopSettings`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skorch.history import History

from ._checkpoint import CheckpointDir, resume, save
from ._divider import Divider, division_notes, notify_division
from ._division import (
    Division,
    DivisionWarning,
    estimate_noise_rate,
    warmup_should_continue,
)
from ._epoch_sample import EpochSample, draw_epoch_sample, resolve_sample_size
from ._eval_pass import eval_pass
from ._fit_state import FitState, LoopSettings, Phase, checkpoint_due
from ._history import (
    ALPHA,
    BALANCE_LABELED,
    DUR,
    EPOCH,
    INTERRUPTED,
    LAMBDA_U,
    LOSS_WINDOW,
    LR,
    MIXMATCH,
    NOTES,
    P_THRESHOLD,
    PHASE,
    UNLABELED_WEIGHT,
    WARMUP,
    division_key,
    gmm_means_key,
    labeled_key,
    loss_key,
    loss_terms_key,
)
from ._losses import linear_rampup
from ._progress import EpochReporter
from ._selection import floor_divisions
from ._training import (
    TrainingData,
    check_finite,
    mixmatch_step_count,
    run_mixmatch_epoch,
    run_warmup_epoch,
)

__all__ = [
    "DivisionWarning",
    "EpochReporter",
    "LoopResult",
    "LoopSettings",
    "run_epochs",
]


@dataclass
class LoopResult:
    """What a fit keeps from its epochs and final division, and the evidence
    the verdict is made from."""

    history: History
    divisions: list[Division]
    train_proba: np.ndarray
    predictions: list[np.ndarray]
    notes: list[str]
    first_noise_rates: list[float] | None
    stopped_in_warmup: bool
    resumed_from_epoch: int | None = None
    noise_floor: bool | None = None
    # the threshold behind the final mask and the windows' size at the end
    p_threshold: float = 0.5
    loss_window: int = 1


def _lr_factor(settings: LoopSettings, epoch: int):
    """Linear learning-rate warm-up over the first ``lr_warmup_epochs``."""
    if epoch >= settings.lr_warmup_epochs:
        return None
    return lambda fraction: (epoch + fraction) / settings.lr_warmup_epochs


def _warmup(settings: LoopSettings, nets, data, reporter, epoch) -> dict[str, Any]:
    reporter.start_epoch(2 * -(-len(data) // data.batch_size), "warm-up")
    row: dict[str, Any] = {PHASE: WARMUP, UNLABELED_WEIGHT: 0.0}
    for i, net in enumerate(nets, start=1):
        terms = run_warmup_epoch(
            net,
            data,
            confidence_penalty=settings.confidence_penalty,
            progress=reporter.step,
            lr_factor=_lr_factor(settings, epoch),
        )
        row[loss_key(i)] = terms.pop("loss", float("nan"))
        row[loss_terms_key(i)] = terms
        row[labeled_key(i)] = len(data)
        row[gmm_means_key(i)] = None
        row[division_key(i)] = None
    row[NOTES] = []
    return row


def _end_of_warmup(
    settings: LoopSettings, nets, data, divisions, state: FitState, reporter
):
    """A warm-up row while the divisions are not healthy yet, else None.

    When warm-up ends, fixes the epoch MixMatch starts at (for the ramp-up)
    and resolves the settings left to ``'auto'`` from this first division
    (:meth:`FitState.end_warmup`).
    """
    phase, epoch = state.phase, state.epoch
    if phase.warmup_end is not None:
        return None
    separation = min(d.separation for d in divisions)
    limit = settings.max_warmup_epochs
    if warmup_should_continue(separation, phase.separation, epoch, limit):
        phase.separation = separation
        row = _warmup(settings, nets, data, reporter, epoch)
        row[NOTES].append(
            "warm-up extended: losses not bimodal yet (separation "
            f"{separation:.2f}; warm-up goes on while it grows, up to epoch {limit})"
        )
        return row
    state.end_warmup(
        settings,
        [estimate_noise_rate([d], phase.threshold(settings)) for d in divisions],
        data.n_classes,
    )
    return None


def _mixmatch(
    settings: LoopSettings, nets, data, divisions, epoch, reporter, phase: Phase
) -> dict[str, Any]:
    n_classes = data.n_classes
    threshold = phase.threshold(settings)
    row: dict[str, Any] = {
        PHASE: MIXMATCH,
        NOTES: [],
        LAMBDA_U: phase.lambda_u,
        ALPHA: phase.mixup_alpha(settings),
        BALANCE_LABELED: phase.balances_labeled(settings),
        P_THRESHOLD: threshold,
        LOSS_WINDOW: phase.loss_window,
    }
    for i, division in enumerate(divisions, start=1):
        row[gmm_means_key(i)] = division.means
        row[division_key(i)] = division.summary()
        row[NOTES] += division_notes(division, f"net{i}", threshold, n_classes)
    peer_proba = [
        torch.as_tensor(d.clean_proba, dtype=torch.float32, device=data.y.device)
        for d in divisions[::-1]
    ]
    n_steps = sum(
        mixmatch_step_count(
            int((w > threshold).sum()),
            len(data),
            data.batch_size,
            settings.steps_per_epoch,
        )
        for w in peer_proba
    )
    reporter.start_epoch(n_steps, "mixmatch")

    def unlabeled_weight(fraction: float) -> float:
        ramp = linear_rampup(
            epoch + fraction,
            warmup_epochs=phase.warmup_end,
            rampup_epochs=phase.rampup_epochs,
        )
        return phase.lambda_u * ramp

    for i, (net, peer, clean_proba) in enumerate(
        zip(nets, nets[::-1], peer_proba, strict=True), 1
    ):
        terms = run_mixmatch_epoch(
            net,
            peer,
            data,
            clean_proba,
            p_threshold=threshold,
            temperature=settings.temperature,
            alpha=row[ALPHA],
            unlabeled_weight=unlabeled_weight,
            steps_per_epoch=settings.steps_per_epoch,
            balance_classes=row[BALANCE_LABELED],
            progress=reporter.step,
        )
        row[loss_key(i)] = terms.pop("loss", float("nan"))
        row[loss_terms_key(i)] = terms
        row[labeled_key(i)] = int((clean_proba > threshold).sum())
    row[UNLABELED_WEIGHT] = unlabeled_weight(1.0)
    return row


def _floored(phase: Phase, p_threshold: float, divider, divisions, passed):
    """``divisions`` with the noise floor applied, when it is on."""
    if not phase.noise_floor:
        return divisions
    floored, _ = floor_divisions(
        divisions, passed.losses, passed.predictions, divider.labels, p_threshold
    )
    return floored


def _divide(settings, nets, data, divider, state: FitState, reporter, sample):
    """Co-divide: both divisions exist before either net trains this epoch.

    Divisions are made over ``sample``'s rows (the whole set, the epoch's
    sample, or the whole set for training on the sample). Returns the
    divisions and a warm-up row while warm-up goes on, or the divisions
    MixMatch trains on (a degenerate split replaced by the net's last bimodal
    one of the same rows) and the notes of the replacements.
    """
    epoch = state.epoch
    seeds = [int(s) for s in state.rng.randint(2**31, size=2)]
    divided, divider = sample.division_data(data), sample.divider(divider)
    # predictions for the floor ('auto' resolves only after this pass)
    floor = settings.noise_floor is not False
    passed = eval_pass(nets, divided, with_proba=floor)
    losses = passed.losses
    divisions = divider.divide_all(losses, state.windows, seeds)
    phase = state.phase
    training = sample.data(data)
    row = _end_of_warmup(settings, nets, training, divisions, state, reporter)
    if row is None:
        used, notes = phase.keep_healthy(divisions, epoch, sample.scope)
        used = _floored(phase, phase.threshold(settings), divider, used, passed)
        stage = "mixmatch"
    else:
        used, notes, stage = None, [], "warmup_check"
    notify_division(
        nets,
        epoch=epoch,
        stage=stage,
        losses=losses,
        divisions=divisions,
        used=used,
        sample=sample.rows_divided(),
    )
    return row, None if used is None else sample.for_training(used), notes


def _epoch_sample(settings, data, divider, state: FitState) -> EpochSample:
    """The rows this epoch trains on: all, or a class-balanced sample."""
    return draw_epoch_sample(
        resolve_sample_size(settings.samples_per_epoch, len(data)),
        divider.labels,
        data.n_classes,
        state.rng,
        epoch=state.epoch,
        divide_over=settings.divide_over,
    )


def _epoch(settings: LoopSettings, nets, data, divider, state: FitState, reporter):
    epoch = state.epoch
    if epoch == settings.max_epochs // 2 and settings.lr_decay != 1.0 and epoch > 0:
        for net in nets:
            for group in net.optimizer_.param_groups:
                group["lr"] *= settings.lr_decay
    for net in nets:
        # skorch's own on_epoch_begin adds the history row and records 'epoch'
        net.notify("on_epoch_begin", dataset_train=None, dataset_valid=None)
    sample = _epoch_sample(settings, data, divider, state)
    if epoch < settings.warmup_epochs:
        row = _warmup(settings, nets, sample.data(data), reporter, epoch)
    else:
        row, used, notes = _divide(
            settings, nets, data, divider, state, reporter, sample
        )
        if row is None:
            phase = state.phase
            training = sample.data(data)
            row = _mixmatch(settings, nets, training, used, epoch, reporter, phase)
            row[NOTES] += notes
    for i, net in enumerate(nets, start=1):
        net.history.record("train_loss", row[loss_key(i)])
        net.history.record("phase", row[PHASE])
        net.history.record("labeled", row[labeled_key(i)])
        net.notify("on_epoch_end", dataset_train=None, dataset_valid=None)
    row[LR] = nets[0].optimizer_.param_groups[0]["lr"]
    return row


def _final_division(nets, data, divider, state: FitState, seeds, settings):
    """The division behind ``clean_proba_``, and what else the final pass gives.

    One eval pass gives both nets' losses, their mean softmax and their
    predictions; a net whose losses are not bimodal now contributes its last
    bimodal division (and a note says so).
    """
    final = eval_pass(nets, data, with_proba=True)
    divisions = divider.divide_all(final.losses, state.windows, seeds)
    used, notes = state.phase.keep_healthy(divisions, settings.max_epochs)
    used = _floored(state.phase, state.phase.threshold(settings), divider, used, final)
    notify_division(
        nets,
        epoch=state.epoch,
        stage="final",
        losses=final.losses,
        divisions=divisions,
        used=used,
        sample=None,
    )
    return used, final, [f"final {note}" for note in notes]


def run_epochs(
    settings: LoopSettings,
    nets,
    data: TrainingData,
    reporter: EpochReporter,
    final_seeds: tuple[int, int],
    checkpoints: CheckpointDir | None = None,
) -> LoopResult:
    """Train both nets for ``settings.max_epochs`` epochs, then divide.

    A ``KeyboardInterrupt`` ends training early, as in skorch: the history's
    last row then has ``interrupted=True`` and the estimator stays usable.
    ``final_seeds`` seed the final division's two mixtures. Notes on the
    divisions (not bimodal, an empty or tiny side, a longer warm-up) go to
    ``history_`` and into the result for the verdict, not into warnings.
    With ``checkpoints``, the fit continues from the newest checkpoint of
    this fit there, if any, and writes one as they are due.
    """
    with contextlib.ExitStack() as stack:
        for net in nets:
            # every process starts from the main process's weights
            data.replicas.broadcast_module(net.module_)
            stack.enter_context(net.replicated(data.replicas))
        return _run_epochs(settings, nets, data, reporter, final_seeds, checkpoints)


def _start(settings, nets, data, reporter, final_seeds, checkpoints):
    """The fit state to start from: fresh, or the newest checkpoint's."""
    state = FitState.start(
        len(nets), settings.loss_window, int(data.rng.randint(2**31))
    )
    resumed = None if checkpoints is None else resume(checkpoints, nets, data)
    if resumed is None:
        return state, final_seeds, None
    state, final_seeds, path = resumed
    reporter.resumed(path, state.epoch, settings.max_epochs)
    return state, final_seeds, state.epoch


def _run_epochs(settings, nets, data, reporter, final_seeds, checkpoints) -> LoopResult:
    labels = data.y.cpu().numpy()
    divider = Divider(settings.division, labels, data.n_classes)
    state, final_seeds, resumed_from = _start(
        settings, nets, data, reporter, final_seeds, checkpoints
    )
    history = state.history
    for net in nets:
        net.notify("on_train_begin", X=None, y=None)
    while state.epoch < settings.max_epochs:
        epoch = state.epoch
        start = time.perf_counter()
        try:
            row = _epoch(settings, nets, data, divider, state, reporter)
        except KeyboardInterrupt:
            reporter.close()
            name = WARMUP if state.phase.warmup_end is None else MIXMATCH
            history.append({EPOCH: epoch + 1, PHASE: name, INTERRUPTED: True})
            break
        row = {EPOCH: epoch + 1, **row, DUR: time.perf_counter() - start}
        check_finite(row, epoch + 1, nets)
        history.append(row)
        state.epoch += 1
        reporter.end_epoch(row, len(data))
        every = None if checkpoints is None else checkpoints.every
        if every and checkpoint_due(settings, every, state.epoch, row):
            save(checkpoints, nets, data, state, final_seeds)
    for net in nets:
        net.notify("on_train_end", X=None, y=None)
    divisions, final, final_notes = _final_division(
        nets, data, divider, state, final_seeds, settings
    )
    notes = [note for row in history for note in row.get(NOTES, [])]
    return LoopResult(
        history=history,
        divisions=divisions,
        train_proba=final.proba,
        predictions=final.predictions,
        notes=notes + final_notes,
        first_noise_rates=state.phase.first_noise_rates,
        noise_floor=(
            None if state.phase.warmup_end is None else state.phase.noise_floor
        ),
        stopped_in_warmup=state.phase.warmup_end is None,
        resumed_from_epoch=resumed_from,
        p_threshold=state.phase.threshold(settings),
        # a window from a checkpoint older than its size kept loss_window
        loss_window=state.windows[0].size or settings.loss_window,
    )
