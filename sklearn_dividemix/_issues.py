"""Label-issue reports: which training labels a fit believes wrong, as a table.

The table uses cleanlab's column names (``is_label_issue``, ``label_quality``,
``given_label``, ``predicted_label``) so that it can be handed to code written
for cleanlab, and adds ``suggested_label``, the label DivideMix's
co-refinement would train a flagged sample towards. pandas is imported only
when a table is asked for.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["LabelIssuesMixin", "import_pandas", "label_issues_frame"]

_COLUMNS = (
    "is_label_issue",
    "label_quality",
    "given_label",
    "predicted_label",
    "suggested_label",
)


def import_pandas(caller: str):
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            f"{caller} returns a pandas DataFrame, but pandas is not installed. "
            "Install it with `pip install pandas`; the arrays behind the table "
            "are clean_proba_, clean_mask_ and train_proba_."
        ) from exc
    return pd


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
    paths: np.ndarray | None = None,
):
    """Build the label-issue DataFrame from a fit's per-sample arrays.

    ``paths`` (the file of each sample, when the data set knows it) becomes
    a ``path`` column, so that an audit ends in a list of files to relabel.
    """
    pd = import_pandas("get_label_issues")
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
    table = dict(zip(_COLUMNS, columns, strict=True))
    if paths is not None:
        table["path"] = paths
    return pd.DataFrame(table)


class LabelIssuesMixin:
    """Adds ``get_label_issues`` to an estimator that keeps a fit's division.

    The estimator must set ``classes_``, ``clean_proba_``, ``clean_mask_``,
    ``train_proba_``, ``_train_labels`` (the encoded given labels) and
    ``_train_paths`` (each sample's file, or None) in fit.
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
        label_issues : pandas.DataFrame of shape (n_samples, 5) or \
                (n_samples, 6)
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

            - ``path`` (str), only when fit was given a Dataset that knows
              its files (``torchvision.datasets.ImageFolder``'s ``samples``,
              or a ``Subset`` of one): the file of each sample.

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
            paths=getattr(self, "_train_paths", None),
        )
