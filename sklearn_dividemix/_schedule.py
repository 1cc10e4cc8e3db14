"""How a fit's epoch budget is shared out: warm-up, ramp-up, MixMatch steps.

The paper's schedule (10 warm-up epochs, a 16-epoch ramp-up of the unlabeled
weight, 300 epochs in all) assumes a long budget. A fixed 10-epoch warm-up
makes a short trial fail (``max_epochs=3``) or never leave warm-up. The
``'auto'`` settings resolved here keep the paper's numbers where the budget
has room for them and shrink them where it has not, and leave the end of
warm-up to the evidence (the loss split becoming bimodal, see
:func:`~._division.warmup_should_continue`). Pure functions of integers.
"""

from __future__ import annotations

import math

__all__ = [
    "AUTO_MIXUP_ALPHA",
    "AUTO_MIXUP_NOISE",
    "AUTO_WARMUP_STEPS",
    "HIGH_NOISE_LOSS_WINDOW",
    "HIGH_NOISE_P_THRESHOLD",
    "MAX_AUTO_RAMPUP",
    "MAX_AUTO_WARMUP",
    "auto_alpha",
    "auto_balance_labeled",
    "auto_loss_window",
    "auto_p_threshold",
    "auto_rampup_epochs",
    "auto_warmup_epochs",
    "warmup_limit",
]

# The paper's own numbers, the most 'auto' ever asks for: 10 warm-up epochs
# (CIFAR-10) and a 16-epoch ramp-up.
MAX_AUTO_WARMUP = 10
MAX_AUTO_RAMPUP = 16
# Optimiser steps per net that an 'auto' warm-up aims for (see
# auto_warmup_epochs): the measured good warm-ups of digits (10 x 20 steps)
# and of Fashion-MNIST images (2-3 x 94 steps).
AUTO_WARMUP_STEPS = 200
# alpha='auto': mixup where the first division after warm-up calls at least
# this share of the labels wrong (the boundary at which the paper's table
# turns the unlabeled loss on, see _division.AUTO_LAMBDA_U_LOW). Measured
# (Fashion-MNIST images, 20 epochs, seed 0): alpha=0.5 cost 1.6 points at
# 20 % symmetric and 0.3 under 40 % pair flips, where the first divisions
# flag 0.21-0.25 and 0.16-0.21 of the labels, and gained 1.8 at 80 %, where
# mixup kept the nets from memorising the wrong labels (the last division
# flagged 71 % of the labels, 72 % being wrong, against 60 % without it).
AUTO_MIXUP_NOISE = 0.3
AUTO_MIXUP_ALPHA = 0.5
# balance_labeled='auto': balance the labeled loss's classes below the same
# boundary, where the labeled set is mostly right and its class counts say
# which classes the noise or the division thinned out (under pair flips, the
# classes whose labels were flipped away: Fashion-MNIST, 40 %, three seeds,
# 77.5 to 80.1 %). Above it most of a kept class's labels may be wrong and its
# count says little: paired runs moved by -0.9 to +0.8 points (Fashion-MNIST
# at 50 and 80 %, CIFAR-10 at 80 %).
AUTO_BALANCE_NOISE = AUTO_MIXUP_NOISE
# loss_window='auto' and p_threshold='auto': the paper's settings for its
# noisiest rows (losses averaged over 5 epochs, a sample labeled only above a
# clean probability of 0.6) where the first division flags at least
# AUTO_HIGH_NOISE of the labels; elsewhere 1 and 0.5, as before. Measured on
# CIFAR-10 at 80 % (40 epochs, seed 2, paired): the divisions kept 3 in 10
# labels where 7 in 10 are wrong (precision 0.97, recall 0.38); the window
# and the threshold together raised the recall to 0.43 and test accuracy
# from 43.4 to 44.4 % (three seeds: 42.7 to 43.8 %), the window alone changed
# nothing. The boundary is 0.4, above what the paper's highest class-
# dependent noise (40 % pair flips) flags: a first division at 0.34 (frozen
# features, Fashion-MNIST, 40 % pair flips) lost 3.6 points with them.
# CIFAR-10 at 80 % flags 0.43-0.51 there.
AUTO_HIGH_NOISE = 0.4
HIGH_NOISE_LOSS_WINDOW = 5
HIGH_NOISE_P_THRESHOLD = 0.6
# what 'auto' uses until warm-up ends (and, below the boundary, after it)
DEFAULT_LOSS_WINDOW = 1
DEFAULT_P_THRESHOLD = 0.5


