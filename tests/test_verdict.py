"""The end-of-fit verdict: evidence, checks, the one warning."""

import json
import warnings

import numpy as np
import pytest

from sklearn_dividemix import CIFAR10_ASYMMETRIC_MAP, make_noisy_labels
from sklearn_dividemix._division import Division, divide_losses, normalize_losses
from sklearn_dividemix._verdict import (
    MAX_NOISE_DROP,
    MIN_LABELED_KAPPA,
    FitVerdict,
    NetEvidence,
    UntrustedFitWarning,
    _chance_agreement,
    _check_chance,
    _kappa,
    judge_fit,
    summarize_notes,
    warn_if_untrusted,
)

N_CLASSES = 10


def _division(noisy, separation=4.0, weights=None):
    """A hand-built division calling the samples of ``noisy`` wrong."""
    noisy = np.asarray(noisy, dtype=bool)
    rate = noisy.mean()
    return Division(
        clean_proba=np.where(noisy, 0.1, 0.9),
        means=(0.1, 0.8),
        variances=(0.01, 0.02),
        weights=weights or (1 - rate, rate),
        separation=separation,
        degenerate=separation < 2.0,
        histogram=np.zeros(50, dtype=int),
    )


def _noisy_data(n=1000, noise=0.35, seed=0):
    """Given labels, which of them are wrong, and a net that learned the truth."""
    rng = np.random.RandomState(seed)
    truth = rng.randint(N_CLASSES, size=n)
    wrong = rng.rand(n) < noise
    labels = np.where(wrong, (truth + rng.randint(1, N_CLASSES, size=n)) % 10, truth)
    return labels, wrong, truth


def _judge(divisions, predictions, labels, **kwargs):
    kwargs = {"n_classes": N_CLASSES, "p_threshold": 0.5, **kwargs}
    return judge_fit(divisions, predictions, labels, **kwargs)


def _sound():
    labels, wrong, truth = _noisy_data()
    divisions = [_division(wrong), _division(wrong)]
    first = wrong.mean() + 0.03
    return _judge(divisions, [truth, truth], labels, first_noise_rates=first)


def test_sound_fit_is_trusted():
    verdict = _sound()
    assert isinstance(verdict, FitVerdict)
    assert verdict.trusted and verdict.reasons == () and verdict.advice == ()
    assert len(verdict.nets) == 2
    net = verdict.nets[0]
    assert isinstance(net, NetEvidence)
    assert net.separation == 4.0 and not net.degenerate
    assert net.noise_rate == pytest.approx(0.35, abs=0.03)
    assert net.n_labeled == 1000 - round(net.noise_rate * 1000)
    # the net predicts the true class: right on every clean label
    assert net.labeled_accuracy == 1.0
    assert net.chance_accuracy == pytest.approx(0.1, abs=0.01)
    assert net.labeled_kappa == pytest.approx(1.0)
    assert verdict.mask_agreement == 1.0 and verdict.mask_kappa == 1.0


def test_divisions_from_real_mixtures():
    """Bimodal losses give a trusted verdict, one bump of losses does not."""
    labels, wrong, truth = _noisy_data()
    rng = np.random.RandomState(1)
    bimodal = np.where(wrong, rng.normal(2.5, 0.4, 1000), rng.normal(0.2, 0.1, 1000))
    one_bump = rng.normal(1.0, 0.3, 1000)
    sound = divide_losses(normalize_losses(bimodal), random_state=0)
    assert not sound.degenerate
    verdict = _judge([sound, sound], [truth, truth], labels, first_noise_rates=0.35)
    assert verdict.trusted
    flat = divide_losses(normalize_losses(one_bump), random_state=0)
    assert flat.degenerate
    verdict = _judge([sound, flat], [truth, truth], labels, first_noise_rates=0.35)
    assert not verdict.trusted
    assert any("net2's final losses are not bimodal" in r for r in verdict.reasons)


@pytest.mark.parametrize("kind", ["uniform", "constant"])
def test_net_at_chance_is_flagged(kind):
    labels, wrong, truth = _noisy_data()
    rng = np.random.RandomState(2)
    guesses = rng.randint(N_CLASSES, size=1000) if kind == "uniform" else truth * 0 + 3
    divisions = [_division(wrong), _division(wrong)]
    verdict = _judge(divisions, [truth, guesses], labels, first_noise_rates=0.35)
    assert not verdict.trusted
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("net2 is at chance")
    assert verdict.nets[1].labeled_kappa < MIN_LABELED_KAPPA
    # chance is the share a constant prediction gets, not 1 / n_classes only
    expected = np.mean(labels[~wrong] == 3) if kind == "constant" else 0.1
    assert verdict.nets[1].chance_accuracy == pytest.approx(expected, abs=0.02)
    assert any("lower lr" in a for a in verdict.advice)


