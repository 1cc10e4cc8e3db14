"""Device, module arguments, optimizer defaults and the first-batch checks."""

import functools

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_dividemix import MLPClassifierModule, SmallCNNClassifierModule
from sklearn_dividemix._augment import resolve_augment
from sklearn_dividemix._pretrained import module_and_kwargs
from sklearn_dividemix._setup import (
    build_net,
    check_module_output,
    check_routed_params,
    optimizer_defaults,
    resolve_device,
    resolve_lr,
)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_device_is_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == "cpu"


def test_auto_device_is_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda")])
def test_absent_cuda_warns_and_falls_back(no_cuda, device):
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert resolve_device(device) == "cpu"


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_cpu_device_passes_through(no_cuda, device):
    assert resolve_device(device) == "cpu"


def test_default_module_for_tabular_data():
    module, kwargs = module_and_kwargs(None, (12,), 4)
    assert module is MLPClassifierModule
    assert kwargs == {"n_features": 12, "num_classes": 4}


@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32)])
def test_default_module_for_images(input_shape):
    module, kwargs = module_and_kwargs(None, input_shape, 10)
    assert module is SmallCNNClassifierModule
    assert kwargs == {"in_channels": input_shape[0], "num_classes": 10}


class _WithNumClasses(nn.Module):
    def __init__(self, num_classes, hidden=3):
        super().__init__()
        self.linear = nn.Linear(hidden, num_classes)


def _factory_with_kwargs(**kwargs):
    return nn.Linear(4, kwargs.get("num_classes", 2))


def _factory_without(hidden=3):
    return nn.Linear(hidden, 2)


@pytest.mark.parametrize(
    "module, expected",
    [
        (_WithNumClasses, {"num_classes": 5}),
        (_factory_with_kwargs, {"num_classes": 5}),
        (_factory_without, {}),
        (lambda: nn.Linear(4, 2), {}),
        (functools.partial(MLPClassifierModule, n_features=4), {"num_classes": 5}),
        (functools.partial(_factory_without, hidden=4), {}),
        # a builtin without an introspectable signature gets nothing
        (nn.Linear, {}),
    ],
)
def test_user_module_gets_num_classes_only_if_it_takes_it(module, expected):
    factory, kwargs = module_and_kwargs(module, (4,), 5)
    assert factory is module
    assert kwargs == expected


def test_module_instance_is_taken_as_it_is():
    # copied per net when the nets are built (tests/test_pretrained.py)
    instance = nn.Linear(4, 2)
    assert module_and_kwargs(instance, (4,), 2) == (instance, {})


@pytest.mark.parametrize(
    "module, expected",
    [
        (None, 0.1),
        (SmallCNNClassifierModule, 0.1),
        # a built-in network pretrained by the user: the architecture decides
        (SmallCNNClassifierModule(1, 3, width=4), 0.1),
        (MLPClassifierModule(4, 3), 0.1),
        (functools.partial(SmallCNNClassifierModule, width=4), 0.02),
        (nn.Linear(4, 3), 0.02),
        (nn.Linear, 0.02),
    ],
)
def test_auto_lr_follows_the_architecture(module, expected):
    assert resolve_lr("auto", module) == expected
    assert resolve_lr(0.05, module) == 0.05


@pytest.mark.parametrize(
    "routed, expected",
    [
        ({}, {"optimizer__momentum": 0.9, "optimizer__weight_decay": 5e-4}),
        ({"optimizer__momentum": 0.5}, {"optimizer__weight_decay": 5e-4}),
        (
            {"optimizer__momentum": 0.0, "optimizer__weight_decay": 0.0},
            {},
        ),
    ],
)
def test_sgd_gets_the_paper_defaults_unless_set(routed, expected):
    assert optimizer_defaults(torch.optim.SGD, routed) == expected


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW])
def test_other_optimizers_get_no_defaults(optimizer):
    assert optimizer_defaults(optimizer, {}) == {}


def test_routed_params_are_accepted():
    check_routed_params(
        {
            "module__hidden_units": 8,
            "optimizer__momentum": 0.5,
            "callbacks__print__sink": print,
            "compile__mode": "default",
        }
    )


def test_unknown_params_are_rejected_by_name():
    with pytest.raises(TypeError, match=r"\['foo', 'hidden_units'\]"):
        check_routed_params({"module__a": 1, "hidden_units": 8, "foo": 2})


