"""Clean accuracy from noisy labels, using what a fit learnt about the noise.

When every label is noisy, accuracy on held-out labels measures agreement with
the noise as much as with the truth. A DivideMix fit knows, for each training
sample, how likely its label is right and what the true class probably is;
summed over the training set this gives the noise transition matrix
``T[i, j] = P(noisy label j | true class i)``. Under class-conditional noise
the held-out joint distribution of (prediction, noisy label) is the clean
confusion matrix times ``T``, so the clean one, and with it the clean
accuracy, follows by solving a linear system. The functions here are pure
(arrays in, arrays out) apart from the two public, estimator-level wrappers.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._noise import _preview

__all__ = ["estimated_clean_accuracy", "noise_transition_matrix_estimate"]

# What a fitted DivideMixClassifier keeps about its division of the data.
_FIT_ATTRIBUTES = ("classes_", "clean_proba_", "train_proba_", "_train_labels")
# The estimate's standard error grows with the norm of T's inverse: a condition
# number of 10 (pair flipping at 45 %, symmetric noise at 90 %) is still
# usable on thousands of samples; beyond 100 the noise hides the accuracy.
_MAX_CONDITION = 100.0
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


def clean_confusion_from_noisy(
    y_pred: np.ndarray, y_noisy: np.ndarray, transition: np.ndarray
) -> np.ndarray:
    """Joint distribution of prediction and true class, from noisy labels.

    Under class-conditional noise the observed joint distribution
    ``M[k, j] = P(pred = k, noisy = j)`` equals ``C @ T`` with
    ``C[k, i] = P(pred = k, true = i)``, so ``C = M @ inv(T)``, solved by
    least squares (the minimum-norm solution when ``T`` is singular).

    Parameters
    ----------
    y_pred : ndarray of shape (n_samples,)
        Predicted labels, encoded as integers in ``[0, n_classes)``.
    y_noisy : ndarray of shape (n_samples,)
        Noisy labels, encoded the same way.
    transition : ndarray of shape (n_classes, n_classes)
        ``T[i, j] = P(noisy = j | true = i)``.

    Returns
    -------
    confusion : ndarray of shape (n_classes, n_classes)
        ``C[k, i]``, an unbiased estimate of ``P(pred = k, true = i)`` when
        ``T`` is right; it sums to 1 but, being unconstrained, may hold small
        negative entries where the truth is near 0.
    """
    transition = np.asarray(transition, dtype=np.float64)
    n_classes = len(transition)
    observed = np.zeros((n_classes, n_classes))
    np.add.at(observed, (np.asarray(y_pred), np.asarray(y_noisy)), 1.0)
    observed /= max(len(y_pred), 1)
    condition = np.linalg.cond(transition)
    if not condition <= _MAX_CONDITION:
        warnings.warn(
            f"The noise transition matrix is ill-conditioned (condition number "
            f"{condition:.3g}): the noisy labels carry too little information "
            "to tell the classes apart, and the clean accuracy estimated from "
            "them is unreliable.",
            UserWarning,
            stacklevel=2,
        )
    # C T = M  <=>  T^T C^T = M^T
    solution, *_ = np.linalg.lstsq(transition.T, observed.T, rcond=None)
    return solution.T


def clean_accuracy_from_noisy(
    y_pred: np.ndarray, y_noisy: np.ndarray, transition: np.ndarray
) -> float:
    """Accuracy against the unseen true labels, from noisy ones.

    The trace of :func:`clean_confusion_from_noisy`, clipped to [0, 1]. It is
    the mean over samples of ``inv(T)[noisy, pred]``, the backward-corrected
    0-1 score of Patrini et al. (2017), and unbiased when ``T`` is right.

    Parameters
    ----------
    y_pred : ndarray of shape (n_samples,)
        Predicted labels, encoded as integers in ``[0, n_classes)``.
    y_noisy : ndarray of shape (n_samples,)
        Noisy labels, encoded the same way.
    transition : ndarray of shape (n_classes, n_classes)
        ``T[i, j] = P(noisy = j | true = i)``.

    Returns
    -------
    accuracy : float
        Estimated clean accuracy in [0, 1].
    """
    confusion = clean_confusion_from_noisy(y_pred, y_noisy, transition)
    return float(np.clip(np.trace(confusion), 0.0, 1.0))


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


def _encode(labels: ArrayLike, classes: np.ndarray, name: str) -> np.ndarray:
    """Labels as column indices of ``classes``; unseen labels raise."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {labels.shape}.")
    present, inverse = np.unique(labels, return_inverse=True)
    # A dict rather than searchsorted: it compares labels of any dtype.
    position = {label: i for i, label in enumerate(classes.tolist())}
    unseen = [label for label in present.tolist() if label not in position]
    if unseen:
        raise ValueError(
            f"{name} contains labels the estimator was not fitted on: "
            f"{_preview(unseen)}; its classes_ are {_preview(classes.tolist())}."
        )
    lookup = np.asarray([position[label] for label in present.tolist()], np.intp)
    return lookup[inverse.reshape(-1)]


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


