"""MixMatch with DivideMix's co-refinement and co-guessing.

Pure functions on probability and input tensors; they hold no state and draw
randomness only from the generators they are given.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "co_guess",
    "co_refine",
    "mixup",
    "sample_mix_lambda",
    "sharpen",
]


def sharpen(proba: torch.Tensor, temperature: float) -> torch.Tensor:
    """Lower the entropy of each row: ``p^(1/T) / sum_c p_c^(1/T)``.

    ``temperature=1`` returns the rows renormalised; smaller temperatures move
    the mass towards the largest entry.
    """
    powered = proba.clamp_min(0.0) ** (1.0 / temperature)
    return powered / powered.sum(dim=1, keepdim=True).clamp_min(1e-12)


def co_refine(
    proba_views: torch.Tensor,
    onehot: torch.Tensor,
    clean_proba: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Refined targets of labeled samples.

    Parameters
    ----------
    proba_views : tensor of shape (n_views, batch, n_classes)
        The trained net's softmax on each augmented view.
    onehot : tensor of shape (batch, n_classes)
        The given (noisy) labels.
    clean_proba : tensor of shape (batch,)
        The *peer's* clean probability ``w`` of each sample.
    temperature : float
        Sharpening temperature.

    Returns
    -------
    targets : tensor of shape (batch, n_classes)
        ``sharpen(w * onehot + (1 - w) * mean_views(p), T)``.
    """
    w = clean_proba.reshape(-1, 1)
    refined = w * onehot + (1.0 - w) * proba_views.mean(dim=0)
    return sharpen(refined, temperature)


def co_guess(proba_views: torch.Tensor, temperature: float) -> torch.Tensor:
    """Guessed targets of unlabeled samples: sharpened mean over all views.

    ``proba_views`` has shape (n_views, batch, n_classes) and holds the softmax
    of both nets on both augmented views, so neither net guesses alone.
    """
    return sharpen(proba_views.mean(dim=0), temperature)


def sample_mix_lambda(rng: np.random.RandomState, alpha: float) -> float:
    """Draw the mixup weight ``max(l, 1 - l)`` with ``l ~ Beta(alpha, alpha)``.

    Taking the larger side keeps each mixed sample closer to its first input,
    so the labeled part of the mixed batch stays mostly labeled.
    ``alpha=0`` disables mixup (weight 1).
    """
    if alpha <= 0:
        return 1.0
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam)


def mixup(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    lam: float,
    partner: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix every sample with a partner from the same batch.

    Parameters
    ----------
    inputs : tensor of shape (batch, ...)
    targets : tensor of shape (batch, n_classes)
    lam : float
        Weight of the sample itself, in [0.5, 1] after :func:`sample_mix_lambda`.
    partner : tensor of shape (batch,)
        Index of each sample's partner, usually a random permutation.

    Returns
    -------
    mixed_inputs, mixed_targets : tensors
        ``lam * a + (1 - lam) * a[partner]`` for inputs and targets alike.
    """
    mixed_inputs = inputs.mul(lam).add_(inputs[partner], alpha=1.0 - lam)
    mixed_targets = targets.mul(lam).add_(targets[partner], alpha=1.0 - lam)
    return mixed_inputs, mixed_targets
