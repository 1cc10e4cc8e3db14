"""The history row schema: the keys a fit writes are the declared ones."""

import pytest

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix import _history as schema
from tests._budgets import SHORT


@pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")
@pytest.mark.filterwarnings("ignore::sklearn_dividemix.UntrustedFitWarning")
def test_rows_carry_the_declared_keys(blobs):
    clf = DivideMixClassifier(**SHORT).fit(*blobs)
    per_net = [
        schema.loss_key,
        schema.loss_terms_key,
        schema.labeled_key,
        schema.gmm_means_key,
        schema.division_key,
    ]
    common = {schema.EPOCH, schema.PHASE, schema.UNLABELED_WEIGHT, schema.LR}
    common |= {schema.NOTES, schema.DUR}
    expected = common | {key(i) for key in per_net for i in (1, 2)}
    warmup, *mixmatch = clf.history_
    assert set(warmup) == expected
    assert warmup[schema.PHASE] == schema.WARMUP
    for row in mixmatch:
        assert set(row) == expected | {
            schema.LAMBDA_U,
            schema.ALPHA,
            schema.BALANCE_LABELED,
            schema.P_THRESHOLD,
            schema.LOSS_WINDOW,
        }
        assert row[schema.PHASE] == schema.MIXMATCH
    assert schema.loss_key(2) == "loss_net2"
    assert schema.division_key(1) == "division_net1"
    assert schema.completed([*clf.history_, {schema.INTERRUPTED: True}]) == list(
        clf.history_
    )