def auto_warmup_epochs(max_epochs: int, steps_per_epoch: int | None = None) -> int:
    """The scheduled warm-up of ``warmup_epochs='auto'``.

    Enough epochs for :data:`AUTO_WARMUP_STEPS` optimiser steps per net (at
    least one epoch), and never more than the paper's 10 or half the budget:
    a 3-epoch trial warms up for one epoch and reaches MixMatch. Warm-up
    then goes on while the losses are not bimodal yet and their separation
    still grows (up to :func:`warmup_limit`). Without ``steps_per_epoch``
    the step count plays no part (the paper's 10, or half the budget).

    Counted in epochs alone, one warm-up does not fit two data sets: on
    digits (MLP, 20 steps an epoch) a 2-epoch warm-up cost 0.3-3.2 points
    against 10 epochs on every noise row, while on Fashion-MNIST images (CNN,
    94 steps an epoch) the 10-epoch warm-up cost 1.4-2.3 points against 2-3
    epochs (``docs/benchmarks.md``, issue 17's ablations). Both good choices
    are about 200 steps.
    """
    longest = max(1, min(MAX_AUTO_WARMUP, max_epochs // 2))
    if steps_per_epoch is None:
        return int(longest)
    wanted = math.ceil(AUTO_WARMUP_STEPS / max(int(steps_per_epoch), 1))
    return int(min(longest, max(1, wanted)))


def warmup_limit(max_epochs: int, warmup_epochs: int, max_warmup_epochs) -> int:
    """The last epoch warm-up may be extended to.

    ``'auto'`` is half the budget. Whatever is asked for, a budget of two
    epochs or more keeps at least one epoch for MixMatch, and a fixed warm-up
    longer than the limit is never shortened.
    """
    limit = max_epochs // 2 if max_warmup_epochs == "auto" else max_warmup_epochs
    if max_epochs >= 2:
        limit = min(limit, max_epochs - 1)
    return int(max(warmup_epochs, limit))


def auto_rampup_epochs(remaining_epochs: int) -> int:
    """Ramp-up of the unlabeled weight for ``rampup_epochs='auto'``.

    A third of the epochs left when warm-up ends, at least one and at most
    the paper's 16: the full ``lambda_u`` is then in force for the last two
    thirds of MixMatch whatever the budget (the paper's 16 of 290 epochs
    would never be reached in a 10-epoch MixMatch phase).
    """
    return int(min(MAX_AUTO_RAMPUP, max(1, remaining_epochs // 3)))


def auto_alpha(noise_rate: float) -> float:
    """Mixup's ``alpha`` for ``alpha='auto'``, from the estimated noise rate.

    ``AUTO_MIXUP_ALPHA`` when the first division after warm-up calls at
    least ``AUTO_MIXUP_NOISE`` of the labels wrong, else 0 (no mixup).
    """
    return AUTO_MIXUP_ALPHA if noise_rate >= AUTO_MIXUP_NOISE else 0.0


def auto_balance_labeled(noise_rate: float) -> bool:
    """``balance_labeled='auto'``, from the estimated noise rate.

    True when the first division after warm-up calls less than
    ``AUTO_BALANCE_NOISE`` of the labels wrong, where the labeled set is
    mostly right and its class counts are worth evening out.
    """
    return bool(noise_rate < AUTO_BALANCE_NOISE)


def auto_loss_window(noise_rate: float) -> int:
    """``loss_window='auto'``, from the estimated noise rate.

    :data:`HIGH_NOISE_LOSS_WINDOW` epochs of losses averaged where the first
    division after warm-up flags at least :data:`AUTO_HIGH_NOISE` of the
    labels, one epoch (no averaging) below.
    """
    if noise_rate >= AUTO_HIGH_NOISE:
        return HIGH_NOISE_LOSS_WINDOW
    return DEFAULT_LOSS_WINDOW


def auto_p_threshold(noise_rate: float) -> float:
    """``p_threshold='auto'``, from the estimated noise rate.

    :data:`HIGH_NOISE_P_THRESHOLD` where the first division after warm-up
    flags at least :data:`AUTO_HIGH_NOISE` of the labels (a label is kept
    only on stronger evidence), the paper's 0.5 below.
    """
    if noise_rate >= AUTO_HIGH_NOISE:
        return HIGH_NOISE_P_THRESHOLD
    return DEFAULT_P_THRESHOLD
