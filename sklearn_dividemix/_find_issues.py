"""``find_label_issues``: fit DivideMix and return its label-issue table.

Apart from ``_issues`` (the table and the mixin the estimator inherits) so
that the estimator module and this convenience import in one direction only.
"""

from __future__ import annotations

from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ._classifier import DivideMixClassifier
from ._issues import LabelIssuesMixin, import_pandas

__all__ = ["find_label_issues"]


def _final_step(estimator):
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def find_label_issues(X, y=None, *, estimator=None, return_estimator=False):
    """Fit DivideMix on ``(X, y)`` and return the table of label issues.

    A one-call convenience for ``clone(estimator).fit(X, y)`` followed by
    ``get_label_issues()``. When ``X`` is a pandas DataFrame (or ``y`` a
    Series) the table keeps its index, so flagged rows can be looked up in
    the original data.

    Requires pandas.

    Parameters
    ----------
    X : array-like or torch Dataset
        Training data, as in :meth:`DivideMixClassifier.fit`.
    y : array-like of shape (n_samples,) or None, default=None
        Given labels, possibly wrong; None for a Dataset that carries them.
    estimator : DivideMixClassifier or Pipeline, default=None
        Estimator to clone and fit; a Pipeline must end with a
        :class:`DivideMixClassifier`. ``None`` uses
        ``DivideMixClassifier()`` with its defaults.
    return_estimator : bool, default=False
        Also return the fitted estimator, e.g. to plot its diagnostics.

    Returns
    -------
    label_issues : pandas.DataFrame of shape (n_samples, 5) or (n_samples, 6)
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
    pd = import_pandas("find_label_issues")
    if estimator is None:
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
