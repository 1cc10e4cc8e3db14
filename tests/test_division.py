"""Loss normalisation, averaging and the two-component GMM division."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_dividemix._division import (
    Division,
    LossWindow,
    divide_losses,
    normalize_losses,
)


def _bimodal_losses(seed, n_clean=800, n_noisy=200):
    """Normalised losses: clean ones ~N(0.1, 0.05) first, noisy ~N(0.8, 0.1)."""
    rng = np.random.RandomState(seed)
    losses = np.concatenate(
        [rng.normal(0.1, 0.05, n_clean), rng.normal(0.8, 0.1, n_noisy)]
    )
    is_clean = np.arange(n_clean + n_noisy) < n_clean
    return normalize_losses(losses), is_clean


def test_normalize_losses_hand_values():
    assert_allclose(normalize_losses([2.0, 4.0, 3.0, 2.5]), [0.0, 1.0, 0.5, 0.25])


def test_normalize_losses_spans_unit_interval():
    losses = np.random.RandomState(0).exponential(size=300) * 7 + 3
    out = normalize_losses(losses)
    assert out.dtype == np.float64
    assert out.min() == 0.0 and out.max() == 1.0
    # an affine map: order and ratios of differences are kept
    assert_array_equal(np.argsort(out), np.argsort(losses))
    assert_allclose(out, (losses - losses.min()) / np.ptp(losses))


@pytest.mark.parametrize("losses", [[3.0, 3.0, 3.0], [0.7], [0.0, 0.0]])
def test_normalize_constant_losses_gives_zeros(losses):
    out = normalize_losses(np.asarray(losses, dtype=np.float32))
    assert_array_equal(out, np.zeros(len(losses)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_divide_bimodal_losses_recovers_clean_samples(seed):
    losses, is_clean = _bimodal_losses(seed)
    division = divide_losses(losses, random_state=0)
    assert isinstance(division, Division)
    assert division.clean_proba.shape == (1000,)
    assert np.all((division.clean_proba >= 0) & (division.clean_proba <= 1))
    accuracy = np.mean((division.clean_proba > 0.5) == is_clean)
    assert accuracy >= 0.98
    clean_mean, noisy_mean = division.means
    assert clean_mean < noisy_mean
    # the component means sit on the normalised cluster means
    assert clean_mean == pytest.approx(losses[is_clean].mean(), abs=0.02)
    assert noisy_mean == pytest.approx(losses[~is_clean].mean(), abs=0.02)
    assert_allclose(division.weights, (0.8, 0.2), atol=0.02)
    assert division.variances[0] < division.variances[1]
    assert not division.degenerate
    assert division.separation > 2.0


def test_divide_is_reproducible_under_a_seed():
    losses, _ = _bimodal_losses(0)
    first = divide_losses(losses, random_state=3)
    second = divide_losses(losses, random_state=3)
    assert_array_equal(first.clean_proba, second.clean_proba)
    assert first.means == second.means and first.weights == second.weights


def test_ashman_separation_hand_value():
    # Ashman's D = sqrt(2) |mu1 - mu2| / sqrt(var1 + var2), from the fitted
    # components themselves
    losses, _ = _bimodal_losses(1)
    division = divide_losses(losses, random_state=0)
    (m1, m2), (v1, v2) = division.means, division.variances
    expected = np.sqrt(2) * (m2 - m1) / np.sqrt(v1 + v2)
    assert division.separation == pytest.approx(expected)


@pytest.mark.parametrize("losses", [np.zeros(50), np.full(10, 0.3), np.array([0.4])])
def test_constant_losses_keep_every_label(losses):
    division = divide_losses(losses, random_state=0)
    assert_array_equal(division.clean_proba, np.ones(len(losses)))
    assert division.degenerate
    assert division.separation == 0.0
    assert division.weights == (1.0, 0.0)
    assert division.means == (pytest.approx(losses.mean()),) * 2
    assert division.histogram.sum() == len(losses)


def test_empty_losses_are_degenerate():
    division = divide_losses(np.array([]), random_state=0)
    assert division.clean_proba.shape == (0,)
    assert division.degenerate
    assert division.histogram.sum() == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unimodal_losses_are_flagged_degenerate(seed):
    # one Gaussian bump: the mixture still splits it in two, but the split
    # components overlap too much for the mixture to be bimodal
    losses = normalize_losses(np.random.RandomState(seed).normal(0.5, 0.1, 1000))
    division = divide_losses(losses, random_state=0)
    assert division.degenerate
    assert division.separation < 2.0


def test_histogram_counts_normalised_losses():
    losses = np.array([0.0, 0.01, 0.5, 0.999, 1.0])
    histogram = divide_losses(losses, random_state=0).histogram
    assert histogram.shape == (50,)
    expected = np.zeros(50, dtype=int)
    # bins of width 0.02; 1.0 falls in the last, closed bin
    expected[[0, 25, 49]] = [2, 1, 2]
    assert_array_equal(histogram, expected)


def test_histogram_sums_to_number_of_samples():
    losses, _ = _bimodal_losses(0)
    division = divide_losses(losses, random_state=0)
    assert division.histogram.sum() == len(losses)
    summary = division.summary()
    assert set(summary) == {
        "means",
        "variances",
        "weights",
        "separation",
        "degenerate",
        "histogram",
    }
    assert summary["histogram"] is division.histogram


def test_loss_window_averages_the_last_epochs():
    window = LossWindow(2)
    assert_allclose(window.update(np.array([0.0, 1.0, 0.5])), [0.0, 1.0, 0.5])
    assert_allclose(window.update(np.array([1.0, 1.0, 0.0])), [0.5, 1.0, 0.25])
    # the first epoch drops out
    assert_allclose(window.update(np.array([0.0, 0.0, 0.0])), [0.5, 0.5, 0.0])


def test_loss_window_of_five_by_hand():
    window = LossWindow(5)
    for epoch in range(7):
        averaged = window.update(np.array([float(epoch), 2.0 * epoch]))
    # epochs 2..6 remain: means 4 and 8
    assert_allclose(averaged, [4.0, 8.0])


def test_loss_window_of_one_is_no_averaging():
    window = LossWindow(1)
    window.update(np.array([0.2, 0.4]))
    assert_allclose(window.update(np.array([0.9, 0.1])), [0.9, 0.1])


def test_a_window_resized_later_averages_what_it_kept():
    # loss_window='auto': one epoch until warm-up ends, then five, the
    # epochs divided before the resize included
    window = LossWindow(1, keep=5)
    for epoch in range(3):
        averaged = window.update(np.array([float(epoch)]))
    assert_allclose(averaged, [2.0])
    window.size = 5
    assert_allclose(window.update(np.array([3.0])), [1.5])  # epochs 0..3
    for epoch in range(4, 8):
        averaged = window.update(np.array([float(epoch)]))
    assert_allclose(averaged, [5.0])  # epochs 3..7: never more than kept


def test_a_window_from_an_older_checkpoint_averages_all_it_keeps():
    # unpickled from before the size was stored: no instance attribute
    window = LossWindow(3)
    del window.size
    for epoch in range(4):
        averaged = window.update(np.array([float(epoch)]))
    assert_allclose(averaged, [2.0])  # epochs 1..3, as it did then
