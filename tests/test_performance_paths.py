"""The fast paths of training: precision, memory format, compile, host syncs.

These check what can run on a CPU: bf16 autocast, the fp16 fallback,
channels-last, a ``torch.compile`` fit with dynamo's eager backend, and the
properties that make an epoch cheap (no host synchronisation or transfer per
step, no copy of the data set, inference-mode division in large batches,
batched augmentation). No timings: those live in ``benchmarks/speed/speed.py``.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from threadpoolctl import threadpool_info
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from sklearn_dividemix import DivideMixClassifier, SmallCNNClassifierModule, _divider
from sklearn_dividemix._augment import GaussianJitter, RandomCropFlip
from sklearn_dividemix._data import ArraySource
from sklearn_dividemix._division import LossWindow, divide_losses, normalize_losses
from sklearn_dividemix._eval_pass import compute_divisions
from sklearn_dividemix._layout import Preprocess
from sklearn_dividemix._setup import build_net
from sklearn_dividemix._training import TrainingData, run_warmup_epoch
from tests._budgets import SMOKE

# Tensor methods that make the host wait for the device.
SYNCS = {"item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__"}
SYNCS |= {"__index__", "__array__"}
TRANSFERS = {"to", "cuda", "as_tensor", "tensor", "pin_memory", "copy_"}


def _images(n, seed=0, channels=1, size=10):
    """``n`` images whose class (of 3) is a bright row band; 30 % flipped."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = rng.rand(n, channels, size, size).astype(np.float32) * 0.3
    for k in range(3):
        X[y == k, :, 3 * k : 3 * k + 2, :] += 1.0
    flipped = rng.rand(n) < 0.3
    y_noisy = np.where(flipped, (y + 1) % 3, y)
    return X, y_noisy


class _FirstConvRecorder(Callback):
    """Records, per training forward pass, the first conv's input and output."""

    def initialize(self):
        self.calls_ = []
        return self

    def on_train_begin(self, net, **kwargs):
        conv = next(m for m in net.module_.modules() if isinstance(m, torch.nn.Conv2d))

        def hook(module, inputs, output):
            if module.training and torch.is_grad_enabled():
                x = inputs[0]
                channels_last = x.is_contiguous(memory_format=torch.channels_last)
                self.calls_.append((channels_last and x.shape[1] > 1, output.dtype))

        self.handle_ = conv.register_forward_hook(hook)

    def on_train_end(self, net, **kwargs):
        self.handle_.remove()


def _recorder(net):
    return next(cb for _, cb in net.callbacks_ if isinstance(cb, _FirstConvRecorder))


def _assert_finite_fit(clf, X):
    for row in clf.history_:
        assert np.isfinite(row["loss_net1"]) and np.isfinite(row["loss_net2"])
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_bf16_autocast_fit_on_cpu():
    X, y = _images(48)
    clf = DivideMixClassifier(amp="bf16", callbacks=[_FirstConvRecorder()], **SMOKE)
    clf.fit(X, y)
    assert clf.net1_.amp == "bf16" and clf.net1_.grad_scaler_ is None
    dtypes = {dtype for _, dtype in _recorder(clf.net1_).calls_}
    # the training forward passes really ran in bfloat16
    assert dtypes == {torch.bfloat16}
    _assert_finite_fit(clf, X)


def test_fp16_on_cpu_falls_back_to_float32_as_documented():
    X, y = _images(48)
    clf = DivideMixClassifier(amp="fp16", callbacks=[_FirstConvRecorder()], **SMOKE)
    clf.fit(X, y)
    assert clf.amp == "fp16"  # the parameter is kept for get_params
    assert clf.net1_.amp is None and clf.net1_.grad_scaler_ is None
    assert {dtype for _, dtype in _recorder(clf.net1_).calls_} == {torch.float32}
    _assert_finite_fit(clf, X)
    doc = " ".join(DivideMixClassifier.__doc__.split())
    assert "falls back to float32 on the CPU" in doc


