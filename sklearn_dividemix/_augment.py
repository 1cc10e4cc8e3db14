"""Batched, on-device augmentation and the checks on user augmentations.

MixMatch needs two random views of every sample at every step. Drawing them
per image in Python (the reference code's data-loader transforms) costs more
than the forward pass of a small net on a CPU, so every built-in augmentation
here transforms a whole batch tensor with a few tensor operations on the
batch's own device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "GaussianJitter",
    "RandomCropFlip",
    "resolve_augment",
]


class RandomCropFlip:
    """Per-sample random crop with zero padding, then optional horizontal flip.

    Parameters
    ----------
    padding : int
        Pixels of zero padding on each side; each sample is shifted by an
        independent offset in ``[-padding, padding]`` along both axes.
    flip : bool
        Mirror a random half of the samples left-right. Switch it off for
        data whose classes are not mirror-symmetric (digits, text).
    """

    # Draws are independent per row, so one call on the four MixMatch views
    # stacked together is the same as one call per view.
    per_sample = True

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding = padding
        self.flip = flip

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip})"

    def __call__(
        self, X: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n, channels, height, width = X.shape
        pad = self.padding
        out = X
        if pad > 0:
            padded = F.pad(X, (pad, pad, pad, pad))
            offsets = torch.randint(
                0, 2 * pad + 1, (2, n), generator=generator, device=X.device
            )
            rows = offsets[0, :, None] + torch.arange(height, device=X.device)
            cols = offsets[1, :, None] + torch.arange(width, device=X.device)
            # Two gathers (rows, then columns) crop every sample at its own
            # offset without a Python loop over the batch.
            row_index = rows[:, None, :, None].expand(
                n, channels, height, width + 2 * pad
            )
            out = padded.gather(2, row_index)
            col_index = cols[:, None, None, :].expand(n, channels, height, width)
            out = out.gather(3, col_index)
        if self.flip:
            mirrored = torch.rand(n, generator=generator, device=X.device) < 0.5
            out = torch.where(mirrored[:, None, None, None], out.flip(3), out)
        return out


class GaussianJitter:
    """Add Gaussian noise of a per-feature scale: the tabular augmentation.

    Parameters
    ----------
    scale : float or tensor of shape (n_features,)
        Standard deviation of the noise, usually a fraction of each feature's
        standard deviation so that the jitter is scale-free.
    """

    per_sample = True

    def __init__(self, scale: float | torch.Tensor = 0.1) -> None:
        self.scale = scale

    def __repr__(self) -> str:
        return "GaussianJitter()"

    def __call__(
        self, X: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        noise = torch.randn(
            X.shape, generator=generator, device=X.device, dtype=X.dtype
        )
        return X + noise * self.scale


def _identity(
    X: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    return X


_identity.per_sample = True  # type: ignore[attr-defined]


class _UserAugment:
    """Wrap a one-argument callable so that it takes the generator keyword."""

    def __init__(self, func: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.func = func

    def __call__(
        self, X: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.func(X)


def _auto_padding(height: int) -> int:
    # 4 pixels on 32x32 CIFAR (the paper); the same share on other sizes.
    return max(1, round(height / 8))


def resolve_augment(
    augment: str | Callable | None,
    sample_shape: tuple[int, ...],
    feature_std: torch.Tensor | None = None,
) -> Callable[..., torch.Tensor]:
    """Turn the ``augment`` parameter into ``f(batch, generator=None)``.

    Parameters
    ----------
    augment : {'auto', 'crop', 'crop_flip', 'jitter'}, callable or None
        ``'auto'`` is crop + flip for 3-channel images, crop only for other
        images (digits must not be mirrored) and jitter of 10 % of each
        feature's standard deviation for tabular data.
    sample_shape : tuple of int
        Shape of one converted sample: (channels, height, width) or
        (n_features,).
    feature_std : tensor, default=None
        Standard deviation of each feature (vectors) or channel (images, of
        shape (channels, 1, 1)) of the converted input, on its device: the
        scale of the jitter. None jitters with a scale of 0.1.
    """
    if augment is None:
        return _identity
    if callable(augment):
        return _UserAugment(augment)
    is_image = len(sample_shape) == 3
    if augment == "jitter" or (augment == "auto" and not is_image):
        return GaussianJitter(0.1 * feature_std if feature_std is not None else 0.1)
    if not is_image:
        raise ValueError(
            f"augment={augment!r} needs image input (n, channels, height, "
            f"width); got samples of shape {tuple(sample_shape)}."
        )
    flip = augment == "crop_flip" or (augment == "auto" and sample_shape[0] == 3)
    return RandomCropFlip(padding=_auto_padding(sample_shape[1]), flip=flip)


def check_augmented(batch: torch.Tensor, augmented: object) -> torch.Tensor:
    """Fail clearly when an augmentation changes the batch's shape or type."""
    if not isinstance(augmented, torch.Tensor):
        raise TypeError(
            f"augment must return a torch.Tensor; got {type(augmented).__name__}."
        )
    if augmented.shape != batch.shape:
        raise ValueError(
            "augment must return a batch of the shape it was given: got "
            f"{tuple(augmented.shape)} for input {tuple(batch.shape)}."
        )
    return augmented.to(batch.dtype)
