"""The input a pretrained network expects: its image size and normalisation.

A network pretrained on ImageNet saw 224x224 crops standardised with the
ImageNet channel statistics; fed 32x32 images standardised with the new
data's own statistics, its features are far from what it learnt. Two pieces:

- :func:`fixed_stats` turns ``normalize='imagenet'``, a ``(mean, std)`` pair
  or a timm model's ``pretrained_cfg`` into the mean and std that replace the
  data's statistics in the one standardisation step of every batch (so the
  data's own standardisation is never applied on top);
- :func:`resize_batch` resizes a batch on its device (shorter side to the
  size, then a centre crop), after the augmentation, right before the module.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "fixed_stats",
    "resize_batch",
    "resized_shape",
]

# torchvision's ImageNet weights and most timm models (on [0, 1] input).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pair(mean, std, source: str) -> tuple[np.ndarray, np.ndarray]:
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    std = np.atleast_1d(np.asarray(std, dtype=np.float64))
    if mean.ndim != 1 or mean.shape != std.shape or not (std > 0).all():
        raise ValueError(
            f"{source} must give one mean and one positive standard deviation "
            f"per channel; got mean {mean.tolist()} and std {std.tolist()}."
        )
    return mean, std


def _timm_stats(module: object) -> tuple[np.ndarray, np.ndarray] | None:
    cfg = getattr(module, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "mean" not in cfg or "std" not in cfg:
        return None
    return _pair(cfg["mean"], cfg["std"], "The module's pretrained_cfg")


def fixed_stats(
    normalize: str | bool | tuple, module: object
) -> tuple[np.ndarray, np.ndarray] | None:
    """The fixed per-channel mean and std that ``normalize`` asks for.

    Parameters
    ----------
    normalize : 'auto', 'imagenet', bool or (mean, std)
        ``'imagenet'``: torchvision's ImageNet statistics; a pair: those;
        ``'auto'``: the ``pretrained_cfg`` mean and std of a timm model
        instance when it has them; anything else: None (statistics of the
        data, or none).
    module : object
        The estimator's ``module`` parameter.

    Returns
    -------
    stats : tuple of ndarray or None
        Mean and std of input scaled to [0, 1], one entry per channel.
    """
    if isinstance(normalize, tuple | list):
        if len(normalize) != 2:
            raise ValueError(
                "normalize as a pair must be (mean, std), one entry per channel; "
                f"got {len(normalize)} items."
            )
        return _pair(*normalize, "normalize=(mean, std)")
    if isinstance(normalize, str) and normalize == "imagenet":
        return _pair(IMAGENET_MEAN, IMAGENET_STD, "ImageNet")
    if isinstance(normalize, str) and normalize == "auto":
        return _timm_stats(module)
    return None


def check_stats_channels(
    stats: tuple[np.ndarray, np.ndarray] | None, n_channels: int | None
) -> None:
    """Fixed statistics need images of as many channels as they have entries."""
    if stats is None:
        return
    if n_channels is None or len(stats[0]) not in (1, n_channels):
        what = "feature vectors" if n_channels is None else f"{n_channels} channels"
        raise ValueError(
            f"The fixed normalisation has {len(stats[0])} channels but the input "
            f"has {what}. A network pretrained on RGB images needs 3-channel "
            "images (repeat a grey channel three times), or use normalize='auto'."
        )


def resized_shape(shape: tuple[int, ...], size: int | None) -> tuple[int, ...]:
    """The (C, H, W) shape the module sees once ``resize_batch`` has run."""
    if size is None or len(shape) != 3:
        return tuple(shape)
    return (shape[0], size, size)


def resize_batch(X: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize a (n, C, H, W) batch so that its shorter side is ``size``, then
    crop its centre to ``size`` x ``size`` (torchvision's ``Resize`` and
    ``CenterCrop``, on the whole batch on its device).

    Bilinear with antialiasing when shrinking; a batch already of that size
    is returned as it is (MixMatch views pass here twice).
    """
    if size is None or X.ndim != 4:
        return X
    height, width = X.shape[-2:]
    if height == size and width == size:
        return X
    scale = size / min(height, width)
    new_h = max(size, round(height * scale))
    new_w = max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        dtype = X.dtype
        X = F.interpolate(
            X.float() if not dtype.is_floating_point else X,
            size=(new_h, new_w),
            mode="bilinear",
            align_corners=False,
            antialias=scale < 1,
        ).to(dtype)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return X[..., top : top + size, left : left + size]
