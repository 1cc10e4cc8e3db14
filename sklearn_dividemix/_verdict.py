"""The verdict at the end of a fit: can ``clean_mask_`` be trusted?

A two-component mixture splits any set of losses, even those of nets that
learned nothing. From what the fit saw (final and first divisions, the nets'
predictions, the notes of ``history_``) decide whether the final division
deserves belief, why not, and what to try. Pure functions of arrays and
:class:`~._division.Division` objects; thresholds measured with
``benchmarks/verdict_calibration.py``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ._division import MIN_SEPARATION, Division, DivisionWarning, estimate_noise_rate

__all__ = [
    "FitVerdict",
    "NetEvidence",
    "UntrustedFitWarning",
    "judge_fit",
    "summarize_notes",
    "warn_if_untrusted",
]

# A net is "at chance" on the labeled set it trains on when its accuracy
# there, corrected for chance (Cohen's kappa between its predictions and the
# given labels), is below this: "moderate" agreement on Landis and Koch's
# scale. Measured: sound digits fits (20-80 % noise, pair flips, a 3-epoch
# fit) 0.90-1.00; fits at chance (test accuracy 10-13 %: resnet18, 3 epochs
# on 512 CIFAR-10 images; 150 digits; digits not scaled) 0.00-0.04; 150
# standardised digits after 3 epochs (test accuracy 17 %, a mask no better
# than a coin: 53 % right) 0.21 and 0.38, which a threshold of 0.2 let pass.
# A constant prediction has kappa 0 whatever the class shares: the unscaled
# digits fit predicted one class (17 % of the labeled set) yet split the
# losses with separation 35.
MIN_LABELED_KAPPA = 0.5
# The final division may call fewer labels wrong than the first division
# after warm-up did, by at most this share: more means the split collapsed
# towards all-clean, the nets having memorised the wrong labels (the CIFAR
# failure that motivated this check: 35 % -> 0.6 %). Sound digits fits drop
# by 5.2 points at most. A rise is not checked: it is the nets learning to tell
# more wrong labels apart (digits with 40 % pair-flipped labels, a sound fit:
# 15 % -> 41 %, 40 % being wrong); a split that collapses towards all-noisy
# leaves a tiny labeled set or nets at chance, which are checked.
MAX_NOISE_DROP = 0.2
# A final division that is not bimodal and calls fewer labels wrong than this
# is what data with (almost) no wrong labels gives: the mixture then cuts the
# tail off one loss distribution (clean digits: 9-10 % called wrong where
# none is). Say so, rather than advise a longer warm-up that would not help.
FEW_WRONG_LABELS = 0.15
# Below this noise rate in either net, the nets' agreement is decided by a
# handful of samples and its kappa says little; the check is skipped.
MIN_NOISE_FOR_AGREEMENT = 0.05
# The two nets' masks agree less than this beyond chance (Cohen's kappa):
# which labels are wrong depends on the net that is asked. The middle of
# "moderate". Sound digits fits 0.89-1.00; fits at chance 0.08 (CIFAR-10)
# and 0.29 (150 digits); two independent random splits 0.
MIN_MASK_KAPPA = 0.5

_WARMUP_ONLY = (
    "training never left warm-up: the division comes from nets trained with "
    "plain cross-entropy on the given labels, which memorise wrong labels as "
    "training goes on"
)
_ADVICE = {
    "warmup": "set max_epochs well above warmup_epochs (the paper trains 300 "
    "epochs, 10 of them warm-up) or lower max_warmup_epochs",
    "chance": "train longer (max_epochs) or with a lower lr; use a smaller "
    "module if the data set is small; check that X is scaled (images are "
    "standardised per channel by default; feature vectors need "
    "normalize=True or a scaler)",
    "degenerate": "warm up longer (warmup_epochs, max_warmup_epochs) so that "
    "the losses become bimodal; at very high noise try loss_window=5 and "
    "p_threshold=0.6",
    "few": "if few labels are wrong, rank the samples by clean_proba_ "
    "(get_label_issues) rather than thresholding it",
    "tiny": "check the labels and the input: a net finds almost none of the "
    "labels learnable",
    "collapse": "lower lr or use a smaller module, so that the nets do not "
    "memorise the wrong labels",
    "agreement": "give both nets more epochs (max_epochs) to converge",
}


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
    """

    separation: float
    degenerate: bool
    weights: tuple[float, float]
    noise_rate: float
    first_noise_rate: float | None
    n_labeled: int
    labeled_accuracy: float
    chance_accuracy: float

    @property
    def labeled_kappa(self) -> float:
        """Accuracy on the labeled set beyond chance (Cohen's kappa)."""
        return _kappa(self.labeled_accuracy, self.chance_accuracy)

    def to_dict(self) -> dict:
        """The evidence as plain Python values, ``labeled_kappa`` included."""
        return {**asdict(self), "labeled_kappa": self.labeled_kappa}


