"""Benchmark: model selection on noisy labels, by noisy and by estimated accuracy.

Under class-dependent noise the accuracy on held-out noisy labels rewards a
model for predicting the class the noise flips to, so a search scored by it
can prefer the wrong setting. For scikit-learn's digits and an MNIST subset,
with 40 % pair-flip noise on the training labels (the cross-validation folds
are cut from them, so the validation labels are noisy too) and clean test
labels, this runs one :class:`~sklearn.model_selection.GridSearchCV` over
``confidence_penalty`` scored both ways, by ``"accuracy"`` on the noisy
labels and by :func:`~sklearn_dividemix.estimated_clean_accuracy` (a
multi-metric search: both scorers see the very same fold fits, as two
searches with the same ``cv`` and ``random_state`` would), then fits every
candidate on the whole training set and measures it on the clean test
labels. Each row says which candidate each scorer chose and what that choice
scores on the clean test labels.

Results go to ``benchmarks/results/model_selection.json`` (rewritten after
every seed, so an interrupted run keeps what it finished) and
``docs/model_selection.md``.

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.studies.model_selection
    python -m benchmarks.studies.model_selection --quick --output-dir /tmp/ms
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from sklearn_dividemix import (
    DivideMixClassifier,
    estimated_clean_accuracy,
    make_noisy_labels,
)

from .. import _pages
from .._data import digits, subsets
from .._pages import pct, points, run_on, table
from . import _study

NOISE_KIND, NOISE_RATE = "asymmetric", 0.4  # pair flipping: class k -> k + 1
PARAM = "confidence_penalty"
GRID = {PARAM: [False, True]}
SCORERS = {"noisy": "accuracy", "estimated": estimated_clean_accuracy}
DATASET_TITLES = {"digits": "digits", "mnist": "MNIST"}


def load(dataset: str, seed: int, args) -> tuple:
    """Training inputs, their true labels, test inputs, clean test labels."""
    if dataset == "digits":
        X, y = digits()
        return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    # (n, 28, 28) uint8: the estimator takes them as images (a small CNN)
    x_train, y_train, x_test, y_test = subsets(
        "mnist", args.mnist_train, args.mnist_test, train_seed=seed, test_seed=0
    )
    return x_train, x_test, y_train, y_test


def base_estimator(dataset: str, seed: int, args) -> DivideMixClassifier:
    if dataset == "digits":
        return DivideMixClassifier(
            max_epochs=args.digits_epochs,
            warmup_epochs=args.digits_warmup,
            lr=0.1,
            random_state=seed,
        )
    return DivideMixClassifier(
        max_epochs=args.mnist_epochs,
        warmup_epochs=args.mnist_warmup,
        random_state=seed,
    )


def run_one(dataset: str, seed: int, args) -> dict:
    """One search scored both ways, and every candidate on clean test labels."""
    X_train, X_test, y_train, y_test = load(dataset, seed, args)
    y_noisy, is_wrong = make_noisy_labels(
        y_train, noise_rate=NOISE_RATE, kind=NOISE_KIND, random_state=seed
    )
    estimator = base_estimator(dataset, seed, args)
    search = GridSearchCV(
        estimator,
        GRID,
        scoring=SCORERS,
        refit=False,
        cv=StratifiedKFold(n_splits=args.cv, shuffle=True, random_state=seed),
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X_train, y_noisy)
        candidates = []
        for i, params in enumerate(search.cv_results_["params"]):
            clf = clone(estimator).set_params(**params).fit(X_train, y_noisy)
            candidates.append(
                {
                    "params": params,
                    "cv_noisy_accuracy": float(
                        search.cv_results_["mean_test_noisy"][i]
                    ),
                    "cv_estimated_clean_accuracy": float(
                        search.cv_results_["mean_test_estimated"][i]
                    ),
                    "test_clean_accuracy": float(clf.score(X_test, y_test)),
                    "flagged_share": float(1 - clf.clean_mask_.mean()),
                }
            )
    # GridSearchCV's best_index_: the first candidate of rank 1
    chosen = {
        name: int(np.argmin(search.cv_results_[f"rank_test_{name}"]))
        for name in SCORERS
    }
    test = [c["test_clean_accuracy"] for c in candidates]
    return {
        "dataset": dataset,
        "seed": seed,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "train_noise_rate": float(is_wrong.mean()),
        "candidates": candidates,
        "choice_noisy": candidates[chosen["noisy"]]["params"][PARAM],
        "choice_estimated": candidates[chosen["estimated"]]["params"][PARAM],
        "test_of_noisy_choice": test[chosen["noisy"]],
        "test_of_estimated_choice": test[chosen["estimated"]],
        "test_of_best_candidate": max(test),
        "seconds": time.perf_counter() - start,
    }


def per_seed_table(rows: list[dict]) -> str:
    columns = [
        "data set",
        "seed",
        "CV noisy accuracy (False / True)",
        "CV estimated clean accuracy (False / True)",
        "clean test accuracy (False / True)",
        "chosen by noisy",
        "chosen by estimated",
        "estimated minus noisy choice (points)",
    ]
    lines = []
    for r in rows:
        c = r["candidates"]

        def pair(key: str, c=c) -> str:
            return " / ".join(pct(x[key]) for x in c)

        lines.append(
            [
                DATASET_TITLES[r["dataset"]],
                r["seed"],
                pair("cv_noisy_accuracy"),
                pair("cv_estimated_clean_accuracy"),
                pair("test_clean_accuracy"),
                r["choice_noisy"],
                r["choice_estimated"],
                points(r["test_of_estimated_choice"] - r["test_of_noisy_choice"]),
            ]
        )
    return table(columns, lines, align="lrrrrllr")


def summary_table(rows: list[dict]) -> str:
    columns = [
        "data set",
        "seeds",
        "scorers disagree",
        "estimated better / same / worse",
        "clean test accuracy: noisy choice",
        "estimated choice",
        "best candidate",
    ]
    lines = []
    for dataset in DATASET_TITLES:
        group = [r for r in rows if r["dataset"] == dataset]
        if not group:
            continue
        diff = np.array(
            [r["test_of_estimated_choice"] - r["test_of_noisy_choice"] for r in group]
        )
        disagree = sum(r["choice_noisy"] != r["choice_estimated"] for r in group)
        lines.append(
            [
                DATASET_TITLES[dataset],
                len(group),
                disagree,
                f"{int(np.sum(diff > 0))} / {int(np.sum(diff == 0))} "
                f"/ {int(np.sum(diff < 0))}",
                pct(np.mean([r["test_of_noisy_choice"] for r in group])),
                pct(np.mean([r["test_of_estimated_choice"] for r in group])),
                pct(np.mean([r["test_of_best_candidate"] for r in group])),
            ]
        )
    return table(columns, lines, align="lrrlrrr")


def write_page(rows: list[dict], args, path: Path) -> None:
    datasets = sorted({r["dataset"] for r in rows}, key=list(DATASET_TITLES).index)
    sizes = "; ".join(
        f"{DATASET_TITLES[d]}: {rows_[0]['n_train']:,} training and "
        f"{rows_[0]['n_test']:,} test samples"
        for d in datasets
        if (rows_ := [r for r in rows if r["dataset"] == d])
    )
    text = f"""# Noise-aware model selection: benchmark

