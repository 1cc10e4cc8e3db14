"""Long-tailed benchmark: the global division against per-class divisions.

On Fashion-MNIST and MNIST subsampled so that class sizes fall geometrically
(class 0 keeps 1,500 images, class 9 keeps 1,500 / imbalance), with 40 %
symmetric noise (the paper's kind: new label drawn from all classes), the
default MLP on pixels scaled to [0, 1] is trained by DivideMix for 30 epochs
once per division:

- ``global``: the paper's one mixture over all losses;
- ``per_class``: a mixture per given class, untrusted or tiny classes taking
  the global posteriors (:func:`divide_losses_per_class`);
- ``per_class_raw``: the same without the trust check, a strategy of this
  benchmark's own (``divide_losses_per_class`` with ``trust_check=False``,
  given to the estimator as a callable ``division``);
- ``balanced``: every class keeps the global clean share, lowest losses
  first (:func:`divide_losses_balanced`).

``global``, ``per_class`` and ``balanced`` are the estimator's ``division``
options; runs are keyed by the names above, so the cached runs of
``per_class_raw`` (made when it swapped the splitter by monkeypatching) and
new ones are one row.

Beside them, two baselines with the same module, inputs and budget
(:mod:`.long_tail_baselines`): plain cross-entropy on the noisy labels
(``cross_entropy``) and the same with class-balanced sampling
(``cross_entropy_balanced``). ``--dividemix NAME=VALUE ... --tag TAG`` adds a
DivideMix row of the study's settings plus those parameters, cached under
``TAG`` (a tag names one set of parameters: asking for a cached tag with
others is an error).

Every finished run is appended to a JSON-lines cache, keyed by
:func:`~.long_tail_report.run_key`, so an interrupted benchmark resumes; at
the end the runs go to ``benchmarks/results/long_tail.json`` and the tables
(:mod:`.long_tail_report`) to ``docs/long_tail.md``.

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.studies.long_tail      # Fashion-MNIST, 20 and 50
    nice -n 10 python -m benchmarks.studies.long_tail --datasets mnist
    # the baselines alone, for the cells the cache has
    nice -n 10 python -m benchmarks.studies.long_tail --datasets fashion_mnist \
        mnist --seeds 0 1 2 --divisions
    # a candidate default, as one more row
    nice -n 10 python -m benchmarks.studies.long_tail --datasets fashion_mnist \
        mnist --seeds 0 1 2 --divisions --dividemix \
        division=per_class lambda_u=0 alpha=0 steps_per_epoch=all \
        noise_floor=auto --tag candidate
    python -m benchmarks.studies.long_tail --sizes  # smallest class for a mixture
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._class_division import MIN_CLASS_SIZE, divide_losses_per_class
from sklearn_dividemix._division import divide_losses, normalize_losses

from .. import _pages
from .._common import ROOT, machine_info, parse_param, write_json
from .._data import archive, flat
from .._pages import points
from .long_tail_baselines import BASELINES, dividemix_budget, fit_baseline
from .long_tail_report import markdown, run_key, summarize

LARGEST_CLASS = 1500
NOISE_RATE = 0.4
SUBSET_SEED = 0
# benchmark name (the key of cached runs) -> the estimator's division
DIVISIONS = {
    "global": "global",
    "per_class": "per_class",
    # a strategy of this benchmark's own: per-class mixtures, no trust check
    "per_class_raw": functools.partial(divide_losses_per_class, trust_check=False),
    "balanced": "balanced",
}


def class_sizes(n_classes: int, imbalance: float) -> np.ndarray:
    """Sizes falling geometrically from LARGEST_CLASS to LARGEST_CLASS / imbalance."""
    steps = np.arange(n_classes) / (n_classes - 1)
    return np.round(LARGEST_CLASS * imbalance**-steps).astype(int)


def load_long_tail(name: str, imbalance: float):
    """Long-tailed train subset (class k the k-th largest) and the full test set."""
    arrays = archive(name)
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    rng = np.random.RandomState(SUBSET_SEED)
    sizes = class_sizes(int(y_train.max()) + 1, imbalance)
    index = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero(y_train == c))[:n]
                for c, n in enumerate(sizes)
            ]
        )
    )
    return flat(x_train[index]), y_train[index], flat(x_test), y_test


def _f1(is_flipped, flagged, mask) -> float:
    return float(f1_score(is_flipped[mask], flagged[mask], zero_division=0.0))


def accuracies(predicted: np.ndarray, y_test: np.ndarray) -> dict:
    """Test accuracy, balanced accuracy and each class's accuracy."""
    return {
        "test_accuracy": float(np.mean(predicted == y_test)),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
        "class_accuracy": [
            float(np.mean(predicted[y_test == c] == c)) for c in np.unique(y_test)
        ],
    }


