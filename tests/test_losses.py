"""Loss terms and the ramp-up against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from sklearn_dividemix._losses import (
    linear_rampup,
    negative_entropy,
    soft_cross_entropy,
    uniform_prior_penalty,
    unlabeled_mse,
)

# softmax([log 4, 0]) = [0.8, 0.2] and softmax([0, log 3]) = [0.25, 0.75]:
# logits whose probabilities are round numbers, to compute by hand.
LOG4 = math.log(4.0)
LOG3 = math.log(3.0)


def test_soft_cross_entropy_hand_values():
    logits = torch.tensor([[0.0, 0.0], [0.0, LOG3]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    # row 0: -log 0.5 ; row 1: -(0.5 log 0.25 + 0.5 log 0.75)
    expected = (math.log(2.0) + 0.5 * math.log(16.0 / 3.0)) / 2
    assert_close(soft_cross_entropy(logits, targets), torch.tensor(expected))


def test_soft_cross_entropy_equals_cross_entropy_on_onehot_targets():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen)
    y = torch.randint(0, 4, (7,), generator=gen)
    onehot = F.one_hot(y, 4).float()
    assert_close(soft_cross_entropy(logits, onehot), F.cross_entropy(logits, y))


def test_unlabeled_mse_hand_values():
    logits = torch.tensor([[0.0, 0.0], [0.0, LOG3]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # squared errors: row 0 (0.25, 0.25), row 1 (0.0625, 0.0625); mean of 4
    expected = (0.25 + 0.25 + 0.0625 + 0.0625) / 4
    assert_close(unlabeled_mse(logits, targets), torch.tensor(expected))


def test_unlabeled_mse_is_zero_when_softmax_matches_targets():
    logits = torch.tensor([[LOG4, 0.0], [0.0, LOG3]])
    targets = torch.tensor([[0.8, 0.2], [0.25, 0.75]])
    assert_close(unlabeled_mse(logits, targets), torch.tensor(0.0))


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_uniform_prior_penalty_is_zero_for_uniform_mean_prediction(n_classes):
    # each row confident on a different class: the batch mean is uniform
    logits = 10.0 * torch.eye(n_classes)
    assert_close(uniform_prior_penalty(logits), torch.tensor(0.0))


def test_uniform_prior_penalty_hand_value():
    # mean prediction [0.8, 0.2] over the batch:
    # 0.5 log(0.5 / 0.8) + 0.5 log(0.5 / 0.2) = 0.5 log(1.5625) = log 1.25
    logits = torch.tensor([[LOG4, 0.0], [LOG4, 0.0]])
    assert_close(uniform_prior_penalty(logits), torch.tensor(math.log(1.25)))
    # the same mean from two different rows: the penalty sees only the mean
    mixed = torch.tensor([[0.0, 0.0], [0.0, -math.inf]])  # [0.5, 0.5], [1, 0]
    mean = torch.tensor([0.75, 0.25])
    expected = (0.5 * (math.log(0.5) - mean.log())).sum()
    assert_close(uniform_prior_penalty(mixed), expected)


def test_uniform_prior_penalty_stays_finite_when_batch_collapses():
    # KL(uniform || mean) is infinite for a one-hot mean; the clamp at 1e-12
    # keeps it finite: 1/3 log(1/3) + 2/3 (log(1/3) - log 1e-12)
    logits = torch.tensor([[0.0, -math.inf, -math.inf]]).repeat(4, 1)
    expected = math.log(1 / 3) - (2 / 3) * math.log(1e-12)
    penalty = uniform_prior_penalty(logits)
    assert torch.isfinite(penalty)
    assert_close(penalty, torch.tensor(expected))


@pytest.mark.parametrize("n_classes", [2, 4, 10])
def test_negative_entropy_of_uniform_prediction_is_minus_log_c(n_classes):
    logits = torch.zeros(3, n_classes)
    assert_close(negative_entropy(logits), torch.tensor(-math.log(n_classes)))


def test_negative_entropy_hand_values():
    logits = torch.tensor([[LOG4, 0.0], [100.0, 0.0]])
    # row 0: 0.8 log 0.8 + 0.2 log 0.2 ; row 1: one-hot, 0
    expected = (0.8 * math.log(0.8) + 0.2 * math.log(0.2) + 0.0) / 2
    assert_close(negative_entropy(logits), torch.tensor(expected))


@pytest.mark.parametrize(
    "progress, warmup, rampup, expected",
    [
        (0.0, 10, 16, 0.0),
        (5.5, 10, 16, 0.0),
        (10.0, 10, 16, 0.0),
        (14.0, 10, 16, 0.25),
        (18.0, 10, 16, 0.5),
        (22.0, 10, 16, 0.75),
        (26.0, 10, 16, 1.0),
        (100.0, 10, 16, 1.0),
        (3.5, 3, 2, 0.25),
        (9.999, 10, 0, 0.0),
        (10.0, 10, 0, 1.0),
        (11.0, 10, 0, 1.0),
    ],
)
def test_linear_rampup(progress, warmup, rampup, expected):
    weight = linear_rampup(progress, warmup_epochs=warmup, rampup_epochs=rampup)
    assert isinstance(weight, float)
    assert weight == pytest.approx(expected, abs=1e-12)


def test_linear_rampup_is_monotone():
    weights = [
        linear_rampup(e / 4, warmup_epochs=2, rampup_epochs=3) for e in range(40)
    ]
    assert weights == sorted(weights)
    assert weights[0] == 0.0 and weights[-1] == 1.0


@pytest.mark.parametrize("loss", [soft_cross_entropy, unlabeled_mse])
def test_empty_batch_gives_zero_and_keeps_the_graph(loss):
    logits = torch.zeros(0, 3, requires_grad=True)
    value = loss(logits, torch.zeros(0, 3))
    assert value.shape == ()
    assert value.item() == 0.0
    # adding it to the loss must not break backward
    value.backward()
    assert logits.grad is not None and logits.grad.shape == (0, 3)


def test_soft_cross_entropy_gradient_is_softmax_minus_targets():
    logits = torch.tensor([[0.0, LOG3], [LOG4, 0.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0], [0.3, 0.7]])
    soft_cross_entropy(logits, targets).backward()
    # d/dz of -sum_c t_c log softmax(z)_c is softmax(z) - t, over a batch of 2
    expected = (torch.tensor([[0.25, 0.75], [0.8, 0.2]]) - targets) / 2
    assert_close(logits.grad, expected)


@pytest.mark.parametrize(
    "loss, takes_targets",
    [
        (soft_cross_entropy, True),
        (unlabeled_mse, True),
        (uniform_prior_penalty, False),
        (negative_entropy, False),
    ],
)
def test_gradients_match_finite_differences(loss, takes_targets):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.softmax(torch.randn(5, 3, generator=gen, dtype=torch.float64), 1)
    args = (logits, targets) if takes_targets else (logits,)
    assert torch.autograd.gradcheck(loss, args)


@pytest.mark.parametrize("loss", [soft_cross_entropy, unlabeled_mse])
def test_no_gradient_reaches_targets_built_without_grad(loss):
    # the training step builds targets under no_grad from the same logits
    logits = torch.tensor([[0.0, LOG3], [LOG4, 0.0]], requires_grad=True)
    with torch.no_grad():
        targets = torch.softmax(2 * logits, dim=1)
    loss(logits, targets).backward()
    assert targets.grad_fn is None and not targets.requires_grad
    assert logits.grad.abs().sum() > 0