Does scoring a search with
{{func}}`~sklearn_dividemix.estimated_clean_accuracy` instead of the accuracy
on noisy validation labels choose a better model? Under 40 % pair-flip noise
(class `k` labelled `k + 1` for 40 % of each class) on the training labels,
one `GridSearchCV` over `{PARAM}` in `[False, True]` ({args.cv}-fold,
the folds cut from the noisy training labels) is scored both ways, every
candidate is then fitted on the whole noisy training set, and each scorer's
choice is measured on clean test labels. Digits: `DivideMixClassifier(
max_epochs={args.digits_epochs}, warmup_epochs={args.digits_warmup}, lr=0.1)`
on the 64 features scaled to [0, 1]; MNIST: `DivideMixClassifier(
max_epochs={args.mnist_epochs}, warmup_epochs={args.mnist_warmup})` on
28 x 28 uint8 images (its default small CNN), a stratified training subset.
{sizes}. Accuracies in %.

## Summary

{summary_table(rows)}

"Estimated better / same / worse" counts the seeds where the choice of
`estimated_clean_accuracy` scores higher, the same or lower on the clean test
labels than the choice of noisy accuracy (the same whenever both choose the
same candidate). "Best candidate" is the better of the two on the clean test
labels, which no search can see.

## Per seed

{per_seed_table(rows)}

Reproduce with
`{_study.reproduce("model_selection", args)}`
(per-candidate numbers are in `benchmarks/results/model_selection.json`).
{run_on()}
"""
    _pages.write_page(path, text)


def parse_args(argv=None):
    parser = _study.parser(
        __doc__, datasets=list(DATASET_TITLES), seeds=[0, 1, 2, 3, 4]
    )
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--digits-epochs", type=int, default=15)
    parser.add_argument("--digits-warmup", type=int, default=5)
    parser.add_argument("--mnist-train", type=int, default=3000)
    parser.add_argument("--mnist-test", type=int, default=10000)
    parser.add_argument("--mnist-epochs", type=int, default=15)
    parser.add_argument("--mnist-warmup", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.cv = [0], 2
        args.digits_epochs, args.digits_warmup = 3, 1
        args.mnist_train, args.mnist_test = 300, 500
        args.mnist_epochs, args.mnist_warmup = 2, 1
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    out = _study.start(args, "model_selection")
    rows = []
    print(
        f"{'data set':8s} {'seed':>4s} {'by noisy':>8s} {'by est.':>8s} "
        f"{'test F':>6s} {'test T':>6s} {'est-noisy':>9s} {'s':>5s}",
        flush=True,
    )
    # all seeds of one data set before the next: digits is done in minutes
    for dataset in args.datasets:
        for seed in args.seeds:
            r = run_one(dataset, seed, args)
            rows.append(r)
            tests = [c["test_clean_accuracy"] for c in r["candidates"]]
            gain = r["test_of_estimated_choice"] - r["test_of_noisy_choice"]
            print(
                f"{dataset:8s} {seed:4d} {r['choice_noisy']!s:>8s} "
                f"{r['choice_estimated']!s:>8s} "
                + " ".join(f"{pct(t):>6s}" for t in tests)
                + f" {points(gain):>9s}"
                f" {r['seconds']:5.0f}",
                flush=True,
            )
            out.save(args, rows)
            write_page(rows, args, out.page)
    print(summary_table(rows))


if __name__ == "__main__":
    main()
