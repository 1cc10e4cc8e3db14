"""The words of the fit verdict: reasons, advice, the warning and the report.

Kept apart from the checks of ``_verdict.py`` so that a sentence can change
without touching a threshold. Each function turns evidence into text and
reads nothing else; every number a sentence states is one the verdict keeps
in ``fit_verdict_``, so that the text can be checked against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ._division import MIN_SEPARATION

__all__ = [
    "ADVICE",
    "PRIORITY",
    "agreement_reason",
    "bimodal_reason",
    "chance_reason",
    "collapse_reason",
    "evidence_table",
    "one_class_reason",
    "overflag_reason",
    "summarize_notes",
    "tiny_reason",
    "warning_message",
    "WARMUP_ONLY",
]

# Cohen's kappa below this is "slight" agreement on Landis and Koch's scale:
# the sentence says "barely above chance"; from here up to the verdict's
# threshold it says "learned ... only weakly". Wording only, never a check.
SLIGHT_KAPPA = 0.2

# The findings from the most to the least fundamental: a net at chance makes
# every later symptom (a split that is not bimodal, two masks that disagree)
# a consequence, so its fix is the one to try first. The warning shows the
# first finding and the first two tips of this order.
PRIORITY = (
    "warmup",
    "constant",
    "chance",
    "one_class",
    "tiny",
    "collapse",
    "degenerate",
    "few",
    "overflag",
    "agreement",
)

# What to try, most likely first. The warning shows the first two tips of the
# most fundamental finding; ``fit_verdict_['advice']`` has them all.
ADVICE = {
    "warmup": (
        "raise max_epochs well above warmup_epochs (the paper trains 300 "
        "epochs, 10 of them warm-up)",
        "lower max_warmup_epochs",
    ),
    "constant": (
        "check that X is scaled (images are standardised per channel by "
        "default; feature vectors need normalize=True or a scaler)",
        "lower lr: a net that predicts one class for almost every sample may "
        "have diverged",
    ),
    "chance": (
        "train longer (max_epochs)",
        "use a smaller module if the data set is small (a ResNet on a few "
        "hundred samples learns little in a few epochs)",
        "lower lr",
        "check that X is scaled (feature vectors need normalize=True or a scaler)",
    ),
    "one_class": (
        "check the labels and the input: the division kept the labels of a "
        "single class",
        "warm up longer (warmup_epochs) so that every class is learnt before "
        "the first division",
    ),
    "tiny": (
        "check the labels and the input: a net finds almost none of the "
        "labels learnable",
    ),
    "collapse": (
        "lower lr or use a smaller module, so that the nets do not memorise "
        "the wrong labels",
    ),
    "degenerate": (
        "warm up longer (warmup_epochs, max_warmup_epochs) so that the losses "
        "become bimodal",
        "at very high noise use loss_window=5 and p_threshold=0.6 (what 'auto' "
        "picks where the first division flags 40 % of the labels or more)",
    ),
    "few": (
        "if few labels are wrong, rank the samples by clean_proba_ "
        "(get_label_issues) rather than thresholding it",
    ),
    "overflag": (
        "division='per_class', which sets the threshold within each class",
        "train longer (max_epochs), so that hard classes are learnt before "
        "their losses are judged",
    ),
    "agreement": ("give both nets more epochs (max_epochs) to converge",),
    # over-flagging when the threshold is already set within each class
    "overflag_within": (
        "train longer (max_epochs), so that hard classes are learnt before "
        "their losses are judged",
        "look at that class's flagged labels (get_label_issues): if most are "
        "right, lower p_threshold so that fewer are flagged",
    ),
}

WARMUP_ONLY = (
    "training never left warm-up: the division comes from nets trained with "
    "plain cross-entropy on the given labels, which memorise wrong labels as "
    "training goes on"
)


def _percent(value: float) -> str:
    return f"{value:.0%}"


def chance_reason(name: str, net, constant: bool) -> str:
    """How far a net's predictions on its labeled set are from chance.

    The words follow Cohen's kappa, never the raw accuracy: 41 % right
    against 18 % by chance is kappa 0.28, weak but not chance, and saying
    "at chance" there contradicts the numbers that follow.
    """
    accuracy, chance, kappa = (
        net.labeled_accuracy,
        net.chance_accuracy,
        net.labeled_kappa,
    )
    where = "on the labeled set it trains on"
    if kappa <= 0:
        text = (
            f"{name} is at chance {where}: it predicts the given label of "
            f"{_percent(accuracy)} of them, no more than predictions "
            f"independent of the labels would ({_percent(chance)})"
        )
    else:
        level = (
            "is barely above chance" if kappa < SLIGHT_KAPPA else "learned only weakly"
        )
        text = (
            f"{name} {level} {where}: it predicts the given label of "
            f"{_percent(accuracy)} of them, where predictions independent of "
            f"the labels would get {_percent(chance)} (Cohen's kappa "
            f"{kappa:.2f}; sound fits reach 0.9)"
        )
    if constant:
        text += (
            f", and it predicts one class for {_percent(net.top_prediction_share)} "
            "of them"
        )
    return text


def one_class_reason(name: str) -> str:
    """The labeled set a net trains on holds the labels of one class only."""
    return (
        f"the labeled set {name} trains on holds a single class: nothing there "
        "tells a right label from a wrong one, and no agreement beyond chance "
        "can be measured"
    )


def bimodal_reason(name: str, net, few: bool) -> str:
    """A final division that is not bimodal, with what that likely means."""
    reason = (
        f"{name}'s final losses are not bimodal (separation "
        f"{net.separation:.2f} < {MIN_SEPARATION:g})"
    )
    if few:
        return reason + (
            f" and it calls only {net.noise_rate:.1%} of the labels wrong: "
            "there may be few wrong labels to find, and those it calls wrong "
            "are then the tail of the right ones"
        )
    return reason + ": its split does not tell right labels from wrong"


def tiny_reason(name: str, net) -> str:
    """Fewer labeled samples than classes."""
    n = net.n_labeled
    return (
        f"{name}'s final division calls only {n} label{'s' * (n != 1)} clean, "
        "fewer than there are classes"
    )


def collapse_reason(name: str, net) -> str:
    """The final division calls far fewer labels wrong than the first."""
    return (
        f"{name}'s final division calls {net.noise_rate:.1%} of the labels "
        f"wrong where its first division estimated {net.first_noise_rate:.1%} "
        f"(mixture weights {net.weights[0]:.3f}, {net.weights[1]:.3f}): the "
        "split has collapsed towards calling every label clean"
    )


def agreement_reason(kappa: float) -> str:
    """The two nets' masks agree little beyond chance."""
    return (
        f"the two nets' divisions barely agree (kappa {kappa:.2f}): which "
        "labels are wrong depends on the net that is asked"
    )


