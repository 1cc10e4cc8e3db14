"""The studies' shared skeleton and long_tail's division of its own."""

import functools
import json
import warnings

import numpy as np
import pytest

from benchmarks._common import DATA_DIR
from benchmarks.studies import _study, epoch_sampling, long_tail
from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._class_division import divide_losses_per_class


def test_study_arguments_and_outputs(tmp_path):
    parser = _study.parser("Title line.\n\nMore.", datasets=["a", "b"], seeds=[0])
    args = parser.parse_args(["--seeds", "3", "4", "--output-dir", str(tmp_path)])
    assert parser.description == "Title line."
    assert (args.datasets, args.seeds, args.threads, args.quick) == (
        ["a", "b"],
        [3, 4],
        1,
        False,
    )
    out = _study.start(args, "demo")
    assert out.results == tmp_path / "demo.json"
    assert out.page == tmp_path / "demo.md"
    out.save(args, [{"x": np.float64(1.5)}])
    saved = json.loads(out.results.read_text())
    assert saved["rows"] == [{"x": 1.5}] and saved["settings"]["seeds"] == "[3, 4]"
    assert _study.reproduce("demo", args) == (
        "nice -n 10 python -m benchmarks.studies.demo --seeds 3 4"
    )


def test_long_tail_per_class_raw_is_a_division_strategy(noisy_digits):
    # the cached runs know it by name; the estimator gets a callable
    assert list(long_tail.DIVISIONS) == [
        "global",
        "per_class",
        "per_class_raw",
        "balanced",
    ]
    raw = long_tail.DIVISIONS["per_class_raw"]
    assert isinstance(raw, functools.partial)
    assert raw.func is divide_losses_per_class
    assert raw.keywords == {"trust_check": False}
    X, y = noisy_digits["X_train"][:300], noisy_digits["y_noisy"][:300]
    clf = DivideMixClassifier(
        max_epochs=2, warmup_epochs=1, division=raw, device="cpu", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert clf.clean_proba_.shape == (len(y),)


@pytest.mark.skipif(
    not (DATA_DIR / "mnist.npz").exists(),
    reason="needs ../shared/data/mnist.npz (see shared/data/README.md)",
)
def test_epoch_sampling_quick_run_writes_both_divisions(tmp_path):
    rows = epoch_sampling.main(["--quick", "--output-dir", str(tmp_path)])
    assert [r["divide_over"] for r in rows] == ["sample", "all"]
    for row in rows:
        assert row["samples_per_epoch"] == 5 * 64 and row["n_train"] == 2000
        assert 0 <= row["test_accuracy"] <= 1 and 0 <= row["detection_f1"] <= 1
        assert len(row["epoch_seconds"]) == row["epochs"]
    saved = json.loads((tmp_path / "epoch_sampling.json").read_text())
    assert len(saved["rows"]) == 2
    page = (tmp_path / "epoch_sampling.md").read_text()
    assert "`divide_over='sample'`" in page and "`divide_over='all'`" in page


def _study_arrays(clean_proba, seed=0, n=600, k=3):
    """Arrays as estimated_accuracy caches them: 30 % symmetric flips."""
    rng = np.random.RandomState(seed)
    y_train = rng.randint(k, size=n)
    flip = rng.rand(n) < 0.3
    given = np.where(flip, (y_train + rng.randint(1, k, size=n)) % k, y_train)
    y_test = rng.randint(k, size=n)
    y_test_noisy = np.where(rng.rand(n) < 0.3, (y_test + 1) % k, y_test)
    return {
        "given": given,
        "clean_proba": clean_proba(flip),
        # the nets' belief: the true class, as a perfect fit would have it
        "train_proba": np.eye(k)[y_train],
        "y_train": y_train,
        "y_test": y_test,
        "y_test_noisy": y_test_noisy,
        "y_pred": np.where(rng.rand(n) < 0.8, y_test, (y_test + 2) % k),
        "fit_s": np.float64(1.0),
        "p_threshold": np.float64(0.5),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_estimated_accuracy_splits_the_error_into_sampling_and_the_fits_T(seed):
    from benchmarks.studies import estimated_accuracy

    # a division that is right: the fit's T is the realised one, and the two
    # errors are the same (sampling only)
    right = estimated_accuracy.score(
        _study_arrays(lambda flip: (~flip).astype(float), seed), {"seed": seed}
    )
    assert right["error"] == pytest.approx(right["error_true_transition"])
    assert right["flagged_share"] == pytest.approx(right["train_noise_rate"])
    assert right["in_doubt_share"] == 0.0
    # a division that believes every label: T is the identity, the estimate
    # is the noisy accuracy, while the error from the true T stays as it was
    blind = estimated_accuracy.score(
        _study_arrays(lambda flip: np.ones(flip.shape), seed), {"seed": seed}
    )
    assert blind["estimated_clean_accuracy"] == pytest.approx(blind["noisy_accuracy"])
    assert blind["error_true_transition"] == pytest.approx(
        right["error_true_transition"]
    )
    assert blind["error"] < blind["error_true_transition"] - 0.1
    assert blind["flagged_share"] == 0.0
    # doubt: clean probabilities strictly between 0.1 and 0.9
    half = estimated_accuracy.score(
        _study_arrays(lambda flip: np.where(flip, 0.3, 0.95), seed), {"seed": seed}
    )
    assert half["in_doubt_share"] == pytest.approx(half["train_noise_rate"])
