"""The noise a DivideMix fit believes in: its transition matrix estimate.

A fit knows, for each training sample, how likely its label is right
(``clean_proba_``) and what the true class probably is (``train_proba_``).
Summed over the training set this gives the noise transition matrix
``T[i, j] = P(noisy label j | true class i)``, which :mod:`._metrics` uses to
read clean accuracy out of noisy held-out labels. The functions here are pure
(arrays in, arrays out) apart from the public, estimator-level one.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

__all__ = ["noise_transition_matrix_estimate"]

# What a fitted DivideMixClassifier keeps about its division of the data.
_FIT_ATTRIBUTES = ("classes_", "clean_proba_", "train_proba_", "_train_labels")
# Samples per chunk when the posteriors of a whole training set are summed.
_CHUNK_ROWS = 65_536


def true_label_posterior(
    given: np.ndarray, clean_proba: np.ndarray, proba: np.ndarray
) -> np.ndarray:
    """The fit's belief about each training sample's true class.

    ``w * onehot(given) + (1 - w) * proba`` with ``w = clean_proba``: the
    given label where the division believes it, the nets' prediction where it
    does not. This is DivideMix's co-refined label before sharpening.

    Parameters
    ----------
    given : ndarray of shape (n_samples,)
        Given labels, encoded as column indices of ``proba``.
    clean_proba : ndarray of shape (n_samples,)
        Probability that each given label is correct.
    proba : ndarray of shape (n_samples, n_classes)
        Predicted class probabilities of the training samples.

    Returns
    -------
    posterior : ndarray of shape (n_samples, n_classes)
        Rows sum to 1 when those of ``proba`` do.
    """
    w = np.asarray(clean_proba, dtype=np.float64)
    posterior = (1.0 - w[:, None]) * np.asarray(proba, dtype=np.float64)
    posterior[np.arange(len(given)), given] += w
    return posterior


def estimate_transition_matrix(
    given: np.ndarray, posterior: np.ndarray, n_classes: int
) -> np.ndarray:
    """Noise transition matrix from given labels and true-class posteriors.

    ``T[i, j]`` is proportional to the posterior mass of class ``i`` on the
    samples labelled ``j``, each row normalised to sum to 1: the expected
    share of true class ``i`` that was labelled ``j``.

    Parameters
    ----------
    given : ndarray of shape (n_samples,)
        Given labels, encoded as integers in ``[0, n_classes)``.
    posterior : ndarray of shape (n_samples, n_classes)
        Probability of each true class for each sample.
    n_classes : int
        Number of classes.

    Returns
    -------
    transition : ndarray of shape (n_classes, n_classes)
        Row-stochastic, ``T[i, j] = P(noisy = j | true = i)``. A class that
        no sample is believed to belong to gets the identity row (no
        evidence of noise).
    """
    return _normalise_rows(_class_label_mass(given, posterior, n_classes))


def _class_label_mass(
    given: np.ndarray, posterior: np.ndarray, n_classes: int
) -> np.ndarray:
    """``mass[i, j]``: posterior mass of class ``i`` on the samples labelled ``j``."""
    given = np.asarray(given, dtype=np.intp)
    counts = np.bincount(given, minlength=n_classes)
    labelled = np.flatnonzero(counts)
    mass = np.zeros((n_classes, n_classes))
    if labelled.size:
        # one sort and one pass, rather than a scan of the samples per label
        starts = (np.cumsum(counts) - counts)[labelled]
        ordered = np.asarray(posterior, dtype=np.float64)[np.argsort(given)]
        mass[:, labelled] = np.add.reduceat(ordered, starts, axis=0).T
    return mass


def _normalise_rows(mass: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; a row without mass becomes the identity's."""
    mass = mass.copy()
    totals = mass.sum(axis=1)
    empty = totals <= 0
    mass[empty] = np.eye(len(mass))[empty]
    totals[empty] = 1.0
    return mass / totals[:, None]


def _fitted_dividemix(estimator: BaseEstimator) -> BaseEstimator:
    """The fitted DivideMixClassifier, alone or at the end of a Pipeline."""
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    check_is_fitted(final)
    missing = [name for name in _FIT_ATTRIBUTES if not hasattr(final, name)]
    if missing:
        raise TypeError(
            "The estimator must be a fitted DivideMixClassifier, or a Pipeline "
            f"ending in one; {type(final).__name__} lacks {', '.join(missing)}."
        )
    return final


def noise_transition_matrix_estimate(estimator):
    """Noise transition matrix estimated by a fitted DivideMixClassifier.

    ``T[i, j]`` estimates the probability that a sample of true class ``i``
    was given the label ``j``, from the fit's division of its training data:
    each training sample counts as its given label with weight ``w =
    clean_proba_`` and as the nets' prediction ``train_proba_`` with weight
    ``1 - w`` (DivideMix's co-refined label), and ``T[i, j]`` is the share of
    the mass of class ``i`` that sits on samples labelled ``j``.

    Parameters
    ----------
    estimator : DivideMixClassifier or Pipeline
        A fitted :class:`DivideMixClassifier`, or a fitted
        :class:`~sklearn.pipeline.Pipeline` ending in one.

    Returns
    -------
    transition : ndarray of shape (n_classes, n_classes)
        Row-stochastic, rows (true class) and columns (given label) in the
        order of ``classes_``.

    Raises
    ------
    TypeError
        If the estimator is not a DivideMixClassifier (or a Pipeline ending
        in one).

    See Also
    --------
    estimated_clean_accuracy : Clean accuracy from noisy held-out labels.
    noise_transition_matrix : The true matrix of synthetic noise.

    Notes
    -----
    The estimate is as good as the division: clean labels the division
    doubts and the nets mispredict are counted as noise, and noisy labels it
    believes as clean. It assumes the noise depends on the true class only,
    see :func:`estimated_clean_accuracy`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dividemix import (
    ...     DivideMixClassifier, make_noisy_labels,
    ...     noise_transition_matrix_estimate,
    ... )
    >>> X, y = load_digits(return_X_y=True)
    >>> y_noisy, _ = make_noisy_labels(y, noise_rate=0.4, random_state=0)
    >>> clf = DivideMixClassifier(max_epochs=2, warmup_epochs=1, random_state=0)
    >>> T = noise_transition_matrix_estimate(clf.fit(X / 16, y_noisy))
    >>> T.shape
    (10, 10)
    >>> bool(abs(T.sum(axis=1) - 1).max() < 1e-12)
    True
    """
    clf = _fitted_dividemix(estimator)
    given, n_classes = clf._train_labels, len(clf.classes_)
    mass = np.zeros((n_classes, n_classes))
    # In chunks: the float64 posterior of every sample at once would double
    # the memory train_proba_ already takes.
    for start in range(0, len(given), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        posterior = true_label_posterior(
            given[rows], clf.clean_proba_[rows], clf.train_proba_[rows]
        )
        mass += _class_label_mass(given[rows], posterior, n_classes)
    return _normalise_rows(mass)