def _evidence(accuracy, chance, **kwargs):
    values = dict(
        separation=3.0,
        degenerate=False,
        weights=(0.8, 0.2),
        noise_rate=0.2,
        first_noise_rate=0.2,
        n_labeled=300,
        labeled_accuracy=accuracy,
        chance_accuracy=chance,
        labeled_classes=10,
        top_prediction_share=0.2,
    )
    return NetEvidence(**{**values, **kwargs})


def test_chance_wording_follows_kappa_not_accuracy():
    """Issue 20: "net1 is at chance ... 41 % of them, where guessing gets 18 %"."""
    net = _evidence(0.41, 0.18)
    assert net.labeled_kappa == pytest.approx(0.28, abs=0.005)
    reason, key = _check_chance("net1", net)
    assert key == "chance"
    assert "at chance" not in reason
    assert reason.startswith("net1 learned only weakly on the labeled set")
    assert "41%" in reason and "18%" in reason and "kappa 0.28" in reason
    # slight agreement (Landis and Koch: below 0.2) is "barely above chance"
    reason, _ = _check_chance("net1", _evidence(0.25, 0.1))
    assert reason.startswith("net1 is barely above chance") and "kappa 0.17" in reason
    # no better than chance: then, and only then, "at chance"
    reason, _ = _check_chance("net2", _evidence(0.09, 0.1))
    assert reason.startswith("net2 is at chance") and "no more than" in reason
    assert _check_chance("net1", _evidence(0.95, 0.1)) is None


def test_chance_wording_of_a_constant_prediction_of_an_absent_class():
    """Issue 20: "0 % ... guessing gets 0 %": one class predicted, never given."""
    rng = np.random.RandomState(8)
    labels = rng.randint(1, N_CLASSES, size=1000)  # class 0 is never given
    wrong = rng.rand(1000) < 0.3
    divisions = [_division(wrong), _division(wrong)]
    constant = np.zeros(1000, dtype=int)
    verdict = _judge(divisions, [labels, constant], labels, first_noise_rates=0.3)
    net = verdict.nets[1]
    assert net.labeled_accuracy == 0.0 and net.chance_accuracy == 0.0
    assert net.labeled_kappa == 0.0 and net.top_prediction_share == 1.0
    reason = verdict.reasons[0]
    assert reason.startswith("net2 is at chance")
    assert "it predicts one class for 100% of them" in reason
    assert "where guessing gets" not in reason
    # a constant prediction points at the input's scale or a diverged lr
    assert verdict.advice[0].startswith("check that X is scaled")
    assert "lower lr" in verdict.advice[1]


def test_labeled_set_of_one_class_is_not_trusted():
    """Issue 20: kappa NaN (one class, predicted right) escaped the check."""
    labels, _, truth = _noisy_data()
    # the division keeps the labels of class 3 only; the nets predict them
    one_class = labels != 3
    divisions = [_division(one_class), _division(one_class)]
    verdict = _judge(divisions, [labels, labels], labels, first_noise_rates=0.9)
    net = verdict.nets[0]
    assert net.labeled_classes == 1 and np.isnan(net.labeled_kappa)
    assert not verdict.trusted
    assert "the labeled set net1 trains on holds a single class" in verdict.reasons[0]
    assert any("single class" in a for a in verdict.advice)


def test_issue_failure_collapsed_division_at_chance():
    """resnet18, 3 epochs, 512 CIFAR-10 images, 35 % noise: 508/512 'clean'."""
    labels, _, _ = _noisy_data(n=512)
    rng = np.random.RandomState(3)
    noisy = np.zeros(512, dtype=bool)
    noisy[:4] = True
    collapsed = _division(noisy, separation=2.5, weights=(0.994, 0.006))
    guesses = [rng.randint(N_CLASSES, size=512) for _ in range(2)]
    verdict = _judge(
        [collapsed, collapsed], guesses, labels, first_noise_rates=(0.33, 0.36)
    )
    assert not verdict.trusted
    text = " ".join(verdict.reasons)
    assert "net1 is at chance" in text and "net2 is at chance" in text
    assert "calls 0.8% of the labels wrong where its first division estimated " in text
    assert "0.994, 0.006" in text and "collapsed" in text


