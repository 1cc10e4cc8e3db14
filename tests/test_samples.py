"""Dataset items as users hold them: tuples, dicts, and fixed transforms."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import Dataset, TensorDataset
from torchvision.transforms import RandomCrop

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._inputs import InputSettings, read_fit_input
from sklearn_dividemix._layout import ImageLayoutWarning
from sklearn_dividemix._pretrained_input import resize_batch
from sklearn_dividemix._samples import (
    SampleReader,
    check_deterministic,
    resize_sample,
    sample_reader,
    sized_reader,
)
from tests._budgets import SHORT, band_images

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


class _Dicts(Dataset):
    """Yields dicts, the Hugging Face form, and counts reads."""

    def __init__(self, X, y, input_key="image", label_key="label"):
        self.X, self.y = X, y
        self.input_key, self.label_key = input_key, label_key
        self.reads = 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.reads += 1
        item = {self.input_key: torch.from_numpy(self.X[i]), "id": i}
        if self.label_key is not None:
            item[self.label_key] = int(self.y[i])
        return item


class _Transformed(Dataset):
    """Channels-first float tensors through a transform."""

    def __init__(self, X, y, transform):
        self.X, self.y, self.transform = X, y, transform

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        x = torch.from_numpy(self.X[i]).permute(2, 0, 1).float() / 255
        return self.transform(x), int(self.y[i])


@pytest.fixture(scope="module")
def tuple_fit():
    X, y = band_images(36)
    return DivideMixClassifier(**SHORT).fit(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    )


# -- the reader ----------------------------------------------------------------


@pytest.mark.parametrize(
    "item, keys, expected",
    [
        ((1, 2), None, SampleReader()),
        ({"image": 1, "label": 2}, None, SampleReader("image", "label")),
        (
            {"pixel_values": 1, "labels": 2},
            None,
            SampleReader("pixel_values", "labels"),
        ),
        ({"img": 1, "fine": 2}, None, SampleReader("img", None)),
        ({"a": 1, "b": 2}, ("a", "b"), SampleReader("a", "b")),
        ({"a": 1, "label": 2}, "a", SampleReader("a", "label")),
        ({"image": 1, "label": 2}, ("image", None), SampleReader("image", None)),
    ],
)
def test_sample_reader_keys(item, keys, expected):
    assert sample_reader(item, keys) == expected


def test_reader_splits_and_collates_dict_items():
    reader = SampleReader("image", "label")
    items = [{"image": np.full((2, 2), i, np.uint8), "label": i} for i in range(3)]
    batch, labels = reader.collate_with_labels(items)
    assert batch.shape == (3, 2, 2) and batch.dtype == torch.uint8
    assert labels == [0, 1, 2] and reader.has_label(items[0])
    assert not SampleReader("image", None).has_label(items[0])


def test_unknown_dict_keys_name_the_keys_and_the_parameter():
    with pytest.raises(ValueError, match=r"keys \['pixels', 'cls'\].*dataset_keys="):
        sample_reader({"pixels": 1, "cls": 2})
    with pytest.raises(ValueError, match=r"no key 'lbl'.*\['image'\]"):
        sample_reader({"image": 1}, ("image", "lbl"))


@pytest.mark.parametrize("keys", [("image",), ("image", "label", "x"), (1, "label")])
def test_malformed_dataset_keys_are_invalid(keys):
    with pytest.raises(InvalidParameterError, match="'dataset_keys' parameter"):
        sample_reader({"image": 1}, keys)


def test_dataset_keys_is_validated_as_a_parameter():
    X, y = band_images(36)
    with pytest.raises(InvalidParameterError, match="'dataset_keys' parameter"):
        DivideMixClassifier(**SHORT, dataset_keys=3).fit(X, y)


# -- dict datasets end to end ----------------------------------------------------


def test_dict_dataset_fit_is_the_tuple_fit(tuple_fit):
    X, y = band_images(36)
    dataset = _Dicts(X, y)
    clf = DivideMixClassifier(**SHORT).fit(dataset)
    np.testing.assert_allclose(clf.clean_proba_, tuple_fit.clean_proba_, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(dataset), tuple_fit.predict_proba(X))
    assert clf.score(dataset) == tuple_fit.score(X, y)


def test_dict_keys_chosen_by_the_parameter(tuple_fit):
    X, y = band_images(36)
    dataset = _Dicts(X, y, input_key="pixels", label_key="cls")
    with pytest.raises(ValueError, match="dataset_keys"):
        DivideMixClassifier(**SHORT).fit(dataset)
    clf = DivideMixClassifier(**SHORT, dataset_keys=("pixels", "cls")).fit(dataset)
    np.testing.assert_allclose(clf.clean_proba_, tuple_fit.clean_proba_, atol=1e-6)


def test_dicts_without_labels_take_y(tuple_fit):
    X, y = band_images(36)
    clf = DivideMixClassifier(**SHORT).fit(_Dicts(X, y, label_key=None), y)
    np.testing.assert_allclose(clf.clean_proba_, tuple_fit.clean_proba_, atol=1e-6)
    with pytest.raises(ValueError, match="without labels"):
        DivideMixClassifier(**SHORT).fit(_Dicts(X, y, label_key=None))


# -- random transforms -------------------------------------------------------------


def test_a_random_transform_is_refused_with_what_to_use():
    X, y = band_images(36)
    torch.manual_seed(0)
    dataset = _Transformed(X, y, RandomCrop(9, padding=2))
    with pytest.raises(ValueError, match="differ: its transform is random.*augment"):
        DivideMixClassifier(**SHORT).fit(dataset)


def test_the_transform_check_costs_a_few_reads():
    X, y = band_images(36)
    dataset = _Dicts(X, y)
    check_deterministic(dataset, SampleReader("image", "label"), dataset[0])
    assert dataset.reads == 4  # items 0 and 1, twice each


def test_a_deterministic_transform_is_accepted():
    X, y = band_images(36)
    dataset = _Transformed(X, y, lambda x: x.flip(-1))
    assert DivideMixClassifier(**SHORT).fit(dataset).predict(dataset).shape == (36,)


# -- input_size: samples resized before collation ------------------------------


@pytest.mark.parametrize(
    "layout, shape, resized",
    [
        ("NHW", (9, 14), (6, 6)),
        ("NCHW", (3, 9, 14), (3, 6, 6)),
        ("NHWC", (9, 14, 3), (6, 6, 3)),
    ],
)
def test_resize_sample_is_the_batch_resize_in_the_samples_layout(
    layout, shape, resized
):
    rng = np.random.RandomState(0)
    x = torch.from_numpy(rng.randint(0, 256, shape).astype(np.uint8))
    out = resize_sample(x, layout, 6)
    assert out.shape == resized and out.dtype == torch.uint8
    # the same pixels as resizing a batch of it, channels first
    to_batch = {
        "NHW": lambda t: t[None, None],
        "NCHW": lambda t: t[None],
        "NHWC": lambda t: t.permute(2, 0, 1)[None],
    }
    from_batch = {
        "NHW": lambda t: t[0, 0],
        "NCHW": lambda t: t[0],
        "NHWC": lambda t: t[0].permute(1, 2, 0),
    }
    expected = from_batch[layout](resize_batch(to_batch[layout](x), 6))
    assert torch.equal(out, expected)


def test_resize_sample_leaves_feature_vectors():
    assert resize_sample(torch.ones(5), None, 6).shape == (5,)


def test_a_resized_datasets_fallback_layout_is_warned_about_once():
    # five bands, channels first: no axis looks like colour channels, so the
    # layout falls back to NCHW with a warning, read on the raw samples only
    X = torch.randint(0, 256, (6, 5, 12, 12), dtype=torch.uint8)
    dataset = TensorDataset(X, torch.arange(6) % 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_input = read_fit_input(dataset, None, InputSettings(input_size=8), "cpu")
    assert [w.category for w in caught].count(ImageLayoutWarning) == 1
    assert (fit_input.layout, fit_input.sample_shape) == ("NCHW", (5, 8, 8))


def test_sized_reader_collates_samples_of_mixed_sizes():
    items = [(np.zeros((h, w, 3), np.uint8), 0) for h, w in [(10, 14), (16, 8)]]
    plain = sample_reader(items[0])
    with pytest.raises(ValueError, match="different shapes.*Set input_size"):
        plain.collate(items)
    assert sized_reader(plain, items[0], None, "auto") is plain
    reader = sized_reader(plain, items[0], 6, "auto")
    assert (reader.size, reader.layout) == (6, "NHWC")
    assert reader.collate(items).shape == (2, 6, 6, 3)
    # image_layout decides an ambiguous sample's axes, as for the whole fit
    square = [(np.zeros((3, 5, 3), np.uint8), 0)]
    channels_first = sized_reader(plain, square[0], 4, "NCHW")
    assert channels_first.collate(square).shape == (1, 3, 4, 4)
