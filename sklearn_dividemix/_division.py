"""Co-divide: per-sample losses in, clean probabilities out.

DivideMix models the per-sample cross-entropy of a net as a mixture of two
Gaussians, a low-loss component of samples whose label the net agrees with and
a high-loss one of samples it doesn't; a sample's clean probability is its
posterior under the low-loss component.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

__all__ = [
    "Division",
    "DivisionWarning",
    "LossWindow",
    "auto_lambda_u",
    "divide_losses",
    "estimate_noise_rate",
    "normalize_losses",
    "warmup_should_continue",
]

# The paper's settings for the one-dimensional mixture (appendix, reference code).
GMM_MAX_ITER = 10
GMM_TOL = 1e-2
GMM_REG_COVAR = 5e-4
HISTOGRAM_BINS = 50
# Ashman's D below this: the two components overlap so much that the loss is
# not bimodal and the split says little about which labels are wrong. Two equal
# Gaussians make a bimodal mixture only for D > 2; a GMM fitted to a single
# Gaussian bump still comes out at D ~ 1.6, so a lower threshold misses it.
MIN_SEPARATION = 2.0


class DivisionWarning(UserWarning):
    """Base of the warnings about a fit's divisions (see ``UntrustedFitWarning``)."""


@dataclass
class Division:
    """The result of one net's division of the training set.

    Attributes
    ----------
    clean_proba : ndarray of shape (n_samples,)
        Posterior of the low-loss component for each sample.
    means, variances, weights : tuple of float
        The mixture's (clean, noisy) components, on normalised losses.
    separation : float
        Ashman's D between the two components; above 2 means a clean split.
    degenerate : bool
        True when the losses are constant or the components barely separate.
    histogram : ndarray of shape (50,)
        Counts of the normalised losses in 50 equal bins over [0, 1], kept so
        that diagnostics can redraw the split without storing every loss.
    """

    clean_proba: np.ndarray
    means: tuple[float, float]
    variances: tuple[float, float]
    weights: tuple[float, float]
    separation: float
    degenerate: bool
    histogram: np.ndarray = field(repr=False)

    def summary(self) -> dict:
        """Everything but the per-sample probabilities, for ``history_``."""
        return {
            "means": self.means,
            "variances": self.variances,
            "weights": self.weights,
            "separation": self.separation,
            "degenerate": self.degenerate,
            "histogram": self.histogram,
        }


def normalize_losses(losses: np.ndarray) -> np.ndarray:
    """Min-max scale losses to [0, 1]; constant losses become all zeros.

    Scaling makes the mixture's fixed ``reg_covar`` mean the same thing at
    every epoch, whatever the loss's absolute level.
    """
    losses = np.asarray(losses, dtype=np.float64)
    low, high = losses.min(), losses.max()
    if not high > low:
        return np.zeros_like(losses)
    return (losses - low) / (high - low)


class LossWindow:
    """Average of the last ``size`` normalised loss vectors of one net.

    At very high noise a single epoch's losses are too noisy to split; the
    paper averages the last five epochs. ``size=1`` is no averaging. The
    window keeps up to ``keep`` vectors (at least ``size``) so that a size
    resolved later (``loss_window='auto'``, when warm-up ends) can average
    epochs that were divided before it was known.
    """

    # a window unpickled from a checkpoint written before ``size`` was
    # stored averages all it keeps, as it did then
    size: int | None = None

    def __init__(self, size: int, keep: int | None = None) -> None:
        self.size = int(size)
        self._losses: deque[np.ndarray] = deque(maxlen=max(self.size, keep or 0))

    def update(self, normalized_losses: np.ndarray) -> np.ndarray:
        """Add one epoch's losses and return the current average."""
        self._losses.append(normalized_losses)
        recent = list(self._losses)
        if self.size is not None:
            recent = recent[-self.size :]
        return np.mean(np.stack(recent), axis=0)


def _ashman_d(means: np.ndarray, variances: np.ndarray) -> float:
    spread = np.sqrt(variances.sum())
    return float(np.sqrt(2.0) * abs(means[1] - means[0]) / max(spread, 1e-12))