def test_collapse_towards_all_clean():
    labels, _, _ = _noisy_data()
    noisy = np.arange(1000) < 20
    divisions = [_division(noisy), _division(noisy)]
    verdict = _judge(divisions, [labels, labels], labels, first_noise_rates=0.35)
    assert len(verdict.reasons) == 2
    assert all("the split has collapsed" in r for r in verdict.reasons)
    assert 0.35 - verdict.nets[0].noise_rate > MAX_NOISE_DROP
    # without a first estimate there is nothing to collapse from
    assert _judge(divisions, [labels, labels], labels).trusted


def test_rise_of_the_noise_rate_is_not_a_collapse():
    """Pair-flipped labels: warm-up learns some flips, later fits tell them apart."""
    labels, wrong, truth = _noisy_data()
    divisions = [_division(wrong), _division(wrong)]
    verdict = _judge(divisions, [truth, truth], labels, first_noise_rates=0.1)
    assert verdict.trusted


def test_degenerate_division_with_many_called_wrong():
    labels, wrong, truth = _noisy_data()
    divisions = [_division(wrong, separation=1.3), _division(wrong)]
    verdict = _judge(divisions, [truth, truth], labels, first_noise_rates=0.35)
    assert verdict.reasons == (
        "net1's final losses are not bimodal (separation 1.30 < 2): its split "
        "does not tell right labels from wrong",
    )
    assert any("warm up longer" in a for a in verdict.advice)


def test_degenerate_division_of_clean_data_says_few_wrong_labels():
    """Clean data: one bump of losses, the mixture cuts off its tail."""
    rng = np.random.RandomState(4)
    labels = rng.randint(N_CLASSES, size=1000)
    tail = np.arange(1000) < 95
    divisions = [_division(tail, separation=1.8)] * 2
    verdict = _judge(divisions, [labels, labels], labels, first_noise_rates=0.02)
    assert not verdict.trusted
    assert "there may be few wrong labels to find" in verdict.reasons[0]
    assert any("get_label_issues" in a for a in verdict.advice)
    assert not any("warm up longer" in a for a in verdict.advice)


def test_empty_labeled_set():
    labels, _, truth = _noisy_data()
    everything = np.ones(1000, dtype=bool)
    divisions = [_division(everything), _division(everything)]
    verdict = _judge(divisions, [truth, truth], labels, first_noise_rates=0.35)
    net = verdict.nets[0]
    assert net.n_labeled == 0 and np.isnan(net.labeled_accuracy)
    assert np.isnan(verdict.mask_kappa)
    assert any("calls only 0 labels clean" in r for r in verdict.reasons)
    assert not any("at chance" in r for r in verdict.reasons)


def test_nets_that_disagree():
    labels, wrong, truth = _noisy_data()
    rng = np.random.RandomState(5)
    other = rng.permutation(wrong)
    divisions = [_division(wrong), _division(other)]
    verdict = _judge(divisions, [truth, truth], labels, first_noise_rates=0.35)
    assert abs(verdict.mask_kappa) < 0.1
    assert verdict.mask_agreement == pytest.approx(1 - 2 * 0.35 * 0.65, abs=0.05)
    assert any("barely agree" in r for r in verdict.reasons)


def test_agreement_check_skipped_when_few_called_wrong():
    labels, _, truth = _noisy_data()
    a, b = np.zeros(1000, dtype=bool), np.zeros(1000, dtype=bool)
    a[:20], b[20:40] = True, True
    divisions = [_division(a), _division(b)]
    verdict = _judge(divisions, [labels, labels], labels, first_noise_rates=0.02)
    assert verdict.mask_kappa < 0
    assert verdict.trusted


def test_stopped_in_warmup():
    labels, wrong, truth = _noisy_data()
    divisions = [_division(wrong), _division(wrong)]
    verdict = _judge(divisions, [truth, truth], labels, stopped_in_warmup=True)
    assert verdict.stopped_in_warmup
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("training never left warm-up")
    assert any("max_epochs well above warmup_epochs" in a for a in verdict.advice)


