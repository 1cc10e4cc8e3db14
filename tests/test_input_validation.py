"""Bad input and bad parameters: a clear error, and nothing lost or half-fitted.

The guarantee tested here, and documented in ``fit`` and docs/compatibility.md:
a ``fit`` that raises leaves a previously fitted estimator exactly as it was
(every fitted attribute is the same object as before), whether it raises
before training (bad input, bad parameter) or during it (a module that
fails to build or returns the wrong shape).
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

from sklearn_dividemix import DivideMixClassifier, MLPClassifierModule

FAST = dict(max_epochs=3, warmup_epochs=2, batch_size=16, lr=0.1, random_state=0)

# Tiny, easy data makes one-sided divisions; DivisionWarning is tested in
# test_classifier.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(60, n_features=4, centers=3, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(blobs):
    return DivideMixClassifier(**FAST).fit(*blobs)


def _with_value(X, value):
    X = X.copy()
    X[3, 1] = value
    return X


BAD_DATA = {
    "nan": (lambda X, y: (_with_value(X, np.nan), y), "Input X contains NaN"),
    "inf": (lambda X, y: (_with_value(X, np.inf), y), "Input X contains infinity"),
    "empty": (lambda X, y: (X[:0], y[:0]), "Found array with 0 sample"),
    "one sample": (lambda X, y: (X[:1], y[:1]), "minimum of 2 is required"),
    "lengths": (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    "single class": (lambda X, y: (X, np.zeros_like(y)), "at least 2 classes"),
    "continuous y": (
        lambda X, y: (X, np.linspace(0, 1, len(y))),
        "Unknown label type: continuous",
    ),
    "1-D X": (lambda X, y: (X[:, 0], y), "Expected 2D array"),
    "5-D X": (
        lambda X, y: (X.reshape(len(X), 1, 1, 2, 2), y),
        r"feature vectors .* or images .*got samples of shape \(1, 1, 2, 2\)",
    ),
    "ambiguous layout": (
        lambda X, y: (np.zeros((len(X), 3, 5, 3), np.float32), y),
        "ambiguous.*image_layout='NCHW' or image_layout='NHWC'",
    ),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=str)
def test_bad_training_data_raises_a_clear_error(blobs, case):
    make, message = BAD_DATA[case]
    X, y = make(*blobs)
    with pytest.raises(ValueError, match=message):
        DivideMixClassifier(**FAST).fit(X, y)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_predict_before_fit_raises_not_fitted(blobs, method):
    X, y = blobs
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError):
        getattr(DivideMixClassifier(**FAST), method)(*args)


@pytest.mark.parametrize(
    "X_new, message",
    [
        (np.zeros((5, 3), np.float32), "X has 3 features, but .* expecting 4"),
        (np.zeros((5, 4, 2, 2), np.float32), "shape"),
        (np.full((5, 4), np.nan, np.float32), "Input X contains NaN"),
        (np.zeros((0, 4), np.float32), "Found array with 0 sample"),
    ],
    ids=["features", "4-D", "nan", "empty"],
)
def test_bad_prediction_data_raises(fitted, X_new, message):
    with pytest.raises(ValueError, match=message):
        fitted.predict_proba(X_new)


def test_images_of_another_size_at_predict_time_raise():
    rng = np.random.RandomState(0)
    X = rng.rand(20, 1, 6, 6).astype(np.float32)
    y = np.arange(20) % 2
    clf = DivideMixClassifier(**FAST, module__width=4).fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\).*\(1, 6, 6\)"):
        clf.predict(np.zeros((2, 1, 8, 8), np.float32))


class _WrongOutput(nn.Module):
    def __init__(self, num_classes, kind):
        super().__init__()
        self.kind = kind
        self.linear = nn.Linear(4, num_classes)

    def forward(self, X):
        logits = self.linear(X)
        if self.kind == "extra class":
            return torch.cat([logits, logits[:, :1]], dim=1)
        if self.kind == "1-D":
            return logits[:, 0]
        return logits, logits  # "tuple"


@pytest.mark.parametrize(
    "kind, message",
    [
        ("extra class", r"\(batch, n_classes\) = \(8, 3\).*returned shape \(8, 4\)"),
        ("1-D", r"returned shape \(8,\)"),
        ("tuple", "it returned tuple"),
    ],
)
def test_module_with_wrong_output_is_rejected(blobs, kind, message):
    clf = DivideMixClassifier(_WrongOutput, **FAST, module__kind=kind)
    with pytest.raises(ValueError, match=message):
        clf.fit(*blobs)


class _FirstLayer(nn.Module):
    """A module whose first layer takes ``size`` features or channels."""

    def __init__(self, num_classes, size=5, conv=False):
        super().__init__()
        first = nn.Conv2d(size, 2, 3) if conv else nn.Linear(size, 2)
        tail = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if conv else []
        self.layers = nn.Sequential(first, *tail, nn.Linear(2, num_classes))

    def forward(self, X):
        return self.layers(X)


def test_module_with_the_wrong_input_size_names_the_input_shape(blobs):
    clf = DivideMixClassifier(_FirstLayer, **FAST)
    with pytest.raises(
        ValueError, match=r"shape \(8, 4\).*module__in_features=4"
    ) as info:
        clf.fit(*blobs)
    assert isinstance(info.value.__cause__, RuntimeError)  # torch's own error


def test_module_with_the_wrong_channels_names_them_and_the_layout():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(20, 6, 6, 3)).astype(np.uint8)
    y = np.arange(20) % 2
    clf = DivideMixClassifier(_FirstLayer, **FAST, module__size=1, module__conv=True)
    message = r"shape \(8, 3, 6, 6\).*3 input channels.*module__in_channels=3"
    with pytest.raises(ValueError, match=message + ".*image_layout"):
        clf.fit(X, y)


def _broken_factory(num_classes):
    raise RuntimeError("no such weights file")


def test_module_factory_that_raises_names_the_net(blobs):
    clf = DivideMixClassifier(_broken_factory, max_epochs=2, warmup_epochs=1)
    with pytest.raises(RuntimeError, match="no such weights file") as info:
        clf.fit(*blobs)
    assert any("_broken_factory" in note for note in info.value.__notes__)
    assert not hasattr(clf, "classes_")


def test_module_instance_is_copied_per_net(blobs):
    instance = MLPClassifierModule(4, 3)
    clf = DivideMixClassifier(instance, max_epochs=2, warmup_epochs=1).fit(*blobs)
    assert clf.net1_.module_ is not instance
    assert clf.net1_.module_ is not clf.net2_.module_


class _CountBatches(Callback):
    def initialize(self):
        self.sizes_ = []
        return self

    def on_batch_end(self, net, batch=None, **kwargs):
        self.sizes_.append(len(batch.X))


def test_batch_size_larger_than_the_data_is_clipped(blobs):
    X, y = blobs
    clf = DivideMixClassifier(
        **{**FAST, "batch_size": 1000}, callbacks=[("count", _CountBatches())]
    ).fit(X, y)
    sizes = dict(clf.net1_.callbacks_)["count"].sizes_
    # two warm-up epochs of one full batch each, then MixMatch batches
    assert sizes[:2] == [60, 60]
    assert len(sizes) > 2 and np.all(np.isfinite(clf.predict_proba(X)))


def test_class_with_a_single_sample_trains(blobs):
    """DivideMix needs no per-class folds, so a one-sample class is fine."""
    X, y = blobs
    y = y.copy()
    y[7] = 3
    clf = DivideMixClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2, 3])
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.clean_proba_.shape == (60,)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"p_threshold": 1.5}, r"'p_threshold' .* range \(0.0, 1.0\)"),
        ({"max_epochs": 0}, r"'max_epochs' .* range \[1, inf\)"),
        ({"lr": -0.1}, r"'lr' .* range \(0.0, inf\)"),
        ({"temperature": 0}, r"'temperature' .* range \(0.0, 1.0\]"),
        ({"augment": "rotate"}, r"'augment' .* among \{.*'crop'"),
        ({"amp": "fp8"}, r"'amp' .* among \{'(bf16|fp16)', '(bf16|fp16)'\}"),
        ({"warmup_epochs": 5}, r"'warmup_epochs' .* range \[0, max_epochs=3\]"),
        ({"device": "gpu"}, r"'device' .* torch device such as 'cpu'"),
    ],
)
def test_bad_parameter_names_parameter_and_range(blobs, params, message):
    clf = DivideMixClassifier(**{**FAST, **params})
    with pytest.raises(InvalidParameterError, match=message):
        clf.fit(*blobs)


def test_misspelt_keyword_is_reported_by_fit(blobs):
    # Stored by __init__ like any routed argument, so that clone keeps it...
    clf = DivideMixClassifier(**FAST, lamda_u=10)
    assert clf.get_params()["lamda_u"] == 10
    # ...but never silently ignored.
    with pytest.raises(TypeError, match=r"unexpected parameter\(s\) \['lamda_u'\]"):
        clf.fit(*blobs)


def test_set_params_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="Invalid parameter 'lamda_u'"):
        DivideMixClassifier().set_params(lamda_u=10)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"module__n_layers": 2}, TypeError, "unexpected keyword argument 'n_layers'"),
        ({"optimizer__momentum": -1.0}, ValueError, "Invalid momentum value"),
    ],
)
def test_bad_routed_argument_fails_when_the_net_is_built(blobs, params, error, message):
    clf = DivideMixClassifier(**{**FAST, **params})
    with pytest.raises(error, match=message) as info:
        clf.fit(*blobs)
    assert any("module__*/optimizer__*" in note for note in info.value.__notes__)


def _fitted_state(clf):
    return {k: v for k, v in vars(clf).items() if k.endswith("_")}


FAILING_REFITS = {
    "nan in X": (lambda X, y: (_with_value(X, np.nan), y), {}, ValueError),
    "other features": (
        lambda X, y: (np.hstack([X, X]), y),
        {"module": _broken_factory},
        RuntimeError,
    ),
    "bad parameter": (lambda X, y: (X, y), {"p_threshold": 2.0}, ValueError),
    "wrong output": (
        lambda X, y: (X, y),
        {"module": _WrongOutput, "module__kind": "1-D"},
        ValueError,
    ),
}


@pytest.mark.parametrize("case", FAILING_REFITS, ids=str)
def test_failed_refit_leaves_the_fitted_estimator_as_it_was(blobs, case):
    X, y = blobs
    clf = DivideMixClassifier(**FAST).fit(X, y)
    before = _fitted_state(clf)
    proba_before = clf.predict_proba(X)
    make, params, error = FAILING_REFITS[case]
    clf.set_params(**params)
    with pytest.raises(error):
        clf.fit(*make(X, y))
    after = _fitted_state(clf)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    assert clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.predict_proba(X), proba_before)
