"""Loss terms of DivideMix: warm-up penalty, MixMatch losses and the ramp-up.

Every function takes logits or probabilities as tensors and returns a scalar
tensor, so each term can be tested on hand-computed values and combined by the
training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "balanced_class_weight",
    "linear_rampup",
    "negative_entropy",
    "soft_cross_entropy",
    "uniform_prior_penalty",
    "unlabeled_mse",
]


def soft_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy against soft targets, averaged over the batch.

    ``L_x = -mean_i w_i sum_c targets[i, c] * log_softmax(logits)[i, c]``,
    where ``w_i = sum_c targets[i, c] * class_weight[c]`` (a mixed or refined
    target weighs as the classes it holds), 1 without ``class_weight``.
    An empty batch gives 0 so that a missing labeled set adds nothing.
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    log_proba = F.log_softmax(logits, dim=1)
    per_sample = -(targets * log_proba).sum(dim=1)
    if class_weight is not None:
        per_sample = per_sample * (targets @ class_weight)
    return per_sample.mean()


# PES (Bai et al., NeurIPS 2021) caps the weight of its rarest classes at 3:
# a class with few labeled samples left must not dominate the loss.
MAX_CLASS_WEIGHT = 3.0


def balanced_class_weight(
    labels: torch.Tensor, n_classes: int, max_weight: float = MAX_CLASS_WEIGHT
) -> torch.Tensor:
    """Per-class weights ``mean(n) / n_c`` of a labeled set, capped.

    ``n_c`` counts the labels of class ``c`` and ``mean(n)`` is taken over
    the classes present, so that every present class weighs as much in
    total (up to the cap); a class without labels gets ``max_weight``.

    Parameters
    ----------
    labels : tensor of shape (n_labeled,)
        The given labels of the labeled set, encoded ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes.
    max_weight : float, default=3.0
        Largest weight of a class.

    Returns
    -------
    weight : tensor of shape (n_classes,)
        Float32 weights on the labels' device.
    """
    counts = torch.bincount(labels, minlength=n_classes).to(torch.float32)
    present = counts > 0
    weight = torch.full_like(counts, max_weight)
    if present.any():
        weight[present] = (counts[present].mean() / counts[present]).clamp(
            max=max_weight
        )
    return weight


def unlabeled_mse(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error between softmax and targets, over samples and classes.

    The paper's ``L_u``: MixMatch uses the bounded squared error instead of
    cross-entropy on guessed labels because it is less sensitive to wrong
    guesses. An empty batch gives 0.
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    proba = torch.softmax(logits, dim=1)
    return ((proba - targets) ** 2).mean()


def uniform_prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """KL divergence from the uniform prior to the batch's mean prediction.

    ``sum_c pi_c * log(pi_c / mean_i p_ic)`` with ``pi_c = 1 / C``. It is zero
    when the net predicts every class equally often on average, and grows when
    the net collapses onto few classes, which happens easily at high noise.
    """
    n_classes = logits.shape[1]
    mean_proba = torch.softmax(logits, dim=1).mean(dim=0)
    prior = torch.full_like(mean_proba, 1.0 / n_classes)
    # clamp keeps the log finite when a class gets exactly zero probability
    return (prior * (prior.log() - mean_proba.clamp_min(1e-12).log())).sum()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``sum_c p_c log p_c`` (the confidence penalty).

    Added to the warm-up loss under class-dependent noise: minimising the
    negative entropy keeps predictions from becoming confident on flipped
    labels before the first division.
    """
    log_proba = F.log_softmax(logits, dim=1)
    return (log_proba.exp() * log_proba).sum(dim=1).mean()


def linear_rampup(
    progress: float, *, warmup_epochs: float, rampup_epochs: float
) -> float:
    """Weight of the unlabeled loss: 0 at the end of warm-up, 1 after ramp-up.

    Parameters
    ----------
    progress : float
        Training progress in epochs, fractional within an epoch.
    warmup_epochs, rampup_epochs : float
        The ramp starts at ``warmup_epochs`` and reaches 1 after
        ``rampup_epochs`` more epochs; ``rampup_epochs=0`` is a step.
    """
    if rampup_epochs <= 0:
        return 1.0 if progress >= warmup_epochs else 0.0
    return float(min(max((progress - warmup_epochs) / rampup_epochs, 0.0), 1.0))
