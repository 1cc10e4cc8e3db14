"""Each epoch on a class-balanced sample (``samples_per_epoch``)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch.utils.data import TensorDataset

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._epoch_sample import (
    EpochSample,
    SubsetSource,
    class_balanced_sample,
    resolve_sample_size,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn_dividemix.DivisionWarning",
)

FIT = dict(max_epochs=5, warmup_epochs=2, batch_size=32, random_state=0)


@pytest.mark.parametrize(
    "value, n, expected",
    [
        (None, 100, None),
        (40, 100, 40),
        (0.25, 100, 25),
        (100, 100, None),
        (1.0, 100, None),
        (0.001, 100, 1),
    ],
)
def test_resolve_sample_size(value, n, expected):
    assert resolve_sample_size(value, n) == expected


@pytest.mark.parametrize("size", [30, 60, 99])
def test_sample_is_balanced_and_small_classes_give_all_they_have(size):
    # class 2 has only 5 members: it gives them all, the others share the rest
    labels = np.repeat([0, 1, 2], [60, 40, 5])
    index = class_balanced_sample(labels, size, 3, np.random.RandomState(0))
    counts = np.bincount(labels[index], minlength=3)
    assert len(index) == size == counts.sum()
    assert len(np.unique(index)) == size and np.all(np.diff(index) > 0)
    assert counts[2] == min(5, size // 3 + 1)
    assert abs(int(counts[0]) - int(counts[1])) <= 1 or counts[1] == 40


def test_sample_of_more_than_the_set_is_the_set():
    labels = np.array([0, 0, 1, 1, 1])
    index = class_balanced_sample(labels, 50, 2, np.random.RandomState(0))
    np.testing.assert_array_equal(index, np.arange(5))


def test_same_stream_same_sample_next_draw_another():
    labels = np.repeat(np.arange(4), 50)
    a, b = np.random.RandomState(3), np.random.RandomState(3)
    first = class_balanced_sample(labels, 40, 4, a)
    np.testing.assert_array_equal(first, class_balanced_sample(labels, 40, 4, b))
    assert not np.array_equal(first, class_balanced_sample(labels, 40, 4, a))


class _Rows:
    """A data source of ``X``'s rows, delivered as they are."""

    def __init__(self, X):
        self.X = torch.as_tensor(X)

    def __len__(self):
        return len(self.X)

    def batches(self, index_batches):
        return (self.X[i] for i in index_batches)

    def stream(self, batch_size, start=0, stop=None):
        stop = len(self.X) if stop is None else stop
        return (self.X[i : i + batch_size] for i in range(start, stop, batch_size))


def test_subset_source_numbers_the_chosen_rows_in_order():
    source = SubsetSource(_Rows(np.arange(10) * 10), torch.tensor([1, 4, 7, 8]))
    assert len(source) == 4
    assert torch.cat(list(source.stream(3))).tolist() == [10, 40, 70, 80]
    assert torch.cat(list(source.stream(3, 1, 3))).tolist() == [40, 70]
    batches = source.batches([torch.tensor([3, 0]), torch.tensor([2])])
    assert [b.tolist() for b in batches] == [[80, 10], [70]]


@pytest.mark.parametrize("divide_over, scope", [("sample", 4), ("all", None)])
def test_epoch_sample_scope(divide_over, scope):
    sample = EpochSample(np.array([0, 2]), epoch=4, divide_over=divide_over)
    assert sample.scope == scope
    assert EpochSample(None, epoch=4, divide_over=divide_over).scope is None


class _Seen(Callback):
    """Rows each net trains on per epoch, and what each division covers."""

    def initialize(self):
        self.rows, self.divisions = {}, []
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        epoch = len(net.history)
        self.rows[epoch] = self.rows.get(epoch, 0) + len(batch.X)

    def on_division(self, net, *, epoch, stage, losses, division, used, sample):
        self.divisions.append((epoch, stage, len(losses), sample))


@pytest.mark.parametrize("divide_over", ["sample", "all"])
def test_fit_trains_and_divides_on_each_epochs_sample(noisy_digits, divide_over):
    X, y = noisy_digits["X_train"], noisy_digits["y_noisy"]
    clf = DivideMixClassifier(
        **FIT,
        samples_per_epoch=200,
        divide_over=divide_over,
        callbacks=[("seen", _Seen())],
    ).fit(X, y)
    # each net has its own copy of the callback: net1's
    seen = dict(clf.net1_.callbacks_)["seen"]
    # warm-up: one pass of the 200 sampled rows (the last batch of 8 kept)
    assert seen.rows[1] == seen.rows[2] == 200
    samples = []
    for _epoch, stage, n_losses, sample in seen.divisions:
        if stage == "final" or divide_over == "all":
            assert sample is None and n_losses == len(y)
            continue
        assert n_losses == len(sample) == 200
        counts = np.bincount(y[sample], minlength=10)
        assert counts.max() - counts.min() <= 1
        samples.append(tuple(sample))
    if divide_over == "sample":
        # a new sample each epoch after warm-up
        assert len(set(samples)) == len(samples) == 3
    # the final division and everything fitted cover the whole set
    assert clf.clean_proba_.shape == clf.clean_mask_.shape == (len(y),)


def test_sampling_is_reproducible_and_works_for_datasets(noisy_digits):
    X, y = noisy_digits["X_train"][:400], noisy_digits["y_noisy"][:400]
    params = dict(FIT, samples_per_epoch=0.5)
    a = DivideMixClassifier(**params).fit(X, y)
    b = DivideMixClassifier(**params).fit(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    )
    np.testing.assert_array_equal(a.clean_proba_, b.clean_proba_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_a_loss_window_over_different_samples_is_refused(noisy_digits):
    X, y = noisy_digits["X_train"][:200], noisy_digits["y_noisy"][:200]
    clf = DivideMixClassifier(**FIT, samples_per_epoch=100, loss_window=3)
    with pytest.raises(ValueError, match="divide_over='all'"):
        clf.fit(X, y)
    clf.set_params(divide_over="all").fit(X, y)
    assert clf.clean_proba_.shape == (200,)


def test_an_auto_loss_window_stays_one_over_different_samples(noisy_digits):
    X, y = noisy_digits["X_train"][:200], noisy_digits["y_noisy"][:200]
    # 60 % wrong labels: above the boundary 'auto' would average five epochs
    rng = np.random.RandomState(0)
    y = np.where(rng.rand(len(y)) < 0.6, rng.randint(0, 10, len(y)), y)
    clf = DivideMixClassifier(**FIT, samples_per_epoch=100).fit(X, y)
    assert clf.loss_window == "auto" and clf.loss_window_ == 1
    assert clf.p_threshold_ == 0.6  # the threshold is resolved all the same
