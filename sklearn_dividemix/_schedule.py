"""How a fit's epoch budget is shared out: warm-up, ramp-up, MixMatch steps.

The paper's schedule (10 warm-up epochs, a 16-epoch ramp-up of the unlabeled
weight, 300 epochs in all) assumes a long budget. On the 20-40 epochs that a
CPU affords, the same fixed numbers spend half of the fit in warm-up and never
finish the ramp-up. The ``'auto'`` settings resolved here scale with
``max_epochs`` and leave the end of warm-up to the evidence (the loss split
becoming bimodal, see :func:`~._division.warmup_should_continue`). Pure
functions of integers.
"""

from __future__ import annotations

__all__ = [
    "MAX_AUTO_RAMPUP",
    "MAX_AUTO_WARMUP",
    "auto_rampup_epochs",
    "auto_warmup_epochs",
    "warmup_limit",
]

# The paper's own numbers, the most 'auto' ever asks for: 10 warm-up epochs
# (CIFAR-10) and a 16-epoch ramp-up.
MAX_AUTO_WARMUP = 10
MAX_AUTO_RAMPUP = 16


def auto_warmup_epochs(max_epochs: int) -> int:
    """The scheduled warm-up of ``warmup_epochs='auto'``: a tenth of the budget.

    One epoch at least and the paper's 10 at most (reached at 100 epochs).
    Warm-up then goes on while the losses are not bimodal yet and their
    separation still grows (up to :func:`warmup_limit`): the data, not a
    fixed share of the budget, decides when the first division is made.
    """
    return int(min(MAX_AUTO_WARMUP, max(1, max_epochs // 10)))


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
