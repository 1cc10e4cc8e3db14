"""The automatic choices of a fit: lambda_u='auto', warm-up extension, and
falling back to a net's last bimodal division."""

import numpy as np
import pytest

from sklearn_dividemix import DivideMixClassifier, _divider
from sklearn_dividemix._division import (
    MIN_SEPARATION,
    Division,
    auto_lambda_u,
    estimate_noise_rate,
    warmup_should_continue,
)
from sklearn_dividemix._fit_state import Phase

TINY = dict(batch_size=32, lr=0.1, random_state=0, module__hidden_units=16)


def _division(clean_proba, separation):
    return Division(
        clean_proba=np.asarray(clean_proba, dtype=float),
        means=(0.1, 0.8),
        variances=(0.01, 0.01),
        weights=(0.5, 0.5),
        separation=separation,
        degenerate=separation < MIN_SEPARATION,
        histogram=np.zeros(50),
    )


@pytest.mark.parametrize(
    "noise_rate, n_classes, expected",
    [
        (0.0, 10, 0.0),
        (0.18, 10, 0.0),  # CIFAR-10 sym 20 %
        (0.20, 10, 0.0),  # CIFAR-10 asym 40 %
        (0.45, 10, 25.0),  # sym 50 %
        (0.72, 10, 25.0),  # sym 80 %
        (0.81, 10, 50.0),  # sym 90 %
        (0.18, 100, 25.0),  # CIFAR-100 sym 20 %
        (0.45, 100, 150.0),
        (0.81, 100, 150.0),
        (0.29, 31, 0.0),
        (0.29, 32, 25.0),
    ],
)
def test_auto_lambda_u_follows_the_papers_table(noise_rate, n_classes, expected):
    assert auto_lambda_u(noise_rate, n_classes) == expected


def test_estimate_noise_rate_averages_the_unlabeled_shares():
    first = _division([0.9, 0.8, 0.2, 0.1], 3.0)  # half unlabeled
    second = _division([0.9, 0.8, 0.7, 0.5], 3.0)  # 0.5 is not above 0.5
    assert estimate_noise_rate([first, second], p_threshold=0.5) == pytest.approx(
        (0.5 + 0.25) / 2
    )


@pytest.mark.parametrize(
    "separation, previous, epoch, limit, expected",
    [
        (1.0, None, 10, 15, True),  # first check, not bimodal: go on
        (1.5, 1.0, 11, 15, True),  # still growing
        (1.4, 1.5, 12, 15, False),  # shrinking: memorising, stop
        (2.5, None, 10, 15, False),  # bimodal: MixMatch
        (1.0, None, 15, 15, False),  # limit reached
    ],
)
def test_warmup_should_continue(separation, previous, epoch, limit, expected):
    assert warmup_should_continue(separation, previous, epoch, limit) is expected


def test_keep_healthy_reuses_the_last_bimodal_division():
    phase = Phase()
    good = [_division([0.9, 0.1], 3.0), _division([0.8, 0.2], 2.5)]
    kept, notes = phase.keep_healthy(good, epoch=10)
    assert kept == good and notes == []
    bad = [_division([0.6, 0.6], 1.2), _division([0.7, 0.3], 2.2)]
    kept, notes = phase.keep_healthy(bad, epoch=11)
    assert kept[0] is good[0] and kept[1] is bad[1]
    assert notes == [
        "net1's division: losses not bimodal (separation 1.20); reusing its "
        "division of epoch 11"
    ]


def test_keep_healthy_keeps_a_degenerate_division_without_a_better_one():
    phase = Phase()
    bad = [_division([0.6, 0.6], 1.2), _division([0.6, 0.6], 0.5)]
    kept, notes = phase.keep_healthy(bad, epoch=10)
    assert kept == bad and notes == []