def test_notes_are_summarised_and_reported():
    notes = [
        "net1's division: tiny labeled set (3 samples)",
        "warm-up extended: losses not bimodal yet (separation 1.40; warm-up goes "
        "on while it grows, up to epoch 15)",
        "net1's division: tiny labeled set (5 samples)",
        "net2's division: losses not bimodal (separation 1.76); reusing its "
        "division of epoch 2",
    ]
    assert summarize_notes(notes) == (
        "net1's division: tiny labeled set (2 epochs)",
        "warm-up extended: losses not bimodal yet (1 epoch)",
        "net2's division: losses not bimodal (1 epoch)",
    )
    labels, wrong, truth = _noisy_data()
    divisions = [_division(wrong), _division(wrong)]
    verdict = _judge(divisions, [truth, truth], labels, notes=notes)
    # mid-fit notes are evidence to report, not a verdict by themselves
    assert verdict.trusted and len(verdict.notes) == 3


def test_kappa_and_chance_agreement_hand_values():
    assert _kappa(0.9, 0.5) == pytest.approx(0.8)
    assert np.isnan(_kappa(1.0, 1.0)) and np.isnan(_kappa(float("nan"), 0.1))
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    # P(0) P(0) + P(1) P(1) = 0.5 * 0.25 + 0.5 * 0.75
    assert _chance_agreement(a, b) == pytest.approx(0.5)
    assert _chance_agreement(np.array([2, 2]), np.array([7, 7])) == 0.0


def test_to_dict_is_plain_and_json_serialisable():
    verdict = _sound()
    out = verdict.to_dict()
    assert out["trusted"] is True
    assert set(out) >= {"nets", "mask_agreement", "mask_kappa", "reasons", "advice"}
    assert set(out["nets"][0]) >= {
        "separation",
        "noise_rate",
        "first_noise_rate",
        "labeled_accuracy",
        "labeled_kappa",
        "weights",
    }
    again = json.loads(json.dumps(out))
    assert again["nets"][1]["noise_rate"] == out["nets"][1]["noise_rate"]
    assert again["trusted"] is True and again["reasons"] == []


def test_str_is_readable():
    text = str(_sound())
    assert text.startswith("Fit verdict: clean_mask_ is trusted")
    assert "separation" in text and "labeled accuracy" in text and "net2" in text
    labels, wrong, truth = _noisy_data()
    verdict = _judge(
        [_division(wrong), _division(wrong)],
        [truth, truth],
        labels,
        stopped_in_warmup=True,
    )
    text = str(verdict)
    assert "NOT trusted" in text and "reasons:" in text and "advice:" in text


def _many_reasons():
    """Warm-up only, nets at chance, collapsed, not bimodal: six findings."""
    labels, _, _ = _noisy_data()
    noisy = np.arange(1000) < 5
    rng = np.random.RandomState(6)
    guesses = [rng.randint(N_CLASSES, size=1000) for _ in range(2)]
    return _judge(
        [_division(noisy, separation=1.0)] * 2,
        guesses,
        labels,
        first_noise_rates=0.35,
        stopped_in_warmup=True,
        notes=["net1's division: losses not bimodal (separation 1.00)"],
    )


def test_warning_raised_once_and_names_clean_mask():
    verdict = _many_reasons()
    assert len(verdict.reasons) > 3
    with pytest.warns(UntrustedFitWarning) as record:
        warn_if_untrusted(verdict, stacklevel=1)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("clean_mask_ can't be trusted: ")
    assert message.count("clean_mask_") == 1
    assert "Try: " in message and "max_epochs" in message
    # stacklevel=1 points at the line that called warn_if_untrusted
    assert record[0].filename == __file__


def test_warning_is_a_few_short_lines():
    """Issue 20: one line of 1,002 characters with six generic tips, before."""
    verdict = _many_reasons()
    with pytest.warns(UntrustedFitWarning) as record:
        warn_if_untrusted(verdict, stacklevel=1)
    message = str(record[0].message)
    lines = message.splitlines()
    assert len(lines) <= 3
    assert all(len(line) <= 240 for line in lines), [len(x) for x in lines]
    # what is wrong: the most fundamental finding, and how many more there are
    assert lines[0] == (
        f"clean_mask_ can't be trusted: {verdict.reasons[0]} "
        f"(and {len(verdict.reasons) - 1} more findings)."
    )
    assert verdict.reasons[0].startswith("training never left warm-up")
    # the one or two most likely fixes, not all of them
    assert lines[1] == f"Try: {verdict.advice[0]}; or {verdict.advice[1]}."
    assert len(verdict.advice) > 2
    assert not any(tip in message for tip in verdict.advice[2:])
    # the rest is one attribute away, the notes included
    assert "fit_verdict_['report']" in lines[2]
    report = verdict.to_dict()["report"]
    assert all(r in report for r in verdict.reasons + verdict.advice)
    assert "net1's division: losses not bimodal (1 epoch)" in report


