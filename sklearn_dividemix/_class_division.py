"""Divisions for imbalanced data: a mixture per class, or balanced selection.

One mixture fitted to the losses of all samples puts a loss threshold that
suits the frequent classes. A net learns a rare class later and less well, so
the clean samples of a rare class keep higher losses than the clean samples of
a frequent one, and the global split calls most of them noisy; with the rare
class's clean samples in the unlabeled set the net never learns that class.
Both divisions here are pure functions of the (normalised, averaged) losses
and the given labels, encoded as ``0 .. n_classes - 1``, and return one
:class:`~._division.Division` over all samples.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.stats import rankdata

from ._division import (
    GMM_REG_COVAR,
    HISTOGRAM_BINS,
    MIN_SEPARATION,
    Division,
    divide_losses,
    normalize_losses,
)

__all__ = ["MIN_CLASS_SIZE", "divide_losses_balanced", "divide_losses_per_class"]

# A class with fewer samples than this takes the global division's posteriors.
# Measured on bimodal losses like a net's (``benchmarks/long_tail.py --sizes``,
# 300 classes per size): with 50-80 % right labels a class's own split errs on
# at most 2 points more labels than a 1,000-sample class's from 30 samples on,
# 2-6 points more at 10-20 samples and 5-15 at 5 (with 20 % right labels:
# +5, +7-13 and +15 points). The global posteriors are no safe harbour for a
# rare class either (they carry the bias this module exists to remove), so
# the bar is set where the class's own split stops costing much, no higher.
MIN_CLASS_SIZE = 30


def _check_labels(losses, labels, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Losses as float64 and labels as indices, both 1-D of one length."""
    losses = np.asarray(losses, dtype=np.float64)
    labels = np.asarray(labels)
    if losses.ndim != 1 or labels.shape != losses.shape:
        raise ValueError(
            f"losses and labels must be 1-D of one length, got shapes "
            f"{losses.shape} and {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be encoded as integers, got {labels.dtype}.")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]."
        )
    return losses, labels.astype(np.intp, copy=False)


def _class_members(labels: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Indices of each class's samples (empty classes dropped), in one sort."""
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=n_classes))[:-1]
    return [members for members in np.split(order, bounds) if members.size]


