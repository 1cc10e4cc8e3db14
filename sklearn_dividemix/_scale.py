"""The scale of the input: part of what fit learnt about it.

uint8 is read as 0-255 intensities and scaled to [0, 1]; float input is
taken as it is. The standardisation learnt in fit is in those units, so data
given to predict in another scale (the same images as float 0-255 after a
uint8 fit) would be standardised wrongly without a word. Fit records how its
input was scaled, an :class:`InputScale`; prediction input is measured the
same way and converted to fit's units when that is unambiguous, else
refused. Ranges are measured on a sample of rows (or the first samples of a
Dataset), never on the whole input: a memory-mapped array stays on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "InputScale",
    "measure_scale",
    "prediction_factor",
    "sample_rows",
]

UINT8_SCALE = 1.0 / 255.0
# Rows whose values decide the range: evenly spaced, so a sorted data set is
# seen from end to end at the cost of one small batch.
SAMPLE_ROWS = 64
# float32 rounding of values meant to be in [0, 1] (1.0000001 after a resize)
_TOLERANCE = 1e-3
# Float data reaching at least this (and at most 255) reads as 0-255
# intensities; a range just above 1 (jitter, rounding) is no evidence of it.
_BYTE_MIN_HIGH = 2.0


@dataclass(frozen=True)
class InputScale:
    """How input was scaled: its kind and the range of a sample of it.

    Attributes
    ----------
    kind : {'uint8', 'unit', 'byte', 'other'}
        uint8 (0-255, scaled to [0, 1] per batch); float in [0, 1]; float in
        [0, 255] (reaching at least 2); float in another range.
    low, high : float
        Smallest and largest value of the sample, before any scaling.
    """

    kind: str
    low: float
    high: float

    @property
    def factor(self) -> float:
        """What each raw value is multiplied by before standardisation."""
        return UINT8_SCALE if self.kind == "uint8" else 1.0

    def __str__(self) -> str:
        if self.kind == "uint8":
            return "uint8 (0-255, scaled to [0, 1])"
        if self.kind == "unit":
            return "float in [0, 1]"
        if self.kind == "byte":
            return "float in [0, 255]"
        return f"float in [{self.low:.4g}, {self.high:.4g}]"


def sample_rows(X: np.ndarray, max_rows: int = SAMPLE_ROWS) -> np.ndarray:
    """Up to ``max_rows`` evenly spaced rows of ``X`` (``X`` itself if fewer).

    Only those rows are read: a memory-mapped array stays on disk.
    """
    if len(X) <= max_rows:
        return X
    return X[np.unique(np.linspace(0, len(X) - 1, max_rows).astype(np.intp))]


def _kind(low: float, high: float) -> str:
    if low >= 0 and high <= 1 + _TOLERANCE:
        return "unit"
    if low >= 0 and _BYTE_MIN_HIGH <= high <= 255 + _TOLERANCE:
        return "byte"
    return "other"


def measure_scale(sample: np.ndarray | torch.Tensor) -> InputScale:
    """The :class:`InputScale` of raw (unscaled) samples."""
    values = sample.cpu().numpy() if torch.is_tensor(sample) else np.asarray(sample)
    if values.dtype == np.uint8:
        kind = "uint8"
    else:
        kind = None
        # a Dataset's samples may hold NaN or inf; their range is the rest
        values = values[np.isfinite(values)]
    if values.size == 0:
        low = high = 0.0
    else:
        low, high = float(values.min()), float(values.max())
    return InputScale(kind or _kind(low, high), low, high)


_U = UINT8_SCALE
# (fitted kind, predicted kind) -> factor that takes prediction input to the
# units fit standardised; a pair that is absent is refused. A kind paired with
# itself keeps its own factor.
_UINT8_PAIRS = {
    # ToTensor output is uint8 / 255: the legitimate cross-form predict
    ("uint8", "unit"): 1.0,
    ("uint8", "byte"): _U,
    ("unit", "uint8"): _U,
    # float 0-255 in fit was taken as it is: so are uint8 0-255 intensities
    ("byte", "uint8"): 1.0,
}
# Images only: pixel values are intensities, so a float range tells the units.
_IMAGE_PAIRS = {
    **_UINT8_PAIRS,
    ("unit", "byte"): _U,
    # fit on an unknown range (already standardised, 16-bit): float in
    # [0, 1] or [0, 255] may be a part of it; nothing to convert
    ("other", "unit"): 1.0,
    ("other", "byte"): 1.0,
}

_ADVICE = {
    "uint8": "pass uint8 images, or float ones in [0, 1] or [0, 255]",
    "unit": "pass float input in [0, 1], or uint8",
    "byte": "pass float input in [0, 255], or uint8",
    "other": "pass float input in the units fit saw",
}


def prediction_factor(fitted: InputScale, got: InputScale, image: bool) -> float:
    """The factor taking prediction input to the units fit standardised.

    Parameters
    ----------
    fitted : InputScale
        The scale of the training input.
    got : InputScale
        The scale of (a sample of) the prediction input.
    image : bool
        Whether the input is images. The range of float feature vectors says
        nothing about their units (new rows may lie outside the training
        range), so only their uint8 convention is checked: float vectors are
        always taken as they are, as by any scikit-learn estimator.

    Raises
    ------
    ValueError
        When the two scales cannot be reconciled: fit-time statistics would
        be applied to differently scaled data.
    """
    if got.kind == fitted.kind:
        return got.factor
    if not image and "uint8" not in (got.kind, fitted.kind):
        return 1.0
    factor = (_IMAGE_PAIRS if image else _UINT8_PAIRS).get((fitted.kind, got.kind))
    if factor is not None:
        return factor
    what = "images" if image else "input"
    raise ValueError(
        f"DivideMixClassifier was fitted on {what} that are {fitted}, and its "
        "nets and standardisation work in those units; X is "
        f"{got} (measured on a sample of rows), which cannot be converted to "
        f"them unambiguously. To predict, {_ADVICE[fitted.kind]}, scaled as "
        "in fit."
    )
