"""Interleave floor measurements with the steps of a real fit.

A skorch callback runs the floor of each training step right after the step,
on the batch shape the step used, inside the same fit: floor and actual work
alternate every few hundred milliseconds, so whatever else loads the machine
hits both alike. The division passes' floor runs at the end of each MixMatch
epoch. The callback's own time is recorded and taken out of the epoch's
measured duration.
"""

from __future__ import annotations

import copy
import time

from skorch.callbacks import Callback
from speed_floor import (
    EpochPasses,
    Floor,
    mixmatch_passes,
    skorch_passes,
    warmup_passes,
)

__all__ = ["DivideMixFloor", "SkorchFloor", "pair_epochs"]


def _make_floor(own, peer, net, *, input_shape, n_classes, max_rows) -> Floor:
    return Floor(
        copy.deepcopy(own),
        copy.deepcopy(peer) if peer is not None else None,
        input_shape,
        n_classes,
        device=str(net.device),
        max_rows=max_rows,
        channels_last=bool(getattr(net, "channels_last", False)),
        amp=getattr(net, "amp", None),
    )


class _StepFloor(Callback):
    """Times the floor of every training step; subclasses close the epochs."""

    def _reset_epoch(self) -> None:
        self.floor_s = 0.0
        self.callback_s = 0.0
        self.steps = []

    def on_batch_end(self, net, batch=None, training=True, **kwargs):
        self.floor.sync()
        start = time.perf_counter()
        rows = len(batch.X) if hasattr(batch, "X") else len(batch[0])
        n_labeled = getattr(batch, "n_labeled", None)
        if n_labeled is None:  # warm-up or plain skorch: forward + backward
            step = (0, 0, rows)
        else:  # MixMatch: own no-grad pass, peer's on the unlabeled views
            step = (rows, rows - n_labeled, rows)
        self.steps.append(step)
        self.floor_s += self.floor.time(EpochPasses(steps=[step]))
        self.callback_s += time.perf_counter() - start


class DivideMixFloor(_StepFloor):
    """Shared by both nets of a ``DivideMixClassifier``; times the floor.

    skorch gives each net a deep copy of the callbacks; ``__deepcopy__``
    returns the same object so that one recorder sees both nets. It relies on
    the estimator notifying ``on_epoch_end`` for net 1 and then net 2 after
    recording each net's ``phase`` and ``labeled`` in its history.
    """

    def __init__(self, n_samples, input_shape, n_classes, batch_size, eval_batch_size):
        self.n_samples = n_samples
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.nets = []
        self.pending = []
        self.records = []
        self.floor = None
        self._reset_epoch()

    def __deepcopy__(self, memo):
        return self

    def on_train_begin(self, net, **kwargs):
        self.nets.append(net)
        if len(self.nets) == 2:
            max_rows = max(4 * self.batch_size, self.eval_batch_size)
            self.floor = _make_floor(
                self.nets[0].module_,
                self.nets[1].module_,
                self.nets[0],
                input_shape=self.input_shape,
                n_classes=self.n_classes,
                max_rows=max_rows,
            )

    def _expected(self, phase: str, labeled: tuple[int, ...]) -> EpochPasses:
        batch_size = min(self.batch_size, self.n_samples)
        if phase == "warmup":
            return warmup_passes(self.n_samples, batch_size)
        return mixmatch_passes(
            self.n_samples, labeled, batch_size, self.eval_batch_size
        )

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.pending.append((row["phase"], row["labeled"]))
        if len(self.pending) < 2:
            return
        start = time.perf_counter()
        phase = self.pending[0][0]
        labeled = tuple(n for _, n in self.pending)
        expected = self._expected(phase, labeled)
        # The floor counted from the division sizes must be what the fit ran.
        if sorted(expected.steps) != sorted(self.steps):
            raise RuntimeError(
                f"{phase} epoch: the fit's steps differ from the floor's"
            )
        division = EpochPasses(division=expected.division)
        self.floor_s += self.floor.time(division)
        self.pending = []
        self.records.append(
            {
                "phase": phase,
                "labeled": list(labeled),
                "floor_s": self.floor_s,
                "callback_s": self.callback_s + time.perf_counter() - start,
                "passes": expected.counts(),
            }
        )
        self._reset_epoch()


class SkorchFloor(_StepFloor):
    """Times the floor of each step of a plain skorch net."""

    def __init__(self, n_samples, input_shape, n_classes, batch_size):
        self.n_samples = n_samples
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.records = []
        self.floor = None
        self._reset_epoch()

    def on_train_begin(self, net, **kwargs):
        self.floor = _make_floor(
            net.module_,
            None,
            net,
            input_shape=self.input_shape,
            n_classes=self.n_classes,
            max_rows=self.batch_size,
        )

    def on_epoch_end(self, net, **kwargs):
        expected = skorch_passes(self.n_samples, self.batch_size)
        if expected.steps != self.steps:
            raise RuntimeError("skorch epoch: the fit's steps differ from the floor's")
        self.records.append(
            {
                "phase": "skorch",
                # skorch's EpochTimer has recorded ``dur`` before this runs.
                "actual_s": net.history[-1]["dur"] - self.callback_s,
                "floor_s": self.floor_s,
                "passes": expected.counts(),
            }
        )
        self._reset_epoch()


def pair_epochs(history, records) -> list[dict]:
    """Join a DivideMix history with the floor records, one dict per epoch."""
    epochs = []
    rows = [row for row in history if "phase" in row]
    if len(rows) != len(records):
        raise RuntimeError(f"{len(rows)} epochs but {len(records)} floor records")
    for row, record in zip(rows, records, strict=True):
        if row["phase"] != record["phase"]:
            raise RuntimeError(f"phase mismatch in epoch {row['epoch']}")
        actual = row["dur"] - record.pop("callback_s")
        epochs.append({"epoch": row["epoch"], "actual_s": actual, **record})
    return epochs
