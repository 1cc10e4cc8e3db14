"""How raw samples become the float32 batches a module sees.

Image users hold pixels as uint8, often channels-last ``(n, height, width,
channels)`` straight from PIL, OpenCV or a ``.npz``. Converting a whole data
set to float32 channels-first quadruples its memory, so the data stays as it
came and every batch is converted on the device: layout, dtype and
standardisation are one :class:`Preprocess` applied per batch, the same in
fit and predict, for arrays and for Datasets.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ImageLayoutWarning",
    "Preprocess",
    "RunningMoments",
    "resolve_layout",
]

# Channel counts an image can have: grey, RGB, RGBA.
IMAGE_CHANNELS = (1, 3, 4)
UINT8_SCALE = 1.0 / 255.0


class ImageLayoutWarning(UserWarning):
    """``image_layout='auto'`` chose a reading of a shape that could be the other."""


def _describe(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _warn_fallback(sample_shape: tuple[int, ...]) -> None:
    # Neither end axis is a colour channel count: feature maps are channels
    # first, but (16, 16, 5) is as likely five-band 16x16 images. Say which
    # reading was taken, and how to take the other.
    channels, last = sample_shape[0], sample_shape[-1]
    warnings.warn(
        f"Samples of shape {sample_shape} were read channels first: {channels} "
        f"channels of {_describe(sample_shape[1:])} pixels, not {last} channels "
        f"of {_describe(sample_shape[:2])} pixels (neither end axis has 1, 3 or "
        "4 entries). Set image_layout='NHWC' for the other reading, or "
        "image_layout='NCHW' to confirm this one.",
        ImageLayoutWarning,
        stacklevel=3,
    )


def resolve_layout(sample_shape: tuple[int, ...], image_layout: str) -> str | None:
    """The layout of samples of shape ``sample_shape`` (without the batch axis).

    Returns None for feature vectors, ``'NHW'`` for single-channel images
    without a channel axis, ``'NCHW'`` or ``'NHWC'`` for images.

    Parameters
    ----------
    sample_shape : tuple of int
        Shape of one sample.
    image_layout : {'auto', 'NCHW', 'NHWC'}
        ``'auto'`` reads channels-last when only the last axis is a plausible
        channel count (1, 3 or 4) and channels-first when only the first is;
        a shape where both are is ambiguous and raises; where neither is,
        channels first, with an :class:`ImageLayoutWarning`.
    """
    if len(sample_shape) == 1:
        return None
    if len(sample_shape) == 2:
        return "NHW"
    if len(sample_shape) != 3:
        raise ValueError(
            "Samples must be feature vectors (n_samples, n_features) or images "
            "(n_samples, channels, height, width), (n_samples, height, width, "
            "channels) or (n_samples, height, width); got samples of shape "
            f"{sample_shape}."
        )
    if image_layout != "auto":
        return image_layout
    first, last = sample_shape[0] in IMAGE_CHANNELS, sample_shape[-1] in IMAGE_CHANNELS
    if last and not first:
        return "NHWC"
    if first and last:
        c_first, c_last = sample_shape[0], sample_shape[-1]
        raise ValueError(
            f"Samples of shape {sample_shape} are ambiguous: {c_first} channels of "
            f"{_describe(sample_shape[1:])} pixels (channels first) or {c_last} "
            f"channels of {_describe(sample_shape[:2])} pixels (channels last). "
            "Set image_layout='NCHW' or image_layout='NHWC'."
        )
    if not first:
        # no axis looks like colour channels (feature maps?)
        _warn_fallback(tuple(sample_shape))
    return "NCHW"


def channels_first_shape(
    sample_shape: tuple[int, ...], layout: str | None
) -> tuple[int, ...]:
    """The shape of one sample once converted: (C, H, W) or (n_features,)."""
    if layout == "NHW":
        return (1, *sample_shape)
    if layout == "NHWC":
        height, width, channels = sample_shape
        return (channels, height, width)
    return tuple(sample_shape)


def to_channels_first(raw: torch.Tensor, layout: str | None) -> torch.Tensor:
    """A batch in channels-first layout, as a view when possible."""
    if layout == "NHW":
        return raw.unsqueeze(1)
    if layout == "NHWC":
        # A view: the result is channels-last in memory, which the default CNN
        # and CUDA convolutions prefer anyway.
        return raw.permute(0, 3, 1, 2)
    return raw


def input_scale(dtype: torch.dtype | np.dtype) -> float:
    """uint8 is read as 0-255 intensities and scaled to [0, 1] (fit's rule)."""
    return UINT8_SCALE if dtype in (torch.uint8, np.uint8) else 1.0


@dataclass(frozen=True)
class Preprocess:
    """Per-batch conversion: layout, dtype, scale, then standardisation.

    The one place where a raw batch becomes what the module sees.
    ``weight`` and ``bias`` fold scaling and standardisation into one
    ``x * weight + bias`` (shape (C, 1, 1) for images, (n_features,) for
    vectors); None leaves values as they are after scaling. ``scale``
    multiplies the raw values first: None is fit's rule (uint8 / 255, float
    as it is); prediction sets the factor that takes its input to fit's
    units (see :mod:`._scale`).
    """

    layout: str | None
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    scale: float | None = None

    @classmethod
    def build(
        cls,
        layout: str | None,
        mean: np.ndarray | None,
        std: np.ndarray | None,
        device: str | torch.device,
        scale: float | None = None,
    ) -> Preprocess:
        """From per-channel (or per-feature) mean and std of scaled inputs."""
        if mean is None or std is None:
            return cls(layout, scale=scale)
        shape = (-1, 1, 1) if layout is not None else (-1,)
        std = np.where(std > 0, std, 1.0)
        weight = torch.as_tensor(1.0 / std, dtype=torch.float32).reshape(shape)
        bias = torch.as_tensor(-mean / std, dtype=torch.float32).reshape(shape)
        return cls(layout, weight.to(device), bias.to(device), scale)

    def __call__(self, raw: torch.Tensor, device: str | torch.device) -> torch.Tensor:
        """One raw batch (any device) as float32 channels-first on ``device``."""
        device = torch.device(device)
        if raw.device != device:
            raw = raw.to(device, non_blocking=True)
        x = to_channels_first(raw, self.layout)
        scale = input_scale(raw.dtype) if self.scale is None else self.scale
        if x.dtype != torch.float32:
            x = x.float()
        if self.weight is None:
            return x * scale if scale != 1.0 else x
        # One fused multiply-add does the 0-255 scaling and the standardisation.
        weight = self.weight * scale if scale != 1.0 else self.weight
        return torch.addcmul(self.bias, x, weight)


class RunningMoments:
    """Per-channel (or per-feature) mean and variance, merged batch by batch.

    Chan's pairwise update in float64: numerically safe for data far from
    zero, and never more than one batch in memory, so Datasets and
    memory-mapped arrays are scanned in a single streamed pass.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, x: torch.Tensor) -> None:
        """Add a converted batch: (n, C, H, W) per channel, (n, F) per feature."""
        x = x.double()
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        n = x.numel() // (x.shape[1] if x.ndim > 1 else 1)
        if n == 0:
            return
        mean = x.mean(dim=axes)
        m2 = ((x - mean.reshape((-1, 1, 1) if x.ndim == 4 else (-1,))) ** 2).sum(
            dim=axes
        )
        mean, m2 = mean.cpu().numpy(), m2.cpu().numpy()
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.count = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (sample, ``ddof=1``) standard deviation."""
        if self.mean is None:
            raise ValueError("No samples to compute statistics from.")
        return self.mean, np.sqrt(self.m2 / max(self.count - 1, 1))


def moments(batches: Iterable[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over converted (unstandardised) batches."""
    running = RunningMoments()
    for batch in batches:
        running.update(batch)
    return running.result()