def _pooled_components(
    scaled: np.ndarray, clean_proba: np.ndarray
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """The (clean, noisy) Gaussians that the posteriors imply: one M-step.

    The weighted mean and variance of ``scaled`` under each component's
    responsibilities, with the mixture's ``reg_covar``; for a single class
    this gives back (up to the unfinished EM) the class's own fit. A
    component with no mass gets the other's mean and variance 0.
    """
    responsibilities = np.stack([clean_proba, 1.0 - clean_proba])
    mass = responsibilities.sum(axis=1)
    means, variances = np.zeros(2), np.zeros(2)
    for k in np.flatnonzero(mass > 0):
        means[k] = responsibilities[k] @ scaled / mass[k]
        spread = responsibilities[k] @ (scaled - means[k]) ** 2 / mass[k]
        variances[k] = spread + GMM_REG_COVAR
    if np.any(mass <= 0):
        means[mass <= 0] = means[mass > 0]
    weights = mass / max(mass.sum(), 1e-300)
    return (
        tuple(map(float, means)),
        tuple(map(float, variances)),
        tuple(map(float, weights)),
    )


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The lower weighted median: the first value with half the weight below."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _fit_class(
    losses: np.ndarray,
    global_division: Division,
    members: np.ndarray,
    *,
    random_state: int | None,
    min_class_size: int,
    trust_check: bool,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One class's posteriors, the losses they rest on, and their separation.

    The class's own mixture, on its min-max normalised losses, unless the
    class is too small to fit two components, or (with ``trust_check``) its
    mixture is not bimodal where the global one is: then the global
    division's posteriors (and the global scale and separation) stand for it.
    """
    if members.size >= min_class_size:
        scaled = normalize_losses(losses[members])
        own = divide_losses(scaled, random_state=random_state)
        trusted = not (
            trust_check and own.degenerate and not global_division.degenerate
        )
        if trusted:
            return own.clean_proba, scaled, own.separation
    return (
        global_division.clean_proba[members],
        losses[members],
        global_division.separation,
    )


def divide_losses_per_class(
    losses,
    labels,
    *,
    n_classes: int,
    random_state: int | None,
    min_class_size: int = MIN_CLASS_SIZE,
    trust_check: bool = True,
) -> Division:
    """Fit the two-component mixture within each given class.

    Each class's losses are min-max normalised on their own and split by
    their own mixture (:func:`~._division.divide_losses`), so that a rare
    class whose clean samples all keep higher losses than a frequent class's
    still has its lowest-loss samples called clean. A class with fewer than
    ``min_class_size`` samples takes the global division's posteriors, and so
    does, with ``trust_check``, a class whose own split is not bimodal
    (separation below 2) while the global one is.

    Parameters
    ----------
    losses : ndarray of shape (n_samples,)
        Per-sample losses, normalised (and averaged) to [0, 1], as given to
        :func:`~._division.divide_losses`.
    labels : ndarray of shape (n_samples,)
        The given (possibly wrong) labels, encoded as ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes; classes without samples are allowed.
    random_state : int or None
        Seed of every mixture's initialisation (the global one included).
    min_class_size : int, default=MIN_CLASS_SIZE
        Smallest class fitted on its own.
    trust_check : bool, default=True
        Give a class whose own split is not bimodal the global posteriors.

    Returns
    -------
    division : Division
        ``clean_proba`` per sample from its class's split. The summary fields
        describe the pooled split: ``histogram`` counts each sample's loss on
        the scale its posterior came from (its class's normalised loss, or
        the global one); ``means``, ``variances`` and ``weights`` are the two
        Gaussians that the posteriors imply on those losses (one M-step);
        ``separation`` is the sample-weighted median of the classes'
        separations, so ``degenerate`` (separation below 2) says that at
        least half the samples lie in classes whose split is not bimodal.
    """
    losses, labels = _check_labels(losses, labels, n_classes)
    global_division = divide_losses(losses, random_state=random_state)
    if losses.size < 2 or not losses.max() > losses.min():
        return global_division
    clean_proba, scaled = np.empty_like(losses), np.empty_like(losses)
    separations, sizes = [], []
    for members in _class_members(labels, n_classes):
        clean_proba[members], scaled[members], separation = _fit_class(
            losses,
            global_division,
            members,
            random_state=random_state,
            min_class_size=min_class_size,
            trust_check=trust_check,
        )
        separations.append(separation)
        sizes.append(members.size)
    separation = _weighted_median(np.array(separations), np.array(sizes))
    means, variances, weights = _pooled_components(scaled, clean_proba)
    histogram, _ = np.histogram(scaled, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return Division(
        clean_proba=clean_proba,
        means=means,
        variances=variances,
        weights=weights,
        separation=separation,
        degenerate=separation < MIN_SEPARATION,
        histogram=histogram,
    )


def divide_losses_balanced(
    losses, labels, *, n_classes: int, random_state: int | None
) -> Division:
    """Split every class in the same proportion as the global division.

    The global mixture is fitted as usual; then each sample gets the global
    posterior of the sample at the same loss quantile overall as its own
    within its class (quantile matching, ties sharing their mean rank). Every
    class thus keeps about the share of clean samples that the global split
    keeps overall, whatever the threshold, its lowest-loss samples first:
    class-balanced selection in the manner of UNICON (Karim et al., CVPR
    2022), which assumes that every class has about the same share of wrong
    labels.

    Parameters
    ----------
    losses : ndarray of shape (n_samples,)
        Per-sample losses, normalised (and averaged) to [0, 1].
    labels : ndarray of shape (n_samples,)
        The given labels, encoded as ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes.
    random_state : int or None
        Seed of the mixture's initialisation.

    Returns
    -------
    division : Division
        The global division with ``clean_proba`` re-assigned by rank within
        each class; its summary fields are the global mixture's.
    """
    losses, labels = _check_labels(losses, labels, n_classes)
    global_division = divide_losses(losses, random_state=random_state)
    if losses.size == 0:
        return global_division
    by_rank = global_division.clean_proba[np.argsort(losses, kind="stable")]
    clean_proba = np.empty_like(losses)
    for members in _class_members(labels, n_classes):
        quantiles = (rankdata(losses[members]) - 0.5) / members.size
        clean_proba[members] = by_rank[(quantiles * losses.size).astype(np.intp)]
    return replace(global_division, clean_proba=clean_proba)
