"""Tests of the clean accuracy estimated from noisy labels."""

import doctest
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_dividemix import (
    DivideMixClassifier,
    UnreliableEstimateWarning,
    _metrics,
    _transition,
    estimated_clean_accuracy,
    make_noisy_labels,
    noise_transition_matrix,
    noise_transition_matrix_estimate,
)
from sklearn_dividemix._metrics import (
    clean_accuracy_from_noisy,
    clean_accuracy_standard_error,
    clean_confusion_from_noisy,
)
from sklearn_dividemix._transition import (
    estimate_transition_matrix,
    true_label_posterior,
)

# -- the pure functions, by hand ---------------------------------------------


def _pairs(counts):
    """(y_pred, y_noisy) holding counts[k, j] pairs (k, j)."""
    k, j = np.nonzero(counts)
    reps = counts[k, j]
    return np.repeat(k, reps), np.repeat(j, reps)


def test_clean_confusion_from_noisy_by_hand():
    transition = np.array([[0.8, 0.2], [0.2, 0.8]])
    # C = [[0.45, 0.05], [0.05, 0.45]]: C @ T = [[0.37, 0.13], [0.13, 0.37]]
    y_pred, y_noisy = _pairs(np.array([[37, 13], [13, 37]]))
    confusion = clean_confusion_from_noisy(y_pred, y_noisy, transition)
    np.testing.assert_allclose(confusion, [[0.45, 0.05], [0.05, 0.45]])
    assert clean_accuracy_from_noisy(y_pred, y_noisy, transition) == pytest.approx(0.9)


def test_identity_transition_gives_plain_accuracy():
    y_pred = np.array([0, 1, 2, 2, 1])
    y_noisy = np.array([0, 1, 1, 2, 0])
    accuracy = clean_accuracy_from_noisy(y_pred, y_noisy, np.eye(3))
    assert accuracy == pytest.approx(np.mean(y_pred == y_noisy))


