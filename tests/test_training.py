"""One epoch of each phase, and the mixed batch, on a tiny MLP and CNN."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from torch.testing import assert_close

from sklearn_dividemix import MLPClassifierModule, SmallCNNClassifierModule, _epochs
from sklearn_dividemix._augment import GaussianJitter
from sklearn_dividemix._data import ArraySource
from sklearn_dividemix._distributed import SingleProcess
from sklearn_dividemix._division import (
    Division,
    LossWindow,
    divide_losses,
    normalize_losses,
)
from sklearn_dividemix._eval_pass import compute_divisions, eval_pass
from sklearn_dividemix._fit_state import Phase
from sklearn_dividemix._layout import Preprocess
from sklearn_dividemix._mixmatch import sharpen
from sklearn_dividemix._setup import build_net
from sklearn_dividemix._training import (
    TrainingData,
    make_mixmatch_batch,
    run_mixmatch_epoch,
    run_warmup_epoch,
)

N, N_FEATURES, N_CLASSES, BATCH = 40, 5, 3, 8


def _identity(X, generator=None):
    return X


class _StepRecorder(Callback):
    """Keeps every training batch the net was notified of."""

    def initialize(self):
        self.batches_ = []
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        self.batches_.append((batch, kwargs["loss"]))


def _data(n=N, augment=_identity, image=False, seed=0):
    rng = np.random.RandomState(seed)
    shape = (n, 1, 6, 6) if image else (n, N_FEATURES)
    X = rng.rand(*shape).astype(np.float32)
    y = torch.arange(n) % N_CLASSES
    return TrainingData(
        source=ArraySource(X, Preprocess(None if not image else "NCHW"), "cpu"),
        y=y,
        n_classes=N_CLASSES,
        augment=augment,
        generator=torch.Generator().manual_seed(seed),
        rng=np.random.RandomState(seed),
        batch_size=BATCH,
        eval_batch_size=16,
    )


def _net(seed, image=False):
    if image:
        module = SmallCNNClassifierModule
        kwargs = {"in_channels": 1, "num_classes": N_CLASSES, "width": 4}
    else:
        module = MLPClassifierModule
        kwargs = {"n_features": N_FEATURES, "num_classes": N_CLASSES}
        kwargs["hidden_units"] = 16
    net = build_net(
        module=module,
        module_kwargs=kwargs,
        routed={},
        optimizer=torch.optim.SGD,
        lr=0.1,
        batch_size=BATCH,
        callbacks=[("steps", _StepRecorder())],
        device="cpu",
        amp=None,
        channels_last=False,
        compile=False,
        seed=seed,
    )
    # the epoch loop opens an epoch before the phase functions add batches
    net.history.new_epoch()
    return net


def _recorded(net):
    return dict(net.callbacks_)["steps"].batches_


def _row_indices(X, rows):
    """Index in ``X`` of each of ``rows`` (rows are exact copies)."""
    matches = (rows[:, None, :] == X[None, :, :]).all(dim=2)
    assert torch.all(matches.sum(dim=1) == 1)
    return matches.int().argmax(dim=1).tolist()


def _state(net):
    return {k: v.clone() for k, v in net.module_.state_dict().items()}


def _clean_proba(n_labeled, n=N):
    return (torch.arange(n) < n_labeled).float()


def test_mixmatch_batch_shapes_and_targets():
    data = _data(augment=GaussianJitter(0.1))
    net, peer = _net(0), _net(1)
    batch = make_mixmatch_batch(
        net,
        peer,
        data,
        torch.arange(6),
        torch.arange(20, 26),
        torch.full((N,), 0.7),
        temperature=0.5,
        alpha=4.0,
        unlabeled_weight=7.5,
    )
    assert batch.X.shape == (24, N_FEATURES)
    assert batch.targets.shape == (24, N_CLASSES)
    assert batch.n_labeled == 12
    assert batch.unlabeled_weight == 7.5
    assert_close(batch.targets.sum(dim=1), torch.ones(24))
    assert torch.all(batch.targets >= 0)
    # targets are constants of the step: no gradient may reach them
    assert not batch.targets.requires_grad and batch.targets.grad_fn is None


def test_mixmatch_batch_wires_co_refinement_and_co_guessing():
    # identity augmentation and alpha=0 (no mixup) leave the targets bare
    data = _data()
    net, peer = _net(0), _net(1)
    labeled, unlabeled = torch.tensor([0, 4, 7, 9]), torch.tensor([1, 2, 30])
    clean_proba = torch.linspace(0, 1, N)
    batch = make_mixmatch_batch(
        net,
        peer,
        data,
        labeled,
        unlabeled,
        clean_proba,
        temperature=0.5,
        alpha=0.0,
        unlabeled_weight=1.0,
    )
    X_x, X_u = data.source.X[labeled], data.source.X[unlabeled]
    assert_close(batch.X, torch.cat([X_x, X_x, X_u, X_u]))
    with torch.no_grad():
        own_x = torch.softmax(net.module_(X_x), dim=1)
        own_u = torch.softmax(net.module_(X_u), dim=1)
        peer_u = torch.softmax(peer.module_(X_u), dim=1)
    w = clean_proba[labeled, None]
    # co-refinement: own net's prediction and the peer's clean probability
    targets_x = sharpen(w * data.onehot(labeled) + (1 - w) * own_x, 0.5)
    # co-guessing: both nets, both (here identical) views
    targets_u = sharpen((own_u + peer_u) / 2, 0.5)
    assert_close(batch.targets, torch.cat([targets_x, targets_x, targets_u, targets_u]))
    # the check can tell the peer's contribution apart
    assert not torch.allclose(targets_u, sharpen(own_u, 0.5), atol=1e-4)


@pytest.mark.parametrize("n_labeled, n_unlabeled", [(6, 0), (0, 6)])
def test_mixmatch_batch_with_one_empty_side(n_labeled, n_unlabeled):
    data = _data(augment=GaussianJitter(0.1))
    batch = make_mixmatch_batch(
        _net(0),
        _net(1),
        data,
        torch.arange(n_labeled),
        torch.arange(10, 10 + n_unlabeled),
        torch.ones(N),
        temperature=0.5,
        alpha=4.0,
        unlabeled_weight=1.0,
    )
    assert batch.X.shape == (12, N_FEATURES)
    assert batch.n_labeled == 2 * n_labeled
    assert_close(batch.targets.sum(dim=1), torch.ones(12))


@pytest.mark.parametrize(
    "n_labeled, sizes",
    [
        (20, [8, 8, 4]),  # ceil(20 / 8) steps
        (16, [8, 8]),
        (17, [8, 8]),  # a last batch of one is dropped (BatchNorm)
        (40, [8] * 5),  # empty unlabeled set
    ],
)
def test_mixmatch_epoch_is_one_pass_over_the_labeled_set(n_labeled, sizes):
    data = _data()
    net, peer = _net(0), _net(1)
    terms = run_mixmatch_epoch(
        net,
        peer,
        data,
        _clean_proba(n_labeled),
        p_threshold=0.5,
        temperature=0.5,
        alpha=0.0,
        unlabeled_weight=lambda fraction: 1.0,
    )
    batches = [batch for batch, _ in _recorded(net)]
    assert len(batches) == len(sizes)
    n_unlabeled = N - n_labeled
    seen_labeled = []
    for batch, size in zip(batches, sizes, strict=True):
        size_u = min(size, n_unlabeled)
        assert batch.n_labeled == 2 * size
        assert len(batch.X) == 2 * size + 2 * size_u
        # without mixup the first rows are the labeled samples themselves
        seen_labeled += _row_indices(data.source.X, batch.X[:size])
        unlabeled = _row_indices(data.source.X, batch.X[2 * size : 2 * size + size_u])
        assert min(unlabeled, default=n_labeled) >= n_labeled
    # every labeled sample once (but the dropped singleton), no unlabeled one
    assert len(set(seen_labeled)) == len(seen_labeled) == sum(sizes)
    assert set(seen_labeled) <= set(range(n_labeled))
    assert set(terms) == {"loss_x", "loss_u", "penalty", "loss"}
    assert all(math.isfinite(v) for v in terms.values())
    if n_unlabeled == 0:
        assert terms["loss_u"] == 0.0


def test_mixmatch_epoch_with_empty_labeled_set_passes_over_unlabeled():
    data = _data()
    net = _net(0)
    terms = run_mixmatch_epoch(
        net,
        _net(1),
        data,
        _clean_proba(0),
        p_threshold=0.5,
        temperature=0.5,
        alpha=4.0,
        unlabeled_weight=lambda fraction: 25.0,
    )
    batches = [batch for batch, _ in _recorded(net)]
    assert len(batches) == math.ceil(N / BATCH)
    assert all(b.n_labeled == 0 and len(b.X) == 2 * BATCH for b in batches)
    assert terms["loss_x"] == 0.0
    assert terms["loss_u"] > 0
    assert all(math.isfinite(v) for v in terms.values())


def test_mixmatch_epoch_ramps_the_unlabeled_weight_within_the_epoch():
    data = _data()
    net = _net(0)
    run_mixmatch_epoch(
        net,
        _net(1),
        data,
        _clean_proba(20),
        p_threshold=0.5,
        temperature=0.5,
        alpha=4.0,
        unlabeled_weight=lambda fraction: 10.0 * fraction,
    )
    weights = [batch.unlabeled_weight for batch, _ in _recorded(net)]
    assert weights == pytest.approx([0.0, 10 / 3, 20 / 3])


def test_mixmatch_epoch_trains_the_net_and_leaves_the_peer_alone():
    data = _data(image=True, augment=GaussianJitter(0.1))
    net, peer = _net(0, image=True), _net(1, image=True)
    net_before, peer_before = _state(net), _state(peer)
    run_mixmatch_epoch(
        net,
        peer,
        data,
        _clean_proba(24),
        p_threshold=0.5,
        temperature=0.5,
        alpha=4.0,
        unlabeled_weight=lambda fraction: 25.0,
    )
    net_after, peer_after = _state(net), _state(peer)
    # weights and BatchNorm statistics of the trained net moved...
    changed = [k for k in net_before if not torch.equal(net_before[k], net_after[k])]
    assert "head.1.weight" in changed and "features.1.running_mean" in changed
    # ...and nothing of the frozen peer did, not even its running statistics
    for key, value in peer_before.items():
        assert torch.equal(value, peer_after[key]), key


@pytest.mark.parametrize("n, n_steps", [(40, 5), (41, 5), (42, 6)])
@pytest.mark.parametrize("confidence_penalty", [False, True])
def test_warmup_epoch(n, n_steps, confidence_penalty):
    data = _data(n=n, augment=GaussianJitter(0.1))
    net = _net(0)
    before = _state(net)
    terms = run_warmup_epoch(net, data, confidence_penalty=confidence_penalty)
    assert len(_recorded(net)) == n_steps
    expected_terms = {"loss_ce", "loss"} | (
        {"penalty"} if confidence_penalty else set()
    )
    assert set(terms) == expected_terms
    # epoch means are sample-weighted, so the total is the sum of the terms
    assert terms["loss"] == pytest.approx(
        terms["loss_ce"] + terms.get("penalty", 0.0), abs=1e-5
    )
    if confidence_penalty:
        # negative entropy of 3 classes lies in [-log 3, 0]
        assert -math.log(N_CLASSES) <= terms["penalty"] < 0
    after = _state(net)
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_compute_divisions_split_each_nets_own_losses():
    data = _data()
    nets = [_net(0), _net(1)]
    windows = [LossWindow(1), LossWindow(1)]
    divisions = compute_divisions(nets, data, windows, [0, 1])
    for net, division, seed in zip(nets, divisions, [0, 1], strict=True):
        with torch.no_grad():
            net.module_.eval()
            logits = net.module_(data.source.X)
        losses = F.cross_entropy(logits, data.y, reduction="none")
        expected = divide_losses(normalize_losses(losses.numpy()), random_state=seed)
        np.testing.assert_allclose(
            division.clean_proba, expected.clean_proba, atol=1e-6
        )
        assert division.means == pytest.approx(expected.means, abs=1e-6)


def test_eval_pass_reads_each_batch_once_for_both_nets():
    data = _data(n=37)
    reads = []
    stream = data.source.stream

    def counting(batch_size, start=0, stop=None):
        for batch in stream(batch_size, start, stop):
            reads.append(len(batch))
            yield batch

    data.source.stream = counting
    nets = [_net(0), _net(1)]
    result = eval_pass(nets, data, with_proba=True)
    assert reads == [16, 16, 5]
    assert [loss.shape for loss in result.losses] == [(37,), (37,)]
    with torch.no_grad():
        for net in nets:
            net.module_.eval()
        logits = [n.module_(data.source.X) for n in nets]
    expected = sum(torch.softmax(z, 1) for z in logits) / 2
    np.testing.assert_allclose(result.proba, expected.numpy(), atol=1e-6)
    for predicted, z in zip(result.predictions, logits, strict=True):
        np.testing.assert_array_equal(predicted, z.argmax(1).numpy())


@pytest.mark.parametrize("steps_per_epoch", ["labeled", "all"])
def test_co_divide_trains_each_net_on_its_peers_division(steps_per_epoch):
    data = _data()
    nets = [_net(0), _net(1)]
    divisions = [
        Division(
            _clean_proba(n_clean).numpy(),
            (0.1, 0.9),
            (0.01, 0.01),
            (0.5, 0.5),
            8.0,
            False,
            None,
        )
        for n_clean in (10, 30)
    ]
    settings = _epochs.LoopSettings(
        p_threshold=0.5,
        temperature=0.5,
        alpha=0.0,
        lambda_u=25.0,
        warmup_epochs=1,
        steps_per_epoch=steps_per_epoch,
    )
    phase = Phase(warmup_end=1, lambda_u=25.0, rampup_epochs=16)
    reporter = _epochs.EpochReporter(0)
    row = _epochs._mixmatch(settings, nets, data, divisions, 1, reporter, phase)
    # net1 trains on net2's 30 clean samples, net2 on net1's 10
    assert row["labeled_net1"] == 30 and row["labeled_net2"] == 10
    for net, n_labeled in zip(nets, (30, 10), strict=True):
        batches = [batch for batch, _ in _recorded(net)]
        # 'labeled': one pass over the peer's labeled set; 'all': as many
        # steps as a pass over every sample, the labeled set cycled
        n_steps = n_labeled if steps_per_epoch == "labeled" else len(data)
        assert len(batches) == math.ceil(n_steps / BATCH)
        seen = set()
        for batch in batches:
            size = batch.n_labeled // 2
            rows = _row_indices(data.source.X, batch.X[:size])
            assert max(rows) < n_labeled
            seen.update(rows)
        assert seen == set(range(n_labeled))


class _TwoProcesses(SingleProcess):
    world_size = 2


@pytest.mark.parametrize(
    ("n", "world_size", "sizes"),
    [
        (9, 1, [4, 4]),
        (9, 2, [4, 4]),
        (11, 2, [4, 4]),
        (12, 2, [4, 4, 4]),
        (10, 2, [4, 4]),
        (10, 1, [4, 4, 2]),
        (3, 2, [3]),
    ],
)
def test_training_batches_leave_every_process_two_samples(n, world_size, sizes):
    data = _data()
    data.batch_size = 4
    data.replicas = _TwoProcesses() if world_size == 2 else SingleProcess()
    # a trailing batch of one (one process) or of under two per process is
    # dropped: BatchNorm cannot normalise one sample; a lone batch stays
    batches = data.batches(torch.arange(n))
    assert [len(b) for b in batches] == sizes