def test_channels_last_cnn_on_cpu():
    X, y = _images(48, channels=3)
    clf = DivideMixClassifier(
        channels_last=True, callbacks=[_FirstConvRecorder()], **SMOKE
    )
    clf.fit(X, y)
    for net in (clf.net1_, clf.net2_):
        conv = net.module_.features[0]
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        calls = _recorder(net).calls_
        # every training forward pass saw channels-last input
        assert calls and all(channels_last for channels_last, _ in calls)
    _assert_finite_fit(clf, X)
    # the memory format changes the layout, not the function
    module = clf.net1_.module_.eval()
    plain = copy.deepcopy(module).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        expected = plain(torch.from_numpy(X))
    np.testing.assert_allclose(clf.predict_proba(X), _mean_proba(clf, X), rtol=1e-5)
    with torch.no_grad():
        got = module(torch.from_numpy(X).contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "module, kwargs, expected",
    [
        (None, {}, True),
        (SmallCNNClassifierModule, {"module__in_channels": 1}, False),
    ],
    ids=["default-cnn", "user-module"],
)
def test_auto_channels_last_on_cpu_only_for_the_default_cnn(module, kwargs, expected):
    # A user's module may .view() its conv activations, which channels-last
    # breaks; the default CNN does not, and runs much faster that way.
    X, y = _images(40)
    clf = DivideMixClassifier(module, **kwargs, **SMOKE).fit(X, y)
    assert clf.net1_.channels_last is expected
    X_tab = X.reshape(len(X), -1)
    assert DivideMixClassifier(**SMOKE).fit(X_tab, y).net1_.channels_last is False


def _training_data(X, y, n_classes=3, batch_size=8):
    return TrainingData(
        source=ArraySource(X, Preprocess("NCHW" if X.ndim == 4 else None), "cpu"),
        y=torch.from_numpy(y),
        n_classes=n_classes,
        augment=RandomCropFlip(1, flip=False),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.RandomState(0),
        batch_size=batch_size,
        eval_batch_size=24,
    )


