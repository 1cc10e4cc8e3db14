"""A fixed random_state gives bit-identical fits on the CPU."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs

from sklearn_dividemix import DivideMixClassifier
from tests._budgets import LEARNING

# Tiny, easy data makes one-sided divisions; DivisionWarning is tested in
# test_classifier.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


@pytest.fixture(scope="module")
def noisy_blobs():
    X, y = make_blobs(90, n_features=4, centers=3, cluster_std=2.0, random_state=0)
    rng = np.random.RandomState(0)
    flipped = rng.rand(len(y)) < 0.2
    y[flipped] = (y[flipped] + 1) % 3
    return X.astype(np.float32), y


def _fit(X, y, **params):
    return DivideMixClassifier(**{**LEARNING, **params}).fit(X, y)


@pytest.fixture(scope="module")
def seed0(noisy_blobs):
    return _fit(*noisy_blobs, random_state=0)


def _assert_same_fit(a, b, X):
    np.testing.assert_array_equal(a.clean_proba_, b.clean_proba_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    for net_a, net_b in [(a.net1_, b.net1_), (a.net2_, b.net2_)]:
        state_a, state_b = net_a.module_.state_dict(), net_b.module_.state_dict()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a.history_[:, "loss_net1"] == b.history_[:, "loss_net1"]


def test_same_seed_gives_bit_identical_fits(seed0, noisy_blobs):
    X, y = noisy_blobs
    _assert_same_fit(seed0, _fit(X, y, random_state=0), X)


def test_different_seeds_give_different_nets(seed0, noisy_blobs):
    X, y = noisy_blobs
    other = _fit(X, y, random_state=1)
    w0 = seed0.net1_.module_.layers[0].weight
    assert not torch.equal(w0, other.net1_.module_.layers[0].weight)
    assert not np.array_equal(seed0.clean_proba_, other.clean_proba_)
    assert not np.array_equal(seed0.predict_proba(X), other.predict_proba(X))


def test_fitting_twice_equals_fitting_a_clone(seed0, noisy_blobs):
    X, y = noisy_blobs
    clf = _fit(X, y, random_state=0)
    # a first fit on other data must leave no trace in the second
    clf.fit(X[::-1][:60], y[::-1][:60])
    clf.fit(X, y)
    _assert_same_fit(clf, clone(seed0).fit(X, y), X)


def test_seeded_fit_leaves_global_random_states_alone(seed0, noisy_blobs):
    X, y = noisy_blobs
    # The legacy global NumPy state on purpose: random_state=None draws from it.
    numpy_state = np.random.get_state()  # noqa: NPY002
    torch_state = torch.get_rng_state()
    clone(seed0).fit(X, y)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0]
    np.testing.assert_array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]


def test_global_torch_seed_does_not_change_a_seeded_fit(seed0, noisy_blobs):
    X, y = noisy_blobs
    torch.manual_seed(12345)
    _assert_same_fit(seed0, clone(seed0).fit(X, y), X)


def test_random_state_none_draws_new_nets(noisy_blobs):
    X, y = noisy_blobs
    a = _fit(X, y, random_state=None)
    b = _fit(X, y, random_state=None)
    assert not torch.equal(
        a.net1_.module_.layers[0].weight, b.net1_.module_.layers[0].weight
    )