def test_accuracy_is_clipped_to_the_unit_interval():
    # T^-1 = [[3, -2], [-2, 3]]: perfect agreement is more than T allows
    transition = np.array([[0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    assert clean_accuracy_from_noisy(y, y, transition) == 1.0
    # all disagreeing: trace(M T^-1) = -2
    assert clean_accuracy_from_noisy(y, 1 - y, transition) == 0.0


def test_singular_transition_warns_and_still_answers():
    transition = np.full((2, 2), 0.5)
    y = np.array([0, 1, 1])
    with pytest.warns(UnreliableEstimateWarning, match="ill-conditioned"):
        accuracy = clean_accuracy_from_noisy(y, y, transition)
    assert 0.0 <= accuracy <= 1.0


def test_standard_error_is_that_of_the_backward_corrected_scores():
    # T^-1 = [[3, -2], [-2, 3]]: agreeing samples score 3, the others -2
    transition = np.array([[0.6, 0.4], [0.4, 0.6]])
    y_pred = np.array([0, 1, 0, 1, 0])
    y_noisy = np.array([0, 1, 1, 0, 0])
    scores = np.array([3.0, 3.0, -2.0, -2.0, 3.0])
    assert clean_accuracy_standard_error(y_pred, y_noisy, transition) == (
        pytest.approx(scores.std(ddof=1) / np.sqrt(5))
    )
    assert clean_accuracy_standard_error(y_pred[:1], y_noisy[:1], transition) == (
        np.inf
    )


@pytest.mark.parametrize(
    ("noise_rate", "n_samples", "expect_warning"),
    [(0.2, 5000, False), (0.5, 10000, False), (0.8, 5000, True), (0.2, 100, True)],
)
def test_estimate_says_when_its_interval_is_wider_than_3_points(
    monkeypatch, noise_rate, n_samples, expect_warning
):
    # The fit's T is the true one; only the held-out sampling varies. At 80 %
    # symmetric noise on ten classes T's inverse is 5 times the identity's
    # scale, and 5,000 samples give +-6 points; 100 samples are too few even
    # at 20 %.
    rng = np.random.RandomState(0)
    n_classes = 10
    transition = noise_transition_matrix("symmetric", n_classes, noise_rate)
    y_true = rng.randint(n_classes, size=n_samples)
    right = rng.rand(n_samples) < 0.8
    y_pred = np.where(right, y_true, rng.randint(n_classes, size=n_samples))
    y_noisy = np.array([rng.choice(n_classes, p=transition[c]) for c in y_true])
    clf = _FittedStandIn().fit(None, None)
    clf.classes_ = np.arange(n_classes)
    monkeypatch.setattr(
        _metrics, "noise_transition_matrix_estimate", lambda _: transition
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score, std = estimated_clean_accuracy(
            clf, y_pred[:, None], y_noisy, return_std=True
        )
    unreliable = [w for w in caught if w.category is UnreliableEstimateWarning]
    assert bool(unreliable) is expect_warning
    assert (1.96 * std > 0.03) is expect_warning
    # the interval is honest: the truth, 0.8 give or take sampling, is in it
    assert abs(score - (y_pred == y_true).mean()) < 3 * std


# -- a known noise, recovered exactly --------------------------------------


def _simulate(transition, accuracy, n, seed):
    """True labels, predictions of a known accuracy, noisy labels from T."""
    rng = np.random.RandomState(seed)
    n_classes = len(transition)
    y = rng.randint(n_classes, size=n)
    wrong = rng.rand(n) > accuracy
    # errors go to the next class or the one after, as a confused model's do
    y_pred = np.where(wrong, (y + 1 + rng.randint(2, size=n)) % n_classes, y)
    y_noisy, _ = make_noisy_labels(
        y,
        noise_rate=None,
        kind="transition",
        transition=transition,
        classes=np.arange(n_classes),
        random_state=seed,
    )
    return y, y_pred, y_noisy


RANDOM_DENSE = np.random.RandomState(0).dirichlet(np.ones(5), 5) * 0.4 + np.eye(5) * 0.6


@pytest.mark.parametrize(
    "transition",
    [
        noise_transition_matrix("symmetric", 5, 0.2),
        noise_transition_matrix("symmetric", 5, 0.5),
        noise_transition_matrix("asymmetric", 5, 0.4),
        RANDOM_DENSE,
    ],
    ids=["sym20", "sym50", "pair40", "dense"],
)
@pytest.mark.parametrize("accuracy", [0.7, 0.95])
def test_known_transition_recovers_clean_accuracy(transition, accuracy):
    y, y_pred, y_noisy = _simulate(transition, accuracy, n=100_000, seed=0)
    truth = np.mean(y_pred == y)
    noisy = np.mean(y_pred == y_noisy)
    estimate = clean_accuracy_from_noisy(y_pred, y_noisy, transition)
    # unbiased; the standard error is below 0.005 at this n for these T
    assert estimate == pytest.approx(truth, abs=0.01)
    assert abs(noisy - truth) > 0.05  # the correction did something


def test_exact_division_recovers_the_realised_transition():
    transition = noise_transition_matrix("asymmetric", 4, 0.3)
    y, _, y_noisy = _simulate(transition, 1.0, n=20_000, seed=1)
    # A fit that knows which labels are right and predicts the truth
    clean = (y == y_noisy).astype(float)
    proba = np.eye(4)[y]
    posterior = true_label_posterior(y_noisy, clean, proba)
    realised = np.zeros((4, 4))
    np.add.at(realised, (y, y_noisy), 1.0)
    realised /= realised.sum(axis=1, keepdims=True)
    estimated = estimate_transition_matrix(y_noisy, posterior, 4)
    np.testing.assert_allclose(estimated, realised)
    np.testing.assert_allclose(estimated, transition, atol=0.02)


# -- the estimator-level wrappers, on a stand-in fit ------------------------


class _FittedStandIn(ClassifierMixin, BaseEstimator):
    """What a fitted DivideMixClassifier exposes, with a fixed prediction."""

    def fit(self, X, y):
        self.classes_ = np.array(["cat", "dog"])
        self._train_labels = np.array([0, 0, 1, 1])
        self.clean_proba_ = np.array([1.0, 0.0, 1.0, 1.0])
        self.train_proba_ = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=np.float32)
        self.fit_verdict_ = {"trusted": True}
        return self

    def predict(self, X):
        return self.classes_[np.asarray(X)[:, 0].astype(int)]


@pytest.mark.parametrize("trusted", [True, False])
def test_estimate_from_a_distrusted_fit_says_it_cannot_estimate(trusted):
    """T comes from the division the verdict judges: however many held-out
    samples, a distrusted fit's estimate is flagged (CIFAR-10 at 80 %: 19.6 %
    estimated, 42.5 % true, the sampling interval +-1.5)."""
    clf = _FittedStandIn().fit(None, None)
    clf.fit_verdict_ = {"trusted": trusted}
    n = 20_000  # sampling alone is well within 3 points
    X = np.repeat([[0], [1]], n // 2, axis=0)
    y_noisy = np.repeat(["cat", "dog"], n // 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = estimated_clean_accuracy(clf, X, y_noisy)
    said = [str(w.message) for w in caught if w.category is UnreliableEstimateWarning]
    assert bool(said) is not trusted
    if said:
        assert "verdict" in said[0] and "fit_verdict_['report']" in said[0]
    # it still answers, the same number either way
    clf.fit_verdict_ = {"trusted": True}
    assert estimated_clean_accuracy(clf, X, y_noisy) == score


def test_wrappers_read_the_fit_and_the_labels_of_classes_():
    clf = _FittedStandIn().fit(None, None)
    # true cat: 1 labelled cat; true dog: 1 labelled cat, 2 dog
    transition = noise_transition_matrix_estimate(clf)
    np.testing.assert_allclose(transition, [[1.0, 0.0], [1 / 3, 2 / 3]])
    X = np.array([[0], [1], [1]])
    with pytest.warns(UnreliableEstimateWarning, match="from 3 held-out samples"):
        score = estimated_clean_accuracy(clf, X, np.array(["cat", "dog", "dog"]))
    expected = clean_accuracy_from_noisy(
        np.array([0, 1, 1]), np.array([0, 1, 1]), transition
    )
    assert score == pytest.approx(expected)
    pipe = make_pipeline(FunctionTransformer(), clf)
    pipe[0].fit(X)
    with pytest.warns(UnreliableEstimateWarning):
        assert estimated_clean_accuracy(pipe, X, ["cat", "dog", "dog"]) == score
    np.testing.assert_array_equal(noise_transition_matrix_estimate(pipe), transition)


def test_transition_estimate_in_chunks_is_the_same(monkeypatch):
    clf = _FittedStandIn().fit(None, None)
    whole = noise_transition_matrix_estimate(clf)
    monkeypatch.setattr(_transition, "_CHUNK_ROWS", 3)
    np.testing.assert_allclose(noise_transition_matrix_estimate(clf), whole)


def test_unseen_labels_raise():
    clf = _FittedStandIn().fit(None, None)
    with pytest.raises(ValueError, match=r"not fitted on: \['bird'\]"):
        estimated_clean_accuracy(clf, np.array([[0], [1]]), ["cat", "bird"])


def test_bad_inputs_raise():
    clf = _FittedStandIn().fit(None, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        estimated_clean_accuracy(clf, np.array([[0], [1]]), ["cat"])
    with pytest.raises(ValueError, match="1-D"):
        estimated_clean_accuracy(clf, np.array([[0]]), [["cat"]])
    logistic = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TypeError, match="DivideMixClassifier"):
        noise_transition_matrix_estimate(logistic)
    with pytest.raises(Exception, match="not fitted"):
        noise_transition_matrix_estimate(DivideMixClassifier())


# -- end to end on scikit-learn's digits -------------------------------------

# Held-out estimates of 540 digits have a standard error of 1.5-3 points
# (twice plain accuracy's at 50 % noise); short fits on 1,257 samples add the
# error of their division.
DIGITS_TOL = 0.06


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(
        (X / 16).astype(np.float32), y, test_size=0.3, stratify=y, random_state=0
    )


@pytest.mark.parametrize(
    "noise",
    [
        {"noise_rate": 0.2},
        {"noise_rate": 0.5},
        {"noise_rate": 0.4, "kind": "asymmetric"},
    ],
    ids=["sym20", "sym50", "pair40"],
)
def test_digits_estimate_is_close_to_the_clean_accuracy(digits_split, noise):
    X_train, X_test, y_train, y_test = digits_split
    y_train_noisy, _ = make_noisy_labels(y_train, random_state=0, **noise)
    y_test_noisy, _ = make_noisy_labels(y_test, random_state=1, **noise)
    # the confidence penalty is the paper's advice for class-dependent noise
    penalty = noise.get("kind") == "asymmetric"
    clf = DivideMixClassifier(
        max_epochs=8, warmup_epochs=3, confidence_penalty=penalty, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DivisionWarning of short fits
        clf.fit(X_train, y_train_noisy)
    y_pred = clf.predict(X_test)
    clean = np.mean(y_pred == y_test)
    noisy = np.mean(y_pred == y_test_noisy)
    # 540 held-out samples are too few for +-3 points, and it says so ...
    with pytest.warns(UnreliableEstimateWarning, match="540 held-out samples"):
        estimate, std = estimated_clean_accuracy(
            clf, X_test, y_test_noisy, return_std=True
        )
    assert estimate == pytest.approx(clean, abs=DIGITS_TOL)
    # ... and the interval it states holds the truth
    assert abs(estimate - clean) < 1.96 * std
    # much closer than the accuracy on the noisy labels
    assert abs(estimate - clean) < abs(noisy - clean) / 2


def test_grid_search_scores_with_it(digits_split):
    X_train, _, y_train, _ = digits_split
    y_noisy, _ = make_noisy_labels(y_train[:400], noise_rate=0.3, random_state=0)
    search = GridSearchCV(
        DivideMixClassifier(max_epochs=2, warmup_epochs=1, random_state=0),
        {"lr": [0.05, 0.1]},
        scoring=estimated_clean_accuracy,
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X_train[:400], y_noisy)
    scores = search.cv_results_["mean_test_score"]
    assert np.all((scores >= 0) & (scores <= 1))
    assert search.best_score_ == scores.max()


def test_docstring_examples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(_metrics, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