def test_findings_are_ordered_most_fundamental_first():
    """A net at chance explains a split that is not bimodal: say it first."""
    labels, wrong, truth = _noisy_data()
    rng = np.random.RandomState(7)
    guesses = rng.randint(N_CLASSES, size=1000)
    divisions = [_division(wrong, separation=1.3), _division(wrong)]
    verdict = _judge(divisions, [truth, guesses], labels, first_noise_rates=0.35)
    assert verdict.reasons[0].startswith("net2 is at chance")
    assert "not bimodal" in verdict.reasons[1]
    assert verdict.advice[0] == "train longer (max_epochs)"


def test_no_warning_for_a_sound_verdict():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_untrusted(_sound())


def test_verdict_is_frozen():
    verdict = _sound()
    with pytest.raises(AttributeError):
        verdict.reasons = ("x",)
    with pytest.raises(AttributeError):
        verdict.nets[0].noise_rate = 0.0


# Recorded with tests/scripts/overflagging_fashion.py (seed 0): Fashion-MNIST,
# 2,000 images, symmetric noise 20 % (18.2 % wrong), division='global',
# 15 epochs. Per given class: samples, flagged labels, wrong labels.
FASHION_COUNTS = [198, 192, 211, 190, 196, 220, 193, 193, 197, 210]
FASHION_FLAGGED = [64, 47, 74, 40, 86, 42, 147, 40, 48, 49]
FASHION_WRONG = [35, 40, 33, 29, 40, 39, 36, 38, 38, 35]


def _flagging(counts, flagged_counts, division="global"):
    """Sound nets, and a division flagging the first samples of each class."""
    labels = np.repeat(np.arange(len(counts)), counts)
    flagged = np.concatenate(
        [np.arange(n) < f for n, f in zip(counts, flagged_counts, strict=True)]
    )
    return _judge(
        [_division(flagged)] * 2,
        [labels, labels],
        labels,
        first_noise_rates=flagged.mean(),
        division=division,
    )


def test_overflagging_of_a_hard_class_recorded_on_fashion_mnist():
    """Issue 17: a third of the labels flagged at 18 % noise, and no word."""
    verdict = _flagging(FASHION_COUNTS, FASHION_FLAGGED)
    assert verdict.flagged_share == pytest.approx(0.3185)
    assert verdict.class_flagged_shares[6] == pytest.approx(147 / 193)
    assert not verdict.trusted
    assert verdict.reasons == (
        "the fit flags 32% of the labels, but classes_[6] (76%) against 24% in "
        "the median class: clean but hard samples of that class are probably "
        "flagged, unless their labels alone are that noisy",
    )
    assert verdict.advice[0].startswith("division='per_class'")
    assert "max_epochs" in verdict.advice[1]
    with pytest.warns(UntrustedFitWarning, match="classes_\\[6\\] \\(76%\\)"):
        warn_if_untrusted(verdict, stacklevel=1)
    # the same data, a division that flags the wrong labels: nothing to say
    assert _flagging(FASHION_COUNTS, FASHION_WRONG).trusted


def test_overflagging_advice_of_a_per_class_fit_does_not_suggest_per_class():
    """0.3 divides per class by default: its tips must not send users there."""
    verdict = _flagging(FASHION_COUNTS, FASHION_FLAGGED, division="per_class")
    assert not verdict.trusted
    assert not any("division='per_class'" in tip for tip in verdict.advice)
    assert "max_epochs" in verdict.advice[0]
    assert "p_threshold" in verdict.advice[1]


def test_class_dependent_noise_found_right_is_not_overflagging():
    """CIFAR-10's pair flips: 40 % of two classes wrong, none of five."""
    y = np.repeat(np.arange(10), 200)
    y_noisy, wrong = make_noisy_labels(
        y,
        noise_rate=0.4,
        kind="asymmetric",
        class_map=CIFAR10_ASYMMETRIC_MAP,
        random_state=0,
    )
    verdict = _judge([_division(wrong)] * 2, [y, y], y_noisy, first_noise_rates=0.2)
    shares = np.array(verdict.class_flagged_shares)
    assert shares.max() == pytest.approx(0.4, abs=0.03) and np.median(shares) < 0.2
    assert verdict.trusted


def test_small_classes_are_not_compared():
    counts = [200, 200, 200, 20]
    verdict = _flagging(counts, [40, 40, 40, 20])
    assert np.isnan(verdict.class_flagged_shares[3])
    assert verdict.trusted