@dataclass(frozen=True)
class FitVerdict:
    """Whether a fit's final division can be trusted, and why.

    Attributes
    ----------
    nets : tuple of NetEvidence
        The evidence of net1 and net2.
    mask_agreement : float
        Share of samples on which the two nets' final divisions agree.
    mask_kappa : float
        The same agreement corrected for chance (Cohen's kappa); NaN when
        both divisions put every sample on the same side.
    stopped_in_warmup : bool
        Training never reached a MixMatch epoch.
    notes : tuple of str
        The notes of ``history_``, one line per kind, with a count.
    reasons : tuple of str
        What makes the division untrustworthy; empty when it is trusted.
    advice : tuple of str
        What to try, for the reasons found.
    """

    nets: tuple[NetEvidence, ...]
    mask_agreement: float
    mask_kappa: float
    stopped_in_warmup: bool
    notes: tuple[str, ...]
    reasons: tuple[str, ...]
    advice: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        """True when no check found a reason to doubt the division."""
        return not self.reasons

    def to_dict(self) -> dict:
        """Plain Python values, for the fitted attribute ``fit_verdict_``."""
        return {
            **asdict(self),
            "nets": [net.to_dict() for net in self.nets],
            "trusted": self.trusted,
        }

    def __str__(self) -> str:
        head = "trusted" if self.trusted else "NOT trusted"
        lines = [f"Fit verdict: clean_mask_ is {head}", _evidence_table(self.nets)]
        lines.append(
            f"masks agree on {self.mask_agreement:.1%} of samples "
            f"(kappa {self.mask_kappa:.2f})"
        )
        for title in ("reasons", "advice", "notes"):
            items = getattr(self, title)
            if items:
                lines += [f"{title}:", *(f"  - {item}" for item in items)]
        return "\n".join(lines)


def _evidence_table(nets: Sequence[NetEvidence]) -> str:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    rows = {
        "separation": [f"{n.separation:.2f}" for n in nets],
        "weights": [f"{n.weights[0]:.3f}/{n.weights[1]:.3f}" for n in nets],
        "noise rate": [percent(n.noise_rate) for n in nets],
        "first noise rate": [percent(n.first_noise_rate) for n in nets],
        "labeled set": [str(n.n_labeled) for n in nets],
        "labeled accuracy": [percent(n.labeled_accuracy) for n in nets],
        "chance accuracy": [percent(n.chance_accuracy) for n in nets],
    }
    header = "".join(f"{f'net{i}':>14}" for i in range(1, len(nets) + 1))
    body = [
        f"{name:<18}" + "".join(f"{v:>14}" for v in row) for name, row in rows.items()
    ]
    return "\n".join([f"{'':<18}{header}", *body])


# -- measurements ------------------------------------------------------------


def _kappa(observed: float, expected: float) -> float:
    """Cohen's kappa from observed and chance agreement; NaN if undefined."""
    if not np.isfinite(observed) or expected >= 1.0:
        return float("nan")
    return float((observed - expected) / (1.0 - expected))


