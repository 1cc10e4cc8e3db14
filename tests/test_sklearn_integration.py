"""DivideMixClassifier inside scikit-learn's own machinery, on small data."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_blobs
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    check_cv,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_dividemix import DivideMixClassifier
from tests._budgets import LEARNING

# Tiny, easy data makes one-sided divisions; DivisionWarning is tested in
# test_classifier.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


@pytest.fixture(scope="module")
def blobs():
    """120 samples of 3 blobs, labels sorted by class."""
    X, y = make_blobs(120, n_features=4, centers=3, random_state=0)
    order = np.argsort(y, kind="stable")
    return X[order].astype(np.float32), y[order]


def test_clone_keeps_named_and_routed_parameters(blobs):
    callbacks = []
    clf = DivideMixClassifier(
        **LEARNING, lambda_u=5.0, callbacks=callbacks, module__hidden_units=8
    )
    clf.fit(*blobs)
    copy = clone(clf)
    assert copy.get_params().keys() == clf.get_params().keys()
    assert copy.module__hidden_units == 8 and copy.lambda_u == 5.0
    assert copy.callbacks == [] and copy.callbacks is not callbacks
    assert not [k for k in vars(copy) if k.endswith("_")]
    # an unfitted estimator pickles with its routed parameters too
    assert pickle.loads(pickle.dumps(copy)).get_params() == copy.get_params()
    clone(copy).set_params(module__hidden_units=4)
    assert copy.module__hidden_units == 8


def _used(name):
    """A scorer that reports what the fitted estimator and its nets used."""

    def read(est, X, y):
        net = est.net1_
        return {
            "width": net.module_.layers[0].out_features,
            # the lr of the first epoch, read from the net's optimizer
            "lr": est.history_[0]["lr"],
            "momentum": net.optimizer_.param_groups[0]["momentum"],
            "unlabeled_weight": est.history_[-1]["unlabeled_weight"],
            "p_threshold": est.p_threshold_,
        }[name]

    return read


USED = ("width", "lr", "momentum", "unlabeled_weight", "p_threshold")
SCORING = {"accuracy": "accuracy", **{name: _used(name) for name in USED}}
GRID = [
    {"lambda_u": [0.0, 25.0], "module__hidden_units": [8, 16]},
    {"p_threshold": [0.7], "lr": [0.05], "optimizer__momentum": [0.5]},
]


@pytest.fixture(scope="module")
def searches(blobs):
    results = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(
            # a fixed lambda_u: 'auto' (the default) may pick 0 on easy blobs;
            # unstandardised, the blobs' raw scale (centres ~10 apart) makes
            # four epochs enough for every candidate: routing is under test.
            # The paper's 16-epoch ramp-up keeps that weight small in four
            # epochs ('auto' would reach the full 25 in the last one).
            DivideMixClassifier(
                **LEARNING,
                lambda_u=25.0,
                rampup_epochs=16,
                normalize=False,
                # fixed, as lambda_u: 'auto' reads the noise of each fold
                p_threshold=0.5,
            ),
            GRID,
            scoring=SCORING,
            refit="accuracy",
            cv=2,
            n_jobs=n_jobs,
            error_score="raise",
        )
        results[n_jobs] = search.fit(*blobs)
    return results


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_routes_every_kind_of_parameter(searches, n_jobs):
    results = searches[n_jobs].cv_results_
    for i, params in enumerate(results["params"]):
        assert results["mean_test_width"][i] == params.get("module__hidden_units", 128)
        assert results["mean_test_lr"][i] == pytest.approx(params.get("lr", 0.1))
        expected_momentum = params.get("optimizer__momentum", 0.9)
        assert results["mean_test_momentum"][i] == pytest.approx(expected_momentum)
        assert (results["mean_test_unlabeled_weight"][i] > 0) == (
            params.get("lambda_u", 25.0) > 0
        )
        expected_threshold = params.get("p_threshold", 0.5)
        assert results["mean_test_p_threshold"][i] == expected_threshold
    assert len(results["params"]) == 5
    assert np.all(results["mean_test_accuracy"] > 0.9)


def test_grid_search_refits_the_best_candidate(searches, blobs):
    search = searches[2]
    best = search.best_estimator_
    for name, value in search.best_params_.items():
        assert best.get_params()[name] == value
    width = best.get_params().get("module__hidden_units", 128)
    assert best.net1_.module_.layers[0].out_features == width
    assert best.score(*blobs) > 0.9


def test_grid_search_is_the_same_with_two_workers(searches):
    one, two = searches[1].cv_results_, searches[2].cv_results_
    assert one["params"] == two["params"]
    for key in ("mean_test_accuracy", "mean_test_width", "mean_test_momentum"):
        np.testing.assert_array_equal(one[key], two[key])
    assert searches[1].best_params_ == searches[2].best_params_


def test_pipeline_with_scaler_inside_grid_search(blobs):
    X, y = blobs
    X = X * 10 + 50  # features far from the origin: the scaler matters
    pipe = make_pipeline(StandardScaler(), DivideMixClassifier(**LEARNING))
    grid = {
        "dividemixclassifier__module__hidden_units": [8, 16],
        "dividemixclassifier__lambda_u": [25.0],
    }
    search = GridSearchCV(pipe, grid, cv=2, error_score="raise").fit(X, y)
    step = search.best_estimator_[-1]
    width = search.best_params_["dividemixclassifier__module__hidden_units"]
    assert step.net1_.module_.layers[0].out_features == width
    assert abs(search.best_estimator_[0].mean_).min() > 10
    assert search.score(X, y) > 0.9


def test_cross_validation_uses_stratified_folds(blobs):
    X, y = blobs
    clf = DivideMixClassifier(**LEARNING)
    assert is_classifier(clf)
    assert isinstance(check_cv(3, y, classifier=True), StratifiedKFold)
    # y is sorted by class: unstratified folds would each hold out one class
    result = cross_validate(clf, X, y, cv=3, return_indices=True)
    for test in result["indices"]["test"]:
        assert set(np.bincount(y[test], minlength=3)) <= {13, 14}
    assert np.all(result["test_score"] > 0.9)
    scores = cross_val_score(clf, X, y, cv=3)
    np.testing.assert_array_equal(scores, result["test_score"])


def test_calibrated_classifier_cv_wraps_it(blobs):
    X, y = blobs
    calibrated = CalibratedClassifierCV(
        DivideMixClassifier(**LEARNING), cv=2, method="sigmoid"
    ).fit(X, y)
    assert len(calibrated.calibrated_classifiers_) == 2
    for member in calibrated.calibrated_classifiers_:
        assert isinstance(member.estimator, DivideMixClassifier)
        assert member.estimator.clean_proba_.shape == (60,)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert calibrated.score(X, y) > 0.9


def test_calibration_of_a_prefit_estimator(blobs):
    X, y = blobs
    fitted = DivideMixClassifier(**LEARNING).fit(X, y)
    calibrated = CalibratedClassifierCV(FrozenEstimator(fitted)).fit(X, y)
    assert calibrated.calibrated_classifiers_[0].estimator.estimator is fitted
    np.testing.assert_allclose(calibrated.predict_proba(X).sum(axis=1), 1.0)


def test_soft_voting_averages_its_probabilities(blobs):
    X, y = blobs
    voting = VotingClassifier(
        [
            ("dividemix", DivideMixClassifier(**LEARNING)),
            ("logreg", LogisticRegression()),
        ],
        voting="soft",
    ).fit(X, y)
    dividemix, logreg = voting.estimators_
    expected = (dividemix.predict_proba(X) + logreg.predict_proba(X)) / 2
    np.testing.assert_allclose(voting.predict_proba(X), expected)
    assert voting.score(X, y) > 0.9
