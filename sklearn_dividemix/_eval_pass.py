"""Eval-mode passes over the training data, and the division they feed.

Once per epoch (and once at the end of the fit) both nets read every training
sample in eval mode; the per-sample losses go to the fit's
:class:`~._divider.Divider` (co-divide). In a
data-parallel fit each process evaluates its block of rows and the blocks are
gathered (see ``_distributed``), so every process fits the same mixtures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._distributed import Replicas
from ._divider import Divider
from ._division import Division, LossWindow
from ._net import DivideMixNet
from ._training import TrainingData

__all__ = ["EvalPass", "compute_divisions", "eval_pass"]


@dataclass
class EvalPass:
    """Per-sample results of one eval-mode pass of the nets over the data."""

    losses: list[np.ndarray]
    proba: np.ndarray | None = None
    predictions: list[np.ndarray] | None = None


def eval_pass(
    nets: Sequence[DivideMixNet],
    data: TrainingData,
    *,
    with_proba: bool = False,
) -> EvalPass:
    """Eval-mode per-sample losses of each net, from one stream of the data.

    Both nets read each batch once, so a Dataset is read once per pass, not
    once per net. With ``with_proba``, also the mean of the nets' softmax per
    sample (float32, on the host; the fit's ``train_proba_``) and each net's
    predicted class.
    """
    # Outputs are allocated once and filled chunk by chunk: no list of small
    # per-chunk tensors that live until the end of the pass (which pins
    # glibc's heap and keeps each chunk's freed input buffers from reuse)
    # and no concatenated copy at the end.
    # Each process evaluates its block of rows; the blocks are gathered.
    replicas = data.replicas
    for net in nets:
        replicas.average_buffers(net.module_)
    first, last = replicas.rows(len(data))
    n, device = last - first, data.y.device
    losses = torch.empty((n, len(nets)), device=device)
    n_classes = data.n_classes
    proba = torch.empty((n, n_classes) if with_proba else (n, 0), device=device)
    shape = (n, len(nets) if with_proba else 0)
    predicted = torch.empty(shape, dtype=torch.long, device=device)
    start = 0
    with torch.inference_mode():
        for X in data.source.stream(data.eval_batch_size, first, last):
            stop = start + len(X)
            y = data.y[first + start : first + stop]
            total = 0
            for i, net in enumerate(nets):
                logits = net.eval_logits(X)
                losses[start:stop, i] = F.cross_entropy(logits, y, reduction="none")
                if with_proba:
                    total = total + torch.softmax(logits, dim=1)
                    predicted[start:stop, i] = logits.argmax(dim=1)
            if with_proba:
                proba[start:stop] = total / total.sum(dim=1, keepdim=True)
            start = stop
    if not with_proba:
        return _gathered(replicas, len(data), losses)
    return _gathered(replicas, len(data), losses, proba, predicted)


def _gathered(
    replicas: Replicas,
    n: int,
    losses: torch.Tensor,
    proba: torch.Tensor | None = None,
    predicted: torch.Tensor | None = None,
) -> EvalPass:
    """Every process's rows of an eval pass, per net, on the host."""

    def per_net(rows: torch.Tensor) -> list[np.ndarray]:
        return list(replicas.gather_rows(rows, n).T.contiguous().cpu().numpy())

    result = EvalPass(per_net(losses))
    if proba is not None:
        result.proba = replicas.gather_rows(proba, n).float().cpu().numpy()
        result.predictions = per_net(predicted)
    return result


def compute_divisions(
    nets: Sequence[DivideMixNet],
    data: TrainingData,
    windows: Sequence[LossWindow],
    seeds: Sequence[int],
    divider: Divider | None = None,
) -> list[Division]:
    """Each net's per-sample losses split by ``divider`` (co-divide).

    ``divider`` defaults to the paper's global mixture.
    """
    if divider is None:
        divider = Divider("global", data.y.cpu().numpy(), data.n_classes)
    return divider.divide_all(eval_pass(nets, data).losses, windows, seeds)
