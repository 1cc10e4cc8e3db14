"""Layouts, per-batch conversion and streamed moments, by hand."""

import warnings

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from sklearn_dividemix._layout import (
    ImageLayoutWarning,
    Preprocess,
    RunningMoments,
    channels_first_shape,
    resolve_layout,
)


@pytest.mark.parametrize(
    "shape, layout, expected",
    [
        ((5,), "auto", None),
        ((28, 28), "auto", "NHW"),
        ((1, 28, 28), "auto", "NCHW"),
        ((3, 32, 32), "auto", "NCHW"),
        ((32, 32, 3), "auto", "NHWC"),
        ((28, 28, 1), "auto", "NHWC"),
        ((64, 64, 4), "auto", "NHWC"),
        # an explicit choice settles an ambiguous shape
        ((3, 32, 3), "NCHW", "NCHW"),
        ((3, 32, 3), "NHWC", "NHWC"),
    ],
)
def test_resolve_layout(shape, layout, expected):
    # the common shapes, and an explicit choice, are read without a word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_layout(shape, layout) == expected


@pytest.mark.parametrize(
    "shape, reading",
    [
        # five-band 16x16 images, or 16 channels of 16x5?
        ((16, 16, 5), "16 channels of 16x5 pixels, not 5 channels of 16x16"),
        # feature maps, or 8 channels of 16x8?
        ((16, 8, 8), "16 channels of 8x8 pixels, not 8 channels of 16x8"),
        ((2, 32, 32), "2 channels of 32x32 pixels"),
    ],
)
def test_a_shape_with_no_colour_axis_warns_with_the_reading(shape, reading):
    with pytest.warns(ImageLayoutWarning, match=f"{reading}.*image_layout='NHWC'"):
        assert resolve_layout(shape, "auto") == "NCHW"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_layout(shape, "NCHW") == "NCHW"


@pytest.mark.parametrize("shape", [(3, 32, 3), (1, 8, 1), (4, 4, 4)])
def test_ambiguous_layout_says_how_to_choose(shape):
    with pytest.raises(ValueError, match="ambiguous.*image_layout='NCHW'"):
        resolve_layout(shape, "auto")


def test_five_dimensional_samples_are_rejected():
    with pytest.raises(ValueError, match="got samples of shape \\(1, 2, 3, 4\\)"):
        resolve_layout((1, 2, 3, 4), "auto")


@pytest.mark.parametrize(
    "shape, layout, expected",
    [
        ((7,), None, (7,)),
        ((28, 28), "NHW", (1, 28, 28)),
        ((3, 32, 30), "NCHW", (3, 32, 30)),
        ((32, 30, 3), "NHWC", (3, 32, 30)),
    ],
)
def test_channels_first_shape(shape, layout, expected):
    assert channels_first_shape(shape, layout) == expected


def test_preprocess_nhwc_uint8_matches_the_float_nchw_images():
    rng = np.random.RandomState(0)
    nhwc = rng.randint(0, 256, size=(4, 5, 6, 3)).astype(np.uint8)
    nchw = nhwc.transpose(0, 3, 1, 2).astype(np.float32) / 255
    mean, std = np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.3])
    got = Preprocess.build("NHWC", mean, std, "cpu")(torch.from_numpy(nhwc), "cpu")
    expected = (nchw - mean[:, None, None]) / std[:, None, None]
    assert got.dtype == torch.float32 and got.shape == (4, 3, 5, 6)
    assert_close(got, torch.from_numpy(expected.astype(np.float32)))


def test_preprocess_without_moments_only_scales_uint8():
    raw = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    assert_close(Preprocess(None)(raw, "cpu"), torch.tensor([[0.0, 0.2, 1.0]]))
    floats = torch.tensor([[0.0, 51.0, 255.0]])
    # float input is taken as it is: the very same tensor, no copy
    assert Preprocess(None)(floats, "cpu") is floats


def test_preprocess_applies_an_explicit_scale_before_standardising():
    # prediction sets the factor that takes its input to fit's units
    raw = torch.tensor([[0.0, 51.0, 255.0]])
    out = Preprocess(None, scale=1 / 255)(raw, "cpu")
    assert_close(out, torch.tensor([[0.0, 0.2, 1.0]]))
    pre = Preprocess.build(None, np.array([0.5]), np.array([0.25]), "cpu", 1.0)
    uint8 = torch.tensor([[1, 0]], dtype=torch.uint8)
    assert_close(pre(uint8, "cpu"), torch.tensor([[2.0, -2.0]]))


def test_preprocess_grey_images_without_channel_axis():
    raw = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    out = Preprocess("NHW")(raw, "cpu")
    assert out.shape == (2, 1, 2, 2)
    assert_close(out[:, 0], raw)


def test_constant_features_are_left_unscaled():
    # a feature with no spread is centred, not divided by zero
    pre = Preprocess.build(None, np.array([1.0, 2.0]), np.array([0.0, 2.0]), "cpu")
    out = pre(torch.tensor([[1.0, 4.0], [1.0, 0.0]]), "cpu")
    assert_close(out, torch.tensor([[0.0, 1.0], [0.0, -1.0]]))


@pytest.mark.parametrize("batch", [1, 7, 100])
@pytest.mark.parametrize("image", [False, True])
def test_running_moments_match_numpy_whatever_the_batching(batch, image):
    rng = np.random.RandomState(0)
    shape = (53, 3, 4, 5) if image else (53, 6)
    # far from zero: a naive sum of squares would lose the variance
    X = 1e4 + rng.randn(*shape) * np.arange(1, shape[1] + 1).reshape(
        (1, -1) + (1,) * (len(shape) - 2)
    )
    moments = RunningMoments()
    for start in range(0, len(X), batch):
        moments.update(torch.from_numpy(X[start : start + batch]))
    mean, std = moments.result()
    axes = (0, 2, 3) if image else 0
    np.testing.assert_allclose(mean, X.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(std, X.std(axis=axes, ddof=1), rtol=1e-6)


def test_running_moments_of_nothing_raise():
    with pytest.raises(ValueError, match="No samples"):
        RunningMoments().result()
