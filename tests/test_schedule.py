"""How the epoch budget is shared out: 'auto' warm-up, its limit, ramp-up."""

import warnings

import numpy as np
import pytest

from sklearn_dividemix import DivideMixClassifier, UntrustedFitWarning
from sklearn_dividemix._epoch_sample import epoch_steps
from sklearn_dividemix._epochs import LoopSettings
from sklearn_dividemix._schedule import (
    AUTO_HIGH_NOISE,
    AUTO_MIXUP_ALPHA,
    AUTO_MIXUP_NOISE,
    HIGH_NOISE_LOSS_WINDOW,
    HIGH_NOISE_P_THRESHOLD,
    auto_alpha,
    auto_balance_labeled,
    auto_loss_window,
    auto_p_threshold,
    auto_rampup_epochs,
    auto_warmup_epochs,
    warmup_limit,
)


@pytest.mark.parametrize(
    "max_epochs, expected",
    [(1, 1), (2, 1), (3, 1), (9, 4), (20, 10), (30, 10), (300, 10)],
)
def test_auto_warmup_is_the_papers_10_or_half_a_short_budget(max_epochs, expected):
    assert auto_warmup_epochs(max_epochs) == expected


@pytest.mark.parametrize(
    "max_epochs, steps_per_epoch, expected",
    [
        (30, 20, 10),  # digits (MLP, 1,257 samples): the paper's 10 epochs
        (20, 94, 3),  # 6,000 images: about 200 steps
        (40, 157, 2),  # 10,000 images
        (300, 782, 1),  # CIFAR-10's 50,000: one epoch is 782 steps
        (4, 20, 2),  # never more than half the budget
        (30, 1, 10),  # nor more than the paper's 10
        (1, 1000, 1),  # at least one epoch
    ],
)
def test_auto_warmup_counts_optimiser_steps(max_epochs, steps_per_epoch, expected):
    assert auto_warmup_epochs(max_epochs, steps_per_epoch) == expected
    # more steps an epoch never asks for a longer warm-up
    assert auto_warmup_epochs(max_epochs, steps_per_epoch + 1) <= expected


@pytest.mark.parametrize(
    "n_samples, samples_per_epoch, batch_size, expected",
    [
        (6000, None, 64, 94),
        (1257, None, 64, 20),
        (60000, 6400, 64, 100),
        (10, 0.5, 64, 1),
    ],
)
def test_epoch_steps(n_samples, samples_per_epoch, batch_size, expected):
    assert epoch_steps(samples_per_epoch, n_samples, batch_size) == expected


@pytest.mark.parametrize(
    "max_epochs, warmup, max_warmup, expected",
    [
        (20, 2, "auto", 10),  # half the budget
        (2, 1, "auto", 1),  # one epoch left for MixMatch
        (3, 1, "auto", 1),
        (20, 2, 30, 19),  # never past the last epoch but one
        (20, 10, 5, 10),  # a fixed warm-up is never shortened
        (1, 1, "auto", 1),
    ],
)
def test_warmup_limit(max_epochs, warmup, max_warmup, expected):
    assert warmup_limit(max_epochs, warmup, max_warmup) == expected


@pytest.mark.parametrize("remaining, expected", [(1, 1), (5, 1), (18, 6), (290, 16)])
def test_auto_rampup_is_a_third_of_what_is_left(remaining, expected):
    assert auto_rampup_epochs(remaining) == expected


def test_loop_settings_resolve_the_auto_epochs():
    params = DivideMixClassifier(max_epochs=20).get_params()
    settings = LoopSettings.from_params(params)
    assert settings.warmup_epochs == 10 and settings.max_warmup_epochs == 10
    params = DivideMixClassifier(max_epochs=5).get_params()
    settings = LoopSettings.from_params(params)
    assert settings.warmup_epochs == 2 and settings.max_warmup_epochs == 2
    # with the steps of an epoch known, 'auto' aims at AUTO_WARMUP_STEPS
    params = DivideMixClassifier(max_epochs=20).get_params()
    settings = LoopSettings.from_params(params, steps_per_epoch=94)
    assert settings.warmup_epochs == 3 and settings.max_warmup_epochs == 10
    # an 'auto' ramp-up is resolved when warm-up ends, from the epochs left
    params = DivideMixClassifier(rampup_epochs="auto").get_params()
    assert LoopSettings.from_params(params).rampup_epochs == "auto"


@pytest.mark.parametrize("max_epochs", [2, 3, 5])
def test_every_budget_from_two_epochs_reaches_mixmatch(noisy_digits, max_epochs):
    d = noisy_digits
    clf = DivideMixClassifier(max_epochs=max_epochs, batch_size=32, random_state=0)
    # A 2-epoch fit need not be trustworthy (the verdict may warn); only its
    # schedule is checked here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrustedFitWarning)
        clf.fit(d["X_train"][:300], d["y_noisy"][:300])
    phases = clf.history_[:, "phase"]
    assert phases[0] == "warmup" and phases[-1] == "mixmatch"
    assert clf.warmup_epochs_ == phases.count("warmup") < max_epochs


