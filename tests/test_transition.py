"""Tests of the noise transition matrix a fit estimates (pure parts).

The estimator-level function is tested with the clean accuracy that uses it,
in ``test_metrics.py``, on a stand-in fit and on digits.
"""

import doctest
import warnings

import numpy as np

from sklearn_dividemix import _transition
from sklearn_dividemix._transition import (
    estimate_transition_matrix,
    true_label_posterior,
)


def test_true_label_posterior_by_hand():
    given = np.array([0, 1, 1])
    clean_proba = np.array([1.0, 0.5, 0.0])
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]], dtype=np.float32)
    posterior = true_label_posterior(given, clean_proba, proba)
    # 0.5 * [0.6, 0.4] + 0.5 * [0, 1]
    expected = [[1.0, 0.0], [0.3, 0.7], [0.9, 0.1]]
    np.testing.assert_allclose(posterior, expected, rtol=1e-6)
    assert posterior.dtype == np.float64


def test_estimate_transition_matrix_by_hand():
    given = np.array([0, 0, 1])
    posterior = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # true class 0: mass 1.5, all labelled 0; class 1: 0.5 labelled 0, 1 as 1
    transition = estimate_transition_matrix(given, posterior, 2)
    np.testing.assert_allclose(transition, [[1.0, 0.0], [1 / 3, 2 / 3]])


def test_estimate_transition_matrix_class_without_mass_keeps_its_label():
    given = np.array([0, 1])
    posterior = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    transition = estimate_transition_matrix(given, posterior, 3)
    np.testing.assert_array_equal(transition, np.eye(3))


def test_estimate_transition_matrix_matches_a_loop_over_labels():
    rng = np.random.RandomState(0)
    given = rng.choice([0, 2, 3], size=200)  # class 1 is never given
    posterior = rng.dirichlet(np.ones(4), size=200)
    mass = np.column_stack([posterior[given == j].sum(axis=0) for j in range(4)])
    expected = mass / mass.sum(axis=1, keepdims=True)
    transition = estimate_transition_matrix(given, posterior, 4)
    np.testing.assert_allclose(transition, expected)
    assert not transition[:, 1].any()


def test_docstring_examples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(_transition, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
