"""The transfer benchmark's rows: what each one changes, and which run."""

import json

import numpy as np
import pytest
from torch import nn

from benchmarks import transfer
from sklearn_dividemix import DivideMixClassifier

MAIN = [
    "scratch_ce",
    "scratch_dividemix",
    "pretrained_ce",
    "pretrained_dividemix",
    "frozen_dividemix",
]


@pytest.fixture
def pretrained():
    # only the rows' parameters are read: no fit, any small module will do
    stats = (np.zeros(3), np.ones(3))
    return {"module": nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), "stats": stats}


def _args(*argv):
    return transfer.parse_args(list(argv))


@pytest.mark.parametrize(
    "noise, argv, expected",
    [
        ("symmetric 50 %", [], MAIN + list(transfer.STUDY_ROWS)),
        ("symmetric 50 %", ["--no-study"], MAIN),
        ("pair-flip 40 %", [], MAIN),
        (
            "pair-flip 40 %",
            ["--rows", "pretrained_ce_lr_0.1", "scratch_ce"],
            ["pretrained_ce_lr_0.1", "scratch_ce"],
        ),
    ],
)
def test_rows_run_by_noise_and_arguments(pretrained, noise, argv, expected):
    assert list(transfer.estimators(pretrained, _args(*argv), noise)) == expected


def _equal(a, b):
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def test_study_rows_change_one_parameter_of_their_base(pretrained):
    names = [*transfer.STUDY_ROWS, "pretrained_dividemix_freeze_warmup"]
    names += ["pretrained_ce_lr_0.1", "pretrained_dividemix", "pretrained_ce"]
    args = _args("--warmup", "3", "--epochs", "9", "--rows", *names)
    rows = transfer.estimators(pretrained, args, "symmetric 50 %")
    made = {name: make() for name, make in rows.items()}
    assert all(isinstance(m, DivideMixClassifier) for m in made.values())
    base = made["pretrained_dividemix"].get_params(deep=False)

    def changed(name, reference=base):
        params = made[name].get_params(deep=False)
        # the module instance is shared: compared by identity, the rest by value
        return {
            k: v
            for k, v in params.items()
            if v is not reference[k] and not _equal(v, reference[k])
        }

    assert changed("pretrained_dividemix_freeze_warmup") == {
        "freeze_backbone_epochs": 3
    }
    assert changed("pretrained_dividemix_lr_0.1") == {"lr": 0.1}
    ce = made["pretrained_ce"].get_params(deep=False)
    assert ce["warmup_epochs"] == 9
    assert changed("pretrained_ce_lr_0.1", ce) == {"lr": 0.1}


def test_unknown_rows_are_refused_with_the_choices(pretrained):
    with pytest.raises(SystemExit, match="unknown rows.*scratch_ce"):
        transfer.estimators(pretrained, _args("--rows", "nope"), "symmetric 50 %")


def test_markdown_table_lists_every_saved_row(tmp_path):
    row = {"test_accuracy": 0.5, "fit_seconds": 9.0, "fit_cpu_seconds": 3.0}
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps({"rows": {"sym": {"a": row, "b": {**row, "detection_f1": 0.25}}}})
    )
    table = transfer.markdown_table(path).splitlines()
    assert table[2:] == [
        "| sym | a | 50.0 % | - | 3 |",
        "| sym | b | 50.0 % | 0.25 | 3 |",
    ]


@pytest.mark.parametrize("max_epochs, divides", [(3, True), (1, False)])
def test_run_row_records_what_the_auto_settings_came_to(max_epochs, divides):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 8).astype(np.float32)
    y = np.arange(60) % 3
    X[np.arange(60), y] += 2.0
    flipped = np.zeros(60, dtype=bool)
    flipped[:6] = True
    y_noisy = np.where(flipped, (y + 1) % 3, y)
    params = dict(max_epochs=max_epochs, warmup_epochs=1, batch_size=16, random_state=0)
    row = transfer.run_row(
        lambda: DivideMixClassifier(**params), X, y_noisy, flipped, X, y
    )
    assert 0.0 <= row["test_accuracy"] <= 1.0
    if divides:
        # a first division flagging about a tenth: balanced, no mixup
        assert 0.0 <= row["detection_f1"] <= 1.0
        assert row["balance_labeled_"] is True and row["alpha_"] == 0.0
        # and the paper's threshold and a one-epoch window
        assert (row["p_threshold_"], row["loss_window_"]) == (0.5, 1)
    else:
        # a fit that never left warm-up has no division to report
        chosen = {"detection_f1", "balance_labeled_", "alpha_", "p_threshold_"}
        assert not chosen & set(row)
