"""From what the user passes (arrays, Datasets) to a :class:`DataSource`.

Fit reads the input once: its layout, its scale (on a sample of rows), its
labels (given, a Dataset's ``targets``, or one streamed scan) and, with
``normalize``, the per-channel statistics (streamed too, so a memory-mapped
array or a Dataset is never held in memory as float32). Prediction rebuilds
the same conversion from the fitted attributes, converting input of another
scale to fit's units or refusing it (:mod:`._scale`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ._data import ArraySource, DatasetSource, DataSource, is_dataset
from ._layout import Preprocess, RunningMoments, channels_first_shape, resolve_layout
from ._pretrained_input import resized_shape
from ._samples import SampleReader, check_deterministic, sample_reader, sized_reader
from ._scale import InputScale, measure_scale, prediction_factor, sample_rows

__all__ = [
    "FitInput",
    "FittedInput",
    "InputSettings",
    "dataset_labels",
    "prediction_source",
    "read_fit_input",
]


@dataclass(frozen=True)
class InputSettings:
    """The estimator parameters that decide how input is read."""

    image_layout: str = "auto"
    # 'auto': images per channel, feature vectors left as they are; True:
    # both (vectors per feature); False: neither.
    normalize: str | bool = "auto"
    # augment='jitter' on images needs per-channel statistics even when
    # normalize is off (vectors always get them: the scan is cheap there).
    jitter: bool = False
    eval_batch_size: int = 1024
    train_loader_params: dict = field(default_factory=dict)
    eval_loader_params: dict = field(default_factory=dict)
    # the keys of dict items (see _samples.sample_reader); None: the usual ones
    dataset_keys: str | tuple | None = None
    # a pretrained net's own (mean, std) on [0, 1] input, which replace the
    # data's statistics (_pretrained_input.fixed_stats); None: the data's
    stats: tuple[np.ndarray, np.ndarray] | None = None
    # input_size: a Dataset's samples are resized to it before collation
    input_size: int | None = None


# Items of a Dataset whose values decide its scale: the first batch, as
# small as the transform check's reads allow.
_HEAD_ITEMS = 8


@dataclass
class FitInput:
    """What fit learnt about its input, and the source to train from."""

    source: DataSource
    labels: np.ndarray
    sample_shape: tuple[int, ...]
    layout: str | None
    mean: np.ndarray | None
    std: np.ndarray | None
    normalized: bool
    paths: np.ndarray | None
    scale: InputScale | None = None

    @property
    def module_shape(self) -> tuple[int, ...]:
        """Shape of one converted sample: (C, H, W) or (n_features,)."""
        return channels_first_shape(self.sample_shape, self.layout)

    def feature_std(self, device: str) -> torch.Tensor | None:
        """Std of each feature or channel of the converted (standardised) input."""
        if self.std is None:
            return None
        std = (self.std > 0).astype(np.float64) if self.normalized else self.std
        shape = (-1, 1, 1) if self.layout is not None else (-1,)
        return torch.as_tensor(std, dtype=torch.float32, device=device).reshape(shape)


def standardises(normalize: str | bool, layout: str | None) -> bool:
    """Whether ``normalize`` standardises input of this layout.

    ``'auto'`` standardises images per channel and leaves feature vectors
    alone: measured on flattened MNIST and on digits, per-feature scaling
    blows up near-constant border pixels (a pixel inked in a handful of
    images gets a standard deviation near 0) and cost 3-10 points of test
    accuracy, while it helped on Fashion-MNIST; with no clear gain, vectors
    keep their own scale unless ``normalize=True``.
    """
    if normalize == "auto":
        return layout is not None
    return bool(normalize)


def _needs_moments(settings: InputSettings, layout: str | None) -> bool:
    own = standardises(settings.normalize, layout) and settings.stats is None
    return own or settings.jitter or layout is None


def _statistics(settings: InputSettings, mean, std) -> tuple:
    """The data's statistics, or the fixed ones that replace them (never both:
    a pretrained net's normalisation is not applied on top of the data's)."""
    return settings.stats if settings.stats is not None else (mean, std)


def _standardiser(settings, layout, mean, std, device) -> Preprocess:
    if not standardises(settings.normalize, layout):
        return Preprocess(layout)
    return Preprocess.build(layout, mean, std, device)


@dataclass(frozen=True)
class _Head:
    """What the first items of a Dataset say about all of them."""

    reader: SampleReader
    sample_shape: tuple[int, ...]
    has_label: bool
    scale: InputScale


def _dataset_head(
    dataset: Dataset,
    dataset_keys: object,
    check_transform: bool = False,
    size: int | None = None,
    image_layout: str = "auto",
) -> _Head:
    """Read the first items (at most :data:`_HEAD_ITEMS`) of a Dataset.

    With ``size`` (``input_size``), the reader resizes every sample before
    collation, and the head's sample shape is the resized one.
    """
    if len(dataset) == 0:
        raise ValueError("The Dataset is empty; fit needs at least 2 samples.")
    first = dataset[0]
    reader = sample_reader(first, dataset_keys)
    items = [first]
    if check_transform:
        items = check_deterministic(dataset, reader, first)
    reader = sized_reader(reader, first, size, image_layout)
    n_head = min(len(dataset), _HEAD_ITEMS)
    items += [dataset[i] for i in range(len(items), n_head)]
    batch = reader.collate(items)
    return _Head(
        reader, tuple(batch.shape[1:]), reader.has_label(first), measure_scale(batch)
    )


def dataset_paths(dataset: Dataset) -> np.ndarray | None:
    """File of each sample when the dataset knows it (``ImageFolder.samples``)."""
    if isinstance(dataset, Subset):
        base = dataset_paths(dataset.dataset)
        return None if base is None else base[np.asarray(dataset.indices)]
    samples = getattr(dataset, "samples", None)
    if not isinstance(samples, list) or len(samples) != len(dataset):
        return None
    if not all(isinstance(s, tuple) and isinstance(s[0], str) for s in samples[:1]):
        return None
    return np.array([str(s[0]) for s in samples], dtype=object)


def _targets(dataset: Dataset) -> np.ndarray | None:
    if isinstance(dataset, Subset):
        base = _targets(dataset.dataset)
        return None if base is None else base[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    targets = np.asarray(targets.cpu() if torch.is_tensor(targets) else targets)
    return targets if len(targets) == len(dataset) else None


def _label_values(labels: list) -> np.ndarray:
    return np.asarray([t.item() if torch.is_tensor(t) else t for t in labels])


def _scan_dataset(
    source: DatasetSource, need_labels: bool, need_moments: bool, batch_size: int
) -> tuple[np.ndarray | None, RunningMoments | None]:
    """One pass over the dataset for its labels and/or statistics."""
    if not (need_labels or need_moments):
        return None, None
    moments = RunningMoments() if need_moments else None
    labels: list = []
    if need_labels:
        batches = (
            (source.preprocess(raw, "cpu"), batch_labels)
            for raw, batch_labels in source.labelled_stream(batch_size)
        )
    else:
        batches = ((batch, []) for batch in source.stream(batch_size))
    for batch, batch_labels in batches:
        labels.extend(batch_labels)
        if moments is not None:
            moments.update(batch)
    return (_label_values(labels) if need_labels else None), moments


def dataset_labels(dataset: Dataset, settings: InputSettings) -> np.ndarray:
    """The labels a Dataset carries: its ``targets``, else one scan."""
    targets = _targets(dataset)
    if targets is not None:
        return targets
    head = _dataset_head(dataset, settings.dataset_keys)
    if not head.has_label:
        raise ValueError(
            "The Dataset yields inputs without labels; pass the labels as y."
        )
    source = DatasetSource(
        dataset,
        Preprocess(None),
        "cpu",
        eval_loader_params=settings.eval_loader_params,
        reader=head.reader,
    )
    labels, _ = _scan_dataset(source, True, False, settings.eval_batch_size)
    return labels


def _read_dataset(
    dataset: Dataset, y, settings: InputSettings, device: str
) -> FitInput:
    head = _dataset_head(
        dataset,
        settings.dataset_keys,
        check_transform=True,
        size=settings.input_size,
        image_layout=settings.image_layout,
    )
    layout = head.reader.layout
    if head.reader.size is None:
        layout = resolve_layout(head.sample_shape, settings.image_layout)
    # else the reader resolved it on the raw samples, and resizing keeps it:
    # resolving again would repeat a fallback layout's warning
    if y is None and not head.has_label:
        raise ValueError(
            "The Dataset yields inputs without labels; pass the labels as y "
            "(fit(dataset, y)), make it yield (x, label) pairs, or name the "
            "label key of its dicts with dataset_keys=(input_key, label_key)."
        )
    labels = np.asarray(y) if y is not None else _targets(dataset)
    scan = DatasetSource(
        dataset,
        Preprocess(layout),
        "cpu",
        eval_loader_params=settings.eval_loader_params,
        reader=head.reader,
    )
    scanned, moments = _scan_dataset(
        scan, labels is None, _needs_moments(settings, layout), settings.eval_batch_size
    )
    labels = scanned if labels is None else labels
    if len(labels) != len(dataset):
        raise ValueError(
            f"y has {len(labels)} labels but the Dataset has {len(dataset)} samples."
        )
    mean, std = moments.result() if moments is not None else (None, None)
    mean, std = _statistics(settings, mean, std)
    source = DatasetSource(
        dataset,
        _standardiser(settings, layout, mean, std, device),
        device,
        settings.train_loader_params,
        settings.eval_loader_params,
        reader=head.reader,
    )
    paths = dataset_paths(dataset)
    return FitInput(
        source,
        labels,
        head.sample_shape,
        layout,
        mean,
        std,
        standardises(settings.normalize, layout),
        paths,
        scale=head.scale,
    )


def _array_moments(
    X: np.ndarray, layout: str | None, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    # In eval_batch_size chunks, as every pass: never a float copy of X.
    source = ArraySource(X, Preprocess(layout), "cpu")
    moments = RunningMoments()
    for batch in source.stream(batch_size):
        moments.update(batch)
    return moments.result()


def _read_array(X: np.ndarray, y, settings: InputSettings, device: str) -> FitInput:
    layout = resolve_layout(X.shape[1:], settings.image_layout)
    moments = _needs_moments(settings, layout)
    mean, std = (
        _array_moments(X, layout, settings.eval_batch_size) if moments else (None, None)
    )
    mean, std = _statistics(settings, mean, std)
    source = ArraySource(X, _standardiser(settings, layout, mean, std, device), device)
    return FitInput(
        source,
        np.asarray(y),
        X.shape[1:],
        layout,
        mean,
        std,
        standardises(settings.normalize, layout),
        None,
        scale=measure_scale(sample_rows(X)),
    )


def read_fit_input(X, y, settings: InputSettings, device: str) -> FitInput:
    """A validated array or a Dataset, read into a :class:`FitInput`."""
    if is_dataset(X):
        return _read_dataset(X, y, settings, device)
    return _read_array(X, y, settings, device)


def check_sample_shape(shape: tuple[int, ...], fitted: tuple[int, ...]) -> None:
    """Prediction input must convert to the samples fit saw."""
    if tuple(shape) != tuple(fitted):
        raise ValueError(
            f"X has samples of shape {tuple(shape)}, but DivideMixClassifier "
            f"was fitted on samples of shape {tuple(fitted)}."
        )


@dataclass(frozen=True)
class FittedInput:
    """What prediction needs to read input as fit did (from fitted attributes)."""

    sample_shape: tuple[int, ...]
    layout: str | None
    image_layout: str
    mean: np.ndarray | None
    std: np.ndarray | None
    eval_loader_params: dict = field(default_factory=dict)
    # None for an estimator fitted before the scale was recorded: fit's rule
    scale: InputScale | None = None
    dataset_keys: str | tuple | None = None
    # input_size: every image is resized to it, so any size is accepted
    input_size: int | None = None

    def preprocess(
        self, layout: str | None, got: InputScale, device: str
    ) -> Preprocess:
        """The conversion of prediction input of scale ``got``."""
        factor = None
        if self.scale is not None:
            factor = prediction_factor(self.scale, got, self.layout is not None)
        return Preprocess.build(layout, self.mean, self.std, device, factor)


def _prediction_layout(shape: tuple[int, ...], fitted: FittedInput) -> str | None:
    if fitted.layout is None:
        return None
    if tuple(shape) == tuple(fitted.sample_shape):
        # as read in fit, without warning about the reading again
        return fitted.layout
    return resolve_layout(shape, fitted.image_layout)


def prediction_source(X, fitted: FittedInput, device: str) -> DataSource:
    """A source over prediction input: a validated array or a Dataset.

    Images may come in another layout than in fit (a model fitted on uint8
    NHWC arrays predicts on ``ToTensor`` images): what must match is the
    converted (channels-first) sample shape, or only the channels under an
    ``input_size``, to which every image is resized. Their scale is measured
    on a sample of rows and must be fit's, or convertible to it.
    """
    size = fitted.input_size
    module_shape = channels_first_shape(fitted.sample_shape, fitted.layout)
    if is_dataset(X):
        head = _dataset_head(
            X, fitted.dataset_keys, size=size, image_layout=fitted.image_layout
        )
        shape, scale = head.sample_shape, head.scale
    else:
        shape, scale = tuple(X.shape[1:]), measure_scale(sample_rows(X))
    layout = _prediction_layout(shape, fitted)
    check_sample_shape(
        resized_shape(channels_first_shape(shape, layout), size),
        resized_shape(module_shape, size),
    )
    preprocess = fitted.preprocess(layout, scale, device)
    if is_dataset(X):
        loader = fitted.eval_loader_params
        return DatasetSource(
            X, preprocess, device, eval_loader_params=loader, reader=head.reader
        )
    # Chunks go to the device one at a time: no second copy of X there.
    return ArraySource(X, preprocess, device, keep_on_host=True)
