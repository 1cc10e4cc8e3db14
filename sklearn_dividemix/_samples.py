"""What one item of a Dataset is: its input, its label, and whether it is fixed.

Datasets yield ``x``, ``(x, label)`` (torchvision) or dicts such as
``{"image": ..., "label": ...}`` (the Hugging Face form). A
:class:`SampleReader`, resolved once from the first item and the estimator's
``dataset_keys``, splits every item the same way and collates batches of
them, resizing each sample first when the estimator has an ``input_size``
(so that an image folder of mixed sizes collates). The first items are also
read twice: a Dataset with a random transform gives two different reads, and
is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import Dataset

from ._layout import resolve_layout
from ._pretrained_input import resize_batch

__all__ = [
    "INPUT_KEYS",
    "LABEL_KEYS",
    "SampleReader",
    "check_deterministic",
    "resize_sample",
    "sample_reader",
    "sized_reader",
]

# Keys tried in turn by dataset_keys=None: Hugging Face image data sets use
# image/img/pixel_values and label/labels, others x/y, input/target.
INPUT_KEYS = ("image", "img", "pixel_values", "x", "input", "inputs", "data")
LABEL_KEYS = ("label", "labels", "target", "targets", "y", "class")
# Items read twice to detect a random transform: with a flip of probability
# 0.5 alone, two items are both read the same with probability 1/4.
_REPEATED_READS = 2


def _to_tensor(x: object) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    # PIL images and arrays: np.asarray gives (H, W) or (H, W, C) uint8.
    array = np.asarray(x)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


def resize_sample(x: torch.Tensor, layout: str | None, size: int) -> torch.Tensor:
    """One image resized as :func:`resize_batch` resizes a batch, in its own
    layout (``'NHW'``, ``'NCHW'`` or ``'NHWC'`` read without the batch axis);
    feature vectors (``layout`` None) are returned as they are."""
    if layout is None:
        return x
    if layout == "NHW":
        return resize_batch(x[None, None], size)[0, 0]
    if layout == "NHWC":
        return resize_batch(x.permute(2, 0, 1)[None], size)[0].permute(1, 2, 0)
    return resize_batch(x[None], size)[0]


@dataclass(frozen=True)
class SampleReader:
    """Splits Dataset items into input and label, and collates them.

    Parameters
    ----------
    input_key, label_key : str or None
        Keys of dict items; None for tuple items (``x`` or ``(x, label,
        ...)``), and ``label_key`` None for dict items without labels.
    size : int or None
        Side each image is resized and centre-cropped to before collation
        (``input_size``); None collates samples as they are.
    layout : str or None
        The samples' layout (``'NHW'``, ``'NCHW'``, ``'NHWC'``), which tells
        :meth:`collate` their spatial axes; only read with ``size``.
    """

    input_key: str | None = None
    label_key: str | None = None
    size: int | None = None
    layout: str | None = None

    def input(self, item: object) -> object:
        """The input part of an item."""
        if isinstance(item, Mapping):
            return item[self.input_key]
        if isinstance(item, tuple | list):
            return item[0]
        return item

    def label(self, item: object) -> object:
        """The label of an item (only called when :meth:`has_label`)."""
        if isinstance(item, Mapping):
            return item[self.label_key]
        return item[1]

    def has_label(self, item: object) -> bool:
        if isinstance(item, Mapping):
            return self.label_key is not None
        return isinstance(item, tuple | list) and len(item) >= 2

    def collate(self, items: list) -> torch.Tensor:
        """Stack the inputs of items into one raw batch tensor."""
        tensors = [_to_tensor(self.input(item)) for item in items]
        if self.size is not None:
            # per sample, before stacking: the samples may differ in size
            tensors = [resize_sample(t, self.layout, self.size) for t in tensors]
        first = tensors[0].shape
        for tensor in tensors[1:]:
            if tensor.shape != first:
                raise ValueError(
                    "The Dataset yields samples of different shapes "
                    f"({tuple(first)} and {tuple(tensor.shape)}); every sample "
                    "must have one shape. Set input_size (each image is then "
                    "resized and centre-cropped to it), or give the Dataset a "
                    "deterministic transform such as transforms.Compose("
                    "[transforms.Resize(32), transforms.CenterCrop(32), "
                    "transforms.ToTensor()])."
                )
        return torch.stack(tensors)

    def collate_with_labels(self, items: list) -> tuple[torch.Tensor, list]:
        """Inputs as :meth:`collate`, and each item's label."""
        return self.collate(items), [self.label(item) for item in items]


