"""End-to-end behaviour of DivideMixClassifier on small data."""

import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from sklearn_dividemix import (
    DivideMixClassifier,
    DivisionWarning,
    MLPClassifierModule,
    SmallCNNClassifierModule,
    UntrustedFitWarning,
)
from tests._budgets import LEARNING

FAST = {**LEARNING, "max_epochs": 3}


def test_digits_finds_wrong_labels_and_beats_cross_entropy(noisy_digits):
    d = noisy_digits
    budget = dict(max_epochs=30, batch_size=64, lr=0.1)
    clf = DivideMixClassifier(warmup_epochs=10, random_state=0, **budget)
    clf.fit(d["X_train"], d["y_noisy"])
    detection_f1 = f1_score(d["flipped"], ~clf.clean_mask_)
    assert detection_f1 >= 0.9

    torch.manual_seed(0)
    plain = NeuralNetClassifier(
        MLPClassifierModule,
        module__n_features=64,
        module__num_classes=10,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        optimizer__weight_decay=5e-4,
        train_split=None,
        verbose=0,
        **budget,
    ).fit(d["X_train"], d["y_noisy"])
    plain_accuracy = np.mean(plain.predict(d["X_test"]) == d["y_test"])
    accuracy = clf.score(d["X_test"], d["y_test"])
    assert accuracy > plain_accuracy + 0.03, (accuracy, plain_accuracy)


def test_fitted_attributes_and_predictions(noisy_digits):
    d = noisy_digits
    X, y = d["X_train"][:300], d["y_noisy"][:300]
    clf = DivideMixClassifier(**FAST).fit(X, y)
    assert clf.n_features_in_ == 64
    assert clf.input_shape_ == (64,)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.clean_proba_.shape == (300,)
    assert ((clf.clean_proba_ >= 0) & (clf.clean_proba_ <= 1)).all()
    np.testing.assert_array_equal(clf.clean_mask_, clf.clean_proba_ > clf.p_threshold_)
    proba = clf.predict_proba(d["X_test"])
    assert proba.shape == (len(d["X_test"]), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(d["X_test"]), proba.argmax(axis=1))
    assert clf.device_ == "cpu"


