"""The compute floor of an epoch: the method's passes and nothing else.

DivideMix's cost is a fixed number of forward passes (no grad) and forward +
backward passes at fixed batch shapes. This module lists those passes for one
epoch of each phase, exactly as ``sklearn_dividemix._training`` runs them, and
times them on pre-made tensors in a tight loop. Everything an actual epoch does
on top (data gathering, augmentation, mixup, targets, the optimizer step, the
GMM, skorch's callbacks, Python) is overhead against this floor.

Per epoch, as counted here:

* warm-up, per net: one forward + backward over every training batch of ``b``
  rows (a final batch of one row is dropped, as the training loop does);
* MixMatch, per net: one eval-mode pass over all ``n`` samples in chunks of
  ``eval_batch_size`` (the division); then per step, with ``s`` labeled and
  ``s`` unlabeled rows, one train-mode no-grad pass of the trained net over
  ``4 s`` rows, one eval-mode no-grad pass of the peer over ``2 s`` rows and
  one forward + backward over ``4 s`` rows;
* plain skorch, one net: one forward + backward per batch of ``b`` rows
  (skorch keeps the last, smaller batch).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EpochPasses",
    "Floor",
    "batch_sizes",
    "mixmatch_passes",
    "skorch_passes",
    "warmup_passes",
]


@dataclass
class EpochPasses:
    """The passes of one epoch, as row counts.

    ``steps`` holds one ``(own_no_grad, peer_no_grad, fwd_bwd)`` triple per
    training step: rows of the trained net's train-mode no-grad pass, of the
    peer's eval-mode no-grad pass and of the forward + backward pass (0 where
    a step has no such pass). ``division`` lists the eval-mode chunks of the
    division passes.
    """

    steps: list[tuple[int, int, int]] = field(default_factory=list)
    division: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of passes and of rows of each kind, for the report."""
        out = {"steps": len(self.steps)}
        kinds = ("own_no_grad", "peer_no_grad", "fwd_bwd")
        for i, name in enumerate(kinds):
            rows = [step[i] for step in self.steps if step[i]]
            out[f"{name}_passes"] = len(rows)
            out[f"{name}_rows"] = int(sum(rows))
        out["division_passes"] = len(self.division)
        out["division_rows"] = int(sum(self.division))
        return out


def batch_sizes(n: int, batch_size: int, *, drop_single: bool = True) -> list[int]:
    """Row counts of the mini-batches of ``n`` samples.

    ``drop_single`` drops a final batch of one row, as the training loop does
    (BatchNorm cannot normalise one sample).
    """
    sizes = [batch_size] * (n // batch_size)
    if n % batch_size:
        sizes.append(n % batch_size)
    if drop_single and len(sizes) > 1 and sizes[-1] == 1:
        sizes.pop()
    return sizes


def warmup_passes(n: int, batch_size: int, n_nets: int = 2) -> EpochPasses:
    """Forward + backward over every batch, for each net."""
    return EpochPasses(steps=[(0, 0, s) for s in batch_sizes(n, batch_size)] * n_nets)


def skorch_passes(n: int, batch_size: int) -> EpochPasses:
    """One plain skorch epoch: every batch, the last one kept whatever its size."""
    sizes = batch_sizes(n, batch_size, drop_single=False)
    return EpochPasses(steps=[(0, 0, s) for s in sizes])


def _net_mixmatch_steps(
    n: int, n_labeled: int, batch_size: int
) -> list[tuple[int, int, int]]:
    n_unlabeled = n - n_labeled
    if n_labeled:
        pairs = [
            (s, s if n_unlabeled else 0) for s in batch_sizes(n_labeled, batch_size)
        ]
    else:
        # No labeled set: one pass over the unlabeled set in full batches.
        pairs = [(0, batch_size)] * math.ceil(n_unlabeled / batch_size)
    # The trained net sees all four views, the peer the two unlabeled ones.
    return [(2 * n_x + 2 * n_u, 2 * n_u, 2 * n_x + 2 * n_u) for n_x, n_u in pairs]


def mixmatch_passes(
    n: int, labeled: tuple[int, ...], batch_size: int, eval_batch_size: int
) -> EpochPasses:
    """Division of each net, then MixMatch steps of each net.

    ``labeled[i]`` is the size of the labeled set net ``i`` trains on (made by
    its peer's division).
    """
    chunks = [min(eval_batch_size, n - start) for start in range(0, n, eval_batch_size)]
    steps = [
        step
        for n_labeled in labeled
        for step in _net_mixmatch_steps(n, n_labeled, batch_size)
    ]
    return EpochPasses(steps=steps, division=chunks * len(labeled))


class Floor:
    """Times lists of passes of copies of a net's module on pre-made tensors.

    Parameters
    ----------
    own, peer : nn.Module
        Copies of the trained net's and of the peer's module (same
        architecture, memory format and device as the real ones); ``peer``
        may be None when no step has a peer pass.
    inputs : ndarray of shape (max_rows, ...)
        Real training samples: the passes run on leading slices of them
        (random values run measurably slower than mostly-zero images).
    n_classes : int
        Number of logits.
    device : str
    channels_last : bool
        Feed the inputs in channels-last format, as the nets do.
    amp : {'bf16', 'fp16'} or None
        Autocast dtype of the training forward passes, as the nets use it.
    """

    def __init__(
        self,
        own: nn.Module,
        peer: nn.Module | None,
        inputs,
        n_classes: int,
        *,
        device: str,
        channels_last: bool = False,
        amp: str | None = None,
        seed: int = 0,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.X = torch.as_tensor(inputs, dtype=torch.float32).to(device)
        if channels_last and self.X.ndim == 4:
            self.X = self.X.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, n_classes, (len(self.X),), generator=generator)
        self.y = y.to(device)
        self.own, self.peer = own, peer
        self.device_type = torch.device(device).type
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
        self.device = device

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp)

    def sync(self) -> None:
        """Wait for queued device work (CUDA), so that timings are honest."""
        if self.device_type == "cuda":
            torch.cuda.synchronize(self.device)

    def _fwd_bwd(self, X: torch.Tensor) -> None:
        with self._autocast():
            logits = self.own(X)
        F.cross_entropy(logits.float(), self.y[: len(X)]).backward()
        self.own.zero_grad(set_to_none=True)

    def time(
        self, passes: EpochPasses, inputs: torch.Tensor | None = None
    ) -> np.ndarray:
        """Wall-clock and CPU seconds to run ``passes``, in the epoch's order.

        ``inputs`` (the batch a training step just used) replaces the
        pre-made rows for the step passes, so that the floor runs on exactly
        the step's tensor; the peer's pass takes the rows before the last
        ``own_rows - peer_rows`` ones' end, as MixMatch puts the unlabeled
        views last.
        """
        X = self.X if inputs is None else inputs
        self.sync()
        start = np.array([time.perf_counter(), time.process_time()])
        if passes.division:
            with torch.inference_mode():
                self.own.eval()
                for rows in passes.division:
                    self.own(self.X[:rows])
        for own_rows, peer_rows, fwd_bwd_rows in passes.steps:
            if own_rows or peer_rows:
                with torch.no_grad(), self._autocast():
                    self.own.train()
                    self.own(X[:own_rows])
                    self.peer.eval()
                    if peer_rows:
                        self.peer(X[own_rows - peer_rows : own_rows])
            self.own.train()
            self._fwd_bwd(X[:fwd_bwd_rows])
        self.sync()
        return np.array([time.perf_counter(), time.process_time()]) - start
