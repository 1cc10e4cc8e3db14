"""skorch callbacks in a DivideMix fit: per-net outputs, or refused before training."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import (
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    GradientNormClipping,
    LoadInitState,
    TrainEndCheckpoint,
)

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._callbacks import check_callbacks, per_net_callbacks
from tests._budgets import SMOKE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return rng.rand(60, 8).astype(np.float32), np.arange(60) % 3


def test_checkpoint_writes_each_net_into_its_own_folder(data, tmp_path):
    """Issue 20: one params.pt, holding net2's weights only."""
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor=None)
    clf = DivideMixClassifier(**SMOKE, callbacks=[checkpoint]).fit(*data)
    assert not (tmp_path / "params.pt").exists()
    saved = []
    for name, net in (("net1", clf.net1_), ("net2", clf.net2_)):
        folder = tmp_path / name
        assert {"params.pt", "optimizer.pt", "history.json"} <= {
            f.name for f in folder.iterdir()
        }
        state = torch.load(folder / "params.pt")
        # each folder holds its own net's last weights
        for key, value in net.module_.state_dict().items():
            assert torch.equal(state[key].cpu(), value.cpu()), (name, key)
        saved.append(torch.cat([v.flatten().float() for v in state.values()]))
    assert not torch.equal(saved[0], saved[1])
    # the estimator's own callback is left as the user gave it
    assert checkpoint.dirname == str(tmp_path)
    assert clf.callbacks[0] is checkpoint


def test_train_end_checkpoint_per_net(data, tmp_path):
    callbacks = [("end", TrainEndCheckpoint(dirname=str(tmp_path)))]
    DivideMixClassifier(**SMOKE, callbacks=callbacks).fit(*data)
    for name in ("net1", "net2"):
        assert (tmp_path / name / "train_end_params.pt").is_file()
    assert not (tmp_path / "train_end_params.pt").exists()


def test_other_callbacks_still_work(data):
    clf = DivideMixClassifier(**SMOKE, callbacks=[GradientNormClipping(1.0)])
    clf.fit(*data)
    assert len(clf.history_) == SMOKE["max_epochs"]


@pytest.mark.parametrize(
    "callback, says",
    [
        (Checkpoint(), "monitor=None"),
        (Checkpoint(monitor="train_loss_best"), "checkpoint_dir"),
        (EarlyStopping(), "validation split"),
        # the MixMatch loss after warm-up is another quantity: not comparable
        (EarlyStopping(monitor="train_loss"), "changes meaning when warm-up ends"),
        (LoadInitState(Checkpoint()), "checkpoint_dir"),
        (EpochScoring("accuracy"), "cross_val_score"),
        (Checkpoint, "monitor=None"),  # a class: skorch builds it with defaults
        (("stop", EarlyStopping()), "EarlyStopping"),
    ],
)
def test_callbacks_without_a_meaning_are_refused_before_training(
    data, callback, says, tmp_path, monkeypatch
):
    """Issue 20: EarlyStopping raised KeyError: 'valid_loss' after an epoch."""
    monkeypatch.chdir(tmp_path)  # a Checkpoint that ran would write here
    clf = DivideMixClassifier(**SMOKE, callbacks=[callback])
    with pytest.raises(InvalidParameterError, match="'callbacks' parameter") as info:
        clf.fit(*data)
    assert says in str(info.value)
    assert not hasattr(clf, "history_") and not list(tmp_path.iterdir())


def test_warm_start_is_refused_with_a_reason(data):
    """Issue 20: accepted by the constructor, refused by fit as a misspelling."""
    clf = DivideMixClassifier(**SMOKE, warm_start=True)
    with pytest.raises(InvalidParameterError, match="does not support warm_start"):
        clf.fit(*data)
    assert not hasattr(DivideMixClassifier, "partial_fit")


def test_per_net_callbacks_keeps_entry_forms():
    given = [("cp", Checkpoint(dirname="runs", monitor=None)), GradientNormClipping]
    net1 = per_net_callbacks(given, "net1")
    assert net1[0][0] == "cp" and net1[0][1].dirname == "runs/net1"
    assert net1[1] is GradientNormClipping
    assert given[0][1].dirname == "runs"
    assert per_net_callbacks(None, "net2") == []
    check_callbacks(None)
    check_callbacks([GradientNormClipping(1.0), Checkpoint(monitor=None)])