@pytest.mark.parametrize("init_scale, skipped", [(2.0**10, False), (1e38, True)])
def test_grad_scaler_steps_through_the_scaler(init_scale, skipped):
    # fp16 with a gradient scaler is CUDA's path; CPU autocast also knows
    # fp16 and torch has a CPU GradScaler, which stands in for CUDA's here.
    # An overflowing scale must skip the steps (and back off), not write
    # infinite gradients into the weights.
    net = build_net(
        module=SmallCNNClassifierModule,
        module_kwargs={"in_channels": 1, "num_classes": 3, "width": 4},
        routed={},
        optimizer=torch.optim.SGD,
        lr=0.1,
        batch_size=8,
        callbacks=None,
        device="cpu",
        amp="fp16",
        channels_last=False,
        compile=False,
        seed=0,
    )
    assert net.grad_scaler_ is None  # CUDA only by default
    net.grad_scaler_ = torch.amp.GradScaler("cpu", init_scale=init_scale)
    net.history.new_epoch()
    X, y = _images(32)
    weights = [p.detach().clone() for p in net.module_.parameters()]
    terms = run_warmup_epoch(net, _training_data(X, y), confidence_penalty=False)
    assert np.isfinite(terms["loss"])
    after = list(net.module_.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    unchanged = all(torch.equal(a, b) for a, b in zip(weights, after, strict=True))
    assert unchanged is skipped
    # four steps: each overflow halves the scale
    expected_scale = init_scale * 0.5**4 if skipped else init_scale
    assert net.grad_scaler_.get_scale() == pytest.approx(expected_scale)


def _standardised(clf, X):
    """X as the nets see it: standardised per channel with the fitted moments."""
    if clf.input_mean_ is None:
        return torch.from_numpy(X)
    shape = (-1, 1, 1) if X.ndim == 4 else (-1,)
    mean = clf.input_mean_.reshape(shape)
    std = np.where(clf.input_std_ > 0, clf.input_std_, 1.0).reshape(shape)
    return torch.from_numpy(((X - mean) / std).astype(np.float32))


def _mean_proba(clf, X):
    with torch.no_grad():
        proba = sum(
            torch.softmax(net.module_.eval()(_standardised(clf, X)), dim=1)
            for net in (clf.net1_, clf.net2_)
        )
    proba = proba.double().numpy()
    return proba / proba.sum(axis=1, keepdims=True)


def test_compile_fit_with_dynamo_eager_backend():
    # Inductor compiles C++ for a minute on a CPU; dynamo's 'eager' backend
    # exercises the same path (skorch's compile, graph capture of the module
    # in train and eval mode) in seconds.
    X, y = _images(40)
    clf = DivideMixClassifier(compile=True, compile__backend="eager", **SMOKE)
    clf.fit(X, y)
    for net in (clf.net1_, clf.net2_):
        assert net.compile is True
        assert isinstance(net.module_, torch._dynamo.eval_frame.OptimizedModule)
    _assert_finite_fit(clf, X)


class _CallCounter(TorchFunctionMode):
    """Counts calls of chosen torch functions and tensor methods."""

    def __init__(self, names):
        super().__init__()
        self.names = names
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.names:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("names", [SYNCS, TRANSFERS], ids=["syncs", "transfers"])
def test_host_syncs_and_transfers_do_not_grow_with_steps(names):
    # 64 and 256 samples in batches of 16: 4 and 16 warm-up steps per net,
    # and about as many MixMatch steps; any per-step sync or transfer (an
    # .item(), a .cpu(), a .to(device) of a batch) would show in the counts.
    counts = {}
    for n in (64, 256):
        X, y = _images(n)
        with _CallCounter(names) as counter:
            DivideMixClassifier(augment="crop", **SMOKE).fit(X, y)
        counts[n] = sorted(counter.calls)
    assert counts[64] == counts[256]


class _LargeOutputs(TorchDispatchMode):
    """Records every op whose output has the shape of the whole data set."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = torch.utils._pytree.tree_leaves((args, kwargs))
        # a view or the input itself (from_numpy's lift_fresh) is no copy
        shared = {
            t.untyped_storage().data_ptr()
            for t in inputs
            if isinstance(t, torch.Tensor)
        }
        outputs = out if isinstance(out, tuple | list) else [out]
        for tensor in outputs:
            if (
                isinstance(tensor, torch.Tensor)
                and tuple(tensor.shape) == self.shape
                and tensor.untyped_storage().data_ptr() not in shared
            ):
                self.ops.append(str(func))
        return out


def test_fit_never_copies_the_data_set():
    # 62 rows: no batch of 2 or 4 views of at most 16 rows has that size, so
    # any tensor of the data set's shape is a copy of it (a dtype or device
    # conversion, a memory-format change, an augmentation of everything).
    X, y = _images(62, channels=3)
    with _LargeOutputs(X.shape) as mode:
        DivideMixClassifier(eval_batch_size=24, channels_last=True, **SMOKE).fit(X, y)
    assert mode.ops == []


def test_division_runs_in_inference_mode_in_eval_batch_chunks():
    X, y = _images(62)
    clf = DivideMixClassifier(eval_batch_size=24, **SMOKE).fit(X, y)
    net = clf.net1_
    seen = []

    def hook(module, inputs):
        seen.append(
            (len(inputs[0]), torch.is_inference_mode_enabled(), module.training)
        )

    handle = net.module_.register_forward_pre_hook(hook)
    data = _training_data(X, y, batch_size=16)
    net._set_training(True)
    (division,) = compute_divisions([net], data, [LossWindow(1)], [0])
    handle.remove()
    assert seen == [(24, True, False), (24, True, False), (14, True, False)]
    assert division.clean_proba.shape == (62,)


def test_division_mixture_runs_on_one_openmp_thread(monkeypatch):
    X, y = _images(62)
    net = DivideMixClassifier(**SMOKE).fit(X, y).net1_
    data = _training_data(X, y)
    seen = []

    def recording(losses, random_state):
        seen.append(
            {i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
        )
        return divide_losses(losses, random_state=random_state)

    # the global strategy splits with the name _divider imported
    monkeypatch.setattr(_divider, "divide_losses", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        (division,) = compute_divisions([net], data, [LossWindow(1)], [0])
        # torch's own thread count is back once the mixture is fitted
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert seen == [{1}]
    with torch.no_grad():
        net.module_.eval()
        losses = F.cross_entropy(net.module_(data.source.X), data.y, reduction="none")
    expected = divide_losses(normalize_losses(losses.numpy()), random_state=0)
    np.testing.assert_allclose(division.clean_proba, expected.clean_proba, atol=1e-6)


class _OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n_ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n_ops += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "augment, shape",
    [
        (RandomCropFlip(padding=2, flip=True), (3, 8, 8)),
        (RandomCropFlip(padding=3, flip=False), (1, 12, 12)),
        (GaussianJitter(0.1), (5,)),
    ],
)
def test_augmentation_cost_in_kernels_does_not_depend_on_batch_size(augment, shape):
    # A per-image Python loop would launch kernels per image.
    n_ops = {}
    for n in (2, 64):
        X = torch.rand(n, *shape)
        with _OpCounter() as counter:
            augment(X, generator=torch.Generator().manual_seed(0))
        n_ops[n] = counter.n_ops
    assert n_ops[2] == n_ops[64] > 0


def test_set_training_skips_only_when_the_mode_is_already_set():
    X, y = _images(40)
    net = DivideMixClassifier(**SMOKE).fit(X, y).net1_
    modules = list(net.module_.modules())
    net._set_training(False)
    assert not any(m.training for m in modules)
    net._set_training(True)
    assert all(m.training for m in modules)
    # a direct switch of the module is seen, not hidden by the shortcut
    net.module_.eval()
    net._set_training(True)
    assert all(m.training for m in modules)
