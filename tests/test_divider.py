"""The division seam: one Divider per fit, and the on_division hook."""

import warnings

import numpy as np
import pytest
from skorch.callbacks import Callback

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._divider import STRATEGIES, Divider
from sklearn_dividemix._division import LossWindow, divide_losses, normalize_losses


def test_divider_refuses_an_unknown_strategy():
    with pytest.raises(ValueError, match="Unknown division 'median'"):
        Divider("median", np.zeros(3, dtype=int), 2)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_divider_normalises_averages_and_splits(strategy):
    rng = np.random.RandomState(0)
    losses = np.r_[rng.gamma(1, 0.1, 200), rng.gamma(9, 0.5, 100)]
    labels = np.arange(300) % 3
    divider = Divider(strategy, labels, 3)
    division = divider(losses, LossWindow(1), 0)
    expected = STRATEGIES[strategy](
        normalize_losses(losses), labels, n_classes=3, random_state=0
    )
    np.testing.assert_array_equal(division.clean_proba, expected.clean_proba)
    # the low-loss samples are called clean
    assert division.clean_proba[:200].mean() > 0.9 > division.clean_proba[200:].mean()


def test_global_strategy_is_the_papers_mixture():
    losses = np.linspace(0, 1, 50) ** 3
    division = Divider("global", np.zeros(50, dtype=int), 1)(losses, LossWindow(1), 3)
    expected = divide_losses(normalize_losses(losses), random_state=3)
    np.testing.assert_array_equal(division.clean_proba, expected.clean_proba)


class DivisionRecorder(Callback):
    """Observe every division of a fit through the hook (no patching)."""

    def initialize(self):
        self.seen = []
        return self

    def on_division(self, net, *, epoch, stage, losses, division, used, sample):
        self.seen.append((epoch, stage, len(losses), division, used))


def test_on_division_sees_every_division_of_each_net(noisy_digits):
    d = noisy_digits
    X, y = d["X_train"][:300], d["y_noisy"][:300]
    clf = DivideMixClassifier(
        max_epochs=6,
        warmup_epochs=2,
        max_warmup_epochs=2,
        batch_size=32,
        random_state=0,
        callbacks=[("recorder", DivisionRecorder())],
    )
    with warnings.catch_warnings():
        # 300 digits in 6 epochs: the verdict's doubts are beside the point
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    for i, net in enumerate((clf.net1_, clf.net2_)):
        seen = dict(net.callbacks_)["recorder"].seen
        # divisions after epochs 2..5 (MixMatch epochs 3..6) and the final one
        assert [(e, s) for e, s, *_ in seen] == [
            (2, "mixmatch"),
            (3, "mixmatch"),
            (4, "mixmatch"),
            (5, "mixmatch"),
            (6, "final"),
        ]
        assert all(n == 300 for _, _, n, _, _ in seen)
        # the final division is the one behind clean_proba_
        final_used = seen[-1][4]
        assert final_used.summary()["means"] == clf.final_divisions_[i]["means"]
    # the two nets' callbacks are separate copies, each seeing its own net
    first = dict(clf.net1_.callbacks_)["recorder"].seen[0][3]
    second = dict(clf.net2_.callbacks_)["recorder"].seen[0][3]
    assert not np.array_equal(first.clean_proba, second.clean_proba)


def test_on_division_marks_warmup_checks(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(
        max_epochs=4,
        warmup_epochs=1,
        batch_size=32,
        random_state=0,
        callbacks=[("recorder", DivisionRecorder())],
    )
    # A warm-up check trains nobody: 'used' is None there.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(d["X_train"][:300], d["y_noisy"][:300])
    seen = dict(clf.net1_.callbacks_)["recorder"].seen
    n_checks = clf.warmup_epochs_ - 1
    assert [s for _, s, *_ in seen[:n_checks]] == ["warmup_check"] * n_checks
    assert all(used is None for *_, used in seen[:n_checks])
    assert all(used is not None for *_, used in seen[n_checks:])


def test_a_callable_division_is_a_strategy_of_ones_own(noisy_digits):
    d = noisy_digits
    calls = []

    def everyone_clean(losses, labels, *, n_classes, random_state):
        calls.append((len(losses), n_classes))
        division = STRATEGIES["global"](
            losses, labels, n_classes=n_classes, random_state=random_state
        )
        division.clean_proba = np.ones_like(losses)
        return division

    clf = DivideMixClassifier(
        max_epochs=3,
        warmup_epochs=1,
        batch_size=32,
        random_state=0,
        division=everyone_clean,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(d["X_train"][:200], d["y_noisy"][:200])
    assert calls and all(call == (200, 10) for call in calls)
    assert clf.clean_mask_.all()