def measure(clf, y_true, y_noisy, X_test, y_test, rare) -> dict:
    """Detection on the rare half, test accuracies, per-class figures."""
    flagged, is_flipped = ~clf.clean_mask_, y_noisy != y_true
    given_rare, true_rare = np.isin(y_noisy, rare), np.isin(y_true, rare)
    classes = np.unique(y_test)
    return {
        "f1_rare_given": _f1(is_flipped, flagged, given_rare),
        "f1_rare_true": _f1(is_flipped, flagged, true_rare),
        "f1_all": _f1(is_flipped, flagged, np.ones_like(flagged)),
        # the labeled set of the rare classes: how clean and how complete
        "f1_kept_rare_given": _f1(~is_flipped, ~flagged, given_rare),
        "clean_rare_flagged": float(flagged[true_rare & ~is_flipped].mean()),
        "flagged_fraction": float(flagged.mean()),
        **accuracies(clf.predict(X_test), y_test),
        "class_flagged": [float(flagged[y_noisy == c].mean()) for c in classes],
        "class_wrong": [float(is_flipped[y_noisy == c].mean()) for c in classes],
        # the flags themselves, so that other metrics can be computed later
        "flagged_bits": np.packbits(flagged).tobytes().hex(),
    }


def noisy_cell(name: str, imbalance: float, seed: int) -> tuple:
    """``X, y_true, y_noisy, X_test, y_test`` of one (data, imbalance, seed)."""
    X, y_true, X_test, y_test = load_long_tail(name, imbalance)
    y_noisy, _ = make_noisy_labels(
        y_true, noise_rate=NOISE_RATE, kind="symmetric", random_state=seed
    )
    return X, y_true, y_noisy, X_test, y_test


