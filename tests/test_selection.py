"""The noise floor: at least the share of contradicted labels is flagged."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._division import Division
from sklearn_dividemix._selection import (
    disagreement_rate,
    floor_division,
    floor_divisions,
    resolve_noise_floor,
)


def _division(clean_proba):
    clean_proba = np.asarray(clean_proba, dtype=float)
    return Division(
        clean_proba=clean_proba,
        means=(0.1, 0.8),
        variances=(0.01, 0.01),
        weights=(0.5, 0.5),
        separation=3.0,
        degenerate=False,
        histogram=np.zeros(50),
    )


def test_disagreement_rate():
    assert disagreement_rate([0, 1, 2, 2], [0, 1, 1, 0]) == 0.5
    assert disagreement_rate([], []) == 0.0


def test_floor_flags_the_highest_losses_of_each_class_up_to_the_rate():
    labels = np.array([0] * 4 + [1] * 4)
    losses = np.array([0.1, 0.9, 0.5, 0.2, 0.3, 0.2, 0.8, 0.1])
    # class 0 has one flagged sample already (index 3), class 1 none
    division = _division([0.9, 0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9])
    floored = floor_division(division, losses, labels, rate=0.5, p_threshold=0.5)
    flagged = floored.clean_proba <= 0.5
    # class 0: index 3 stays flagged, the highest loss (index 1) joins it;
    # class 1: its two highest losses (6 and 4) are flagged
    np.testing.assert_array_equal(np.flatnonzero(flagged), [1, 3, 4, 6])
    # what was labeled keeps its weight; nothing flagged is unflagged
    assert floored.clean_proba[0] == 0.9 and floored.clean_proba[3] == 0.2
    assert division.clean_proba[1] == 0.9  # the input is not modified


@pytest.mark.parametrize("rate", [0.0, 0.25])
def test_floor_below_the_flagged_share_changes_nothing(rate):
    labels = np.array([0, 0, 1, 1])
    division = _division([0.1, 0.9, 0.2, 0.9])
    floored = floor_division(division, np.arange(4.0), labels, rate, 0.5)
    np.testing.assert_array_equal(floored.clean_proba, division.clean_proba)


def test_floor_divisions_use_the_nets_mean_disagreement():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    predictions = [labels.copy(), labels.copy()]
    predictions[0][[0, 4]] = 1 - labels[[0, 4]]  # 25 % contradicted
    predictions[1][[0, 1, 4, 5]] = 1 - labels[[0, 1, 4, 5]]  # 50 %
    divisions = [_division(np.ones(8)), _division(np.ones(8))]
    losses = [np.arange(8.0), -np.arange(8.0)]
    floored, rate = floor_divisions(divisions, losses, predictions, labels, 0.5)
    assert rate == pytest.approx(0.375)
    # ceil(0.375 * 4) = 2 flagged per class, each net by its own losses
    np.testing.assert_array_equal(
        np.flatnonzero(floored[0].clean_proba <= 0.5), [2, 3, 6, 7]
    )
    np.testing.assert_array_equal(
        np.flatnonzero(floored[1].clean_proba <= 0.5), [0, 1, 4, 5]
    )


class UsedDivisions(Callback):
    def initialize(self):
        self.final = None
        return self

    def on_division(self, net, *, epoch, stage, losses, division, used, sample):
        if stage == "final":
            self.final = (division, used)


def test_noise_floor_in_a_fit_flags_at_least_the_contradicted_share(noisy_digits):
    d = noisy_digits
    X, y = d["X_train"][:400], d["y_noisy"][:400]
    clf = DivideMixClassifier(
        max_epochs=4,
        warmup_epochs=2,
        batch_size=32,
        random_state=0,
        noise_floor=True,
        callbacks=[("used", UsedDivisions())],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    encoded = np.searchsorted(clf.classes_, y)
    with torch.inference_mode():
        predictions = [
            net.eval_logits(torch.as_tensor(X)).argmax(1).numpy()
            for net in (clf.net1_, clf.net2_)
        ]
    rate = np.mean([np.mean(p != encoded) for p in predictions])
    assert rate > 0.2  # 40 % of the labels are wrong: the floor has work to do
    for net in (clf.net1_, clf.net2_):
        raw, used = dict(net.callbacks_)["used"].final
        flagged = used.clean_proba <= clf.p_threshold_
        # never fewer flags than the mixture gave, at least the rate per class
        assert np.all(flagged >= (raw.clean_proba <= clf.p_threshold_))
        for c in range(10):
            members = encoded == c
            assert flagged[members].sum() >= np.ceil(rate * members.sum())


@pytest.mark.parametrize(
    "setting, first_rates, expected",
    [
        (True, None, True),
        (False, [0.9, 0.9], False),
        ("auto", None, False),  # warm-up never ended
        ("auto", [0.40, 0.47], False),
        ("auto", [0.45, 0.55], True),  # the mean: 0.5
        ("auto", [0.70, 0.65], True),
    ],
)
def test_resolve_noise_floor(setting, first_rates, expected):
    assert resolve_noise_floor(setting, first_rates) is expected


@pytest.mark.parametrize("noise_rate, floor_on", [(0.2, False), (0.8, True)])
def test_auto_noise_floor_follows_the_first_division(noise_rate, floor_on):
    """'auto' is the floor at high noise and no floor (bit for bit) at low."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    y_noisy, _ = make_noisy_labels(y, noise_rate=noise_rate, random_state=0)
    # the global division: its first split flags over half of the labels at
    # 80 % noise within this short budget (the per-class one does later)
    params = dict(
        max_epochs=5, warmup_epochs=3, batch_size=64, division="global", random_state=0
    )
    fits = {}
    for setting in ("auto", floor_on):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[setting] = DivideMixClassifier(**params, noise_floor=setting).fit(
                X, y_noisy
            )
    auto = fits["auto"]
    assert auto.noise_floor_ is floor_on
    assert fits[floor_on].noise_floor_ is floor_on
    # the same fit as the setting 'auto' resolved to
    np.testing.assert_array_equal(auto.clean_proba_, fits[floor_on].clean_proba_)
    np.testing.assert_array_equal(
        auto.predict_proba(X), fits[floor_on].predict_proba(X)
    )