def _chance_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Agreement of two labelings drawn independently with their own shares."""
    values, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    counts_a = np.bincount(inverse[: len(a)], minlength=len(values))
    counts_b = np.bincount(inverse[len(a) :], minlength=len(values))
    return float(np.dot(counts_a, counts_b) / (len(a) * len(b)))


def _net_evidence(
    division: Division,
    peer: Division,
    predictions: np.ndarray,
    labels: np.ndarray,
    p_threshold: float,
    first_noise_rate: float | None,
) -> NetEvidence:
    labeled = peer.clean_proba > p_threshold
    pred, given = predictions[labeled], labels[labeled]
    accuracy, chance = float("nan"), float("nan")
    if labeled.any():
        accuracy, chance = np.mean(pred == given), _chance_agreement(pred, given)
    return NetEvidence(
        separation=float(division.separation),
        degenerate=bool(division.degenerate),
        weights=(float(division.weights[0]), float(division.weights[1])),
        noise_rate=estimate_noise_rate([division], p_threshold),
        first_noise_rate=first_noise_rate,
        n_labeled=int(np.sum(division.clean_proba > p_threshold)),
        labeled_accuracy=float(accuracy),
        chance_accuracy=chance,
    )


def summarize_notes(notes: Iterable[str]) -> tuple[str, ...]:
    """One line per kind of note, in order of first appearance, with a count.

    Notes of one kind differ only in their numbers and in what follows a
    semicolon, which are dropped: ``"net1's division: tiny labeled set (3
    samples)"`` in two epochs becomes ``"net1's division: tiny labeled set
    (2 epochs)"``.
    """
    counts: dict[str, int] = {}
    for note in notes:
        kind = re.sub(r"^Epoch \d+, |\s*\([^)]*\)", "", note)
        kind = kind.split(";")[0].rstrip(". ")
        counts[kind] = counts.get(kind, 0) + 1
    return tuple(f"{k} ({n} epoch{'s' * (n > 1)})" for k, n in counts.items())


# -- checks: each returns (reason, advice key) or None -------------------------

_Finding = tuple[str, str] | None


def _check_chance(name: str, net: NetEvidence) -> _Finding:
    if not net.labeled_kappa < MIN_LABELED_KAPPA:  # NaN: the 'tiny' check's
        return None
    reason = (
        f"{name} is at chance on the labeled set it trains on: it predicts the "
        f"given label of {net.labeled_accuracy:.0%} of them, where guessing "
        f"gets {net.chance_accuracy:.0%}"
    )
    return reason, "chance"


def _check_bimodal(name: str, net: NetEvidence) -> _Finding:
    if not net.degenerate:
        return None
    reason = (
        f"{name}'s final losses are not bimodal (separation "
        f"{net.separation:.2f} < {MIN_SEPARATION:g})"
    )
    learned = not net.labeled_kappa < MIN_LABELED_KAPPA
    if learned and net.noise_rate < FEW_WRONG_LABELS:
        reason += (
            f" and it calls only {net.noise_rate:.1%} of the labels wrong: "
            "there may be few wrong labels to find, and those it calls wrong "
            "are then the tail of the right ones"
        )
        return reason, "few"
    return reason + ": its split does not tell right labels from wrong", "degenerate"


def _check_tiny(name: str, net: NetEvidence, n_classes: int) -> _Finding:
    if net.n_labeled >= n_classes:
        return None
    reason = (
        f"{name}'s final division calls only {net.n_labeled} "
        f"label{'s' * (net.n_labeled != 1)} clean, fewer than there are classes"
    )
    return reason, "tiny"


def _check_collapse(name: str, net: NetEvidence) -> _Finding:
    first = net.first_noise_rate
    if first is None or not first - net.noise_rate > MAX_NOISE_DROP:
        return None
    reason = (
        f"{name}'s final division calls {net.noise_rate:.1%} of the labels "
        f"wrong where its first division estimated {first:.1%} (mixture "
        f"weights {net.weights[0]:.3f}, {net.weights[1]:.3f}): the split has "
        "collapsed towards calling every label clean"
    )
    return reason, "collapse"


def _check_agreement(nets: Sequence[NetEvidence], kappa: float) -> _Finding:
    few = min(n.noise_rate for n in nets) < MIN_NOISE_FOR_AGREEMENT
    if few or not kappa < MIN_MASK_KAPPA:
        return None
    reason = (
        f"the two nets' divisions barely agree (kappa {kappa:.2f}): which "
        "labels are wrong depends on the net that is asked"
    )
    return reason, "agreement"


def _first_rates(first_noise_rates, n_nets: int) -> list[float | None]:
    if first_noise_rates is None or np.ndim(first_noise_rates) == 0:
        return [first_noise_rates] * n_nets
    return [None if r is None else float(r) for r in first_noise_rates]


def judge_fit(
    final_divisions: Sequence[Division],
    net_predictions: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    n_classes: int,
    p_threshold: float,
    first_noise_rates: Sequence[float] | float | None = None,
    stopped_in_warmup: bool = False,
    notes: Iterable[str] = (),
) -> FitVerdict:
    """Decide whether a fit's final division can be trusted.

    Parameters
    ----------
    final_divisions : sequence of 2 Division
        Each net's division after the last epoch: the ones behind
        ``clean_proba_``.
    net_predictions : sequence of 2 ndarray of shape (n_samples,)
        Each net's predicted class index of every training sample (eval
        mode, no augmentation).
    labels : ndarray of shape (n_samples,)
        The given labels, encoded as class indices.
    n_classes : int
        Number of classes.
    p_threshold : float
        Clean-probability threshold of the labeled set.
    first_noise_rates : sequence of 2 float, float or None, default=None
        Each net's noise rate (share with ``clean_proba <= p_threshold``) at
        the first division after warm-up, or one float for both. None skips
        the collapse check.
    stopped_in_warmup : bool, default=False
        Training never reached a MixMatch epoch.
    notes : iterable of str, default=()
        The notes of ``history_``, all epochs together.

    Returns
    -------
    verdict : FitVerdict
        The evidence, and ``trusted`` with the reasons and advice.
    """
    labels = np.asarray(labels)
    firsts = _first_rates(first_noise_rates, len(final_divisions))
    peers = list(final_divisions)[::-1]
    nets = tuple(
        _net_evidence(d, peer, np.asarray(pred), labels, p_threshold, first)
        for d, peer, pred, first in zip(
            final_divisions, peers, net_predictions, firsts, strict=True
        )
    )
    masks = [d.clean_proba > p_threshold for d in final_divisions]
    agreement = float(np.mean(masks[0] == masks[-1]))
    kappa = _kappa(agreement, _chance_agreement(masks[0], masks[-1]))
    found = [(_WARMUP_ONLY, "warmup")] if stopped_in_warmup else []
    for i, net in enumerate(nets, start=1):
        name = f"net{i}"
        found += [
            _check_chance(name, net),
            _check_bimodal(name, net),
            _check_tiny(name, net, n_classes),
            _check_collapse(name, net),
        ]
    found.append(_check_agreement(nets, kappa))
    found = [f for f in found if f is not None]
    return FitVerdict(
        nets=nets,
        mask_agreement=agreement,
        mask_kappa=kappa,
        stopped_in_warmup=bool(stopped_in_warmup),
        notes=summarize_notes(notes),
        reasons=tuple(reason for reason, _ in found),
        advice=tuple(dict.fromkeys(_ADVICE[key] for _, key in found)),
    )


class UntrustedFitWarning(DivisionWarning):
    """The fit's final division, and so ``clean_mask_``, can't be trusted.

    A :class:`DivisionWarning`, so that filters written for the mid-fit
    division warnings of earlier versions still apply.
    """


def warn_if_untrusted(verdict: FitVerdict, stacklevel: int = 2) -> None:
    """Raise one :class:`UntrustedFitWarning` if the verdict is untrusted.

    Parameters
    ----------
    verdict : FitVerdict
        The verdict of :func:`judge_fit`.
    stacklevel : int, default=2
        As in :func:`warnings.warn`, counted from the caller of this
        function: 1 is the line that calls it, 2 that line's caller, and so
        on. Pass the depth of the user's call to ``fit``.
    """
    if verdict.trusted:
        return
    message = (
        f"clean_mask_ can't be trusted: {'; '.join(verdict.reasons)}. "
        f"Try: {'; '.join(verdict.advice)}. The evidence is in fit_verdict_."
    )
    if verdict.notes:
        message += f" Seen during training: {'; '.join(verdict.notes)}."
    warnings.warn(message, UntrustedFitWarning, stacklevel=stacklevel + 1)
