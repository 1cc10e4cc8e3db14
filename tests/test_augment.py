"""Batched augmentations and the checks on user augmentations."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from sklearn_dividemix._augment import (
    GaussianJitter,
    RandomCropFlip,
    check_augmented,
    resolve_augment,
)


def _arange_images(n, channels=2, height=6, width=5):
    # every pixel distinct and non-zero, so a crop is identified by its values
    # and zero padding can't be confused with image content
    return torch.arange(
        1, n * channels * height * width + 1, dtype=torch.float32
    ).reshape(n, channels, height, width)


def _crop_offset(out, image, pad, allow_flip):
    """The (row, col, mirrored) such that ``out`` is the padded image cropped there."""
    _, height, width = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))
    for row in range(2 * pad + 1):
        for col in range(2 * pad + 1):
            crop = padded[:, row : row + height, col : col + width]
            if torch.equal(out, crop):
                return row, col, False
            if allow_flip and torch.equal(out, crop.flip(-1)):
                return row, col, True
    return None


@pytest.mark.parametrize("shape", [(5, 3, 8, 8), (2, 1, 6, 10), (1, 2, 4, 4)])
@pytest.mark.parametrize("padding, flip", [(0, True), (2, False), (3, True)])
def test_random_crop_flip_keeps_shape_and_dtype(shape, padding, flip):
    X = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    out = RandomCropFlip(padding, flip)(X, generator=torch.Generator().manual_seed(1))
    assert out.shape == X.shape and out.dtype == X.dtype


def test_no_padding_and_no_flip_is_identity():
    X = _arange_images(4)
    out = RandomCropFlip(padding=0, flip=False)(X, torch.Generator().manual_seed(0))
    assert torch.equal(out, X)


@pytest.mark.parametrize("pad", [1, 2])
def test_each_sample_is_a_shifted_copy_of_its_input(pad):
    X = _arange_images(200)
    out = RandomCropFlip(padding=pad, flip=False)(X, torch.Generator().manual_seed(0))
    offsets = [_crop_offset(out[i], X[i], pad, allow_flip=False) for i in range(len(X))]
    # flip=False never mirrors: every sample is an unmirrored crop
    assert all(offset is not None for offset in offsets)
    rows = {row for row, _, _ in offsets}
    cols = {col for _, col, _ in offsets}
    # independent offsets per sample, covering the whole range [0, 2 pad]
    assert rows == cols == set(range(2 * pad + 1))
    assert len(set(offsets)) == (2 * pad + 1) ** 2


def test_flip_mirrors_about_half_the_samples():
    X = _arange_images(400, channels=1, height=3, width=4)
    out = RandomCropFlip(padding=0, flip=True)(X, torch.Generator().manual_seed(0))
    mirrored = torch.tensor(
        [torch.equal(o, x.flip(-1)) for o, x in zip(out, X, strict=True)]
    )
    kept = torch.tensor([torch.equal(o, x) for o, x in zip(out, X, strict=True)])
    # the image is left-right asymmetric: each sample is exactly one of them
    assert torch.all(mirrored ^ kept)
    assert 0.4 < mirrored.float().mean() < 0.6


def test_crop_and_flip_compose():
    X = _arange_images(100)
    out = RandomCropFlip(padding=1, flip=True)(X, torch.Generator().manual_seed(2))
    offsets = [_crop_offset(out[i], X[i], 1, allow_flip=True) for i in range(len(X))]
    assert all(offset is not None for offset in offsets)
    assert {mirrored for _, _, mirrored in offsets} == {True, False}


def test_same_seed_same_output_other_seed_other_output():
    X = _arange_images(16)
    augment = RandomCropFlip(padding=2, flip=True)
    first = augment(X, torch.Generator().manual_seed(5))
    second = augment(X, torch.Generator().manual_seed(5))
    other = augment(X, torch.Generator().manual_seed(6))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_gaussian_jitter_scale_per_feature():
    X = torch.zeros(20000, 3)
    scale = torch.tensor([0.1, 2.0, 0.0])
    out = GaussianJitter(scale)(X, generator=torch.Generator().manual_seed(0))
    assert_close(out.std(dim=0), scale, atol=0.0, rtol=0.03)
    assert_close(out.mean(dim=0), torch.zeros(3), atol=0.03, rtol=0.0)
    # a zero scale leaves the feature alone
    assert torch.equal(out[:, 2], X[:, 2])


def test_gaussian_jitter_float_scale_dtype_and_seed():
    X = torch.ones(50, 4, dtype=torch.float64)
    jitter = GaussianJitter(0.5)
    first = jitter(X, generator=torch.Generator().manual_seed(0))
    second = jitter(X, generator=torch.Generator().manual_seed(0))
    assert first.dtype == torch.float64
    assert torch.equal(first, second)
    assert not torch.equal(first, X)
    noise = torch.randn(
        50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert_close(first, X + 0.5 * noise)


@pytest.mark.parametrize(
    "augment, shape, flip, padding",
    [
        ("auto", (4, 3, 32, 32), True, 4),
        ("auto", (4, 1, 28, 28), False, 4),
        ("auto", (4, 1, 8, 8), False, 1),
        ("auto", (4, 3, 4, 4), True, 1),
        ("crop", (4, 3, 32, 32), False, 4),
        ("crop_flip", (4, 1, 16, 16), True, 2),
    ],
)
def test_resolve_augment_on_images(augment, shape, flip, padding):
    resolved = resolve_augment(augment, shape[1:])
    assert isinstance(resolved, RandomCropFlip)
    assert resolved.flip is flip
    assert resolved.padding == padding


@pytest.mark.parametrize("augment", ["auto", "jitter"])
def test_resolve_augment_on_tabular_data_is_scaled_jitter(augment):
    std = torch.tensor([2.0, 300**0.5])
    resolved = resolve_augment(augment, (2,), std)
    assert isinstance(resolved, GaussianJitter)
    # 10 % of each feature's standard deviation
    assert_close(resolved.scale, torch.tensor([0.2, 300**0.5 / 10]))


def test_resolve_augment_jitter_on_images_is_per_channel():
    X = torch.rand(6, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    resolved = resolve_augment(
        "jitter", (2, 4, 4), torch.tensor([1.0, 3.0])[:, None, None]
    )
    assert isinstance(resolved, GaussianJitter)
    assert resolved.scale.shape == (2, 1, 1)
    out = resolved(X, generator=torch.Generator().manual_seed(0))
    assert out.shape == X.shape
    # the second channel is jittered three times as strongly
    spread = (out - X).std(dim=(0, 2, 3))
    assert 2.0 < float(spread[1] / spread[0]) < 4.5


@pytest.mark.parametrize("augment", ["crop", "crop_flip"])
def test_resolve_augment_crop_on_tabular_data_raises(augment):
    with pytest.raises(ValueError, match=r"image input.*\(3,\)"):
        resolve_augment(augment, (3,))


def test_resolve_augment_none_is_identity():
    X = torch.rand(3, 2, generator=torch.Generator().manual_seed(0))
    resolved = resolve_augment(None, (2,))
    assert resolved(X, generator=torch.Generator()) is X


def test_resolve_augment_wraps_a_one_argument_callable():
    calls = []

    def double(X):
        calls.append(X)
        return 2 * X

    X = torch.ones(3, 2)
    resolved = resolve_augment(double, X)
    # the training loop passes the generator; the user function never sees it
    out = resolved(X, generator=torch.Generator().manual_seed(0))
    assert_close(out, 2 * X)
    assert len(calls) == 1 and calls[0] is X


def test_check_augmented_rejects_non_tensors():
    with pytest.raises(TypeError, match="torch.Tensor; got ndarray"):
        check_augmented(torch.zeros(2, 3), torch.zeros(2, 3).numpy())


def test_check_augmented_rejects_wrong_shape_and_names_both():
    with pytest.raises(ValueError, match=r"got \(2, 2\) for input \(2, 3\)"):
        check_augmented(torch.zeros(2, 3), torch.zeros(2, 2))


def test_check_augmented_casts_to_the_batch_dtype():
    batch = torch.zeros(2, 3)
    out = check_augmented(batch, torch.ones(2, 3, dtype=torch.float64))
    assert out.dtype == torch.float32
    assert_close(out, torch.ones(2, 3))