def test_history_records_each_epoch(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(**FAST).fit(d["X_train"][:300], d["y_noisy"][:300])
    history = clf.history_
    assert len(history) == 3
    assert history[:, "phase"] == ["warmup", "warmup", "mixmatch"]
    assert history[:, "epoch"] == [1, 2, 3]
    last = history[-1]
    for net in ("net1", "net2"):
        assert np.isfinite(last[f"loss_{net}"])
        assert set(last[f"loss_terms_{net}"]) == {"loss_x", "loss_u", "penalty"}
        assert 0 < last[f"labeled_{net}"] <= 300
        clean_mean, noisy_mean = last[f"gmm_means_{net}"]
        assert clean_mean < noisy_mean
        assert last[f"division_{net}"]["histogram"].sum() == 300
    assert history[0]["gmm_means_net1"] is None
    assert all(row["dur"] > 0 for row in history)


def test_string_labels_and_pandas_input(noisy_digits):
    pd = pytest.importorskip("pandas")
    d = noisy_digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    X = pd.DataFrame(d["X_train"][:200], columns=[f"px{i}" for i in range(64)])
    y = pd.Series(names[d["y_noisy"][:200]])
    clf = DivideMixClassifier(**FAST).fit(X, y)
    assert set(clf.predict(X)) <= set(names)
    np.testing.assert_array_equal(clf.feature_names_in_, X.columns)


def test_caller_arrays_are_not_modified(noisy_digits):
    X = noisy_digits["X_train"][:200].astype(np.float64)
    y = noisy_digits["y_noisy"][:200].copy()
    X_before, y_before = X.copy(), y.copy()
    clf = DivideMixClassifier(**FAST).fit(X, y)
    clf.predict_proba(X)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_default_cnn_on_images(tiny_images):
    X, y = tiny_images
    clf = DivideMixClassifier(**FAST).fit(X, y)
    assert isinstance(clf.net1_.module_, SmallCNNClassifierModule)
    assert clf.predict_proba(X).shape == (60, 3)
    assert clf.n_features_in_ == 3 and clf.input_shape_ == (3, 12, 12)


def test_torchvision_resnet18_on_32x32():
    resnet18 = pytest.importorskip("torchvision.models").resnet18
    rng = np.random.RandomState(0)
    X = rng.rand(24, 3, 32, 32).astype(np.float32)
    y = np.arange(24) % 4
    clf = DivideMixClassifier(
        module=resnet18, max_epochs=2, warmup_epochs=1, batch_size=8, random_state=0
    ).fit(X, y)
    # num_classes was passed to the factory through its **kwargs
    assert clf.net1_.module_.fc.out_features == 4
    assert clf.predict(X).shape == (24,)


class _Linear(nn.Module):
    def __init__(self, num_classes, n_features=64, scale=1.0):
        super().__init__()
        self.scale = scale
        self.linear = nn.Linear(n_features, num_classes)

    def forward(self, X):
        return self.linear(X) * self.scale


@pytest.mark.parametrize(
    "module, kwargs, expected_scale",
    [
        (_Linear, {}, 1.0),
        (_Linear, {"module__scale": 2.0}, 2.0),
        (functools.partial(_Linear, scale=3.0), {}, 3.0),
    ],
)
def test_module_factories_and_routed_parameters(
    noisy_digits, module, kwargs, expected_scale
):
    d = noisy_digits
    clf = DivideMixClassifier(module, **FAST, **kwargs, optimizer__momentum=0.5)
    clf.fit(d["X_train"][:200], d["y_noisy"][:200])
    for net in (clf.net1_, clf.net2_):
        assert net.module_.scale == expected_scale
        assert net.module_.linear.out_features == 10
        assert net.optimizer_.param_groups[0]["momentum"] == 0.5
        # the paper's weight decay stays the default when only momentum is set
        assert net.optimizer_.param_groups[0]["weight_decay"] == 5e-4
    assert clf.get_params()["optimizer__momentum"] == 0.5


def test_two_nets_start_from_different_weights(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(**{**FAST, "max_epochs": 1, "warmup_epochs": 1})
    clf.fit(d["X_train"][:100], d["y_noisy"][:100])
    w1 = clf.net1_.module_.layers[0].weight
    w2 = clf.net2_.module_.layers[0].weight
    assert not torch.equal(w1, w2)


@pytest.mark.parametrize("augment", ["auto", "jitter", None, lambda X: X + 0.01])
def test_augment_options_on_tabular(noisy_digits, augment):
    d = noisy_digits
    clf = DivideMixClassifier(**FAST, augment=augment)
    clf.fit(d["X_train"][:150], d["y_noisy"][:150])
    assert np.isfinite(clf.history_[-1]["loss_net1"])


@pytest.mark.parametrize("augment", ["auto", "crop", "crop_flip"])
def test_augment_options_on_images(tiny_images, augment):
    X, y = tiny_images
    clf = DivideMixClassifier(**FAST, augment=augment).fit(X, y)
    assert clf.score(X, y) > 0


def test_image_augment_on_tabular_raises(noisy_digits):
    d = noisy_digits
    with pytest.raises(ValueError, match="needs image input"):
        DivideMixClassifier(**FAST, augment="crop").fit(
            d["X_train"][:50], d["y_noisy"][:50]
        )


def test_augment_that_changes_shape_is_rejected(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(**FAST, augment=lambda X: X[:, :10])
    with pytest.raises(ValueError, match="same shape|shape it was given"):
        clf.fit(d["X_train"][:50], d["y_noisy"][:50])


def test_clean_labels_give_a_warning_and_history_note(noisy_digits):
    """Without noise the unlabeled set can come out tiny or empty: warn, go on."""
    d = noisy_digits
    X, y = d["X_train"][:200], d["y_train"][:200]
    # Unstandardised input trains slowly enough that the first division of
    # clean labels leaves a tiny unlabeled set; the note is what is tested.
    clf = DivideMixClassifier(
        max_epochs=8,
        warmup_epochs=6,
        lr=0.1,
        p_threshold=0.01,
        normalize=False,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    notes = [note for row in clf.history_ for note in row.get("notes", [])]
    assert any("unlabeled set" in note for note in notes)
    # the note feeds the verdict; no warning of its own
    assert any("unlabeled set" in note for note in clf.fit_verdict_["notes"])
    assert not [w for w in caught if "unlabeled set" in str(w.message)[:80]]
    assert np.isfinite(clf.history_[-1]["loss_net1"])


def test_empty_labeled_set_still_trains(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(**FAST, p_threshold=0.999999)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(d["X_train"][:100], d["y_noisy"][:100])
    assert any(issubclass(w.category, DivisionWarning) for w in caught)
    assert np.isfinite(clf.history_[-1]["loss_net1"])


def test_user_callbacks_run_on_both_nets(noisy_digits):
    class CountEpochs(Callback):
        def initialize(self):
            self.epochs_ = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs_ += 1

    d = noisy_digits
    clf = DivideMixClassifier(**FAST, callbacks=[("count", CountEpochs())])
    clf.fit(d["X_train"][:100], d["y_noisy"][:100])
    for net in (clf.net1_, clf.net2_):
        counter = dict(net.callbacks_)["count"]
        assert counter.epochs_ == 3
        assert net.history[:, "phase"] == ["warmup", "warmup", "mixmatch"]
    assert (
        dict(clf.net1_.callbacks_)["count"] is not dict(clf.net2_.callbacks_)["count"]
    )


def test_lr_is_decayed_halfway(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(**{**FAST, "max_epochs": 4}, lr_decay=0.5)
    clf.fit(d["X_train"][:100], d["y_noisy"][:100])
    assert clf.history_[:, "lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_verbose_prints_one_line_per_epoch(noisy_digits, capsys):
    d = noisy_digits
    DivideMixClassifier(**FAST, verbose=1).fit(d["X_train"][:100], d["y_noisy"][:100])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == [
        "epoch",
        "phase",
        "loss_net1",
        "loss_net2",
        "labeled_net1",
        "labeled_net2",
        "dur",
    ]
    epochs, final = lines[1:-1], lines[-1]
    assert [line.split()[1] for line in epochs] == ["warmup", "warmup", "mixmatch"]
    assert final.startswith("final division: clean_mask_ keeps")


def test_confidence_penalty_and_loss_window(noisy_digits):
    d = noisy_digits
    clf = DivideMixClassifier(
        **{**FAST, "max_epochs": 4}, confidence_penalty=True, loss_window=3
    )
    clf.fit(d["X_train"][:150], d["y_noisy"][:150])
    assert "penalty" in clf.history_[0]["loss_terms_net1"]
    assert clf.history_[-1]["phase"] == "mixmatch"


def test_balance_labeled_weights_only_the_labeled_loss(noisy_digits):
    d = noisy_digits
    fits = {
        balance: DivideMixClassifier(**FAST, balance_labeled=balance).fit(
            d["X_train"], d["y_noisy"]
        )
        for balance in (False, True)
    }
    plain, balanced = (fits[b].history_ for b in (False, True))
    # warm-up is plain cross-entropy either way: the same epoch, bit for bit
    assert plain[0, "loss_net1"] == balanced[0, "loss_net1"]
    # MixMatch's labeled loss is weighted by the labeled set's class counts
    assert plain[-1, "phase"] == balanced[-1, "phase"] == "mixmatch"
    x = "loss_x"
    assert plain[-1, "loss_terms_net1"][x] != balanced[-1, "loss_terms_net1"][x]


def test_sound_fit_is_trusted_without_a_warning(noisy_digits):
    """Digits with 40 % wrong labels and the defaults: a fit to believe."""
    d = noisy_digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = DivideMixClassifier(random_state=0).fit(d["X_train"], d["y_noisy"])
    assert not [w for w in caught if issubclass(w.category, DivisionWarning)]
    verdict = clf.fit_verdict_
    assert verdict["trusted"] and verdict["reasons"] == ()
    for net in verdict["nets"]:
        assert net["separation"] > 2 and net["labeled_accuracy"] > 0.9
        assert abs(net["noise_rate"] - d["flipped"].mean()) < 0.1
    assert verdict["mask_agreement"] > 0.9
    # the mask the verdict judged is the mask the estimator exposes
    assert (clf.clean_mask_ == ~d["flipped"]).mean() > 0.9


def test_under_trained_fit_says_clean_mask_cannot_be_trusted(noisy_digits, capsys):
    d = noisy_digits
    clf = DivideMixClassifier(max_epochs=3, warmup_epochs=1, random_state=0, verbose=1)
    with pytest.warns(UntrustedFitWarning, match="clean_mask_ can't be trusted") as w:
        clf.fit(d["X_train"][:150], d["y_noisy"][:150])
    assert len([x for x in w if issubclass(x.category, DivisionWarning)]) == 1
    assert w[0].filename == __file__  # points at the caller's fit
    assert clf.fit_verdict_["trusted"] is False and clf.fit_verdict_["reasons"]
    assert "Try:" in str(w[0].message)
    # the printed table ends with the final division and the verdict
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("final division: clean_mask_ keeps")
    assert f"{clf.clean_mask_.mean():.1%}" in last and "NOT trusted" in last


@pytest.mark.parametrize("division", ["per_class", "balanced"])
def test_class_wise_divisions_split_within_each_given_class(
    noisy_digits, division, monkeypatch
):
    from sklearn_dividemix import _class_division, _divider

    d = noisy_digits
    X, y = d["X_train"][:300], d["y_noisy"][:300]
    seen = []
    original = getattr(_class_division, f"divide_losses_{division}")

    def recording(losses, labels, **kwargs):
        seen.append((len(losses), labels.copy(), kwargs["n_classes"]))
        return original(losses, labels, **kwargs)

    monkeypatch.setitem(_divider.STRATEGIES, division, recording)
    clf = DivideMixClassifier(**{**FAST, "max_epochs": 4}, division=division)
    clf.fit(X, y)
    # two nets per MixMatch epoch (2) and the final division
    assert len(seen) == 2 * 2 + 2
    for n, labels, n_classes in seen:
        assert n == 300 and n_classes == 10
        np.testing.assert_array_equal(labels, np.unique(y, return_inverse=True)[1])
    assert clf.clean_proba_.shape == (300,)
    assert clf.get_params()["division"] == division
