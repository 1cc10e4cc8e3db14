"""scikit-learn's own estimator checks on DivideMixClassifier.

Two configurations are checked, both tiny enough for the whole set to run in
seconds: one with skorch-routed ``module__`` / ``optimizer__`` arguments, one
without. The only expected failure comes from the routed arguments, and it is
strict: if the check starts passing, the test fails and the entry must go.
"""

import pytest
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

from sklearn_dividemix import DivideMixClassifier
from tests._budgets import LEARNING

# Good enough for check_classifiers_train (accuracy > 0.83 on make_blobs) in
# four epochs (min 0.92 over five seeds): a high lr makes up for the budget.
TINY = {**LEARNING, "batch_size": 32}
ROUTED = dict(module__hidden_units=16, optimizer__nesterov=True)

EXPECTED_FAILED_CHECKS = {
    "check_no_attributes_set_in_init": (
        "module__*/optimizer__* arguments are stored by __init__ as attributes "
        "outside its signature (skorch-style **kwargs routing); get_params, "
        "set_params and clone handle them"
    ),
}

# Tiny, easy data makes one-sided divisions; DivisionWarning is tested in
# test_classifier.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


def _estimators():
    return [DivideMixClassifier(**TINY, **ROUTED), DivideMixClassifier(**TINY)]


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS if estimator._routed_params() else {}


@parametrize_with_checks(
    _estimators(), expected_failed_checks=_expected_failed_checks, xfail_strict=True
)
def test_sklearn_compatible_estimator(estimator, check, monkeypatch):
    if getattr(check, "func", check).__name__ == "check_array_api_input":
        # sklearn skips this check unless SCIPY_ARRAY_API is set. It fits with
        # NumPy inputs under array_api_dispatch=True, for which SciPy's own
        # array API mode (what the variable switches on) plays no part.
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_param_validation():
    # Routed module__/optimizer__ values belong to the module and optimizer,
    # which validate them when the nets are built (tests/test_input_validation);
    # _parameter_constraints covers every named parameter, checked here.
    check_param_validation("DivideMixClassifier", DivideMixClassifier(**TINY))


def test_routed_params_are_left_to_the_module():
    estimator = DivideMixClassifier(**TINY, **ROUTED)
    routed = set(estimator.get_params()) - set(
        DivideMixClassifier._parameter_constraints
    )
    assert routed == set(ROUTED)