def run_one(
    name: str,
    imbalance: float,
    division: str,
    seed: int,
    epochs: int,
    params: dict | None = None,
    tag: str | None = None,
) -> dict:
    """One DivideMix fit: ``division`` (a key of DIVISIONS), or the study's
    settings plus ``params`` cached under ``tag``."""
    X, y_true, y_noisy, X_test, y_test = noisy_cell(name, imbalance, seed)
    settings = {"division": division, **(params or {})}
    division = settings["division"]
    settings["division"] = DIVISIONS.get(division, division)
    clf = DivideMixClassifier(
        max_epochs=epochs, normalize=False, device="cpu", random_state=seed
    ).set_params(**settings)
    start = time.perf_counter()
    clf.fit(X, y_noisy)
    seconds = time.perf_counter() - start
    n_classes = len(clf.classes_)
    rare = np.arange(n_classes)[n_classes // 2 :]
    run = {"dataset": name, "imbalance": imbalance, "division": division}
    if tag is not None:
        run |= {"tag": tag, "params": params or {}}
        run |= {"lambda_u_": clf.lambda_u_, "noise_floor_": clf.noise_floor_}
    run |= {"seed": seed, "epochs": epochs, "n_train": len(y_true), "fit_s": seconds}
    run["notes"] = sorted({n for row in clf.history_ for n in row.get("notes", [])})
    run["trusted"] = bool(clf.fit_verdict_["trusted"])
    run["separation"] = [float(d["separation"]) for d in clf.final_divisions_]
    run["warmup_epochs"] = clf.warmup_epochs_
    return run | measure(clf, y_true, y_noisy, X_test, y_test, rare)


def run_baseline(
    name: str, imbalance: float, baseline: str, seed: int, epochs: int
) -> dict:
    """One baseline fit (a key of BASELINES) on the noisy labels of a cell."""
    X, y_true, y_noisy, X_test, y_test = noisy_cell(name, imbalance, seed)
    start = time.perf_counter()
    net = fit_baseline(baseline, X, y_noisy, epochs=epochs, seed=seed)
    seconds = time.perf_counter() - start
    budget = dividemix_budget(epochs)
    run = {"dataset": name, "imbalance": imbalance, "baseline": baseline}
    run |= {"seed": seed, "epochs": epochs, "n_train": len(y_true), "fit_s": seconds}
    run |= {"lr": budget.lr, "batch_size": budget.batch_size}
    run |= {"lr_decay": budget.lr_decay, "sampling": _SAMPLING[BASELINES[baseline]]}
    return run | accuracies(net.predict(X_test), y_test)


_SAMPLING = {False: "shuffled", True: "class-balanced, with replacement"}
# the cache key of a run: (dataset, imbalance, row name, seed, epochs)
_key = run_key


def load_cache(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def print_run(run: dict) -> None:
    detection = ""
    if "f1_rare_given" in run:
        detection = (
            f"rare F1 {run['f1_rare_given']:.3f} (true-class "
            f"{run['f1_rare_true']:.3f}, kept {run['f1_kept_rare_given']:.3f}), "
            f"clean rare flagged {run['clean_rare_flagged']:.1%}, "
        )
    print(
        f"{run['dataset']:>13} x{run['imbalance']:<3g} {_key(run)[2]:>22} "
        f"s{run['seed']}: {detection}test {run['test_accuracy']:.4f}, "
        f"balanced {run['balanced_accuracy']:.4f}, per class "
        + " ".join(f"{a:.2f}" for a in run["class_accuracy"])
        + f"  ({run['fit_s']:.0f} s)",
        flush=True,
    )


def size_check(seed: int = 0) -> None:
    """How small a class may be and still deserve a mixture of its own.

    Each of 300 classes per row draws bimodal losses (right labels:
    half-normal, scale 0.1; wrong ones: N(0.5, 0.15)) and is split by its own
    mixture. Printed: the mean error of the split against the truth, its
    excess over the error of 1,000-sample classes, the error of the true
    densities' cut (Bayes), and the share of splits that are not bimodal.
    """
    rng = np.random.RandomState(seed)
    sizes = (1000, 5, 10, 20, 30, 50, 100)
    print("right share  size  mean error  excess  Bayes error  not bimodal")
    for clean_share in (0.2, 0.5, 0.8):
        reference = None
        for size in sizes:
            errors, bayes, degenerate = [], [], []
            for _ in range(300):
                is_clean = rng.rand(size) < clean_share
                losses = np.where(
                    is_clean,
                    np.abs(rng.normal(0, 0.1, size)),
                    rng.normal(0.5, 0.15, size),
                )
                division = divide_losses(normalize_losses(losses), random_state=0)
                errors.append(np.mean((division.clean_proba > 0.5) != is_clean))
                bayes.append(np.mean((losses < _bayes_cut(clean_share)) != is_clean))
                degenerate.append(division.degenerate)
            error = float(np.mean(errors))
            reference = error if reference is None else reference
            print(
                f"{clean_share:11.1f}  {size:4d}  {error:10.3f}  "
                f"{error - reference:+6.3f}  {np.mean(bayes):11.3f}  "
                f"{np.mean(degenerate):11.1%}"
            )


def _bayes_cut(clean_share: float) -> float:
    """Loss where the two true densities of ``size_check`` cross."""
    grid = np.linspace(0, 1, 10001)
    clean = 2 * clean_share * np.exp(-0.5 * (grid / 0.1) ** 2) / 0.1
    wrong = (1 - clean_share) * np.exp(-0.5 * ((grid - 0.5) / 0.15) ** 2) / 0.15
    return float(grid[np.argmax(wrong > clean)])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The study's arguments; ``--dividemix`` read into ``args.params``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist"])
    parser.add_argument("--imbalances", nargs="+", type=float, default=[50.0, 20.0])
    # nargs="*": "--divisions" alone runs none (e.g. the baselines only)
    parser.add_argument("--divisions", nargs="*", default=list(DIVISIONS))
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument(
        "--dividemix",
        nargs="+",
        metavar="NAME=VALUE",
        help="a DivideMix row of the study's settings plus these (needs --tag)",
    )
    parser.add_argument("--tag", help="the row name and cache key of --dividemix")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output-dir", type=Path, default=ROOT)
    parser.add_argument("--sizes", action="store_true", help="only the size check")
    args = parser.parse_args(argv)
    for option, names, known in (
        ("--divisions", args.divisions, DIVISIONS),
        ("--baselines", args.baselines, BASELINES),
    ):
        if unknown := sorted(set(names) - set(known)):
            parser.error(f"{option}: unknown {unknown}; known: {list(known)}")
    if (args.dividemix is None) != (args.tag is None):
        parser.error("--dividemix and --tag go together")
    if args.tag in (*DIVISIONS, *BASELINES):
        parser.error(f"--tag {args.tag!r} is the name of a built-in row")
    args.params = dict(parse_param(text) for text in args.dividemix or [])
    if fixed := sorted(set(args.params) & {"max_epochs", "random_state"}):
        parser.error(f"--dividemix: set {fixed} through --epochs and --seeds")
    return args


def planned(args: argparse.Namespace) -> list[tuple[tuple, functools.partial]]:
    """The fits asked for, as (cache key, fit) pairs; baselines first."""
    jobs = []
    cells = itertools.product(args.datasets, args.imbalances, args.seeds)
    for name, imbalance, seed in cells:
        cell, tail = (name, imbalance), (seed, args.epochs)
        for b in args.baselines:
            fit = functools.partial(run_baseline, *cell, b, *tail)
            jobs.append(((*cell, b, *tail), fit))
        for d in args.divisions:
            jobs.append(
                ((*cell, d, *tail), functools.partial(run_one, *cell, d, *tail))
            )
        if args.tag is not None:
            fit = functools.partial(
                run_one, *cell, "global", *tail, params=args.params, tag=args.tag
            )
            jobs.append(((*cell, args.tag, *tail), fit))
    return jobs


def check_tag(runs: list[dict], tag: str | None, params: dict) -> None:
    """Refuse a tag the cache holds with other parameters."""
    # through JSON, as the cache holds them (a tuple comes back a list)
    wanted = json.loads(json.dumps(params))
    for run in runs:
        if tag is not None and run.get("tag") == tag and run["params"] != wanted:
            raise ValueError(
                f"tag {tag!r} is cached with {run['params']}, not {wanted}; "
                "choose another tag"
            )


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the fits the cache lacks, then write the JSON and the page."""
    args = parse_args(argv)
    if args.sizes:
        size_check()
        return []
    # one thread: on a shared CPU, more oversubscribe and slow every fit
    torch.set_num_threads(args.threads)
    results = args.output_dir / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    cache_path = results / "long_tail_runs.jsonl"
    runs = load_cache(cache_path)
    check_tag(runs, args.tag, args.params)
    done = {_key(run) for run in runs}
    for key, fit in planned(args):
        if key in done:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = fit()
        print_run(run)
        runs.append(run)
        done.add(key)
        with cache_path.open("a") as cache:
            cache.write(json.dumps(run) + "\n")
    write_outputs(runs, args.output_dir)
    return runs


def write_outputs(runs: list[dict], output_dir: Path) -> None:
    """``benchmarks/results/long_tail.json`` and ``docs/long_tail.md``."""
    rows = summarize(runs, order=[*BASELINES, *DIVISIONS])
    payload = {"meta": machine_info(), "summary": rows, "runs": runs}
    write_json(output_dir / "benchmarks" / "results" / "long_tail.json", payload)
    page = markdown(rows, runs, MIN_CLASS_SIZE)
    _pages.write_page(output_dir / "docs" / "long_tail.md", page)
    for row in rows:
        print(
            f"{row['dataset']:>13} x{row['imbalance']:<3g} {row['row']:>22}: "
            f"balanced accuracy {row['balanced_accuracy']:.4f} (vs global "
            f"{points(row['delta_balanced_accuracy'])}, vs CE "
            f"{points(row['delta_balanced_accuracy_ce'])}), lost vs CE: "
            f"{row['lost_vs_ce_seeds']}"
        )


if __name__ == "__main__":
    main()
