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
new ones are one row. Every finished run is
appended to a JSON-lines cache, so an interrupted benchmark resumes; at the
end the runs go to ``benchmarks/results/long_tail.json`` and a table to
``docs/long_tail.md``.

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.studies.long_tail      # Fashion-MNIST, 20 and 50
    nice -n 10 python -m benchmarks.studies.long_tail --datasets mnist
    python -m benchmarks.studies.long_tail --sizes  # smallest class for a mixture
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._class_division import MIN_CLASS_SIZE, divide_losses_per_class
from sklearn_dividemix._division import divide_losses, normalize_losses

from .. import _pages
from .._common import ROOT, machine_info, write_json
from .._data import archive, flat
from .._pages import points, table_head, table_row

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


def measure(clf, y_true, y_noisy, X_test, y_test, rare) -> dict:
    """Detection on the rare half, test accuracies, per-class figures."""
    flagged, is_flipped = ~clf.clean_mask_, y_noisy != y_true
    given_rare, true_rare = np.isin(y_noisy, rare), np.isin(y_true, rare)
    predicted = clf.predict(X_test)
    classes = np.unique(y_test)
    return {
        "f1_rare_given": _f1(is_flipped, flagged, given_rare),
        "f1_rare_true": _f1(is_flipped, flagged, true_rare),
        "f1_all": _f1(is_flipped, flagged, np.ones_like(flagged)),
        # the labeled set of the rare classes: how clean and how complete
        "f1_kept_rare_given": _f1(~is_flipped, ~flagged, given_rare),
        "clean_rare_flagged": float(flagged[true_rare & ~is_flipped].mean()),
        "flagged_fraction": float(flagged.mean()),
        "test_accuracy": float(np.mean(predicted == y_test)),
        "balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
        "class_accuracy": [
            float(np.mean(predicted[y_test == c] == c)) for c in classes
        ],
        "class_flagged": [float(flagged[y_noisy == c].mean()) for c in classes],
        "class_wrong": [float(is_flipped[y_noisy == c].mean()) for c in classes],
        # the flags themselves, so that other metrics can be computed later
        "flagged_bits": np.packbits(flagged).tobytes().hex(),
    }