def estimated_clean_accuracy(estimator, X, y_noisy):
    """Accuracy against the unseen true labels, estimated from noisy ones.

    A scorer: ``GridSearchCV(..., scoring=estimated_clean_accuracy)`` ranks
    models by it, greater is better. The noise transition matrix ``T`` of
    :func:`noise_transition_matrix_estimate` turns the joint distribution of
    predictions and noisy labels on ``X`` into that of predictions and true
    labels, whose trace is the clean accuracy.

    Read more in the :ref:`User Guide <noisy_validation>`.

    Parameters
    ----------
    estimator : DivideMixClassifier or Pipeline
        A fitted :class:`DivideMixClassifier`, or a fitted
        :class:`~sklearn.pipeline.Pipeline` ending in one. Its training fit
        supplies ``T``.
    X : array-like of shape (n_samples, ...)
        Held-out data, not seen in fit.
    y_noisy : array-like of shape (n_samples,)
        Noisy labels of ``X``, values of ``classes_``, corrupted by the same
        noise as the training labels.

    Returns
    -------
    score : float
        Estimated clean accuracy, in [0, 1].

    Raises
    ------
    ValueError
        If ``y_noisy`` holds labels the estimator was not fitted on, or its
        length differs from that of ``X``.
    TypeError
        If the estimator is not a DivideMixClassifier (or a Pipeline ending
        in one).

    Warns
    -----
    UserWarning
        If ``T`` is ill-conditioned (condition number above 100), when the
        noisy labels no longer tell the classes apart.

    See Also
    --------
    noise_transition_matrix_estimate : The matrix ``T`` used here.
    sklearn.metrics.accuracy_score : Accuracy against the labels given.

    Notes
    -----
    The estimate assumes class-conditional noise: the chance that a label is
    changed, and into what, depends on the true class only, not on the
    sample, and is the same on the held-out data as in training. It is
    unbiased if ``T`` is right; in practice its error is that of ``T``, that
    is of the fit's division of the training data. Clean labels that the
    division doubts and the nets get wrong enter ``T`` as noise, and the
    estimate comes out too high; noisy labels the nets memorised stay out of
    it, and the estimate comes out too low. A share of flagged labels,
    ``1 - clean_mask_.mean()``, far from the noise rate you expect is a sign
    of either. Noise that depends on the sample (ambiguous images labelled as
    their look-alike class) breaks the assumption too.

    The standard error grows with the norm of ``T``'s inverse: at 50 %
    symmetric noise on ten classes it is twice that of the accuracy on the
    noisy labels, about 1 point on 10,000 samples.

    References
    ----------
    .. [1] G. Patrini, A. Rozza, A. K. Menon, R. Nock and L. Qu, "Making Deep
       Neural Networks Robust to Label Noise: a Loss Correction Approach",
       CVPR 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn_dividemix import (
    ...     DivideMixClassifier, estimated_clean_accuracy, make_noisy_labels,
    ... )
    >>> X, y = load_digits(return_X_y=True)
    >>> y_noisy, _ = make_noisy_labels(y, noise_rate=0.4, random_state=0)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 16, y_noisy, random_state=0
    ... )
    >>> clf = DivideMixClassifier(max_epochs=2, warmup_epochs=1, random_state=0)
    >>> score = estimated_clean_accuracy(clf.fit(X_train, y_train), X_test, y_test)
    >>> 0.0 <= score <= 1.0
    True
    """
    clf = _fitted_dividemix(estimator)
    check_consistent_length(X, y_noisy)
    y_noisy = _encode(y_noisy, clf.classes_, "y_noisy")
    y_pred = _encode(estimator.predict(X), clf.classes_, "the predictions")
    transition = noise_transition_matrix_estimate(clf)
    return clean_accuracy_from_noisy(y_pred, y_noisy, transition)
