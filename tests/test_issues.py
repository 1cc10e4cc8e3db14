"""Label-issue table: columns, values, find_label_issues and cleanlab interop."""

import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_dividemix import DivideMixClassifier, find_label_issues
from sklearn_dividemix._issues import corefined_labels

pd = pytest.importorskip("pandas")

COLUMNS = [
    "is_label_issue",
    "label_quality",
    "given_label",
    "predicted_label",
    "suggested_label",
]

# Fits of a few epochs often have a weak split; that warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


def _small_clf(**params):
    defaults = dict(max_epochs=10, warmup_epochs=5, lr=0.1, random_state=0)
    return DivideMixClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def noisy_subset(noisy_digits):
    n = 600
    return {
        k: v[:n] for k, v in noisy_digits.items() if k != "X_test" and k != "y_test"
    }


@pytest.fixture(scope="module")
def fitted(noisy_subset):
    clf = _small_clf().fit(noisy_subset["X_train"], noisy_subset["y_noisy"])
    return clf, clf.get_label_issues()


def test_table_columns_match_fitted_attributes(fitted, noisy_subset):
    clf, table = fitted
    assert list(table.columns) == COLUMNS
    assert len(table) == len(noisy_subset["y_noisy"])
    assert table["is_label_issue"].dtype == bool
    np.testing.assert_array_equal(table["is_label_issue"], ~clf.clean_mask_)
    np.testing.assert_allclose(table["label_quality"], clf.clean_proba_)
    np.testing.assert_array_equal(table["given_label"], noisy_subset["y_noisy"])
    np.testing.assert_array_equal(
        table["predicted_label"], clf.classes_[clf.train_proba_.argmax(1)]
    )


def test_train_proba_is_predict_proba_on_training_data(fitted, noisy_subset):
    clf, _ = fitted
    assert clf.train_proba_.dtype == np.float32
    assert clf.train_proba_.shape == (len(noisy_subset["X_train"]), 10)
    np.testing.assert_allclose(
        clf.train_proba_, clf.predict_proba(noisy_subset["X_train"]), atol=1e-5
    )


def test_suggested_label_is_corefined_for_flagged_only(fitted):
    clf, table = fitted
    flagged = table["is_label_issue"].to_numpy()
    assert 0 < flagged.sum() < len(table)
    suggested = table["suggested_label"].to_numpy()
    np.testing.assert_array_equal(suggested[~flagged], table["given_label"][~flagged])
    expected = corefined_labels(clf.train_proba_, clf._train_labels, clf.clean_proba_)
    np.testing.assert_array_equal(suggested[flagged], clf.classes_[expected][flagged])


def test_table_finds_and_corrects_flipped_labels(fitted, noisy_subset):
    _, table = fitted
    flagged = table["is_label_issue"].to_numpy()
    flipped = noisy_subset["flipped"]
    assert (flagged & flipped).sum() / flipped.sum() > 0.8
    assert (flagged & flipped).sum() / flagged.sum() > 0.6
    # A flipped label's given value is wrong by construction: any suggestion
    # recovering the true class more often than not is doing real work.
    both = flagged & flipped
    recovered = (
        table["suggested_label"].to_numpy()[both] == noisy_subset["y_train"][both]
    )
    assert recovered.mean() > 0.6


@pytest.mark.parametrize(
    "proba, given, clean_proba, expected",
    [
        # w = 0.5: 0.5 + 0.5 * 0.2 = 0.6 for the given class beats 0.4
        ([[0.2, 0.8]], [0], [0.5], [0]),
        # w = 0.1: 0.1 + 0.9 * 0.3 = 0.37 loses to 0.9 * 0.7 = 0.63
        ([[0.3, 0.7]], [0], [0.1], [1]),
        # w = 0: the prediction alone
        ([[0.1, 0.2, 0.7]], [1], [0.0], [2]),
        # w = 1: the given label alone
        ([[0.1, 0.2, 0.7]], [0], [1.0], [0]),
    ],
)
def test_corefined_labels_hand_computed(proba, given, clean_proba, expected):
    result = corefined_labels(np.array(proba), np.array(given), np.array(clean_proba))
    np.testing.assert_array_equal(result, expected)


