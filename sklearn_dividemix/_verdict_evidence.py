"""What the verdict reads from a fit, measured: one net's evidence.

The numbers behind the checks of ``_verdict.py``: a net's final division and
how its predictions compare with the given labels on the labeled set it
trains on, corrected for chance (Cohen's kappa). Pure functions of arrays and
:class:`~._division.Division` objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._division import Division, estimate_noise_rate

__all__ = [
    "NetEvidence",
    "chance_agreement",
    "flagged_by_class",
    "kappa",
    "net_evidence",
]


@dataclass(frozen=True)
class NetEvidence:
    """What one net's final division and predictions say.

    Attributes
    ----------
    separation : float
        Ashman's D between the two components of the final division.
    degenerate : bool
        The final division is not bimodal (separation below 2).
    weights : tuple of float
        Mixture weights of the (clean, noisy) components.
    noise_rate : float
        Share of samples the final division calls noisy
        (``clean_proba <= p_threshold``).
    first_noise_rate : float or None
        The same share at the first division after warm-up; None if unknown.
    n_labeled : int
        Size of the labeled set of the final division.
    labeled_accuracy : float
        Share of the labeled set this net trains on (its peer's: its own is
        chosen for low loss, so would flatter it) whose given label equals
        the net's prediction; NaN when that set is empty.
    chance_accuracy : float
        What predictions independent of the labels would get on that set,
        ``sum_c P(prediction = c) * P(label = c)``: ``1 / n_classes`` for
        uniform guesses, the class's share for a constant prediction.
    labeled_classes : int
        Number of classes among the given labels of that set.
    top_prediction_share : float
        Share of that set predicted as the net's most predicted class; NaN
        when the set is empty.
    """

    separation: float
    degenerate: bool
    weights: tuple[float, float]
    noise_rate: float
    first_noise_rate: float | None
    n_labeled: int
    labeled_accuracy: float
    chance_accuracy: float
    labeled_classes: int = 0
    top_prediction_share: float = float("nan")

    @property
    def labeled_kappa(self) -> float:
        """Accuracy on the labeled set beyond chance (Cohen's kappa).

        NaN when the set is empty or when it and the predictions on it are
        one and the same class; both make the fit untrusted (see the checks).
        """
        return kappa(self.labeled_accuracy, self.chance_accuracy)

    def to_dict(self) -> dict:
        """The evidence as plain Python values, ``labeled_kappa`` included."""
        return {**asdict(self), "labeled_kappa": self.labeled_kappa}


def kappa(observed: float, expected: float) -> float:
    """Cohen's kappa from observed and chance agreement; NaN if undefined."""
    if not np.isfinite(observed) or expected >= 1.0:
        return float("nan")
    return float((observed - expected) / (1.0 - expected))


def chance_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Agreement of two labelings drawn independently with their own shares."""
    values, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    counts_a = np.bincount(inverse[: len(a)], minlength=len(values))
    counts_b = np.bincount(inverse[len(a) :], minlength=len(values))
    return float(np.dot(counts_a, counts_b) / (len(a) * len(b)))


def net_evidence(
    division: Division,
    peer: Division,
    predictions: np.ndarray,
    labels: np.ndarray,
    p_threshold: float,
    first_noise_rate: float | None,
) -> NetEvidence:
    labeled = peer.clean_proba > p_threshold
    pred, given = predictions[labeled], labels[labeled]
    accuracy, chance, top = float("nan"), float("nan"), float("nan")
    if labeled.any():
        accuracy, chance = np.mean(pred == given), chance_agreement(pred, given)
        top = np.unique(pred, return_counts=True)[1].max() / len(pred)
    return NetEvidence(
        separation=float(division.separation),
        degenerate=bool(division.degenerate),
        weights=(float(division.weights[0]), float(division.weights[1])),
        noise_rate=estimate_noise_rate([division], p_threshold),
        first_noise_rate=first_noise_rate,
        n_labeled=int(np.sum(division.clean_proba > p_threshold)),
        labeled_accuracy=float(accuracy),
        chance_accuracy=chance,
        labeled_classes=len(np.unique(given)),
        top_prediction_share=float(top),
    )


def flagged_by_class(
    flagged: np.ndarray, labels: np.ndarray, n_classes: int, min_size: int
) -> tuple[float, ...]:
    """Share of each given class's labels that the fit flags.

    NaN for a class given fewer than ``min_size`` times, whose share is too
    coarse to compare with the others.
    """
    counts = np.bincount(labels, minlength=n_classes)
    sums = np.bincount(labels, weights=flagged.astype(np.float64), minlength=n_classes)
    shares = np.full(n_classes, np.nan)
    large = counts >= min_size
    shares[large] = sums[large] / counts[large]
    return tuple(float(share) for share in shares)