def _build(module, module_kwargs=None, seed=0, **kwargs):
    params = dict(
        module=module,
        module_kwargs=module_kwargs or {},
        routed={},
        optimizer=torch.optim.SGD,
        lr=0.1,
        batch_size=8,
        callbacks=None,
        device="cpu",
        amp=None,
        channels_last=False,
        compile=False,
        seed=seed,
    )
    params.update(kwargs)
    return build_net(**params)


def _identity(X, generator=None):
    return X


def test_build_net_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    kwargs = {"n_features": 4, "num_classes": 3, "hidden_units": 8}
    first = _build(MLPClassifierModule, kwargs, seed=0)
    same = _build(MLPClassifierModule, kwargs, seed=0)
    other = _build(MLPClassifierModule, kwargs, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    pairs = list(
        zip(first.module_.parameters(), same.module_.parameters(), strict=True)
    )
    assert all(torch.equal(a, b) for a, b in pairs)
    others = zip(first.module_.parameters(), other.module_.parameters(), strict=True)
    assert not all(torch.equal(a, c) for a, c in others)
    group = first.optimizer_.param_groups[0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 5e-4


def test_build_net_routed_params_override_defaults():
    net = _build(
        MLPClassifierModule,
        {"n_features": 4, "num_classes": 3},
        routed={"optimizer__momentum": 0.0, "module__hidden_units": 5},
    )
    assert net.optimizer_.param_groups[0]["momentum"] == 0.0
    assert net.module_.layers[0].out_features == 5


def test_build_net_rejects_a_factory_that_returns_no_module():
    with pytest.raises(TypeError, match="returned function"):
        _build(lambda: _identity)


def test_check_module_output_accepts_logits():
    net = _build(MLPClassifierModule, {"n_features": 4, "num_classes": 3})
    X = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))
    check_module_output(net, X, 3, resolve_augment("auto", (4,), torch.ones(4)))


class _Probabilities(nn.Module):
    def __init__(self, final):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.final = final

    def forward(self, X):
        return self.final(self.linear(X))


def test_check_module_output_rejects_probabilities():
    net = _build(_Probabilities, {"final": nn.Softmax(dim=1)})
    X = torch.rand(8, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="must return logits.*ends in a softmax"):
        check_module_output(net, X, 3, _identity)


def test_check_module_output_accepts_log_probabilities():
    # log_softmax differs from the logits by a per-row constant that every
    # softmax here cancels: it trains exactly as the logits do.
    net = _build(_Probabilities, {"final": nn.LogSoftmax(dim=1)})
    X = torch.rand(8, 3, generator=torch.Generator().manual_seed(0))
    check_module_output(net, X, 3, _identity)
    logits = net.module_.linear(X)
    torch.testing.assert_close(
        torch.softmax(net.module_(X), 1), torch.softmax(logits, 1)
    )


def test_softmax_module_fails_before_training():
    from sklearn_dividemix import DivideMixClassifier

    X = np.random.RandomState(0).rand(30, 3).astype(np.float32)
    clf = DivideMixClassifier(
        module=_Probabilities,
        module__final=nn.Softmax(dim=1),
        max_epochs=1,
        warmup_epochs=1,
    )
    with pytest.raises(ValueError, match="must return logits"):
        clf.fit(X, np.arange(30) % 3)


def test_check_module_output_names_the_wrong_number_of_classes():
    net = _build(MLPClassifierModule, {"n_features": 4, "num_classes": 4})
    X = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"\(8, 3\); it returned shape \(8, 4\)"):
        check_module_output(net, X, 3, _identity)


class _Unflatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, X):
        return self.linear(X).unsqueeze(1)


class _TupleOutput(_Unflatten):
    def forward(self, X):
        return self.linear(X), X


def test_check_module_output_names_the_wrong_ndim():
    net = _build(_Unflatten)
    X = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"returned shape \(5, 1, 3\)"):
        check_module_output(net, X, 3, _identity)


def test_check_module_output_rejects_tuples():
    net = _build(_TupleOutput)
    X = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="it returned tuple"):
        check_module_output(net, X, 3, _identity)


def test_check_module_output_checks_the_augmentation_first():
    net = _build(MLPClassifierModule, {"n_features": 4, "num_classes": 3})
    X = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"got \(8, 2\) for input \(8, 4\)"):
        check_module_output(net, X, 3, lambda X: X[:, :2])
