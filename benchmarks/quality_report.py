"""Render the quality benchmark's runs as markdown tables, target checks and plots.

The markdown file is regenerated on every run, except the hand-written
analysis between ``<!-- analysis:start -->`` and ``<!-- analysis:end -->``,
which is carried over from the existing file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["aggregate", "check_targets", "write_report"]

METHOD_NAMES = {
    "dividemix": "DivideMix",
    "cross_entropy": "cross-entropy",
    "cleanlearning": "CleanLearning",
    "oracle": "clean-label oracle",
}
NOISE_NAMES = {
    "sym20": "sym 20 %",
    "sym50": "sym 50 %",
    "sym80": "sym 80 %",
    "asym40": "asym 40 %",
}
DATASET_NAMES = {
    "digits": "digits",
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
}
ANALYSIS = re.compile(r"<!-- analysis:start -->.*?<!-- analysis:end -->", re.S)
DEFAULT_ANALYSIS = (
    "<!-- analysis:start -->\n_No analysis written yet._\n<!-- analysis:end -->"
)


def _stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "n": len(values),
    }


def aggregate(runs: list[dict]) -> dict:
    """Mean and spread over seeds, per (dataset, noise, method).

    The oracle is trained once per seed on the true labels; its numbers are
    repeated under every noise setting of its data set.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    noises = defaultdict(set)
    for run in runs:
        groups[run["dataset"], run["noise"], run["method"]].append(run)
        noises[run["dataset"]].add(run["noise"])
    table = {}
    for (dataset, noise, method), members in groups.items():
        targets = sorted(noises[dataset]) if method == "oracle" else [noise]
        detection = [m["detection"] or {} for m in members]
        entry = {
            "accuracy": _stats([m["test_accuracy"] for m in members]),
            "fit_seconds": _stats([m["fit_seconds"] for m in members]),
            "peak_rss_mib": _stats([m["peak_rss_mib"] for m in members]),
            "peak_rss_increase_mib": _stats(
                [m.get("peak_rss_increase_mib") for m in members]
            ),
            "realized_noise": _stats([m["realized_noise"] for m in members]),
        }
        for metric in ("precision", "recall", "f1", "roc_auc", "flagged_fraction"):
            entry[metric] = _stats([d.get(metric) for d in detection])
        for target in targets:
            table[dataset, target, method] = entry
    return table


def _get(table, dataset, noise, method, metric="accuracy"):
    entry = table.get((dataset, noise, method))
    return None if entry is None else entry[metric]["mean"]


def check_targets(table: dict) -> list[dict]:
    """Each target of the issue, per data set and noise: met or missed, margin."""
    checks = []
    datasets = sorted({d for d, _, _ in table}, key=list(DATASET_NAMES).index)

    def add(target, dataset, noise, value, reference, margin_needed, higher=True):
        if value is None or reference is None:
            return
        margin = value - reference if higher else reference - value
        checks.append(
            {
                "target": target,
                "dataset": dataset,
                "noise": noise,
                "value": value,
                "reference": reference,
                "margin": margin - margin_needed,
                "met": bool(margin - margin_needed >= 0),
            }
        )

    for dataset in datasets:
        dm = {n: _get(table, dataset, n, "dividemix") for n in NOISE_NAMES}
        for noise in ("sym50", "sym80", "asym40"):
            for rival in ("cross_entropy", "cleanlearning"):
                ref = _get(table, dataset, noise, rival)
                # "beats" means strictly better; 0.0 margin is a tie, not a win.
                add(
                    f"beats {METHOD_NAMES[rival]}", dataset, noise, dm[noise], ref, 1e-9
                )
        add(
            "not worse than cross-entropy",
            dataset,
            "sym20",
            dm["sym20"],
            _get(table, dataset, "sym20", "cross_entropy"),
            0.0,
        )
        if dataset in ("digits", "mnist", "fashion_mnist"):
            oracle = _get(table, dataset, "sym50", "oracle")
            add(
                "within 3 points of the oracle",
                dataset,
                "sym50",
                dm["sym50"],
                oracle,
                -0.03,
            )
        if dataset in ("digits", "mnist"):
            f1 = _get(table, dataset, "sym50", "dividemix", "f1")
            add("detection F1 >= 0.95", dataset, "sym50", f1, 0.95, 0.0)
        for noise in NOISE_NAMES:
            add(
                "detection F1 above CleanLearning's",
                dataset,
                noise,
                _get(table, dataset, noise, "dividemix", "f1"),
                _get(table, dataset, noise, "cleanlearning", "f1"),
                1e-9,
            )
    return checks