def overflag_reason(
    classes: Sequence[int], shares: Sequence[float], median: float, flagged: float
) -> str:
    """Classes flagged far more than the median class, by index in ``classes_``."""
    named = " and ".join(f"classes_[{c}] ({shares[c]:.0%})" for c in classes)
    these = "those classes" if len(classes) > 1 else "that class"
    return (
        f"the fit flags {flagged:.0%} of the labels, but {named} against "
        f"{median:.0%} in the median class: clean but hard samples of {these} "
        "are probably flagged, unless their labels alone are that noisy"
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


def warning_message(reasons: Sequence[str], advice: Sequence[str]) -> str:
    """Three short lines: what is wrong, what to try, where the rest is.

    Only the most fundamental finding and its two most likely fixes: a
    warning that lists every symptom and every tip is not read. The rest is
    in ``fit_verdict_``, whose ``'report'`` prints it all.
    """
    others = len(reasons) - 1
    more = f" (and {others} more finding{'s' * (others > 1)})" if others else ""
    return (
        f"clean_mask_ can't be trusted: {reasons[0]}{more}.\n"
        f"Try: {'; or '.join(advice[:2])}.\n"
        "The evidence, every finding and all advice: fit_verdict_['report']."
    )


def evidence_table(nets: Sequence) -> str:
    """Per net, one column of the evidence the checks read."""

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
        "labeled kappa": [f"{n.labeled_kappa:.2f}" for n in nets],
    }
    header = "".join(f"{f'net{i}':>14}" for i in range(1, len(nets) + 1))
    body = [
        f"{name:<18}" + "".join(f"{v:>14}" for v in row) for name, row in rows.items()
    ]
    return "\n".join([f"{'':<18}{header}", *body])
