"""Benchmark: clean accuracy estimated from noisy labels against the truth.

For MNIST and Fashion-MNIST (a stratified subset of the training images,
flattened to 784 features in [0, 1], and the full 10,000-image test set) and
three kinds of label noise, this fits a
:class:`~sklearn_dividemix.DivideMixClassifier` on noisy training labels,
corrupts the *test* labels with the same noise, and compares
:func:`~sklearn_dividemix.estimated_clean_accuracy` on the noisy test labels
with the accuracy on the true test labels, which a user would not have.

Each cell is fitted twice: on the pixels as given (``normalize=False``, they
are already in [0, 1]; what ``normalize='auto'`` does with feature vectors)
and with per-feature standardisation (``normalize=True``), which changes how
well the fit's division matches the true noise and so how good the estimate
is. The arrays each estimate is computed from are cached under
``benchmarks/cache/``, so a rerun (``--from-cache``) re-scores without
refitting. Results go to ``benchmarks/results/estimated_accuracy.json`` and
``docs/estimated_accuracy.md``.

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.studies.estimated_accuracy
    python -m benchmarks.studies.estimated_accuracy --quick --output-dir /tmp/ea
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from sklearn_dividemix import (
    DivideMixClassifier,
    estimated_clean_accuracy,
    make_noisy_labels,
)
from sklearn_dividemix._metrics import clean_accuracy_from_noisy
from sklearn_dividemix._transition import (
    estimate_transition_matrix,
    true_label_posterior,
)

from .. import _pages
from .._common import CACHE_DIR
from .._data import flat, subsets
from .._pages import pct, run_on, table
from . import _study

# name: (kind, noise_rate); pair flipping is "asymmetric" with the default map.
NOISES = {
    "sym20": ("symmetric", 0.2),
    "sym50": ("symmetric", 0.5),
    "pair40": ("asymmetric", 0.4),
}
NOISE_TITLES = {
    "sym20": "symmetric 20 %",
    "sym50": "symmetric 50 %",
    "pair40": "pair-flip 40 %",
}
DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
# 'auto' leaves feature vectors as they are: the first is the default's fit.
NORMALIZE = {"false": False, "true": True}
NORMALIZE_TITLES = {
    "false": "Pixels as given (`normalize=False`, what `'auto'` does here)",
    "true": "Per-feature standardisation (`normalize=True`)",
}
# The threshold of fits cached before p_threshold_ was recorded (0.5 was the
# default then): a label is flagged when clean_proba_ <= p_threshold_.
P_THRESHOLD = 0.5
# A division "in doubt" about a sample: its clean probability is in between.
DOUBT = (0.1, 0.9)


def load_flat(name: str, n_train: int, n_test: int | None) -> tuple:
    """A stratified training subset and the test set, as (n, 784) in [0, 1]."""
    x_train, y_train, x_test, y_test = subsets(name, n_train, n_test)
    return flat(x_train), y_train, flat(x_test), y_test


def fit_and_collect(dataset: str, noise: str, normalize: str, seed: int, args):
    """Fit on noisy labels; return every array the estimate is computed from."""
    X_train, y_train, X_test, y_test = load_flat(dataset, args.n_train, args.n_test)
    kind, rate = NOISES[noise]
    y_train_noisy, _ = make_noisy_labels(
        y_train, noise_rate=rate, kind=kind, random_state=seed
    )
    y_test_noisy, _ = make_noisy_labels(
        y_test, noise_rate=rate, kind=kind, random_state=seed + 1000
    )
    clf = DivideMixClassifier(
        max_epochs=args.max_epochs,
        warmup_epochs=args.warmup_epochs,
        normalize=NORMALIZE[normalize],
        # the paper's advice for class-dependent noise
        confidence_penalty=kind == "asymmetric",
        random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X_train, y_train_noisy)
    fit_s = time.perf_counter() - start
    test_proba = clf.predict_proba(X_test)
    arrays = {
        "given": clf._train_labels,
        "clean_proba": clf.clean_proba_,
        "train_proba": clf.train_proba_,
        "y_train": y_train,
        "y_test": y_test,
        "y_test_noisy": y_test_noisy,
        "y_pred": clf.classes_[test_proba.argmax(axis=1)],
        "test_proba": test_proba.astype(np.float32),
        "fit_s": np.float64(fit_s),
        "p_threshold": np.float64(clf.p_threshold_),
    }
    # score() re-derives the estimate from these arrays: check it is the same
    public = estimated_clean_accuracy(clf, X_test, y_test_noisy)
    assert np.isclose(public, estimate_from_arrays(arrays)[0]), public
    return arrays


def estimate_from_arrays(arrays: dict) -> tuple[float, np.ndarray]:
    """The clean accuracy and T, as estimated_clean_accuracy computes them."""
    n_classes = arrays["train_proba"].shape[1]
    posterior = true_label_posterior(
        arrays["given"], arrays["clean_proba"], arrays["train_proba"]
    )
    transition = estimate_transition_matrix(arrays["given"], posterior, n_classes)
    estimate = clean_accuracy_from_noisy(
        arrays["y_pred"], arrays["y_test_noisy"], transition
    )
    return estimate, transition


def _realised_transition(y_true, y_noisy, n_classes: int) -> np.ndarray:
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (y_true, y_noisy), 1)
    return counts / counts.sum(axis=1, keepdims=True)


def score(arrays: dict, key: dict) -> dict:
    """The row of the results for one fit."""
    estimate, transition = estimate_from_arrays(arrays)
    n_classes = len(transition)
    true_transition = _realised_transition(
        arrays["y_train"], arrays["given"], n_classes
    )
    clean = float(np.mean(arrays["y_pred"] == arrays["y_test"]))
    # The same estimate from the realised noise: what is left is the error of
    # sampling the test set; the rest of "error" is the error of the fit's T.
    with_true_transition = clean_accuracy_from_noisy(
        arrays["y_pred"], arrays["y_test_noisy"], true_transition
    )
    threshold = float(arrays.get("p_threshold", P_THRESHOLD))
    clean_proba = arrays["clean_proba"]
    return {
        **key,
        "clean_accuracy": clean,
        "noisy_accuracy": float(np.mean(arrays["y_pred"] == arrays["y_test_noisy"])),
        "estimated_clean_accuracy": float(estimate),
        "error": float(estimate) - clean,
        "abs_error": abs(float(estimate) - clean),
        "train_noise_rate": float(np.mean(arrays["given"] != arrays["y_train"])),
        "error_true_transition": float(with_true_transition) - clean,
        "flagged_share": float(np.mean(clean_proba <= threshold)),
        "in_doubt_share": float(
            np.mean((clean_proba > DOUBT[0]) & (clean_proba < DOUBT[1]))
        ),
        "transition_diagonal_estimated": float(np.diag(transition).mean()),
        "transition_diagonal_true": float(np.diag(true_transition).mean()),
        "transition_max_abs_error": float(np.abs(transition - true_transition).max()),
        "transition_condition_number": float(np.linalg.cond(transition)),
        "fit_seconds": float(arrays["fit_s"]),
    }


def run_one(key: dict, args) -> dict:
    cache = CACHE_DIR / (
        f"estimated_accuracy_{key['dataset']}_{key['noise']}_n{args.n_train}"
        f"_t{args.n_test}_e{args.max_epochs}w{args.warmup_epochs}"
        f"{'_std' if key['normalize'] == 'true' else ''}_s{key['seed']}.npz"
    )
    if cache.exists():
        with np.load(cache) as data:
            arrays = dict(data)
    elif args.from_cache:
        raise FileNotFoundError(f"{cache} is missing; run without --from-cache.")
    else:
        arrays = fit_and_collect(
            key["dataset"], key["noise"], key["normalize"], key["seed"], args
        )
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, **arrays)
    return score(arrays, key)


def _mean(group: list[dict], name: str) -> float:
    return float(np.mean([r[name] for r in group]))


def markdown_table(rows: list[dict]) -> str:
    """One line per data set and noise: means over seeds, and the worst error."""
    columns = [
        "data set",
        "noise",
        "clean test accuracy",
        "noisy test accuracy",
        "estimated clean accuracy",
        "error: mean / largest (points)",
        "error with the true T (points)",
        "labels flagged / wrong (%)",
        "in doubt (%)",
    ]
    cells = {}
    for r in rows:
        cells.setdefault((r["dataset"], r["noise"]), []).append(r)
    lines = []
    for (dataset, noise), group in cells.items():
        worst = max(group, key=lambda r: r["abs_error"])["error"]
        lines.append(
            [
                DATASET_TITLES[dataset],
                NOISE_TITLES[noise],
                pct(_mean(group, "clean_accuracy")),
                pct(_mean(group, "noisy_accuracy")),
                pct(_mean(group, "estimated_clean_accuracy")),
                f"{pct(_mean(group, 'error'))} / {pct(worst)}",
                pct(_mean(group, "error_true_transition")),
                f"{pct(_mean(group, 'flagged_share'))} "
                f"/ {pct(_mean(group, 'train_noise_rate'))}",
                pct(_mean(group, "in_doubt_share")),
            ]
        )
    return table(columns, lines, align="llrrrrrrr")


def _summary(rows: list[dict]) -> str:
    errors = np.array([r["abs_error"] for r in rows])
    return (
        f"{int(np.sum(errors <= 0.03))} of {len(rows)} estimates within 3 points "
        f"of the truth; largest error {pct(errors.max())} points."
    )


def write_page(rows: list[dict], args, path: Path) -> None:
    sections = "\n\n".join(
        f"## {title}\n\n{markdown_table(subset)}\n\n{_summary(subset)}"
        for normalize, title in NORMALIZE_TITLES.items()
        if (subset := [r for r in rows if r["normalize"] == normalize])
    )
    seeds = ", ".join(str(s) for s in args.seeds)
    test = "full 10,000-image" if args.n_test is None else f"{args.n_test:,}-image"
    text = f"""# Estimated clean accuracy: benchmark

