"""Interleave floor measurements with the steps of a real fit.

A skorch callback runs the floor of each training step right after the step,
on the very batch tensor the step used, inside the same fit: floor and actual
work alternate every few milliseconds, so whatever else loads the machine hits
both alike. The division passes' floor runs at the end of each MixMatch epoch.
The callback's own time is measured and taken out of the epoch's time. After
each DivideMix epoch, one epoch of the plain skorch net runs (with its own
floor), so that the two are compared epoch by epoch under the same load.
"""

from __future__ import annotations

import copy
import time

import numpy as np
from skorch.callbacks import Callback

from .speed_floor import (
    EpochPasses,
    Floor,
    mixmatch_passes,
    skorch_passes,
    warmup_passes,
)

__all__ = ["DivideMixFloor", "SkorchFloor", "clocks"]


def _make_floor(own, peer, net, X, *, n_classes, max_rows) -> Floor:
    rows = np.arange(max_rows) % len(X)
    return Floor(
        copy.deepcopy(own),
        copy.deepcopy(peer) if peer is not None else None,
        X[rows],
        n_classes,
        device=str(net.device),
        channels_last=bool(getattr(net, "channels_last", False)),
        amp=getattr(net, "amp", None),
    )


def clocks() -> np.ndarray:
    """Wall-clock and process CPU seconds, read together."""
    return np.array([time.perf_counter(), time.process_time()])


class _StepFloor(Callback):
    """Times every training step's floor right after the step.

    An epoch's actual time runs from the first ``on_epoch_begin`` to the last
    ``on_epoch_end`` of the epoch, minus the time spent in this callback; both
    the wall clock and the process CPU time are kept (the CPU time is the more
    robust of the two on a loaded machine with one torch thread).
    """

    def _reset_epoch(self) -> None:
        self.start = None
        self.floor_time = np.zeros(2)
        self.callback_time = np.zeros(2)
        self.steps = []

    def on_epoch_begin(self, net, **kwargs):
        if self.start is None:
            self.start = clocks()

    def on_batch_end(self, net, batch=None, training=True, **kwargs):
        self.floor.sync()
        start = clocks()
        X = batch.X if hasattr(batch, "X") else batch[0]
        rows = len(X)
        n_labeled = getattr(batch, "n_labeled", None)
        if n_labeled is None:  # warm-up or plain skorch: forward + backward
            step = (0, 0, rows)
        else:  # MixMatch: own no-grad pass, peer's on the unlabeled views
            step = (rows, rows - n_labeled, rows)
        self.steps.append(step)
        X = X.to(self.floor.X.device)  # skorch moves its batches in the step
        self.floor_time += self.floor.time(EpochPasses(steps=[step]), X)
        self.callback_time += clocks() - start

    def _close_epoch(self, phase: str, expected: EpochPasses, **extra) -> None:
        self.floor.sync()
        end = clocks()
        if sorted(expected.steps) != sorted(self.steps):
            # The floor counted from the sizes must be what the fit ran.
            raise RuntimeError(
                f"{phase} epoch: the fit's steps differ from the floor's"
            )
        if expected.division:
            division = EpochPasses(division=expected.division)
            self.floor_time += self.floor.time(division)
        actual = end - self.start - self.callback_time
        self.records.append(
            {
                "epoch": len(self.records) + 1,
                "phase": phase,
                **extra,
                "actual_s": float(actual[0]),
                "floor_s": float(self.floor_time[0]),
                "actual_cpu_s": float(actual[1]),
                "floor_cpu_s": float(self.floor_time[1]),
                "passes": expected.counts(),
            }
        )
        self._reset_epoch()


class DivideMixFloor(_StepFloor):
    """Shared by both nets of a ``DivideMixClassifier``; times the floor.

    skorch gives each net a deep copy of the callbacks; ``__deepcopy__``
    returns the same object so that one recorder sees both nets. It relies on
    the estimator notifying ``on_epoch_end`` for net 1 and then net 2 after
    recording each net's ``phase`` and ``labeled`` in its history.
    """

    def __init__(self, X, n_classes, batch_size, eval_batch_size, after_epoch=None):
        self.X = X
        self.n_classes = n_classes
        self.batch_size = min(batch_size, len(X))
        self.eval_batch_size = eval_batch_size
        # run between epochs, outside the epoch's time (e.g. a skorch epoch)
        self.after_epoch = after_epoch
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
                self.X,
                n_classes=self.n_classes,
                max_rows=max_rows,
            )

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.pending.append((row["phase"], row["labeled"]))
        if len(self.pending) < 2:
            return
        phase = self.pending[0][0]
        labeled = tuple(n for _, n in self.pending)
        n = len(self.X)
        if phase == "warmup":
            expected = warmup_passes(n, self.batch_size)
        else:
            expected = mixmatch_passes(
                n, labeled, self.batch_size, self.eval_batch_size
            )
        self.pending = []
        self._close_epoch(phase, expected, labeled=list(labeled))
        if self.after_epoch is not None:
            self.after_epoch()


class SkorchFloor(_StepFloor):
    """Times the floor of each step of a plain skorch net."""

    def __init__(self, X, n_classes, batch_size):
        self.X = X
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.records = []
        self.floor = None
        self._reset_epoch()

    def on_train_begin(self, net, **kwargs):
        if self.floor is not None:  # partial_fit: one epoch at a time
            return
        self.floor = _make_floor(
            net.module_,
            None,
            net,
            self.X,
            n_classes=self.n_classes,
            max_rows=self.batch_size,
        )

    def on_epoch_end(self, net, **kwargs):
        self._close_epoch("skorch", skorch_passes(len(self.X), self.batch_size))