def run_one(name: str, imbalance: float, division: str, seed: int, epochs: int):
    X, y_true, X_test, y_test = load_long_tail(name, imbalance)
    y_noisy, _ = make_noisy_labels(
        y_true, noise_rate=NOISE_RATE, kind="symmetric", random_state=seed
    )
    clf = DivideMixClassifier(
        max_epochs=epochs,
        normalize=False,
        division=DIVISIONS[division],
        device="cpu",
        random_state=seed,
    )
    start = time.perf_counter()
    clf.fit(X, y_noisy)
    seconds = time.perf_counter() - start
    n_classes = len(clf.classes_)
    rare = np.arange(n_classes)[n_classes // 2 :]
    run = {"dataset": name, "imbalance": imbalance, "division": division}
    run |= {"seed": seed, "epochs": epochs, "n_train": len(y_true), "fit_s": seconds}
    run["notes"] = sorted({n for row in clf.history_ for n in row.get("notes", [])})
    run["trusted"] = bool(clf.fit_verdict_["trusted"])
    run["separation"] = [float(d["separation"]) for d in clf.final_divisions_]
    run["warmup_epochs"] = clf.warmup_epochs_
    return run | measure(clf, y_true, y_noisy, X_test, y_test, rare)


def _key(run: dict) -> tuple:
    return run["dataset"], run["imbalance"], run["division"], run["seed"], run["epochs"]


def load_cache(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def print_run(run: dict) -> None:
    print(
        f"{run['dataset']:>13} x{run['imbalance']:<3g} {run['division']:>13} "
        f"s{run['seed']}: rare F1 {run['f1_rare_given']:.3f} "
        f"(true-class {run['f1_rare_true']:.3f}, kept {run['f1_kept_rare_given']:.3f})"
        f", clean rare flagged "
        f"{run['clean_rare_flagged']:.1%}, test {run['test_accuracy']:.4f}, "
        f"balanced {run['balanced_accuracy']:.4f}, per class "
        + " ".join(f"{a:.2f}" for a in run["class_accuracy"])
        + f"  ({run['fit_s']:.0f} s)",
        flush=True,
    )


def summarize(runs: list[dict]) -> list[dict]:
    """Mean over seeds per (dataset, imbalance, division), deltas to global."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(_key(run)[:3], []).append(run)
    metrics = ("f1_rare_given", "f1_rare_true", "f1_kept_rare_given", "f1_all")
    metrics += ("clean_rare_flagged",)
    metrics += ("test_accuracy", "balanced_accuracy")
    rows = []
    for (dataset, imbalance, division), members in groups.items():
        row = {"dataset": dataset, "imbalance": imbalance, "division": division}
        row["n_seeds"] = len(members)
        for metric in (*metrics, "class_accuracy"):
            row[metric] = np.mean([m[metric] for m in members], axis=0).tolist()
        rows.append(row)
    base = {
        (r["dataset"], r["imbalance"]): r for r in rows if r["division"] == "global"
    }
    for row in rows:
        ref = base.get((row["dataset"], row["imbalance"]))
        for metric in ("f1_rare_given", "f1_rare_true", "balanced_accuracy"):
            row[f"delta_{metric}"] = None if ref is None else row[metric] - ref[metric]
        row["seed_deltas_balanced_accuracy"] = _seed_deltas(runs, row)
    order = list(DIVISIONS)
    return sorted(
        rows, key=lambda r: (r["dataset"], r["imbalance"], order.index(r["division"]))
    )


def _seed_deltas(runs: list[dict], row: dict) -> list[float]:
    """Balanced accuracy minus the global division's, seed by seed."""
    by_key = {_key(run): run for run in runs}
    deltas = []
    for run in runs:
        if _key(run)[:3] != (row["dataset"], row["imbalance"], row["division"]):
            continue
        ref = by_key.get((run["dataset"], run["imbalance"], "global", *_key(run)[3:]))
        if ref is not None:
            deltas.append(run["balanced_accuracy"] - ref["balanced_accuracy"])
    return deltas


def markdown(rows: list[dict], runs: list[dict]) -> str:
    """The page ``docs/long_tail.md``: what was run and the table."""
    lines = table_head(
        [
            "data",
            "imbalance",
            "division",
            "seeds",
            "rare F1 (given)",
            "vs global",
            "rare F1 (true class)",
            "vs global",
            "kept rare F1",
            "clean rare flagged",
            "test acc.",
            "balanced acc.",
            "vs global",
            # the header had no column for these before: its rows had one more
            "per seed",
            "per-class test accuracy, % (class 0 largest)",
        ]
    )
    for r in rows:
        per_class = " ".join(f"{100 * a:.0f}" for a in r["class_accuracy"])
        cells = [r["dataset"], f"{r['imbalance']:g}", r["division"], r["n_seeds"]]
        cells += [f"{r['f1_rare_given']:.3f}", points(r["delta_f1_rare_given"])]
        cells += [f"{r['f1_rare_true']:.3f}", points(r["delta_f1_rare_true"])]
        cells += [f"{r['f1_kept_rare_given']:.3f}", f"{r['clean_rare_flagged']:.1%}"]
        cells += [f"{r['test_accuracy']:.4f}", f"{r['balanced_accuracy']:.4f}"]
        cells += [points(r["delta_balanced_accuracy"])]
        cells += [" ".join(map(points, r["seed_deltas_balanced_accuracy"])), per_class]
        lines.append(table_row(cells))
    epochs = ", ".join(str(e) for e in sorted({run["epochs"] for run in runs}))
    body = "\n".join(lines) + "\n"
    return PAGE.format(epochs=epochs, table=body, min_class_size=MIN_CLASS_SIZE)


PAGE = """# Division on long-tailed data

Generated by `python -m benchmarks.studies.long_tail`. Training subsets of
Fashion-MNIST and MNIST whose class sizes fall geometrically from 1,500
(class 0) to 1,500 / imbalance (class 9); 40 % symmetric noise in the paper's
sense (the new label drawn from all ten classes); the default MLP on pixels
scaled to [0, 1] (`normalize=False`), default parameters, {epochs} epochs, on
a CPU. Test accuracy is on the full, (almost) balanced test set.

Symmetric noise moves the same number of labels *into* every class, so the
given labels of a rare class are mostly wrong: at imbalance 50, 77-92 % of
the labels given as one of the three rarest classes are wrong (72 % for
class 6, shirt, the hardest class of Fashion-MNIST, which sits in the tail).

- *rare F1 (given)*: F1 of the noise flags (`~clean_mask_`) against the true
  flips, over the samples whose given label is in the rare half (classes 5-9);
  *vs global*: the difference to the global division, in points.
- *rare F1 (true class)*: the same over samples whose true class is rare.
- *kept rare F1*: F1 of the kept labels (`clean_mask_`) against the right
  ones, over samples whose given label is rare: how clean and how complete
  the rare classes' labeled set is.
- *clean rare flagged*: share of the correct labels of rare-class samples
  that the division calls noisy.
- *balanced acc.*: `balanced_accuracy_score` on the test set.

Divisions: `global`, the paper's single mixture; `per_class`, a mixture per
given class on that class's min-max normalised losses, a class of fewer
than {min_class_size} samples or whose own split is not bimodal (where the
global one is) taking the global posteriors; `per_class_raw`, the same
without that trust check; `balanced`, every class keeping the share the
global split keeps overall, lowest losses first.

{table}
## Reading the table

Written from the three seeds recorded above.

- The global split's failure is real on Fashion-MNIST: it calls 26-34 % of
  the right labels of the rare classes wrong, 73-96 % of them in class 6
  (shirt), whose right labels it flags wholesale in every run.
  `per_class` keeps most of them: 4 % flagged at imbalance 20, 15 % at 50,
  where in one seed class 6's own split was not bimodal and the trust check
  gave it the global posteriors. Hence the large gain in *rare F1 (true
  class)*. Shirts are not learned for all that (0-20 % test accuracy with
  every division): most labels given as class 6 are wrong, and it is the
  hardest class.
- The balanced accuracy gained at imbalance 50 comes from whole classes that
  the global split loses in some seeds and the per-class one does not
  (Fashion-MNIST: ankle boot at seed 1, coat at seed 2, 0 % under `global`;
  MNIST: digit 8 at seed 0); it varies much between seeds (*per seed*).
- `per_class` pays on the samples *labelled* rare: keeping more of classes
  in which most labels are wrong keeps some wrong ones, so *rare F1 (given)*
  falls by 2.4 points at imbalance 50 on Fashion-MNIST.
- The trust check (`per_class` against `per_class_raw`) costs no accuracy
  and loses less detection on the labelled-rare samples: a class whose own
  losses are one bump is split no better by its own mixture than by the
  global one.
- Class-balanced selection (`balanced`) assumes that every class has about
  the same share of wrong labels. Under symmetric noise on long-tailed data
  the rare classes have far more, so it keeps many wrong labels there:
  detection on the samples labelled rare drops by 11-22 points, and the
  accuracy moves from -8.5 to +2 points with the data set.
"""


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist"])
    parser.add_argument("--imbalances", nargs="+", type=float, default=[50.0, 20.0])
    parser.add_argument("--divisions", nargs="+", default=list(DIVISIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output-dir", type=Path, default=ROOT)
    parser.add_argument("--sizes", action="store_true", help="only the size check")
    args = parser.parse_args()
    if args.sizes:
        size_check()
        return
    results = args.output_dir / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    cache_path = results / "long_tail_runs.jsonl"
    runs = load_cache(cache_path)
    done = {_key(run) for run in runs}
    for name in args.datasets:
        for imbalance in args.imbalances:
            for seed in args.seeds:
                for division in args.divisions:
                    key = (name, imbalance, division, seed, args.epochs)
                    if key in done:
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        run = run_one(name, imbalance, division, seed, args.epochs)
                    print_run(run)
                    runs.append(run)
                    with cache_path.open("a") as cache:
                        cache.write(json.dumps(run) + "\n")
    write_outputs(runs, args.output_dir)


def write_outputs(runs: list[dict], output_dir: Path) -> None:
    rows = summarize(runs)
    payload = {"meta": machine_info(), "summary": rows, "runs": runs}
    write_json(output_dir / "benchmarks" / "results" / "long_tail.json", payload)
    _pages.write_page(output_dir / "docs" / "long_tail.md", markdown(rows, runs))
    for row in rows:
        print(
            f"{row['dataset']:>13} x{row['imbalance']:<3g} {row['division']:>13}: "
            f"rare F1 {row['f1_rare_given']:.3f} "
            f"({points(row['delta_f1_rare_given'])}), true-class rare F1 "
            f"{row['f1_rare_true']:.3f} ({points(row['delta_f1_rare_true'])}), "
            "balanced accuracy "
            f"{row['balanced_accuracy']:.4f} "
            f"({points(row['delta_balanced_accuracy'])})"
        )


if __name__ == "__main__":
    main()