def _scripted_divisions(monkeypatch, separations):
    """Make each net's division have the given separations, in turn."""
    calls = iter(np.repeat(separations, 2))  # the two nets of each epoch

    def fake(self, losses, window, random_state):
        n = len(losses)
        clean = np.r_[np.full(n // 2, 0.9), np.full(n - n // 2, 0.1)]
        return _division(clean, float(next(calls, 3.0)))

    # every division of the fit, the final one included, goes through the seam
    monkeypatch.setattr(_divider.Divider, "__call__", fake)


def test_warmup_is_extended_while_the_division_sharpens(monkeypatch, noisy_digits):
    d = noisy_digits
    # checks after epochs 2, 3, 4: not bimodal and growing, then bimodal
    _scripted_divisions(monkeypatch, [1.0, 1.5, 2.5])
    clf = DivideMixClassifier(max_epochs=8, warmup_epochs=2, rampup_epochs=16, **TINY)
    clf.fit(d["X_train"][:200], d["y_noisy"][:200])
    phases = clf.history_[:, "phase"]
    assert phases == ["warmup"] * 4 + ["mixmatch"] * 4
    assert clf.warmup_epochs_ == 4
    notes = clf.history_[2, "notes"]
    assert notes and notes[0].startswith("warm-up extended")
    # the ramp-up starts where warm-up really ended (rampup_epochs=16)
    assert clf.history_[4, "unlabeled_weight"] == pytest.approx(clf.lambda_u_ * 1 / 16)


@pytest.mark.parametrize(
    "separations, max_warmup_epochs, expected_warmup",
    [
        ([1.5, 1.2], "auto", 3),  # shrinking after one extra epoch
        ([1.0, 1.1, 1.2, 1.3, 1.4], "auto", 4),  # 'auto' = max_epochs // 2
        ([1.0, 1.1, 1.2], 2, 2),  # the paper's fixed warm-up
    ],
)
def test_warmup_extension_stops(
    monkeypatch, noisy_digits, separations, max_warmup_epochs, expected_warmup
):
    d = noisy_digits
    _scripted_divisions(monkeypatch, separations)
    clf = DivideMixClassifier(
        max_epochs=8, warmup_epochs=2, max_warmup_epochs=max_warmup_epochs, **TINY
    )
    with np.errstate(all="ignore"):
        clf.fit(d["X_train"][:200], d["y_noisy"][:200])
    assert clf.warmup_epochs_ == expected_warmup
    assert clf.history_[:, "phase"].count("warmup") == expected_warmup


@pytest.mark.parametrize("lambda_u, expected", [("auto", 25.0), (7.0, 7.0)])
def test_lambda_u_auto_is_chosen_from_the_first_division(
    monkeypatch, noisy_digits, lambda_u, expected
):
    d = noisy_digits
    # half of the samples unlabeled: an estimated noise rate of 0.5
    _scripted_divisions(monkeypatch, [3.0])
    clf = DivideMixClassifier(max_epochs=4, warmup_epochs=2, lambda_u=lambda_u, **TINY)
    clf.fit(d["X_train"][:200], d["y_noisy"][:200])
    assert clf.lambda_u_ == expected
    mixmatch = [row for row in clf.history_ if row["phase"] == "mixmatch"]
    assert [row["lambda_u"] for row in mixmatch] == [expected, expected]


def test_lambda_u_auto_on_clean_labels_picks_zero(noisy_digits):
    d = noisy_digits
    X, y_true = d["X_train"][:600], d["y_train"][:600]
    clf = DivideMixClassifier(
        max_epochs=7,
        warmup_epochs=6,
        batch_size=32,
        lr=0.1,
        lambda_u="auto",
        division="global",
        random_state=0,
    )
    # clean labels give unimodal losses: the division says so, in the history
    # and the verdict, not in a warning of its own
    clf.fit(X, y_true)
    notes = [note for row in clf.history_ for note in row["notes"]]
    assert any("not bimodal" in note for note in notes)
    assert any("not bimodal" in note for note in clf.fit_verdict_["notes"])
    first = next(row for row in clf.history_ if row["phase"] == "mixmatch")
    unlabeled = 1 - np.mean([first["labeled_net1"], first["labeled_net2"]]) / 600
    assert unlabeled < 0.3
    assert clf.lambda_u_ == 0.0


def test_degenerate_divisions_fall_back_in_training_and_at_the_end(
    monkeypatch, noisy_digits
):
    d = noisy_digits
    # bimodal for the first MixMatch epoch, then never again
    _scripted_divisions(monkeypatch, [3.0] + [0.5] * 10)
    clf = DivideMixClassifier(max_epochs=5, warmup_epochs=2, **TINY)
    clf.fit(d["X_train"][:200], d["y_noisy"][:200])
    notes = [note for row in clf.history_ for note in row["notes"]]
    assert any("reusing its division of epoch 3" in note for note in notes)
    assert all(
        row["division_net1"]["separation"] == 3.0
        for row in clf.history_
        if row["phase"] == "mixmatch"
    )
    assert clf.final_divisions_[0]["separation"] == 3.0
