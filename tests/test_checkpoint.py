"""Checkpoints and resume: a killed fit continues bit for bit."""

import functools
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch.utils.data import TensorDataset

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._checkpoint import (
    CheckpointWarning,
    Fingerprint,
    describe_param,
    params_fingerprint,
)

SCRIPT = Path(__file__).parent / "scripts" / "checkpoint_fit.py"
ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("checkpoint_fit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_script = _load_script()
PARAMS = _script.PARAMS

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn_dividemix.DivisionWarning",
    "ignore::sklearn_dividemix.UntrustedFitWarning",
)


@pytest.fixture(scope="module")
def digits():
    return _script.data()


@pytest.fixture(scope="module")
def uninterrupted(digits):
    """The fit every resumed one must equal, without checkpoints."""
    return DivideMixClassifier(**PARAMS).fit(*digits)


class _InterruptAt(Callback):
    """Ctrl-C in epoch ``epoch + 1``, after the checkpoint of ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch + 1:
            raise KeyboardInterrupt


def _interrupted(X, y, directory, epoch, **params):
    """A fit stopped after ``epoch`` epochs, its checkpoints in ``directory``."""
    callbacks = [_InterruptAt(epoch)]
    params = {**PARAMS, **params}
    DivideMixClassifier(**params, checkpoint_dir=directory, callbacks=callbacks).fit(
        X, y
    )


def _rows(history):
    return [{k: repr(v) for k, v in row.items() if k != "dur"} for row in history]


def assert_same_fit(resumed, uninterrupted, X):
    """Bit for bit: weights, optimizer-free nets, outputs, histories."""
    for net, reference in [
        (resumed.net1_, uninterrupted.net1_),
        (resumed.net2_, uninterrupted.net2_),
    ]:
        state, expected = net.module_.state_dict(), reference.module_.state_dict()
        assert state.keys() == expected.keys()
        for name in state:
            assert torch.equal(state[name], expected[name]), name
        assert _rows(net.history) == _rows(reference.history)
    np.testing.assert_array_equal(
        resumed.predict_proba(X), uninterrupted.predict_proba(X)
    )
    np.testing.assert_array_equal(resumed.clean_proba_, uninterrupted.clean_proba_)
    np.testing.assert_array_equal(resumed.clean_mask_, uninterrupted.clean_mask_)
    np.testing.assert_array_equal(resumed.train_proba_, uninterrupted.train_proba_)
    assert _rows(resumed.history_) == _rows(uninterrupted.history_)
    # repr: the verdict may hold NaN, which is not equal to itself
    assert repr(resumed.fit_verdict_) == repr(uninterrupted.fit_verdict_)


def test_sigkilled_fit_resumes_bit_for_bit(tmp_path, digits, uninterrupted):
    X, y = digits
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # the last two are kept: the end of warm-up (2) and epoch 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-000002.pt",
        "epoch-000003.pt",
    ]
    resumed = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    assert resumed.resumed_from_epoch_ == 3
    assert_same_fit(resumed, uninterrupted, X)
    assert uninterrupted.resumed_from_epoch_ is None


def test_resume_says_so_and_a_finished_fit_resumes_at_its_end(
    tmp_path, digits, uninterrupted, capsys
):
    X, y = digits
    _interrupted(X, y, tmp_path, 1)
    capsys.readouterr()
    resumed = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path, verbose=1)
    resumed.fit(X, y)
    out = capsys.readouterr().out
    assert f"resuming from checkpoint {tmp_path / 'epoch-000001.pt'}" in out
    assert "after epoch 1 of 5" in out
    # the table header is printed once, above the first epoch run now
    assert out.count("labeled_net1") == 1
    assert [line.split()[0] for line in out.splitlines()[2:6]] == list("2345")
    assert_same_fit(resumed, uninterrupted, X)
    # written after the last epoch: a refit only makes the final division
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == "epoch-000005.pt"
    again = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    assert again.resumed_from_epoch_ == 5
    assert_same_fit(again, uninterrupted, X)


def test_a_dataset_fit_resumes_bit_for_bit(tmp_path, digits):
    X, y = digits

    def dataset():
        return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))

    reference = DivideMixClassifier(**PARAMS).fit(dataset())
    DivideMixClassifier(
        **PARAMS, checkpoint_dir=tmp_path, callbacks=[_InterruptAt(3)]
    ).fit(dataset())
    resumed = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(dataset())
    assert resumed.resumed_from_epoch_ == 3
    assert_same_fit(resumed, reference, X)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(
    tmp_path, digits, uninterrupted
):
    X, y = digits
    _interrupted(X, y, tmp_path, 3)
    newest = tmp_path / "epoch-000003.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(CheckpointWarning, match="epoch-000003.pt cannot be read"):
        resumed = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    assert resumed.resumed_from_epoch_ == 2
    assert_same_fit(resumed, uninterrupted, X)


def test_nothing_readable_starts_fresh_with_a_warning(tmp_path, digits):
    X, y = digits
    (tmp_path / "epoch-000004.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(CheckpointWarning) as record:
        clf = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    messages = [str(w.message) for w in record if w.category is CheckpointWarning]
    assert "epoch-000004.pt cannot be read" in messages[0]
    assert "the fit starts fresh" in messages[1]
    assert clf.resumed_from_epoch_ is None


@pytest.mark.parametrize(
    "change, message",
    [
        ("data", "the data differ"),
        ("labels", "the labels differ"),
        ("params", "lr was 0.1, is 0.05"),
    ],
)
def test_a_checkpoint_of_another_fit_is_never_used(tmp_path, digits, change, message):
    X, y = digits
    _interrupted(X, y, tmp_path, 2, lr=0.1)
    params = {**PARAMS, "lr": 0.1}
    if change == "data":
        X = X.copy()
        X[7, 3] += 0.5
    elif change == "labels":
        y = y.copy()
        y[11] = (y[11] + 1) % 10
    else:
        params["lr"] = 0.05
    clf = DivideMixClassifier(**params, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=message) as raised:
        clf.fit(X, y)
    assert "delete the directory, or pass another checkpoint_dir" in str(raised.value)
    assert not hasattr(clf, "resumed_from_epoch_")


def test_checkpoint_every_and_what_is_kept(tmp_path, digits):
    X, y = digits
    params = {**PARAMS, "max_epochs": 6}
    DivideMixClassifier(**params, checkpoint_dir=tmp_path, checkpoint_every=3).fit(X, y)
    # epochs 2 (end of warm-up), 3 and 6 (the last) were written; two kept,
    # no temporary file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-000003.pt",
        "epoch-000006.pt",
    ]


def test_the_fingerprint_leaves_out_what_only_runs_the_fit():
    params = DivideMixClassifier(
        verbose=2, callbacks=[], device="cpu", iterator_train__num_workers=2
    ).get_params()
    described = params_fingerprint(params)
    for name in ("verbose", "callbacks", "device", "distributed", "checkpoint_dir"):
        assert name not in described
    assert "iterator_train__num_workers" not in described
    assert described["max_epochs"] == "30"
    assert described["optimizer"] == "torch.optim.sgd.SGD"
    # a whole number given as a float is the same setting
    assert describe_param(0.0) == describe_param(0) == "0"
    assert describe_param(0.5) == "0.5"
    # the same in every process: no addresses
    factory = functools.partial(torch.nn.Linear, 3, bias=False)
    assert describe_param(factory) == (
        "partial(torch.nn.modules.linear.Linear, tuple(3), {bias: False})"
    )
    torch.manual_seed(0)
    first = describe_param(torch.nn.Linear(2, 2))
    torch.manual_seed(0)
    assert describe_param(torch.nn.Linear(2, 2)) == first
    assert describe_param(torch.nn.Linear(2, 2)) != first


@pytest.mark.parametrize(
    "balance, resumes", [(False, True), ("auto", False), (True, False)]
)
def test_a_checkpoint_from_before_a_parameter_existed_ran_without_it(balance, resumes):
    # a checkpoint written before balance_labeled existed trained unbalanced
    params = params_fingerprint(
        DivideMixClassifier(balance_labeled=balance).get_params()
    )
    old = {k: v for k, v in params.items() if k != "balance_labeled"}
    this = Fingerprint("data", "labels", params)
    differences = this.differences({"data": "data", "labels": "labels", "params": old})
    assert (differences == []) is resumes
    if not resumes:
        assert differences == [f"balance_labeled was False, is {balance!r}"]


@pytest.mark.parametrize("epoch", [2, 3])
def test_a_fit_that_resolved_the_high_noise_settings_resumes_bit_for_bit(
    tmp_path, epoch
):
    # 60 % symmetric noise: the first division (end of epoch 2) flags half
    # the labels and resolves p_threshold='auto' to 0.6 and loss_window='auto'
    # to 5, and the windows (keeping the warm-up's losses) travel in the
    # checkpoint
    X, y = _script.data(noise=0.0)
    y, _ = make_noisy_labels(y, noise_rate=0.6, random_state=0)
    uninterrupted = DivideMixClassifier(**PARAMS).fit(X, y)
    assert (uninterrupted.p_threshold_, uninterrupted.loss_window_) == (0.6, 5)
    _interrupted(X, y, tmp_path, epoch)
    resumed = DivideMixClassifier(**PARAMS, checkpoint_dir=tmp_path).fit(X, y)
    assert resumed.resumed_from_epoch_ == epoch
    assert_same_fit(resumed, uninterrupted, X)