def test_string_labels_appear_as_given(tiny_images):
    X, y = tiny_images
    names = np.array(["red", "green", "blue"])[y]
    clf = _small_clf(max_epochs=2, warmup_epochs=1, batch_size=16).fit(X, names)
    table = clf.get_label_issues()
    np.testing.assert_array_equal(table["given_label"], names)
    assert set(table["predicted_label"]) <= set(names)
    assert set(table["suggested_label"]) <= set(names)


def test_get_label_issues_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DivideMixClassifier().get_label_issues()


def test_find_label_issues_keeps_dataframe_index(noisy_subset):
    X = noisy_subset["X_train"][:200]
    frame = pd.DataFrame(X, index=[f"row{i}" for i in range(len(X))])
    y = noisy_subset["y_noisy"][:200]
    table, fitted = find_label_issues(
        frame,
        y,
        estimator=_small_clf(max_epochs=2, warmup_epochs=1),
        return_estimator=True,
    )
    assert list(table.index) == list(frame.index)
    assert list(table.columns) == COLUMNS
    np.testing.assert_array_equal(table["is_label_issue"], ~fitted.clean_mask_)


def test_find_label_issues_with_pipeline_and_series_index(noisy_subset):
    X = noisy_subset["X_train"][:200]
    y = pd.Series(noisy_subset["y_noisy"][:200], index=np.arange(200) + 1000)
    pipe = make_pipeline(StandardScaler(), _small_clf(max_epochs=2, warmup_epochs=1))
    table, fitted = find_label_issues(X, y, estimator=pipe, return_estimator=True)
    assert fitted is not pipe  # a clone was fitted
    assert list(table.index) == list(y.index)
    np.testing.assert_allclose(table["label_quality"], fitted[-1].clean_proba_)


def test_find_label_issues_on_lists_has_a_range_index(noisy_subset):
    X = noisy_subset["X_train"][:100].tolist()
    y = noisy_subset["y_noisy"][:100].tolist()
    table = find_label_issues(X, y, estimator=_small_clf(max_epochs=2, warmup_epochs=1))
    assert list(table.index) == list(range(100))
    np.testing.assert_array_equal(table["given_label"], y)


def test_find_label_issues_rejects_other_estimators(noisy_subset):
    with pytest.raises(TypeError, match="DivideMixClassifier"):
        find_label_issues(
            noisy_subset["X_train"],
            noisy_subset["y_noisy"],
            estimator=LogisticRegression(),
        )


def test_clear_error_without_pandas(fitted, monkeypatch):
    clf, _ = fitted
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        clf.get_label_issues()
    with pytest.raises(ImportError, match="find_label_issues.*pandas"):
        find_label_issues(np.zeros((4, 2)), [0, 1, 0, 1])


# -- cleanlab interoperability ---------------------------------------------


class _RecordingLogisticRegression(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        self.n_fit_samples_ = len(X)
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def cleanlab_classification():
    return pytest.importorskip(
        "cleanlab.classification", reason="cleanlab is not installed"
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cleanlearning_accepts_the_table(cleanlab_classification, fitted, noisy_subset):
    _, table = fitted
    X, y = noisy_subset["X_train"], noisy_subset["y_noisy"]
    learner = cleanlab_classification.CleanLearning(
        _RecordingLogisticRegression(max_iter=200)
    )
    learner.fit(X, y, label_issues=table)
    # cleanlab trained on the samples our table calls clean, and kept the table
    assert learner.clf.n_fit_samples_ == (~table["is_label_issue"]).sum()
    stored = learner.get_label_issues()
    np.testing.assert_array_equal(stored["is_label_issue"], table["is_label_issue"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_columns_agree_with_cleanlab_find_label_issues(
    cleanlab_classification, fitted, noisy_subset
):
    clf, table = fitted
    X, y = noisy_subset["X_train"], noisy_subset["y_noisy"]
    learner = cleanlab_classification.CleanLearning(LogisticRegression())
    theirs = learner.find_label_issues(X, y, pred_probs=clf.train_proba_)
    assert list(theirs.columns) == COLUMNS[:4]
    for column in ("given_label", "predicted_label"):
        np.testing.assert_array_equal(theirs[column], table[column])
    for column in ("is_label_issue", "label_quality"):
        assert theirs[column].dtype.kind == table[column].dtype.kind
    # Different rules on the same predictions: they should mostly agree.
    agreement = (theirs["is_label_issue"] == table["is_label_issue"]).mean()
    assert agreement > 0.75
