"""Sharpening, co-refinement, co-guessing and mixup against hand values."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch.testing import assert_close

from sklearn_dividemix._mixmatch import (
    co_guess,
    co_refine,
    mixup,
    sample_mix_lambda,
    sharpen,
)


@pytest.mark.parametrize(
    "proba, temperature, expected",
    [
        # p^2 / sum p^2
        ([[0.6, 0.4]], 0.5, [[9 / 13, 4 / 13]]),
        ([[0.5, 0.25, 0.25]], 0.5, [[2 / 3, 1 / 6, 1 / 6]]),
        # p^(1/T) with T = 1/3: cubes
        ([[0.5, 0.5], [2 / 3, 1 / 3]], 1 / 3, [[0.5, 0.5], [8 / 9, 1 / 9]]),
        # T = 1 only renormalises
        ([[2.0, 6.0]], 1.0, [[0.25, 0.75]]),
        # T = 2: square roots, entropy goes up
        ([[0.8, 0.2]], 2.0, [[2 / 3, 1 / 3]]),
    ],
)
def test_sharpen_hand_values(proba, temperature, expected):
    out = sharpen(torch.tensor(proba, dtype=torch.float64), temperature)
    assert_close(out, torch.tensor(expected, dtype=torch.float64))


def _random_proba(n, n_classes, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(n, n_classes, generator=gen), dim=1)


def test_sharpen_with_unit_temperature_is_identity_on_normalised_rows():
    proba = _random_proba(20, 5, seed=0)
    assert_close(sharpen(proba, 1.0), proba)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 3.0])
def test_sharpen_rows_sum_to_one_and_argmax_is_kept(temperature):
    proba = _random_proba(50, 6, seed=1)
    out = sharpen(proba, temperature)
    assert_close(out.sum(dim=1), torch.ones(50))
    assert torch.equal(out.argmax(dim=1), proba.argmax(dim=1))
    if temperature < 1:
        # lower entropy: the largest entry only grows
        assert torch.all(out.max(dim=1).values >= proba.max(dim=1).values - 1e-6)


def test_co_refine_with_full_confidence_gives_the_label():
    views = _random_proba(2 * 4, 3, seed=2).reshape(2, 4, 3)
    onehot = torch.eye(3)[[0, 2, 1, 1]]
    out = co_refine(views, onehot, torch.ones(4), temperature=0.5)
    assert_close(out, onehot)


def test_co_refine_with_zero_confidence_gives_sharpened_mean_of_views():
    views = _random_proba(2 * 4, 3, seed=3).reshape(2, 4, 3)
    onehot = torch.eye(3)[[0, 2, 1, 1]]
    out = co_refine(views, onehot, torch.zeros(4), temperature=0.5)
    mean = (views[0] + views[1]) / 2
    assert_close(out, mean**2 / (mean**2).sum(dim=1, keepdim=True))


def test_co_refine_mixed_hand_value():
    # sample 0: views [0.2, 0.8] and [0.4, 0.6] -> mean [0.3, 0.7];
    # w = 0.5 with label 0 -> [0.65, 0.35] -> squared and normalised:
    # [0.4225, 0.1225] / 0.545 = [169 / 218, 49 / 218].
    # sample 1: w = 0 keeps the mean [0.5, 0.5] whatever its label.
    views = torch.tensor([[[0.2, 0.8], [0.9, 0.1]], [[0.4, 0.6], [0.1, 0.9]]])
    onehot = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    out = co_refine(views, onehot, torch.tensor([0.5, 0.0]), temperature=0.5)
    assert_close(out, torch.tensor([[169 / 218, 49 / 218], [0.5, 0.5]]))


def test_co_guess_hand_values():
    # four views (two nets x two augmentations) of two samples
    views = torch.tensor(
        [
            [[1.0, 0.0], [0.9, 0.1]],
            [[0.0, 1.0], [0.7, 0.3]],
            [[0.5, 0.5], [0.6, 0.4]],
            [[0.5, 0.5], [0.8, 0.2]],
        ]
    )
    # means [0.5, 0.5] and [0.75, 0.25]; squared: [0.5625, 0.0625] / 0.625
    out = co_guess(views, temperature=0.5)
    assert_close(out, torch.tensor([[0.5, 0.5], [0.9, 0.1]]))


def test_co_guess_is_sharpened_mean_of_all_views():
    views = _random_proba(4 * 6, 5, seed=4).reshape(4, 6, 5)
    expected = sharpen((views[0] + views[1] + views[2] + views[3]) / 4, 0.5)
    assert_close(co_guess(views, temperature=0.5), expected)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 4.0, 50.0])
def test_sample_mix_lambda_lies_in_upper_half(alpha):
    rng = np.random.RandomState(0)
    draws = np.array([sample_mix_lambda(rng, alpha) for _ in range(500)])
    assert np.all(draws >= 0.5) and np.all(draws <= 1.0)
    assert isinstance(sample_mix_lambda(rng, alpha), float)


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_sample_mix_lambda_without_mixup_is_one_and_draws_nothing(alpha):
    rng = np.random.RandomState(0)
    state = rng.get_state()[1].copy()
    assert sample_mix_lambda(rng, alpha) == 1.0
    np.testing.assert_array_equal(rng.get_state()[1], state)


def test_sample_mix_lambda_is_reproducible():
    rng1, rng2 = np.random.RandomState(3), np.random.RandomState(3)
    first = [sample_mix_lambda(rng1, 4.0) for _ in range(20)]
    second = [sample_mix_lambda(rng2, 4.0) for _ in range(20)]
    assert first == second
    assert len(set(first)) == 20


@pytest.mark.parametrize("alpha", [0.5, 4.0])
def test_sample_mix_lambda_follows_folded_beta(alpha):
    # P(max(l, 1 - l) <= x) = P(1 - x <= l <= x) = B(x) - B(1 - x), x >= 0.5
    beta = stats.beta(alpha, alpha)

    def cdf(x):
        return beta.cdf(x) - beta.cdf(1 - x)

    rng = np.random.RandomState(0)
    draws = np.array([sample_mix_lambda(rng, alpha) for _ in range(2000)])
    assert stats.kstest(draws, cdf).pvalue > 0.01
    # and not, say, the unfolded Beta or a uniform on [0.5, 1]
    assert stats.kstest(draws, stats.uniform(0.5, 0.5).cdf).pvalue < 1e-6


def test_mixup_hand_values():
    inputs = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    targets = torch.eye(3)
    partner = torch.tensor([1, 2, 0])
    mixed_inputs, mixed_targets = mixup(inputs, targets, 0.75, partner)
    assert_close(mixed_inputs, torch.tensor([[1.5, 2.5], [3.5, 4.5], [4.0, 5.0]]))
    expected_targets = torch.tensor(
        [[0.75, 0.25, 0.0], [0.0, 0.75, 0.25], [0.25, 0.0, 0.75]]
    )
    assert_close(mixed_targets, expected_targets)


def test_mixup_leaves_its_arguments_untouched():
    inputs = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    targets = torch.eye(2)
    mixup(inputs, targets, 0.6, torch.tensor([1, 0]))
    assert_close(inputs, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert_close(targets, torch.eye(2))


@pytest.mark.parametrize("lam", [0.5, 0.8, 1.0])
def test_mixup_with_identity_partner_returns_inputs(lam):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(6, 2, 4, 4, generator=gen)
    targets = _random_proba(6, 3, seed=5)
    mixed_inputs, mixed_targets = mixup(inputs, targets, lam, torch.arange(6))
    assert_close(mixed_inputs, inputs)
    assert_close(mixed_targets, targets)


def test_mixup_with_unit_lambda_returns_inputs():
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(6, 5, generator=gen)
    targets = _random_proba(6, 3, seed=6)
    partner = torch.randperm(6, generator=gen)
    mixed_inputs, mixed_targets = mixup(inputs, targets, 1.0, partner)
    assert_close(mixed_inputs, inputs)
    assert_close(mixed_targets, targets)


def test_mixup_keeps_targets_on_the_simplex():
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randn(8, 3, generator=gen)
    targets = _random_proba(8, 4, seed=7)
    _, mixed = mixup(inputs, targets, 0.7, torch.randperm(8, generator=gen))
    assert_close(mixed.sum(dim=1), torch.ones(8))
    assert torch.all(mixed >= 0)
