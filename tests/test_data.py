"""The data seam: array and Dataset sources, and the estimator on Datasets."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils import check_array
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import Dataset, IterableDataset, Subset, TensorDataset
from torchvision.datasets import ImageFolder
from torchvision.transforms import PILToTensor

from sklearn_dividemix import DivideMixClassifier, find_label_issues
from sklearn_dividemix._data import (
    ArraySource,
    DatasetSource,
    _file_backed,
    collate_inputs,
)
from sklearn_dividemix._inputs import InputSettings, dataset_labels
from sklearn_dividemix._layout import ImageLayoutWarning, Preprocess
from tests._budgets import SHORT, band_images

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


class _InputsOnly(Dataset):
    """Yields images alone and counts reads."""

    def __init__(self, X):
        self.X = X
        self.reads = 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.reads += 1
        return torch.from_numpy(self.X[i])


class _Pairs(_InputsOnly):
    """Yields (x, label) without a ``targets`` attribute."""

    def __init__(self, X, y):
        super().__init__(X)
        self.y = y

    def __getitem__(self, i):
        return super().__getitem__(i), int(self.y[i])


# -- sources ---------------------------------------------------------------


def test_array_source_shares_memory_and_converts_per_batch():
    X, _ = band_images()
    source = ArraySource(X, Preprocess("NHWC"), "cpu")
    assert source.X.dtype == torch.uint8
    assert source.X.data_ptr() == X.ctypes.data  # no copy of the data set
    (batch,) = source.batches([torch.tensor([5, 0, 5])])
    expected = torch.from_numpy(X[[5, 0, 5]]).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(batch, expected)
    assert [len(b) for b in source.stream(20)] == [20, 20, 8]


def test_array_source_reads_a_memory_mapped_file_in_place(tmp_path):
    X, _ = band_images()
    path = tmp_path / "images.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    # known as file-backed through validation, which drops the subclass
    validated = check_array(mapped, dtype=[np.float32, np.uint8], allow_nd=True)
    assert _file_backed(validated) and not _file_backed(X)
    source = ArraySource(mapped, Preprocess("NHWC"), "cpu")
    assert source.X.data_ptr() == mapped.ctypes.data
    (batch,) = source.batches([torch.arange(4)])
    assert batch.shape == (4, 3, 9, 9)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataset_source_delivers_the_index_batches_in_order(num_workers):
    X, y = band_images()
    array = ArraySource(X, Preprocess("NHWC"), "cpu")
    dataset = DatasetSource(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
        Preprocess("NHWC"),
        "cpu",
        train_loader_params={"num_workers": num_workers},
        eval_loader_params={"num_workers": num_workers},
    )
    index = [torch.tensor([3, 1, 4]), torch.tensor([1, 5]), torch.tensor([9])]
    for got, expected in zip(dataset.batches(index), array.batches(index), strict=True):
        torch.testing.assert_close(got, expected)
    streamed = torch.cat(list(dataset.stream(10)))
    torch.testing.assert_close(streamed, torch.cat(list(array.stream(10))))


@pytest.mark.parametrize("source_kind", ["array", "dataset"])
@pytest.mark.parametrize(("start", "stop"), [(0, None), (5, 29), (29, 48), (48, 48)])
def test_stream_of_a_block_of_rows(source_kind, start, stop):
    # the block one process of a data-parallel fit evaluates
    X, y = band_images()
    if source_kind == "array":
        source = ArraySource(X, Preprocess("NHWC"), "cpu")
    else:
        dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
        source = DatasetSource(dataset, Preprocess("NHWC"), "cpu")
    batches = list(source.stream(10, start, stop))
    assert all(len(batch) <= 10 for batch in batches)
    rows = X[start:stop]
    assert sum(len(batch) for batch in batches) == len(rows)
    if len(rows):
        expected = ArraySource(rows, Preprocess("NHWC"), "cpu").stream(100)
        torch.testing.assert_close(torch.cat(batches), torch.cat(list(expected)))


def test_collate_names_the_fix_for_samples_of_different_shapes():
    with pytest.raises(ValueError, match="different shapes.*Resize"):
        collate_inputs([torch.zeros(3, 4, 4), torch.zeros(3, 5, 5)])


def test_collate_reads_pil_images_as_channels_last_arrays():
    image = Image.fromarray(np.full((4, 5, 3), 7, np.uint8))
    batch = collate_inputs([(image, 0), (image, 1)])
    assert batch.shape == (2, 4, 5, 3) and batch.dtype == torch.uint8


def test_iterable_datasets_are_refused():
    class _Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(3)

    with pytest.raises(TypeError, match="map-style Dataset"):
        DatasetSource(_Stream(), Preprocess(None), "cpu")


def test_labels_come_from_targets_without_reading_samples():
    X, y = band_images()
    dataset = _InputsOnly(X)
    dataset.targets = list(y)
    np.testing.assert_array_equal(dataset_labels(dataset, InputSettings()), y)
    assert dataset.reads == 0


def test_labels_are_read_once_through_a_dataset_without_targets():
    X, y = band_images()
    dataset = _Pairs(X, y)
    np.testing.assert_array_equal(dataset_labels(dataset, InputSettings()), y)


# -- the estimator on Datasets ----------------------------------------------


@pytest.fixture(scope="module")
def array_fit():
    X, y = band_images()
    return DivideMixClassifier(**SHORT).fit(X, y)


@pytest.mark.parametrize(
    "make, y_given",
    [
        (lambda X, y: TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), False),
        (lambda X, y: _Pairs(X, y), False),
        (lambda X, y: _InputsOnly(X), True),
    ],
    ids=["TensorDataset", "pairs", "inputs-only"],
)
def test_dataset_fit_is_the_array_fit(array_fit, make, y_given):
    # The same batches reach the nets through either source: same results.
    X, y = band_images()
    clf = DivideMixClassifier(**SHORT).fit(make(X, y), y if y_given else None)
    np.testing.assert_allclose(clf.clean_proba_, array_fit.clean_proba_, atol=1e-6)
    np.testing.assert_allclose(clf.train_proba_, array_fit.train_proba_, atol=1e-6)
    np.testing.assert_allclose(clf.input_mean_, array_fit.input_mean_)
    assert clf.n_features_in_ == 3 and clf.image_layout_ == "NHWC"
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_allclose(clf.predict_proba(dataset), clf.predict_proba(X))
    assert clf.score(dataset) == clf.score(X, y)
    np.testing.assert_array_equal(clf.predict(dataset), clf.predict(X))


def test_loader_workers_do_not_change_the_fit(array_fit):
    X, y = band_images()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    clf = DivideMixClassifier(
        **SHORT, iterator_train__num_workers=2, iterator_valid__num_workers=1
    ).fit(dataset)
    np.testing.assert_allclose(clf.clean_proba_, array_fit.clean_proba_, atol=1e-6)


def test_a_dataset_without_labels_needs_y():
    X, _ = band_images()
    with pytest.raises(ValueError, match="without labels; pass the labels as y"):
        DivideMixClassifier(**SHORT).fit(_InputsOnly(X))


def test_y_must_match_the_dataset():
    X, y = band_images()
    with pytest.raises(ValueError, match="y has 47 labels but the Dataset has 48"):
        DivideMixClassifier(**SHORT).fit(_InputsOnly(X), y[:-1])


def test_predicting_images_of_another_size_is_refused(array_fit):
    X, _ = band_images()
    small = TensorDataset(torch.from_numpy(X[:, :8, :8]))
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\).*\(3, 9, 9\)"):
        array_fit.predict(small)


def test_loader_parameters_are_routed_cloned_and_searchable():
    X, y = band_images()
    clf = DivideMixClassifier(**SHORT, iterator_train__num_workers=2)
    assert clone(clf).get_params()["iterator_train__num_workers"] == 2
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    search = GridSearchCV(
        DivideMixClassifier(**SHORT),
        {"iterator_train__num_workers": [0, 1]},
        cv=2,
        error_score="raise",
    )
    search.fit(X, y)  # arrays: the loader parameters have nothing to do
    assert len(search.cv_results_["params"]) == 2
    clf.set_params(iterator_valid__pin_memory=False).fit(dataset)
    with pytest.raises(ValueError, match="iterator_train__shuffle.*cannot be set"):
        DivideMixClassifier(**SHORT, iterator_train__shuffle=True).fit(dataset)


# -- arrays as they come -----------------------------------------------------


def test_uint8_channels_last_trains_like_float_channels_first():
    X, y = band_images()
    nchw = X.transpose(0, 3, 1, 2).astype(np.float32) / 255
    a = DivideMixClassifier(**SHORT).fit(X, y)
    b = DivideMixClassifier(**SHORT).fit(nchw, y)
    assert a.image_layout_ == "NHWC" and b.image_layout_ == "NCHW"
    np.testing.assert_allclose(a.input_mean_, b.input_mean_, rtol=1e-5)
    np.testing.assert_allclose(a.input_std_, b.input_std_, rtol=1e-5)
    # the same function of the same images, up to float rounding
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(nchw), atol=5e-3)


@pytest.mark.parametrize("normalize", ["auto", True, False])
def test_normalize_learns_per_channel_moments(normalize):
    X, y = band_images()
    clf = DivideMixClassifier(**SHORT, normalize=normalize).fit(X, y)
    if normalize is False:
        assert clf.input_mean_ is None and clf.input_std_ is None
        return
    scaled = X.astype(np.float64) / 255
    np.testing.assert_allclose(clf.input_mean_, scaled.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(clf.input_std_, scaled.std(axis=(0, 1, 2), ddof=1))


def test_explicit_layout_settles_an_ambiguous_shape():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 3, 8, 3).astype(np.float32)
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match="ambiguous"):
        DivideMixClassifier(**SHORT).fit(X, y)
    clf = DivideMixClassifier(**SHORT, image_layout="NHWC").fit(X, y)
    assert clf.net1_.module_.features[0].in_channels == 3
    assert clf.predict(X).shape == (30,)


def test_five_band_images_warn_at_fit_with_the_reading_and_the_override():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(24, 16, 16, 5)).astype(np.uint8)
    y = np.arange(24) % 2
    with pytest.warns(ImageLayoutWarning, match="16 channels of 16x5.*'NHWC'"):
        clf = DivideMixClassifier(**SHORT).fit(X, y)
    assert clf.n_features_in_ == 16
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageLayoutWarning)
        clf.predict(X)  # said once, at fit
        clf = DivideMixClassifier(**SHORT, image_layout="NHWC").fit(X, y)
    assert clf.n_features_in_ == 5 and clf.image_layout_ == "NHWC"


def test_grey_images_without_channel_axis():
    X, y = band_images()
    grey = X[..., 0]
    clf = DivideMixClassifier(**SHORT).fit(grey, y)
    assert clf.image_layout_ == "NHW" and clf.input_mean_.shape == (1,)
    assert clf.predict_proba(grey).shape == (48, 3)


class _WholeDataSet(TorchDispatchMode):
    """Records ops that output the whole data set, in either layout."""

    def __init__(self, shapes):
        super().__init__()
        self.shapes = {tuple(shape) for shape in shapes}
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, tuple | list) else [out]:
            # from_numpy's lift_fresh and views share the caller's memory
            if (
                isinstance(tensor, torch.Tensor)
                and tuple(tensor.shape) in self.shapes
                and not tensor._is_view()
                and "lift_fresh" not in str(func)
            ):
                self.ops.append(str(func))
        return out


def test_uint8_images_are_never_converted_whole():
    # 62 rows: no batch (16 rows, 4 views of 16, eval chunks of 24) has as
    # many, so a tensor of 62 images is a converted copy of the data set.
    X, y = band_images(62)
    with _WholeDataSet([X.shape, (62, 3, 9, 9)]) as mode:
        DivideMixClassifier(**SHORT, eval_batch_size=24).fit(X, y)
    assert mode.ops == []


def test_predict_proba_streams_eval_batch_chunks(array_fit):
    X, _ = band_images(50)
    sizes = []
    handle = array_fit.net1_.module_.register_forward_pre_hook(
        lambda module, inputs: sizes.append(len(inputs[0]))
    )
    clf = clone(array_fit).set_params(eval_batch_size=16)
    clf.__dict__.update({k: v for k, v in vars(array_fit).items() if k.endswith("_")})
    try:
        clf.predict_proba(X)
    finally:
        handle.remove()
    assert sizes == [16, 16, 16, 2]


# -- image folders -------------------------------------------------------------


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    X, y = band_images(36)
    root = tmp_path_factory.mktemp("folder")
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("transform", [None, PILToTensor()], ids=["PIL", "tensor"])
def test_image_folder_fit_lists_files_in_the_issue_table(image_folder, transform):
    dataset = ImageFolder(image_folder, transform=transform)
    clf = DivideMixClassifier(**SHORT).fit(dataset)
    table = clf.get_label_issues()
    assert list(table["path"]) == [path for path, _ in dataset.samples]
    np.testing.assert_array_equal(table["given_label"], dataset.targets)
    assert clf.predict(dataset).shape == (36,)
    # 12 files per class folder, in folder order
    picked = [4, 0, 13, 20, 30, 25]
    subset = Subset(dataset, picked)
    sub_table = find_label_issues(subset, estimator=DivideMixClassifier(**SHORT))
    assert list(sub_table["path"]) == [dataset.samples[i][0] for i in picked]
    assert list(sub_table["given_label"]) == [0, 0, 1, 1, 2, 2]


def test_arrays_have_no_path_column(array_fit):
    assert "path" not in array_fit.get_label_issues().columns


# -- weights-only fitted models ---------------------------------------------------


def test_fitted_nets_keep_no_optimizer_state_or_gradients(array_fit):
    for net in (array_fit.net1_, array_fit.net2_):
        assert len(net.optimizer_.state) == 0
        assert all(p.grad is None for p in net.module_.parameters())
    weights = sum(
        p.numel() * p.element_size()
        for net in (array_fit.net1_, array_fit.net2_)
        for p in net.module_.state_dict().values()
    )
    # about the weights: no momentum buffers, no gradients (each as large)
    assert len(pickle.dumps(array_fit)) < 1.3 * weights + 150_000


@pytest.mark.parametrize("normalize, standardised", [("auto", False), (True, True)])
def test_feature_vectors_are_standardised_only_on_request(normalize, standardised):
    rng = np.random.RandomState(0)
    X = (rng.rand(60, 4) * [1, 10, 100, 1000]).astype(np.float32)
    y = np.arange(60) % 3
    clf = DivideMixClassifier(**SHORT, normalize=normalize).fit(X, y)
    assert clf.image_layout_ is None
    if not standardised:
        assert clf.input_mean_ is None and clf.input_std_ is None
        return
    np.testing.assert_allclose(clf.input_mean_, X.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(clf.input_std_, X.std(axis=0, ddof=1), rtol=1e-5)
