"""The input's scale as part of the fitted contract: measured, converted, refused."""

import re

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._scale import (
    UINT8_SCALE,
    InputScale,
    measure_scale,
    prediction_factor,
    sample_rows,
)
from tests._budgets import SHORT, band_images

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


# -- measuring ---------------------------------------------------------------


@pytest.mark.parametrize(
    "values, dtype, kind",
    [
        ([0, 17, 255], np.uint8, "uint8"),
        ([0, 3], np.uint8, "uint8"),  # uint8 is uint8 whatever its range
        ([0.0, 0.5, 1.0], np.float32, "unit"),
        ([0.0, 1.0000001], np.float32, "unit"),  # rounding after a resize
        ([0.0, 254.0], np.float32, "byte"),
        ([0.0, 1.5], np.float32, "other"),  # just above 1: no evidence of 0-255
        ([-0.5, 0.5], np.float32, "other"),
        ([0.0, 1000.0], np.float32, "other"),
        ([0.2, np.nan, 0.7], np.float32, "unit"),  # NaN is no value
    ],
)
def test_measure_scale_kinds(values, dtype, kind):
    scale = measure_scale(np.array(values, dtype=dtype))
    assert scale.kind == kind
    assert scale.low == pytest.approx(np.nanmin(np.array(values, dtype=dtype)))
    assert measure_scale(torch.tensor(np.array(values, dtype=dtype))) == scale


def test_scale_says_itself_in_words():
    assert str(InputScale("uint8", 0, 255)) == "uint8 (0-255, scaled to [0, 1])"
    assert str(InputScale("byte", 0, 200)) == "float in [0, 255]"
    assert str(InputScale("other", -1.25, 3)) == "float in [-1.25, 3]"
    assert InputScale("uint8", 0, 255).factor == UINT8_SCALE
    assert InputScale("byte", 0, 255).factor == 1.0


def test_sample_rows_reads_a_few_evenly_spaced_rows():
    X = np.arange(1000).reshape(1000, 1)
    rows = sample_rows(X)
    assert len(rows) == 64 and rows[0, 0] == 0 and rows[-1, 0] == 999
    small = X[:10]
    assert sample_rows(small) is small  # no copy of small data


def test_a_memory_mapped_array_is_sampled_not_read(tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, np.zeros((5000, 4), np.float32))
    mapped = np.load(path, mmap_mode="r")
    assert len(sample_rows(mapped)) == 64


_U = UINT8_SCALE


@pytest.mark.parametrize(
    "fitted, got, image, factor",
    [
        ("uint8", "uint8", True, _U),
        ("uint8", "unit", True, 1.0),  # a ToTensor Dataset after uint8 arrays
        ("uint8", "byte", True, _U),  # the same images as float 0-255
        ("unit", "uint8", True, _U),
        ("unit", "byte", True, _U),
        ("byte", "uint8", True, 1.0),
        ("byte", "byte", True, 1.0),
        ("other", "unit", True, 1.0),
        # feature vectors: float is the user's units, whatever its range
        ("unit", "other", False, 1.0),
        ("byte", "unit", False, 1.0),
        ("uint8", "byte", False, _U),
        ("byte", "uint8", False, 1.0),
    ],
)
def test_prediction_factor_converts_what_is_unambiguous(fitted, got, image, factor):
    assert prediction_factor(
        InputScale(fitted, 0, 1), InputScale(got, 0, 1), image
    ) == pytest.approx(factor)


@pytest.mark.parametrize(
    "fitted, got, image",
    [
        ("uint8", "other", True),
        ("uint8", "other", False),
        ("unit", "other", True),
        ("byte", "unit", True),  # [0, 1]-scaled images, or very dark ones?
        ("other", "uint8", True),
        ("other", "uint8", False),
    ],
)
def test_prediction_factor_refuses_what_is_ambiguous(fitted, got, image):
    fitted, got = InputScale(fitted, 0, 9), InputScale(got, -3, 7)
    # the message names both scales
    message = re.escape(f"that are {fitted}") + ".*" + re.escape(f"X is {got}")
    with pytest.raises(ValueError, match=message):
        prediction_factor(fitted, got, image)


# -- the estimator -------------------------------------------------------------


@pytest.fixture(scope="module")
def uint8_fit():
    X, y = band_images(size=16)
    return DivideMixClassifier(**SHORT).fit(X, y)


def test_fit_records_the_scale(uint8_fit):
    X, _ = band_images(size=16)
    assert uint8_fit.input_scale_ == InputScale("uint8", X.min(), X.max())


def test_float_0_255_after_a_uint8_fit_is_divided_by_255(uint8_fit):
    X, _ = band_images(size=16)
    expected = uint8_fit.predict_proba(X)
    got = uint8_fit.predict_proba(X.astype(np.float32))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # and float [0, 1], as ToTensor gives, is taken as it is
    got = uint8_fit.predict_proba(X.astype(np.float32) / 255)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_uint8_after_a_float_fit_is_read_in_fit_units():
    X, y = band_images(size=16)
    for float_X in (X.astype(np.float32), X.astype(np.float32) / 255):
        clf = DivideMixClassifier(**SHORT).fit(float_X, y)
        np.testing.assert_allclose(
            clf.predict_proba(X), clf.predict_proba(float_X), atol=1e-5
        )


def test_ambiguous_prediction_scale_is_refused_with_both_scales(uint8_fit):
    X, y = band_images(size=16)
    with pytest.raises(ValueError, match=r"uint8 \(0-255.*X is float in \[-100"):
        uint8_fit.predict(X.astype(np.float32) - 100)
    clf = DivideMixClassifier(**SHORT).fit(X.astype(np.float32), y)
    assert clf.input_scale_.kind == "byte"
    with pytest.raises(
        ValueError, match=r"float in \[0, 255\].*X is float in \[0, 1\]"
    ):
        clf.predict(X.astype(np.float32) / 255)


class _Images(Dataset):
    """Channels-first tensors: uint8 (PILToTensor) or float / 255 (ToTensor)."""

    def __init__(self, X, to_float):
        self.X, self.to_float = X, to_float

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        x = torch.from_numpy(self.X[i]).permute(2, 0, 1)
        return x.float() / 255 if self.to_float else x


def test_datasets_keep_their_cross_form_predictions(uint8_fit):
    X, _ = band_images(size=16)
    expected = uint8_fit.predict_proba(X)
    for to_float in (False, True):
        got = uint8_fit.predict_proba(_Images(X, to_float))
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_float_feature_vectors_outside_the_training_range_are_kept():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    clf = DivideMixClassifier(**SHORT).fit(X, y)
    assert clf.input_scale_.kind == "unit"
    # new rows beyond [0, 1] are the user's units, not another scale
    assert clf.predict(X * 3 - 1).shape == (40,)