def test_auto_rampup_reaches_the_full_weight_within_the_budget(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(
        max_epochs=16, batch_size=32, lambda_u=10, rampup_epochs="auto", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrustedFitWarning)
        clf.fit(d["X_train"][:300], d["y_noisy"][:300])
    mixmatch = [row for row in clf.history_ if row["phase"] == "mixmatch"]
    # with 16 epochs of ramp-up it would end at a fraction of lambda_u
    assert mixmatch[-1]["unlabeled_weight"] == pytest.approx(10.0)
    assert mixmatch[0]["unlabeled_weight"] < 10.0


@pytest.mark.parametrize(
    "noise_rate, expected",
    [
        (0.0, 0.0),
        (0.25, 0.0),  # Fashion-MNIST's first division at 20 %: mixup costs
        (AUTO_MIXUP_NOISE, AUTO_MIXUP_ALPHA),
        (0.42, AUTO_MIXUP_ALPHA),  # CIFAR-10's at 80 %: the nets memorise
        (0.9, AUTO_MIXUP_ALPHA),
    ],
)
def test_auto_alpha_mixes_up_from_the_boundary_of_the_papers_table(
    noise_rate, expected
):
    assert auto_alpha(noise_rate) == expected


@pytest.mark.parametrize(
    "noise_rate, expected",
    [
        (0.0, True),
        (0.2, True),  # Fashion-MNIST's first division under 40 % pair flips
        (AUTO_MIXUP_NOISE, False),
        (0.45, False),  # CIFAR-10's at 80 %
    ],
)
def test_auto_balance_labeled_below_the_same_boundary(noise_rate, expected):
    assert auto_balance_labeled(noise_rate) is expected


@pytest.mark.parametrize(
    "name, noise_rate, expected",
    [
        ("alpha", 0.1, 0.0),
        ("alpha", 0.6, AUTO_MIXUP_ALPHA),
        ("balance_labeled", 0.1, True),
        ("balance_labeled", 0.6, False),
        # below the boundary the threshold and the window keep the values
        # warm-up used, so 'auto' is that fit (above it, see the next test)
        ("p_threshold", 0.1, 0.5),
        ("loss_window", 0.1, 1),
    ],
)
def test_auto_is_the_fit_of_the_value_it_resolves_to(name, noise_rate, expected):
    """'auto' picks the value from the first division and is then that fit,
    bit for bit; every MixMatch row records it."""
    from sklearn.datasets import load_digits

    from sklearn_dividemix import make_noisy_labels

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    y_noisy, _ = make_noisy_labels(y, noise_rate=noise_rate, random_state=0)
    params = dict(max_epochs=4, warmup_epochs=2, random_state=0)
    fits = {}
    for setting in ("auto", expected):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = DivideMixClassifier(**params, **{name: setting})
            fits[setting] = clf.fit(X, y_noisy)
    resolved = [getattr(fits[setting], name + "_") for setting in ("auto", expected)]
    assert resolved == [expected, expected]
    rows = [row for row in fits["auto"].history_ if row["phase"] == "mixmatch"]
    assert rows and all(row[name] == expected for row in rows)
    for name in ("clean_proba_", "train_proba_"):
        np.testing.assert_array_equal(
            getattr(fits["auto"], name), getattr(fits[expected], name)
        )


@pytest.mark.parametrize(
    "noise_rate, threshold, window",
    [
        (0.0, 0.5, 1),
        (0.25, 0.5, 1),  # Fashion-MNIST's first division at 20 %
        (0.34, 0.5, 1),  # frozen features under 40 % pair flips: it cost 3.6
        (AUTO_HIGH_NOISE, HIGH_NOISE_P_THRESHOLD, HIGH_NOISE_LOSS_WINDOW),
        (0.45, 0.6, 5),  # CIFAR-10's at 80 %: 7 in 10 kept labels wrong
    ],
)
def test_auto_threshold_and_window_are_the_papers_high_noise_settings(
    noise_rate, threshold, window
):
    assert auto_p_threshold(noise_rate) == threshold
    assert auto_loss_window(noise_rate) == window


def test_auto_threshold_and_window_change_the_fit_only_after_warmup():
    """Above the boundary warm-up is the fit of 0.5 and 1 (its divisions
    are read at those); MixMatch then keeps a label above 0.6 and averages
    the last five epochs' losses, the warm-up's included."""
    from sklearn.datasets import load_digits

    from sklearn_dividemix import make_noisy_labels

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    y_noisy, _ = make_noisy_labels(y, noise_rate=0.6, random_state=0)
    params = dict(max_epochs=6, warmup_epochs=2, max_warmup_epochs=2, random_state=0)
    fits = {}
    for name, extra in {
        "auto": {},
        "fixed": dict(p_threshold=0.5, loss_window=1),
    }.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[name] = DivideMixClassifier(**params, **extra).fit(X, y_noisy)
    auto, fixed = fits["auto"], fits["fixed"]
    assert (auto.p_threshold_, auto.loss_window_) == (0.6, 5)
    assert (fixed.p_threshold_, fixed.loss_window_) == (0.5, 1)
    np.testing.assert_array_equal(auto.clean_mask_, auto.clean_proba_ > 0.6)
    rows = {name: list(fit.history_) for name, fit in fits.items()}
    # the same warm-up and the same first division (the one that resolved),
    # which MixMatch then reads at 0.6
    for key in ("loss_net1", "loss_net2"):
        assert [r[key] for r in rows["auto"][:2]] == [r[key] for r in rows["fixed"][:2]]
    means = {k: [r["gmm_means_net1"] for r in rows[k][2:4]] for k in rows}
    assert means["auto"][0] == means["fixed"][0]
    assert rows["auto"][2]["labeled_net1"] < rows["fixed"][2]["labeled_net1"]
    mixmatch = [r for r in rows["auto"] if r["phase"] == "mixmatch"]
    assert all(r["p_threshold"] == 0.6 and r["loss_window"] == 5 for r in mixmatch)
    # from the second MixMatch epoch the divisions average several epochs
    assert means["auto"][1] != means["fixed"][1]