def _check_keys(dataset_keys: object) -> tuple[str | None, str | None]:
    if dataset_keys is None:
        return None, None
    if isinstance(dataset_keys, str):
        return dataset_keys, None
    if (
        len(dataset_keys) == 2
        and isinstance(dataset_keys[0], str)
        and isinstance(dataset_keys[1], str | None)
    ):
        return dataset_keys[0], dataset_keys[1]
    raise InvalidParameterError(
        "The 'dataset_keys' parameter of DivideMixClassifier must be None, a "
        "str (the input key) or a tuple (input_key, label_key) of str, the "
        f"label key possibly None. Got {dataset_keys!r} instead."
    )


def _first_key(item: Mapping, candidates: tuple[str, ...]) -> str | None:
    return next((key for key in candidates if key in item), None)


def sample_reader(item: object, dataset_keys: object = None) -> SampleReader:
    """The reader of a Dataset whose first item is ``item``.

    ``dataset_keys`` is the estimator's parameter: None tries
    :data:`INPUT_KEYS` and :data:`LABEL_KEYS` on dict items, a str names the
    input key, a tuple ``(input_key, label_key)`` both.
    """
    input_key, label_key = _check_keys(dataset_keys)
    if not isinstance(item, Mapping):
        return SampleReader()
    keys = list(item)
    input_key = input_key or _first_key(item, INPUT_KEYS)
    if label_key is None and not isinstance(dataset_keys, tuple | list):
        label_key = _first_key(item, LABEL_KEYS)
    for key in (input_key, label_key):
        if key is not None and key not in item:
            raise ValueError(
                f"The Dataset's items have no key {key!r}; their keys are "
                f"{keys}. Set dataset_keys=(input_key, label_key)."
            )
    if input_key is None:
        raise ValueError(
            f"The Dataset yields dicts with keys {keys}, none of which is a "
            f"known input key {list(INPUT_KEYS)}. Set "
            "dataset_keys=(input_key, label_key), e.g. "
            f"dataset_keys=({keys[0]!r}, None)."
        )
    return SampleReader(input_key, label_key)


def sized_reader(
    reader: SampleReader, first: object, size: int | None, image_layout: str
) -> SampleReader:
    """``reader``, resizing each sample to ``size`` in the layout of the
    Dataset's first item ``first`` (``image_layout`` as the estimator's)."""
    if size is None:
        return reader
    shape = tuple(_to_tensor(reader.input(first)).shape)
    return replace(reader, size=size, layout=resolve_layout(shape, image_layout))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.is_floating_point:
        return bool(torch.equal(a.nan_to_num(), b.nan_to_num()))
    return bool(torch.equal(a, b))


def check_deterministic(
    dataset: Dataset, reader: SampleReader, first: object
) -> list[object]:
    """Read the first items again; refuse a Dataset whose reads differ.

    ``first`` is item 0, already read; returns the items read (one each).

    Refused rather than handled: every division pass must score each
    sample's loss on one fixed view of it, and a transform inside the
    Dataset cannot be switched off for those passes (DivideMix's own
    augmentation, ``augment``, runs on the device on training batches only).
    Its CPU randomness would also escape ``random_state``.
    """
    items = []
    for index in range(min(len(dataset), _REPEATED_READS)):
        once = first if index == 0 else dataset[index]
        again = dataset[index]
        items.append(once)
        if not _same(_to_tensor(reader.input(once)), _to_tensor(reader.input(again))):
            raise ValueError(
                f"Two reads of sample {index} of the Dataset differ: its "
                "transform is random (RandomCrop, RandomHorizontalFlip, ...). "
                "DivideMix scores every sample on one fixed view to divide "
                "clean from noisy labels, and augments training batches itself: "
                "give the Dataset a deterministic transform (Resize, CenterCrop, "
                "ToTensor or PILToTensor) and choose the augmentation with the "
                "estimator's augment parameter ('crop', 'crop_flip' or a "
                "callable on a batch tensor)."
            )
    return items
