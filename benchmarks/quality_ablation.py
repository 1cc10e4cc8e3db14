"""The ablation table of the quality report: DivideMix variants side by side.

Every DivideMix run of a setting whose budget pins parameters (the
``--dividemix NAME=VALUE`` variants) or that ran under an earlier set of
defaults is one row per variant: mean test accuracy and detection F1 over
the seeds run, per noise, next to plain cross-entropy and CleanLearning of
the same cells. Rows are told apart by what they pin and by the digest of
the defaults they ran under.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .quality_tables import NOISE_NAMES, setting_of

__all__ = ["ablation_table", "same_suite", "variant_label"]

BASELINES = ("cross_entropy", "cleanlearning")


def variant_label(run: dict) -> str:
    """A DivideMix run's variant: the parameters it pins, and its defaults."""
    pinned = run["budget"].get("dividemix") or {}
    text = ", ".join(f"{k}={v!r}" for k, v in sorted(pinned.items()))
    defaults = run.get("dividemix_defaults", "before 0.3")
    return f"{text or 'defaults'} [defaults {defaults}]"


def _mean(values: list[float]) -> str:
    if not values:
        return "·"
    return f"{100 * np.mean(values):.1f} (n={len(values)})"


def same_suite(run: dict, reference: dict) -> bool:
    """Whether ``run`` is a cell of the suite of ``reference`` (a run or cell):
    same data subset, input preparation and epochs."""
    keys = ("dataset", "n_train", "n_test", "input_shape")
    return (
        all(run.get(k) == reference.get(k) for k in keys)
        and bool(run.get("input_standardised"))
        == bool(reference.get("input_standardised"))
        and run["budget"]["max_epochs"] == reference["budget"]["max_epochs"]
    )


def _rows(runs: list[dict], setting: str) -> dict[str, dict[str, list]]:
    rows: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if setting_of(run) != setting:
            continue
        method = run["method"]
        if method == "dividemix":
            label = variant_label(run)
        elif method in BASELINES:
            label = method
        else:
            continue
        rows[label][run["noise"]].append(run)
    return rows


def ablation_table(runs: list[dict], setting: str, noises: list[str]) -> str:
    """Markdown: one row per DivideMix variant (and baseline), a column per noise.

    Each cell is the mean last-epoch test accuracy (%) over the seeds run, with
    their number, then the mean detection F1 where the method flags labels.
    """
    suites = [r for r in runs if setting_of(r) == setting and r["method"] == "oracle"]
    if suites:
        # the suite of the newest oracle run: older suites of the same data
        # (other subsets, raw pixels) are left out
        runs = [r for r in runs if same_suite(r, suites[-1])]
    rows = _rows(runs, setting)
    head = "| variant | " + " | ".join(NOISE_NAMES.get(n, n) for n in noises) + " |"
    lines = [head, "|---|" + "---:|" * len(noises)]
    order = sorted(rows, key=lambda label: (label in BASELINES, label))
    for label in order:
        cells = []
        for noise in noises:
            found = rows[label].get(noise, [])
            accuracy = _mean([r["test_accuracy"] for r in found])
            f1 = [r["detection"]["f1"] for r in found if r.get("detection")]
            cells.append(accuracy + (f", F1 {np.mean(f1):.3f}" if f1 else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    from ._common import RESULTS_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setting", help="e.g. fashion_mnist/images")
    parser.add_argument("--noises", nargs="+", default=["sym20", "sym50", "sym80"])
    args = parser.parse_args()
    cache = RESULTS_DIR / "quality_runs.jsonl"
    all_runs = [json.loads(line) for line in cache.read_text().splitlines() if line]
    print(ablation_table(all_runs, args.setting, args.noises + ["asym40"]))
