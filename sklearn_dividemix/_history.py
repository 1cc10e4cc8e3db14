"""The rows of ``history_``: every key declared once, for all its readers.

A fit appends one dict per epoch to ``history_`` (a skorch ``History``).
The loop writes the rows; plotting, progress lines, the verdict, tests and
benchmarks read them. The keys are public (documented under ``history_``),
so they never change name; these constants and functions are how the code
spells them.

========================= ==================================================
key                       value
========================= ==================================================
``epoch``                 1-based number of the epoch
``phase``                 :data:`WARMUP` or :data:`MIXMATCH`
``loss_net<i>``           net ``i``'s mean training loss
``loss_terms_net<i>``     its terms (``loss_ce``, ``loss_x``, ``loss_u``, ...)
``labeled_net<i>``        samples net ``i`` trained on as labeled
``gmm_means_net<i>``      clean and noisy component means (None in warm-up)
``division_net<i>``       ``Division.summary()`` (None in warm-up)
``lambda_u``              the unlabeled weight (MixMatch rows)
``alpha``                 mixup's alpha (MixMatch rows)
``balance_labeled``       whether the labeled loss balanced classes (same)
``p_threshold``           the clean probability a kept label passed (same)
``loss_window``           epochs of losses each division averaged (same)
``unlabeled_weight``      its ramped value at the end of the epoch
``lr``                    learning rate of net 1's first parameter group
``notes``                 list of str: what the verdict should know
``dur``                   seconds
``interrupted``           True on the stub row of an interrupted epoch
========================= ==================================================
"""

from __future__ import annotations

__all__ = [
    "ALPHA",
    "BALANCE_LABELED",
    "DUR",
    "EPOCH",
    "INTERRUPTED",
    "LAMBDA_U",
    "LOSS_WINDOW",
    "LR",
    "MIXMATCH",
    "NOTES",
    "PHASE",
    "P_THRESHOLD",
    "UNLABELED_WEIGHT",
    "WARMUP",
    "completed",
    "division_key",
    "gmm_means_key",
    "labeled_key",
    "loss_key",
    "loss_terms_key",
]

EPOCH = "epoch"
PHASE = "phase"
LAMBDA_U = "lambda_u"
ALPHA = "alpha"
BALANCE_LABELED = "balance_labeled"
P_THRESHOLD = "p_threshold"
LOSS_WINDOW = "loss_window"
UNLABELED_WEIGHT = "unlabeled_weight"
LR = "lr"
NOTES = "notes"
DUR = "dur"
INTERRUPTED = "interrupted"

# values of PHASE
WARMUP = "warmup"
MIXMATCH = "mixmatch"


def loss_key(net: int) -> str:
    """``'loss_net1'``: net ``net``'s (1 or 2) mean training loss."""
    return f"loss_net{net}"


def loss_terms_key(net: int) -> str:
    """``'loss_terms_net1'``: the terms of that loss, by name."""
    return f"loss_terms_net{net}"


def labeled_key(net: int) -> str:
    """``'labeled_net1'``: how many samples the net trained on as labeled."""
    return f"labeled_net{net}"


def gmm_means_key(net: int) -> str:
    """``'gmm_means_net1'``: clean and noisy means of the net's mixture."""
    return f"gmm_means_net{net}"


def division_key(net: int) -> str:
    """``'division_net1'``: the summary of the net's division."""
    return f"division_net{net}"


def completed(history) -> list[dict]:
    """The rows of completed epochs (an interrupted fit adds a stub row)."""
    return [row for row in history if not row.get(INTERRUPTED, False)]
