"""Label-issue reports: which training labels a fit believes wrong, as a table.

The table uses cleanlab's column names (``is_label_issue``, ``label_quality``,
``given_label``, ``predicted_label``) so that it can be handed to code written
for cleanlab, and adds ``suggested_label``, the label DivideMix's
co-refinement would train a flagged sample towards. pandas is imported only
when a table is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

__all__ = ["LabelIssuesMixin", "find_label_issues"]

_COLUMNS = (
    "is_label_issue",
    "label_quality",
    "given_label",
    "predicted_label",
    "suggested_label",
)


def _import_pandas(caller: str):
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            f"{caller} returns a pandas DataFrame, but pandas is not installed. "
            "Install it with `pip install pandas`; the arrays behind the table "
            "are clean_proba_, clean_mask_ and train_proba_."
        ) from exc
    return pd


def training_proba(nets: Sequence, X: torch.Tensor, batch_size: int) -> np.ndarray:
    """Mean of the nets' eval-mode softmax on ``X``, as float32 on the host.

    The same numbers as ``predict_proba`` on the training set, computed from
    the tensor the fit already holds on the device.
    """
    with torch.inference_mode():
        proba = sum(torch.softmax(net.forward_logits(X, batch_size), 1) for net in nets)
    proba = proba / proba.sum(dim=1, keepdim=True)
    return proba.float().cpu().numpy()


def corefined_labels(
    proba: np.ndarray, given: np.ndarray, clean_proba: np.ndarray
) -> np.ndarray:
    """Argmax of the co-refined target ``w * onehot(given) + (1 - w) * proba``.

    This is the label that co-refinement (before sharpening, which keeps the
    argmax) moves a sample towards: its given label when the clean probability
    ``w`` is high, the nets' prediction when it is low, and a blend in between.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Predicted class probabilities.
    given : ndarray of shape (n_samples,)
        Given labels, encoded as column indices of ``proba``.
    clean_proba : ndarray of shape (n_samples,)
        Probability that each given label is correct.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        Encoded co-refined labels.
    """
    w = np.asarray(clean_proba, dtype=np.float64)[:, None]
    target = (1.0 - w) * np.asarray(proba, dtype=np.float64)
    target[np.arange(len(given)), given] += w[:, 0]
    return np.argmax(target, axis=1)


def label_issues_frame(
    *,
    classes: np.ndarray,
    given: np.ndarray,
    proba: np.ndarray,
    clean_proba: np.ndarray,
    clean_mask: np.ndarray,
):
    """Build the label-issue DataFrame from a fit's per-sample arrays."""
    pd = _import_pandas("get_label_issues")
    is_issue = ~np.asarray(clean_mask, dtype=bool)
    predicted = np.argmax(proba, axis=1)
    suggested = np.where(is_issue, corefined_labels(proba, given, clean_proba), given)
    columns = (
        is_issue,
        np.asarray(clean_proba, dtype=np.float64),
        classes[given],
        classes[predicted],
        classes[suggested],
    )
    return pd.DataFrame(dict(zip(_COLUMNS, columns, strict=True)))


class LabelIssuesMixin:
    """Adds ``get_label_issues`` to an estimator that keeps a fit's division.

    The estimator must set ``classes_``, ``clean_proba_``, ``clean_mask_``,
    ``train_proba_`` and ``_train_labels`` (the encoded given labels) in fit.
    """

    def get_label_issues(self):
        """Table of the training labels, flagging those believed wrong.

        One row per training sample, in training order, with cleanlab's column
        names so that the table can be passed wherever cleanlab's
        ``CleanLearning.find_label_issues`` output is expected (for example
        ``CleanLearning.fit(X, labels, label_issues=table)``). To review the
        flagged samples, most suspicious first:
        ``table.query("is_label_issue").sort_values("label_quality")``.

        Requires pandas.

        Returns
        -------
        label_issues : pandas.DataFrame of shape (n_samples, 5)
            Columns:

            - ``is_label_issue`` (bool): the label is believed wrong,
              ``clean_proba_ <= p_threshold``; the complement of
              ``clean_mask_``.
            - ``label_quality`` (float in [0, 1]): ``clean_proba_``, the
              probability that the given label is correct; lower is worse.
            - ``given_label``: the label given in ``fit``.
            - ``predicted_label``: the class of highest ``train_proba_``, both
              nets' mean prediction after training.
            - ``suggested_label``: for flagged samples, the co-refined label,
              the argmax of ``w * onehot(given_label) + (1 - w) *
              train_proba_`` with ``w = label_quality``; for the others, the
              given label.

            Labels are values of ``classes_`` (cleanlab's integer indices when
            the classes are ``0 .. n_classes - 1``).
        """
        check_is_fitted(self)
        return label_issues_frame(
            classes=self.classes_,
            given=self._train_labels,
            proba=self.train_proba_,
            clean_proba=self.clean_proba_,
            clean_mask=self.clean_mask_,
        )


def _final_step(estimator):
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def find_label_issues(X, y, *, estimator=None, return_estimator=False):
    """Fit DivideMix on ``(X, y)`` and return the table of label issues.

    A one-call convenience for ``clone(estimator).fit(X, y)`` followed by
    ``get_label_issues()``. When ``X`` is a pandas DataFrame (or ``y`` a
    Series) the table keeps its index, so flagged rows can be looked up in
    the original data.

    Requires pandas.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or \
            (n_samples, channels, height, width)
        Training data.
    y : array-like of shape (n_samples,)
        Given labels, possibly wrong.
    estimator : DivideMixClassifier or Pipeline, default=None
        Estimator to clone and fit; a Pipeline must end with a
        :class:`DivideMixClassifier`. ``None`` uses
        ``DivideMixClassifier()`` with its defaults.
    return_estimator : bool, default=False
        Also return the fitted estimator, e.g. to plot its diagnostics.

    Returns
    -------
    label_issues : pandas.DataFrame of shape (n_samples, 5)
        See :meth:`DivideMixClassifier.get_label_issues` for the columns.
    estimator : DivideMixClassifier or Pipeline
        The fitted clone, only when ``return_estimator=True``.

    See Also
    --------
    DivideMixClassifier.get_label_issues : The same table from a fitted
        estimator.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dividemix import DivideMixClassifier, find_label_issues
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DivideMixClassifier(max_epochs=2, warmup_epochs=1, random_state=0)
    >>> issues = find_label_issues(X / 16, y, estimator=clf)
    >>> list(issues.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['is_label_issue', 'label_quality', 'given_label', 'predicted_label',
     'suggested_label']
    """
    pd = _import_pandas("find_label_issues")
    if estimator is None:
        from ._classifier import DivideMixClassifier

        estimator = DivideMixClassifier()
    final = _final_step(estimator)
    if not isinstance(final, LabelIssuesMixin):
        raise TypeError(
            "estimator must be a DivideMixClassifier or a Pipeline ending with "
            f"one; got {type(final).__name__}."
        )
    fitted = clone(estimator).fit(X, y)
    table = _final_step(fitted).get_label_issues()
    for source in (X, y):
        if isinstance(source, (pd.DataFrame, pd.Series)):
            table.index = source.index
            break
    return (table, fitted) if return_estimator else table