def _fmt(stats: dict, scale: float = 100.0, digits: int = 1) -> str:
    if stats["mean"] is None:
        return "–"
    text = f"{stats['mean'] * scale:.{digits}f}"
    if stats["n"] > 1:
        text += f" ± {stats['std'] * scale:.{digits}f}"
    return text


def _keys(table):
    datasets = sorted({d for d, _, _ in table}, key=list(DATASET_NAMES).index)
    noises = [n for n in NOISE_NAMES if any(k[1] == n for k in table)]
    methods = [m for m in METHOD_NAMES if any(k[2] == m for k in table)]
    return datasets, noises, methods


def accuracy_table(table: dict) -> str:
    datasets, noises, methods = _keys(table)
    head = "| data set | noise | " + " | ".join(METHOD_NAMES[m] for m in methods)
    lines = [head + " |", "|---|---|" + "---:|" * len(methods)]
    for dataset in datasets:
        for noise in noises:
            if (dataset, noise, "dividemix") not in table:
                continue
            best = max(
                (_get(table, dataset, noise, m) or 0.0)
                for m in methods
                if m != "oracle"
            )
            cells = []
            for m in methods:
                entry = table.get((dataset, noise, m))
                text = "–" if entry is None else _fmt(entry["accuracy"])
                if m != "oracle" and entry and entry["accuracy"]["mean"] == best:
                    text = f"**{text}**"
                cells.append(text)
            name = DATASET_NAMES[dataset]
            lines.append(
                f"| {name} | {NOISE_NAMES[noise]} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def detection_table(table: dict) -> str:
    datasets, noises, _ = _keys(table)
    metrics = ("precision", "recall", "f1", "roc_auc")
    head = "| data set | noise | flipped | "
    head += " | ".join(f"DM {m}" for m in ("P", "R", "F1", "AUC")) + " | "
    head += " | ".join(f"CL {m}" for m in ("P", "R", "F1", "AUC")) + " |"
    lines = [head, "|---|---|---:|" + "---:|" * 8]
    for dataset in datasets:
        for noise in noises:
            dm = table.get((dataset, noise, "dividemix"))
            cl = table.get((dataset, noise, "cleanlearning"))
            if dm is None:
                continue
            cells = [_fmt(dm["realized_noise"], digits=1)]
            for entry in (dm, cl):
                for metric in metrics:
                    cells.append("–" if entry is None else _fmt(entry[metric]))
            name = DATASET_NAMES[dataset]
            lines.append(
                f"| {name} | {NOISE_NAMES[noise]} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def cost_table(runs: list[dict]) -> str:
    groups = defaultdict(list)
    for run in runs:
        groups[run["dataset"], run["method"]].append(run)
    datasets = sorted({d for d, _ in groups}, key=list(DATASET_NAMES).index)
    lines = [
        "| data set | method | fit time (s) | peak RSS (MiB) "
        "| median peak increase (MiB) |",
        "|---|---|---:|---:|---:|",
    ]
    for dataset in datasets:
        for method in METHOD_NAMES:
            members = groups.get((dataset, method))
            if not members:
                continue
            fit = _stats([m["fit_seconds"] for m in members])
            rss = _stats([m["peak_rss_mib"] for m in members])
            increases = [m.get("peak_rss_increase_mib") for m in members]
            increases = [v for v in increases if v is not None]
            inc = f"{np.median(increases):.0f}" if increases else "–"
            lines.append(
                f"| {DATASET_NAMES[dataset]} | {METHOD_NAMES[method]} | "
                f"{_fmt(fit, 1.0, 1)} | {_fmt(rss, 1.0, 0)} | {inc} |"
            )
    return "\n".join(lines)


def targets_section(checks: list[dict]) -> str:
    met = sum(c["met"] for c in checks)
    lines = [
        f"{met} of {len(checks)} checks met. Margins are in accuracy points "
        "(or F1 points); a negative margin is the shortfall. For 'within 3 "
        "points of the oracle' the margin is what is left of the 3 points.",
        "",
        "| target | data set | noise | DivideMix | reference | margin | met |",
        "|---|---|---|---:|---:|---:|:---:|",
    ]
    for c in checks:
        lines.append(
            f"| {c['target']} | {DATASET_NAMES[c['dataset']]} | "
            f"{NOISE_NAMES[c['noise']]} | {100 * c['value']:.1f} | "
            f"{100 * c['reference']:.1f} | {100 * c['margin']:+.1f} | "
            f"{'yes' if c['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def _setup_section(result: dict) -> str:
    lines = [
        "| data set | train / test | input, module | epochs | batch | lr | seeds |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    shapes = {}
    for run in result["runs"]:
        shapes[run["dataset"]] = (
            run["n_train"],
            run["n_test"],
            run["input_shape"],
            run["module"],
        )
    for suite in result["suites"]:
        name = suite["dataset"]
        if name not in shapes:
            continue
        n_train, n_test, shape, module = shapes[name]
        budget = suite["budget"]
        shape_text = "x".join(str(s) for s in shape)
        lines.append(
            f"| {DATASET_NAMES[name]} | {n_train} / {n_test} | {shape_text}, "
            f"{module} | {budget['max_epochs']} | {budget['batch_size']} | "
            f"{budget['lr']} | {', '.join(map(str, suite['seeds']))} |"
        )
    return "\n".join(lines)


def _machine_line(result: dict) -> str:
    m = result["machine"]
    total = sum(r["fit_seconds"] + r["predict_seconds"] for r in result["runs"])
    return (
        f"{m['cpu']}, {m['logical_cpus']} logical CPUs (shared with other jobs), "
        f"{m['torch_threads']} torch thread(s); Python {m['python']}, torch "
        f"{m['torch']}, skorch {m['skorch']}, scikit-learn {m['scikit-learn']}, "
        f"cleanlab {m['cleanlab']}. Sum of fit and predict times over all "
        f"{len(result['runs'])} runs: {total / 60:.1f} min."
    )


def write_report(result: dict, markdown: Path, images: Path) -> dict:
    """Write the markdown report and the two plots; return their paths."""
    from quality_plots import plot_metric
    from quality_template import TEMPLATE

    table = aggregate(result["runs"])
    datasets, _, methods = _keys(table)
    accuracy_png = plot_metric(
        table,
        datasets,
        "accuracy",
        methods,
        METHOD_NAMES,
        DATASET_NAMES,
        "last-epoch test accuracy (%)",
        images / "benchmark_accuracy.png",
    )
    detection_png = plot_metric(
        table,
        datasets,
        "f1",
        ["dividemix", "cleanlearning"],
        METHOD_NAMES,
        DATASET_NAMES,
        "noise-detection F1 (%)",
        images / "benchmark_detection_f1.png",
    )
    previous = markdown.read_text() if markdown.exists() else ""
    found = ANALYSIS.search(previous)
    analysis = found.group(0) if found else DEFAULT_ANALYSIS
    rel = Path(_relative(accuracy_png, markdown.parent))
    rel_f1 = Path(_relative(detection_png, markdown.parent))
    text = TEMPLATE.format(
        command=result["command"],
        machine=_machine_line(result),
        setup=_setup_section(result),
        accuracy=accuracy_table(table),
        detection=detection_table(table),
        cost=cost_table(result["runs"]),
        targets=targets_section(check_targets(table)),
        accuracy_png=rel.as_posix(),
        detection_png=rel_f1.as_posix(),
        analysis=analysis,
    )
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(text)
    return {"accuracy_png": accuracy_png, "detection_png": detection_png}


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())