How close does {{func}}`~sklearn_dividemix.estimated_clean_accuracy`, computed
from noisy test labels, come to the accuracy on the true test labels? Each fit
is a `DivideMixClassifier(max_epochs={args.max_epochs},
warmup_epochs={args.warmup_epochs}, random_state=seed)`, with
`confidence_penalty=True` for pair flipping as the paper advises for
class-dependent noise, on {args.n_train:,} noisy training images flattened to
784 features in [0, 1]. The {test} test set gets noisy labels of the same kind,
and the estimate from them is compared with the accuracy on the true ones.
Accuracies are means over seeds {seeds}, in %; the error is estimate minus
truth, its mean and the one of largest size. "Error with the true T" is the
same estimate computed from the realised noise transition matrix instead of
the fit's: the error of sampling the test set alone; the difference between
the two errors is the error of the fit's `T`. "Labels flagged / wrong"
compares the share of training labels the fit believes wrong (`clean_proba_
<= p_threshold_`) with the share that is: where they differ, the fit's
division, and with it the estimate, is off (see {{doc}}`noisy_validation`).
"In doubt" is the share of training samples whose clean probability is
between {DOUBT[0]} and {DOUBT[1]}: how much of that error the fit could know
about.

{sections}

Reproduce with
`{_study.reproduce("estimated_accuracy", args)}`
(fits are cached under `benchmarks/cache/`; `--from-cache` re-scores them;
per-fit numbers are in `benchmarks/results/estimated_accuracy.json`).
{run_on()}
"""
    _pages.write_page(path, text)


def parse_args(argv=None):
    parser = _study.parser(__doc__, datasets=list(DATASET_TITLES), seeds=[0, 1, 2])
    parser.add_argument("--noises", nargs="+", default=list(NOISES))
    parser.add_argument("--normalize", nargs="+", default=list(NORMALIZE))
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--warmup-epochs", type=int, default=10)
    parser.add_argument("--from-cache", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.max_epochs = 500, 1000, 4
        args.warmup_epochs, args.seeds = 2, [0]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    out = _study.start(args, "estimated_accuracy")
    rows = []
    print(
        f"{'data set':14s} {'noise':7s} {'normalize':9s} {'seed':>4s} {'clean':>6s} "
        f"{'noisy':>6s} {'estimate':>8s} {'error':>6s}",
        flush=True,
    )
    for normalize in args.normalize:
        for dataset in args.datasets:
            for noise in args.noises:
                for seed in args.seeds:
                    key = {
                        "dataset": dataset,
                        "noise": noise,
                        "normalize": normalize,
                        "seed": seed,
                    }
                    r = run_one(key, args)
                    rows.append(r)
                    print(
                        f"{dataset:14s} {noise:7s} {normalize:9s} {seed:4d} "
                        f"{pct(r['clean_accuracy']):>6s} "
                        f"{pct(r['noisy_accuracy']):>6s} "
                        f"{pct(r['estimated_clean_accuracy']):>8s} "
                        f"{pct(r['error']):>6s}",
                        flush=True,
                    )
    out.save(args, rows)
    write_page(rows, args, out.page)


if __name__ == "__main__":
    main()
