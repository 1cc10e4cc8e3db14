"""Per-class and class-balanced divisions for imbalanced data."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_dividemix._class_division import (
    MIN_CLASS_SIZE,
    _pooled_components,
    _weighted_median,
    divide_losses_balanced,
    divide_losses_per_class,
)
from sklearn_dividemix._division import (
    HISTOGRAM_BINS,
    Division,
    divide_losses,
    normalize_losses,
)


def _class_losses(rng, n_clean, n_noisy, clean_mean, noisy_mean):
    losses = np.concatenate(
        [rng.normal(clean_mean, 0.04, n_clean), rng.normal(noisy_mean, 0.04, n_noisy)]
    )
    return losses, np.arange(n_clean + n_noisy) < n_clean


def _long_tail(seed=0, rare_size=100):
    """A frequent class split at low loss and a rare one whose losses sit higher.

    Frequent class 0: 800 right labels at loss 0.1, 200 wrong at 0.8. Rare
    class 1: right labels at 0.55, wrong ones at 0.9, so that one cut over
    both classes (between 0.1 and 0.8) calls every rare sample wrong.
    """
    rng = np.random.RandomState(seed)
    frequent, frequent_clean = _class_losses(rng, 800, 200, 0.1, 0.8)
    n_clean = rare_size // 2
    rare, rare_clean = _class_losses(rng, n_clean, rare_size - n_clean, 0.55, 0.9)
    losses = normalize_losses(np.concatenate([frequent, rare]))
    labels = np.repeat([0, 1], [1000, rare_size])
    return losses, labels, np.concatenate([frequent_clean, rare_clean])


def test_per_class_keeps_the_rare_class_clean_labels():
    losses, labels, is_clean = _long_tail()
    rare = labels == 1
    global_keep = divide_losses(losses, random_state=0).clean_proba > 0.5
    division = divide_losses_per_class(losses, labels, n_classes=2, random_state=0)
    keep = division.clean_proba > 0.5
    # the global split flags the rare class's right labels ...
    assert global_keep[rare & is_clean].mean() < 0.1
    # ... the per-class split keeps them, and still flags its wrong ones
    assert_array_equal(keep, is_clean)
    assert not division.degenerate


def test_per_class_single_class_is_its_own_division():
    losses, labels, _ = _long_tail()
    frequent = labels == 0
    own = divide_losses(normalize_losses(losses[frequent]), random_state=0)
    division = divide_losses_per_class(
        losses[frequent], labels[frequent], n_classes=2, random_state=0
    )
    assert_allclose(division.clean_proba, own.clean_proba)
    assert division.separation == own.separation
    assert_array_equal(division.histogram, own.histogram)
    # one M-step from the class's own posteriors: about the class's own fit
    assert_allclose(division.means, own.means, atol=1e-2)
    assert_allclose(division.weights, own.weights, atol=1e-2)


@pytest.mark.parametrize("rare_size", [2, 10, MIN_CLASS_SIZE - 1])
def test_per_class_small_class_takes_the_global_posteriors(rare_size):
    losses, labels, _ = _long_tail(rare_size=rare_size)
    global_division = divide_losses(losses, random_state=0)
    division = divide_losses_per_class(losses, labels, n_classes=2, random_state=0)
    rare = labels == 1
    assert_allclose(division.clean_proba[rare], global_division.clean_proba[rare])
    own = divide_losses(normalize_losses(losses[~rare]), random_state=0)
    assert_allclose(division.clean_proba[~rare], own.clean_proba)


def test_per_class_min_class_size_is_respected():
    losses, labels, is_clean = _long_tail(rare_size=MIN_CLASS_SIZE)
    rare = labels == 1
    fitted = divide_losses_per_class(losses, labels, n_classes=2, random_state=0)
    assert_array_equal(fitted.clean_proba[rare] > 0.5, is_clean[rare])
    fallback = divide_losses_per_class(
        losses, labels, n_classes=2, random_state=0, min_class_size=MIN_CLASS_SIZE + 1
    )
    global_proba = divide_losses(losses, random_state=0).clean_proba
    assert_allclose(fallback.clean_proba[rare], global_proba[rare])


def test_per_class_untrusted_class_split_takes_the_global_posteriors():
    # class 1's losses are one bump: its own split is not bimodal
    losses, labels, _ = _long_tail()
    rng = np.random.RandomState(1)
    bump = np.clip(rng.normal(0.12, 0.03, 200), 0, 1)
    losses = np.concatenate([losses[labels == 0], bump])
    labels = np.repeat([0, 1], [1000, 200])
    own = divide_losses(normalize_losses(bump), random_state=0)
    assert own.degenerate
    global_proba = divide_losses(losses, random_state=0).clean_proba
    trusted = divide_losses_per_class(losses, labels, n_classes=2, random_state=0)
    assert_allclose(trusted.clean_proba[labels == 1], global_proba[labels == 1])
    raw = divide_losses_per_class(
        losses, labels, n_classes=2, random_state=0, trust_check=False
    )
    assert_allclose(raw.clean_proba[labels == 1], own.clean_proba)


def test_per_class_degenerate_when_most_samples_are_in_unimodal_classes():
    rng = np.random.RandomState(0)
    bump = np.clip(rng.normal(0.3, 0.05, 1000), 0, 1)
    split, _ = _class_losses(rng, 60, 40, 0.1, 0.8)
    losses = normalize_losses(np.concatenate([bump, split]))
    labels = np.repeat([0, 1], [1000, 100])
    division = divide_losses_per_class(
        losses, labels, n_classes=2, random_state=0, trust_check=False
    )
    bump_division = divide_losses(normalize_losses(losses[:1000]), random_state=0)
    assert division.degenerate
    assert division.separation == bump_division.separation


def test_per_class_is_deterministic_and_has_the_shapes_of_a_division():
    losses, labels, _ = _long_tail()
    labels = np.where(np.arange(len(labels)) % 3 == 0, 2, labels)
    first = divide_losses_per_class(losses, labels, n_classes=4, random_state=7)
    second = divide_losses_per_class(losses, labels, n_classes=4, random_state=7)
    assert isinstance(first, Division)
    assert_array_equal(first.clean_proba, second.clean_proba)
    assert first.summary().keys() == second.summary().keys()
    assert first.clean_proba.shape == losses.shape
    assert np.all((first.clean_proba >= 0) & (first.clean_proba <= 1))
    assert first.histogram.shape == (HISTOGRAM_BINS,)
    assert first.histogram.sum() == len(losses)
    assert first.means[0] <= first.means[1]
    assert_allclose(sum(first.weights), 1.0)
    assert min(first.variances) > 0


def test_per_class_constant_losses_keep_every_label():
    losses, labels = np.full(50, 0.3), np.repeat([0, 1], 25)
    division = divide_losses_per_class(losses, labels, n_classes=2, random_state=0)
    assert_array_equal(division.clean_proba, np.ones(50))
    assert division.degenerate


def test_per_class_constant_class_takes_the_global_posteriors():
    losses, labels, _ = _long_tail()
    losses[labels == 1] = 0.6
    global_proba = divide_losses(losses, random_state=0).clean_proba
    division = divide_losses_per_class(losses, labels, n_classes=2, random_state=0)
    assert_allclose(division.clean_proba[labels == 1], global_proba[labels == 1])


def test_per_class_tiny_and_empty_inputs():
    empty = divide_losses_per_class(
        np.array([]), np.array([], dtype=int), n_classes=3, random_state=0
    )
    assert empty.clean_proba.shape == (0,)
    one = divide_losses_per_class(
        np.array([0.4]), np.array([1]), n_classes=3, random_state=0
    )
    assert_array_equal(one.clean_proba, [1.0])


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.zeros(4, dtype=int), "one length"),
        (np.array([0, 1, 2, 3, 4]), r"\[0, 3\)"),
        (np.array([0, -1, 1, 2, 0]), r"\[0, 3\)"),
        (np.array([0.0, 1.0, 2.0, 1.0, 0.0]), "integers"),
    ],
)
@pytest.mark.parametrize("divide", [divide_losses_per_class, divide_losses_balanced])
def test_label_validation(divide, labels, match):
    with pytest.raises(ValueError, match=match):
        divide(np.linspace(0, 1, 5), labels, n_classes=3, random_state=0)


def test_weighted_median_hand_values():
    assert _weighted_median(np.array([3.0, 1.0, 2.0]), np.array([1, 1, 1])) == 2.0
    assert _weighted_median(np.array([5.0, 1.0]), np.array([10, 1])) == 5.0
    # exactly half the weight below: the lower median
    assert _weighted_median(np.array([1.0, 5.0]), np.array([1, 1])) == 1.0


def test_pooled_components_hand_values():
    scaled = np.array([0.0, 0.2, 0.8, 1.0])
    means, variances, weights = _pooled_components(scaled, np.array([1, 1, 0, 0.0]))
    assert_allclose(means, (0.1, 0.9))
    assert_allclose(variances, (0.01 + 5e-4, 0.01 + 5e-4))
    assert_allclose(weights, (0.5, 0.5))
    means, variances, weights = _pooled_components(scaled, np.ones(4))
    assert_allclose(means, (0.5, 0.5))
    assert variances[1] == 0.0
    assert_allclose(weights, (1.0, 0.0))


def test_balanced_keeps_the_global_share_in_every_class():
    losses, labels, _ = _long_tail(rare_size=200)
    global_division = divide_losses(losses, random_state=0)
    division = divide_losses_balanced(losses, labels, n_classes=2, random_state=0)
    share = np.mean(global_division.clean_proba > 0.5)
    for c in (0, 1):
        members = labels == c
        assert abs(np.mean(division.clean_proba[members] > 0.5) - share) < 0.02
        # lowest losses first within the class
        order = np.argsort(losses[members])
        kept = division.clean_proba[members][order] > 0.5
        assert np.all(np.diff(kept.astype(int)) <= 0)
    assert_array_equal(division.histogram, global_division.histogram)
    assert division.means == global_division.means
    assert division.separation == global_division.separation


def test_balanced_ties_share_a_posterior_and_is_deterministic():
    losses, labels, _ = _long_tail()
    losses[labels == 1] = 0.5
    first = divide_losses_balanced(losses, labels, n_classes=3, random_state=3)
    second = divide_losses_balanced(losses, labels, n_classes=3, random_state=3)
    assert_array_equal(first.clean_proba, second.clean_proba)
    assert np.unique(first.clean_proba[labels == 1]).size == 1
    constant = divide_losses_balanced(
        np.full(10, 0.2), np.arange(10) % 2, n_classes=2, random_state=0
    )
    assert_array_equal(constant.clean_proba, np.ones(10))
