"""One training epoch of each DivideMix phase, over a :class:`~._data.DataSource`.

The epoch loop (``_epochs``) is a loop over these functions. Every sample
they read comes from the data source: training batches gathered by index
onto the device (an epoch's index batches are drawn before it starts, so a
Dataset's loader workers can read ahead), division passes and the final
pass as an in-order stream. Augmentation runs on whole batches on the
device, and losses are accumulated there so that a step never waits for the
host.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ._data import DataSource, gather
from ._distributed import Replicas, SingleProcess
from ._history import PHASE, loss_key
from ._losses import balanced_class_weight
from ._mixmatch import co_guess, co_refine, mixup, sample_mix_lambda
from ._net import DivideMixNet, MixMatchBatch, WarmupBatch

__all__ = [
    "TrainingData",
    "check_finite",
    "mixmatch_step_count",
    "run_mixmatch_epoch",
    "run_warmup_epoch",
]


@dataclass
class TrainingData:
    """The data source, encoded labels and random streams of one fit.

    ``generator`` and ``rng`` draw the plan of the fit (index batches,
    permutations, mixup coefficients, division seeds), the same on every
    process of a data-parallel fit; ``view_generator`` draws augmentations
    and mixup partners, which differ between processes (one process: the
    same generator as the plan).
    """

    source: DataSource
    y: torch.Tensor
    n_classes: int
    augment: Callable[..., torch.Tensor]
    generator: torch.Generator
    rng: np.random.RandomState
    batch_size: int
    eval_batch_size: int
    replicas: Replicas = field(default_factory=SingleProcess)
    view_generator: torch.Generator | None = None

    def __len__(self) -> int:
        return len(self.y)

    def onehot(self, index: torch.Tensor) -> torch.Tensor:
        """One-hot given labels of ``index``, made per batch: an ``(n,
        n_classes)`` matrix on the device would take 4 GiB for a million
        samples of 1,000 classes."""
        return F.one_hot(self.y[index], self.n_classes).float()

    @property
    def _views(self) -> torch.Generator:
        return self.generator if self.view_generator is None else self.view_generator

    def view(self, X: torch.Tensor, net: DivideMixNet) -> torch.Tensor:
        """One random augmented view of a batch, in the net's memory format."""
        return net.to_device_input(self.augment(X, generator=self._views))

    def permutation(self, n: int) -> torch.Tensor:
        """A permutation drawn from the plan's stream (same on every process)."""
        return torch.randperm(n, generator=self.generator, device=self.y.device)

    def local_permutation(self, n: int) -> torch.Tensor:
        """A permutation drawn from this process's own stream."""
        return torch.randperm(n, generator=self._views, device=self.y.device)

    def batches(self, order: torch.Tensor) -> list[torch.Tensor]:
        """Training mini-batches of ``order``, each big enough to shard.

        BatchNorm cannot normalise a training batch of one sample, so a
        trailing batch that would leave some process fewer than two samples
        is dropped (one process: only a trailing batch of one).
        """
        # split() of an empty tensor gives one empty batch, not none
        batches = [batch for batch in order.split(self.batch_size) if len(batch)]
        if len(batches) > 1 and len(batches[-1]) < 2 * self.replicas.world_size:
            batches.pop()
        return batches