def divide_losses(losses: np.ndarray, *, random_state: int | None) -> Division:
    """Fit a two-component 1-D GMM to normalised losses.

    Parameters
    ----------
    losses : ndarray of shape (n_samples,)
        Per-sample losses, already normalised (and averaged) to [0, 1].
    random_state : int or None
        Seed of the mixture's initialisation.

    Returns
    -------
    division : Division
    """
    losses = np.asarray(losses, dtype=np.float64)
    histogram, _ = np.histogram(losses, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    if losses.size < 2 or not losses.max() > losses.min():
        # Nothing tells samples apart: keep every label rather than guess.
        return Division(
            clean_proba=np.ones_like(losses),
            means=(float(losses.mean()) if losses.size else 0.0,) * 2,
            variances=(0.0, 0.0),
            weights=(1.0, 0.0),
            separation=0.0,
            degenerate=True,
            histogram=histogram,
        )
    gmm = GaussianMixture(
        n_components=2,
        max_iter=GMM_MAX_ITER,
        tol=GMM_TOL,
        reg_covar=GMM_REG_COVAR,
        random_state=random_state,
    )
    # The paper stops after 10 EM steps on purpose; that is not a failure.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(losses.reshape(-1, 1))
    order = np.argsort(gmm.means_.ravel())
    means = gmm.means_.ravel()[order]
    variances = gmm.covariances_.ravel()[order]
    weights = gmm.weights_[order]
    clean_proba = gmm.predict_proba(losses.reshape(-1, 1))[:, order[0]]
    separation = _ashman_d(means, variances)
    return Division(
        clean_proba=clean_proba,
        means=(float(means[0]), float(means[1])),
        variances=(float(variances[0]), float(variances[1])),
        weights=(float(weights[0]), float(weights[1])),
        separation=separation,
        degenerate=separation < MIN_SEPARATION,
        histogram=histogram,
    )


# lambda_u="auto": the paper's per-setting table (appendix), keyed by the share
# of labels the first division calls noisy. The boundaries sit halfway between
# the label error rates of the paper's settings on ten classes (sym 20 % wrongs
# 18 % of the labels, sym 50-80 % 45-72 %, sym 90 % 81 %, asym 40 % 20 %).
AUTO_LAMBDA_U_LOW = 0.3
AUTO_LAMBDA_U_HIGH = 0.77
# Above this many classes the CIFAR-100 row applies (about the geometric mean
# of the paper's 10 and 100 classes).
AUTO_LAMBDA_U_MANY_CLASSES = 31


def estimate_noise_rate(divisions: list[Division], p_threshold: float) -> float:
    """Share of samples the divisions put in the unlabeled set, averaged."""
    return float(np.mean([np.mean(d.clean_proba <= p_threshold) for d in divisions]))


def auto_lambda_u(noise_rate: float, n_classes: int) -> float:
    """The paper's ``lambda_u`` for an estimated noise rate and class count.

    ========================  ===========  ============  ===========
    estimated noise rate       < 0.3        0.3 - 0.77    >= 0.77
    ========================  ===========  ============  ===========
    up to 31 classes           0            25            50
    more than 31 classes       25           150           150
    ========================  ===========  ============  ===========
    """
    if n_classes > AUTO_LAMBDA_U_MANY_CLASSES:
        return 25.0 if noise_rate < AUTO_LAMBDA_U_LOW else 150.0
    if noise_rate < AUTO_LAMBDA_U_LOW:
        return 0.0
    return 25.0 if noise_rate < AUTO_LAMBDA_U_HIGH else 50.0


def warmup_should_continue(
    separation: float, previous: float | None, epoch: int, max_warmup_epochs: int
) -> bool:
    """Whether to warm up for one more epoch instead of starting MixMatch.

    A net whose losses are not yet bimodal after the scheduled warm-up (a weak
    net, high noise) gives a division little better than chance, and MixMatch
    then trains on it. Warm-up goes on while the worse of the two nets'
    separations is below ``MIN_SEPARATION`` *and still growing*: a separation
    that shrinks means the nets have begun to memorise the wrong labels, and
    more cross-entropy would only make that worse.

    Parameters
    ----------
    separation : float
        The smaller Ashman's D of the two nets' divisions at this epoch.
    previous : float or None
        The same at the previous check, None at the first.
    epoch : int
        Number of epochs trained so far.
    max_warmup_epochs : int
        Warm-up never runs past this many epochs.
    """
    if separation >= MIN_SEPARATION or epoch >= max_warmup_epochs:
        return False
    return previous is None or separation > previous
