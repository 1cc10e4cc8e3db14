"""A floor under the share of labels a division calls wrong.

At high noise the nets memorise part of the wrong labels that a division
left in the labeled set; their losses fall, the next mixture calls them clean
too, and the labeled set fills with wrong labels (Fashion-MNIST, 72 % wrong:
the per-class split flagged 56 % after warm-up and 36 % three epochs later,
half of the wrong labels trained as right). What the nets *predict* is slower
to follow: a net that has not memorised a wrong label still predicts another
class for it. The floor flags, in every class, at least the share of samples
whose given label the peer net's prediction contradicts, highest losses
first (a class-balanced selection in the manner of UNICON and ProMix, with
the rate read off the predictions as PES reads its clean set). Pure functions
of arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ._division import Division

__all__ = [
    "AUTO_FLOOR_NOISE",
    "disagreement_rate",
    "floor_division",
    "floor_divisions",
    "resolve_noise_floor",
]

# noise_floor='auto' turns the floor on when the first division after warm-up
# calls at least this share of the labels wrong. Measured (seed 0, 20-30
# epochs): the first per-class divisions flagged 0.14-0.47 of the labels at
# 20 % and 50 % symmetric and 40 % pair-flip noise on digits and
# Fashion-MNIST, where the floor cost up to 2.2 points (it also flags clean
# samples of hard classes), and 0.56-0.71 at 80 % on digits, Fashion-MNIST
# and MNIST, where it gained 2 to 4 points.
AUTO_FLOOR_NOISE = 0.5


def resolve_noise_floor(setting: bool | str, first_noise_rates) -> bool:
    """Whether the floor is on, for ``noise_floor`` True, False or ``'auto'``.

    ``first_noise_rates`` are each net's share of labels called wrong by the
    first division after warm-up (None if warm-up never ended).
    """
    if setting != "auto":
        return bool(setting)
    if not first_noise_rates:
        return False
    return float(np.mean(first_noise_rates)) >= AUTO_FLOOR_NOISE


def disagreement_rate(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose given label the predicted class contradicts."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float(np.mean(predictions != labels)) if labels.size else 0.0


def floor_division(
    division: Division,
    losses: np.ndarray,
    labels: np.ndarray,
    rate: float,
    p_threshold: float,
) -> Division:
    """Flag at least ``ceil(rate * n_c)`` samples of every given class ``c``.

    The samples of a class with the highest ``losses`` not flagged yet get a
    clean probability of at most ``p_threshold`` (so they leave the labeled
    set) until the class's flagged share reaches ``rate``; nothing flagged
    is unflagged, so the floor only ever raises precision.

    Parameters
    ----------
    division : Division
        One net's division.
    losses : ndarray of shape (n_samples,)
        The per-sample losses it was made from (any monotone scale).
    labels : ndarray of shape (n_samples,)
        The given labels, encoded.
    rate : float
        Least share of each class to flag, in [0, 1].
    p_threshold : float
        A sample is labeled when its clean probability exceeds this.

    Returns
    -------
    division : Division
        ``division`` with the extra samples' ``clean_proba`` lowered to
        ``p_threshold``.
    """
    clean_proba = np.array(division.clean_proba, dtype=np.float64, copy=True)
    losses, labels = np.asarray(losses), np.asarray(labels)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        needed = int(np.ceil(rate * members.size))
        flagged = int(np.sum(clean_proba[members] <= p_threshold))
        if needed <= flagged:
            continue
        # highest losses first, among the samples still labeled
        labeled = members[clean_proba[members] > p_threshold]
        order = labeled[np.argsort(-losses[labeled], kind="stable")]
        lowered = order[: needed - flagged]
        clean_proba[lowered] = np.minimum(clean_proba[lowered], p_threshold)
    return replace(division, clean_proba=clean_proba)


def floor_divisions(
    divisions: Sequence[Division],
    losses: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    labels: np.ndarray,
    p_threshold: float,
) -> tuple[list[Division], float]:
    """Floor every net's division at the nets' mean disagreement with the labels.

    Returns the floored divisions and the rate used.
    """
    rate = float(np.mean([disagreement_rate(p, labels) for p in predictions]))
    floored = [
        floor_division(d, loss, labels, rate, p_threshold)
        for d, loss in zip(divisions, losses, strict=True)
    ]
    return floored, rate