class _EpochTotals:
    """Sample-weighted sums of loss terms, kept on the device until the end."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sums: torch.Tensor | None = None
        self.count = 0

    def add(self, step: dict, n_samples: int) -> None:
        terms = step["terms"]
        # One stacked tensor: two small kernels per step however many terms.
        values = torch.stack([*terms.values(), step["loss"]]).detach().float()
        if self.sums is None:
            self.names = [*terms, "loss"]
            self.sums = values * n_samples
        else:
            self.sums.add_(values, alpha=n_samples)
        self.count += n_samples

    def means(self, replicas: Replicas) -> dict[str, float]:
        """Means over the samples of every process (one collective)."""
        if self.sums is None:
            return {}
        sums = replicas.sum(torch.cat([self.sums, self.sums.new_tensor([self.count])]))
        if float(sums[-1]) == 0:
            return {}
        # a single host transfer per epoch
        means = (sums[:-1] / sums[-1]).tolist()
        return dict(zip(self.names, means, strict=True))


def _train_step(net: DivideMixNet, batch, n_samples: int, totals: _EpochTotals):
    net.notify("on_batch_begin", batch=batch, training=True)
    step = net.train_step(batch)
    net.notify("on_batch_end", batch=batch, training=True, **step)
    totals.add(step, n_samples)


def run_warmup_epoch(
    net: DivideMixNet,
    data: TrainingData,
    *,
    confidence_penalty: bool,
    progress: Callable | None = None,
    lr_factor: Callable[[float], float] | None = None,
) -> dict[str, float]:
    """Train ``net`` for one epoch with cross-entropy on the noisy labels.

    ``lr_factor(fraction_of_epoch)``, when given, scales the learning rate
    step by step (a linear warm-up of the learning rate); the optimizer's own
    rates are restored after the epoch.
    """
    totals = _EpochTotals()
    shards = [data.replicas.shard(b) for b in data.batches(data.permutation(len(data)))]
    groups = net.optimizer_.param_groups
    base = [group["lr"] for group in groups]
    try:
        for step, (index, raw) in enumerate(
            zip(shards, data.source.batches(shards), strict=True)
        ):
            if lr_factor is not None:
                factor = lr_factor((step + 1) / len(shards))
                for group, lr in zip(groups, base, strict=True):
                    group["lr"] = lr * factor
            X = data.view(raw, net)
            _train_step(
                net,
                WarmupBatch(X, data.y[index], confidence_penalty),
                len(index),
                totals,
            )
            if progress is not None:
                progress()
    finally:
        for group, lr in zip(groups, base, strict=True):
            group["lr"] = lr
    return totals.means(data.replicas)


def _cycled(data: TrainingData, index: torch.Tensor, length: int) -> torch.Tensor:
    """Cycle fresh permutations of ``index`` to ``length`` indices."""
    if len(index) == 0:
        return index
    repeats = math.ceil(length / len(index))
    return torch.cat([index[data.permutation(len(index))] for _ in range(repeats)])


def _four_views(
    net: DivideMixNet, data: TrainingData, X_x: torch.Tensor, X_u: torch.Tensor
) -> torch.Tensor:
    """Two augmented views of each labeled and unlabeled row: [x1, x2, u1, u2]."""
    if getattr(data.augment, "per_sample", False):
        # Independent draws per row: one call over all four views costs a
        # quarter of the kernel launches of four calls.
        return data.view(torch.cat([X_x, X_x, X_u, X_u]), net)
    # A user augmentation may draw once per call (a torchvision transform on a
    # batch does): one call per view keeps the two views of a sample apart.
    x_views = [data.view(X_x, net) for _ in range(2)]
    u_views = [data.view(X_u, net) for _ in range(2)]
    return torch.cat(x_views + u_views)


def make_mixmatch_batch(
    net: DivideMixNet,
    peer: DivideMixNet,
    data: TrainingData,
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    clean_proba: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
    unlabeled_weight: float,
    inputs: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
) -> MixMatchBatch:
    """Views, co-refined and co-guessed targets, then mixup of the lot.

    ``inputs`` are the samples of ``cat([labeled, unlabeled])`` as the data
    source delivered them; gathered here when not given. ``class_weight``
    weights the labeled loss per class (None: every class 1).
    """
    n_x, n_u = len(labeled), len(unlabeled)
    if inputs is None:
        inputs = gather(data.source, torch.cat([labeled, unlabeled]))
    views = _four_views(net, data, inputs[:n_x], inputs[n_x:])
    # One no-grad pass of the trained net over all four views (train mode, as
    # in the paper) and one of the frozen peer over the unlabeled views.
    own = net.forward_proba(views, training=True)
    n_classes = own.shape[1]
    own_x = own[: 2 * n_x].reshape(2, n_x, n_classes)
    own_u = own[2 * n_x :].reshape(2, n_u, n_classes)
    peer_u = peer.forward_proba(views[2 * n_x :], training=False)
    peer_u = peer_u.reshape(2, n_u, n_classes)
    targets_x = co_refine(
        own_x, data.onehot(labeled), clean_proba[labeled], temperature
    )
    targets_u = co_guess(torch.cat([own_u, peer_u]), temperature)
    targets = torch.cat([targets_x, targets_x, targets_u, targets_u])
    lam = sample_mix_lambda(data.rng, alpha)
    partners = data.local_permutation(len(views))
    mixed_X, mixed_targets = mixup(views, targets, lam, partners)
    return MixMatchBatch(
        X=mixed_X,
        targets=mixed_targets,
        n_labeled=2 * n_x,
        unlabeled_weight=unlabeled_weight,
        class_weight=class_weight,
    )


def mixmatch_step_count(n_labeled: int, n: int, batch_size: int, steps: str) -> int:
    """Steps of one net's MixMatch epoch.

    ``'labeled'`` (the paper's): one pass over the labeled set, so every
    sample called noisy removes updates; ``'all'`` (PES, Bai et al. 2021):
    ``ceil(n / batch_size)`` steps whatever the split, the labeled set
    cycled, so that a large unlabeled set does not starve a short budget.
    An empty labeled set gives one pass over the unlabeled set either way.
    """
    if steps == "all" or n_labeled == 0:
        return math.ceil(n / batch_size)
    return math.ceil(n_labeled / batch_size)


def _mixmatch_steps(
    data: TrainingData, clean_proba: torch.Tensor, p_threshold: float, steps: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (labeled, unlabeled) index pairs of one epoch, drawn up front.

    Each labeled mini-batch is paired with an unlabeled one of the same size
    (see :func:`mixmatch_step_count` for how many); with ``'all'`` the
    labeled set is cycled like the unlabeled one.
    """
    is_labeled = clean_proba > p_threshold
    labeled = is_labeled.nonzero().flatten()
    unlabeled = (~is_labeled).nonzero().flatten()
    if steps == "all" and len(labeled):
        n_steps = mixmatch_step_count(len(labeled), len(data), data.batch_size, steps)
        order = _cycled(data, labeled, n_steps * data.batch_size)
        labeled_batches = data.batches(order[: n_steps * data.batch_size])
    else:
        labeled_batches = data.batches(labeled[data.permutation(len(labeled))])
    n_steps = len(labeled_batches) or math.ceil(len(unlabeled) / data.batch_size)
    stream = _cycled(data, unlabeled, n_steps * data.batch_size)
    steps_list = []
    for step in range(n_steps):
        lab = labeled_batches[step] if labeled_batches else labeled[:0]
        size = len(lab) if len(lab) else data.batch_size
        start = step * data.batch_size
        steps_list.append((lab, stream[start : start + size]))
    return steps_list


def run_mixmatch_epoch(
    net: DivideMixNet,
    peer: DivideMixNet,
    data: TrainingData,
    clean_proba: torch.Tensor,
    *,
    p_threshold: float,
    temperature: float,
    alpha: float,
    unlabeled_weight: Callable[[float], float],
    steps_per_epoch: str = "labeled",
    balance_classes: bool = False,
    progress: Callable | None = None,
) -> dict[str, float]:
    """Train ``net`` for one epoch on the division made by ``peer``.

    ``clean_proba`` is the peer's clean probability per training sample;
    ``unlabeled_weight(fraction_of_epoch)`` gives ``lambda_u`` times the ramp.
    With ``balance_classes`` the labeled loss weights each class by
    :func:`~._losses.balanced_class_weight` of this division's labeled set.
    The epoch's index batches are drawn before its first step, so the data
    source can read ahead; each process trains on its share of every step.
    """
    shard = data.replicas.shard
    steps = [
        (shard(lab), shard(unl))
        for lab, unl in _mixmatch_steps(data, clean_proba, p_threshold, steps_per_epoch)
    ]
    inputs = data.source.batches([torch.cat(pair) for pair in steps])
    class_weight = None
    if balance_classes:
        labeled = data.y[clean_proba > p_threshold]
        class_weight = balanced_class_weight(labeled, data.n_classes)
    totals = _EpochTotals()
    for step, ((lab, unl), raw) in enumerate(zip(steps, inputs, strict=True)):
        batch = make_mixmatch_batch(
            net,
            peer,
            data,
            lab,
            unl,
            clean_proba,
            temperature=temperature,
            alpha=alpha,
            unlabeled_weight=unlabeled_weight(step / len(steps)),
            inputs=raw,
            class_weight=class_weight,
        )
        _train_step(net, batch, len(lab) + len(unl), totals)
        if progress is not None:
            progress()
    return totals.means(data.replicas)


def check_finite(row: dict, epoch: int, nets) -> None:
    """Raise ``FloatingPointError`` when an epoch left a loss or weight non-finite."""
    for i, net in enumerate(nets, start=1):
        loss = row[loss_key(i)]
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
            f"Training diverged: net{i}'s {problem} ({row[PHASE]} phase). "
            "Lower lr, check X for extreme values, or use amp=None."
        )
