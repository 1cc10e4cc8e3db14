"""Faults during training: Ctrl-C stops cleanly, divergence stops loudly."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sklearn_dividemix import DivideMixClassifier
from tests._budgets import LEARNING

# Tiny, easy data makes one-sided divisions; DivisionWarning is tested in
# test_classifier.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")

# blobs (conftest): 60 samples in LEARNING's batches of 16, four training steps
# per net per warm-up epoch.


class _InterruptAt(Callback):
    """Raises KeyboardInterrupt at the second training step of an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def initialize(self):
        self.steps_ = 0
        return self

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.steps_ += 1
            if self.steps_ == 2:
                raise KeyboardInterrupt


@pytest.mark.parametrize("epoch, phase", [(1, "warmup"), (3, "mixmatch")])
def test_keyboard_interrupt_stops_cleanly_and_leaves_a_usable_estimator(
    blobs, epoch, phase
):
    X, y = blobs
    clf = DivideMixClassifier(**LEARNING, callbacks=[("stop", _InterruptAt(epoch))])
    try:
        assert clf.fit(X, y) is clf
    except KeyboardInterrupt:  # escaping, it would also end the test session
        pytest.fail("fit let the KeyboardInterrupt through")
    assert len(clf.history_) == epoch
    assert clf.history_[-1] == {"epoch": epoch, "phase": phase, "interrupted": True}
    assert [row["epoch"] for row in clf.history_[:-1]] == list(range(1, epoch))
    # each net's skorch history stops at the same epoch
    assert [len(net.history) for net in (clf.net1_, clf.net2_)] == [epoch, epoch]
    assert all(np.isfinite(row["loss_net1"]) for row in clf.history_[:-1])
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 3) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((clf.clean_proba_ >= 0) & (clf.clean_proba_ <= 1)).all()
    assert clf.clean_mask_.shape == (60,)
    # usable means refittable too: without the callback the fit runs to the end
    clf.set_params(callbacks=None).fit(X, y)
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4]
    assert clf.net1_.history[:, "epoch"] == [1, 2, 3, 4]
    assert not any(row.get("interrupted") for row in clf.history_)


def _raise_interrupt(num_classes):
    raise KeyboardInterrupt


def test_keyboard_interrupt_before_training_propagates_and_keeps_state(blobs):
    X, y = blobs
    clf = DivideMixClassifier(**LEARNING).fit(X, y)
    nets = clf.net1_, clf.net2_
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(module=_raise_interrupt).fit(X, y)
    assert (clf.net1_, clf.net2_) == nets
    assert clf.predict(X).shape == (60,)


class _NaNAfter(nn.Module):
    """Linear logits that turn NaN from the n-th training-mode forward on."""

    def __init__(self, num_classes, nan_from_call):
        super().__init__()
        self.linear = nn.Linear(4, num_classes)
        self.nan_from_call = nan_from_call
        self.calls = 0

    def forward(self, X):
        if self.training:
            self.calls += 1
        logits = self.linear(X)
        if self.training and self.calls >= self.nan_from_call:
            return logits * float("nan")
        return logits


@pytest.mark.parametrize(
    "nan_from_call, epoch, phase",
    # calls 1-4 are net1's first warm-up epoch, 5-8 its second; MixMatch
    # starts at epoch 3.
    [(6, 2, "warmup"), (9, 3, "mixmatch")],
)
def test_nan_loss_raises_naming_epoch_and_phase(blobs, nan_from_call, epoch, phase):
    X, y = blobs
    clf = DivideMixClassifier(
        _NaNAfter, **LEARNING, module__nan_from_call=nan_from_call
    )
    message = rf"net1's loss is nan in epoch {epoch} \({phase} phase\)"
    with pytest.raises(FloatingPointError, match=message):
        clf.fit(X, y)
    assert not hasattr(clf, "history_")


class _PoisonWeightsAfter(Callback):
    """Makes the weights NaN at the end of an epoch whose losses were finite."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            with torch.no_grad():
                next(net.module_.parameters()).fill_(float("nan"))


def test_non_finite_weights_after_finite_losses_raise(blobs):
    """The last update of an epoch can blow up after every loss was finite."""
    X, y = blobs
    clf = DivideMixClassifier(
        **LEARNING, callbacks=[("poison", _PoisonWeightsAfter(4))]
    )
    message = r"net1's weights are not finite after epoch 4 \(mixmatch phase\)"
    with pytest.raises(FloatingPointError, match=message):
        clf.fit(X, y)


def test_divergence_keeps_a_previous_fit(blobs):
    X, y = blobs
    clf = DivideMixClassifier(**LEARNING).fit(X, y)
    proba = clf.predict_proba(X)
    history = clf.history_
    with pytest.raises(FloatingPointError, match=r"epoch 1 \(warmup phase\)"):
        clf.set_params(lr=1e6).fit(X, y)
    assert clf.history_ is history
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
