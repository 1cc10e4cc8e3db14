"""Markdown tables of the quality benchmark's report, one setting per row group.

A *setting* is a data set in one input form (``'mnist/images'``); tables get
the settings of one form at a time from :mod:`benchmarks.quality_report`.
A cell of the grid with no run yet reads "not run yet"; a cell outside the
grid, "–".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DATASET_NAMES",
    "METHOD_NAMES",
    "NOISE_NAMES",
    "NOT_RUN",
    "Grid",
    "accuracy_table",
    "cost_table",
    "detection_table",
    "estimate_table",
    "form_of",
    "machine_line",
    "ordered_settings",
    "setting_label",
    "setting_of",
    "setup_table",
    "stats",
    "targets_section",
]

METHOD_NAMES = {
    "dividemix": "DivideMix",
    "cross_entropy": "cross-entropy",
    "cleanlearning": "CleanLearning",
    "cross_entropy_time": "cross-entropy, DivideMix's time",
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
MODULE_NAMES = {"MLPClassifierModule": "MLP", "SmallCNNClassifierModule": "CNN"}
NOT_RUN = "not run yet"


def form_of(cell: dict) -> str:
    """'vectors' for feature rows, 'images' for (C, H, W) inputs."""
    return "vectors" if len(cell.get("input_shape", [0])) == 1 else "images"


def setting_of(cell: dict) -> str:
    """A run's or cell's data set and input form, e.g. ``'mnist/images'``."""
    return f"{cell['dataset']}/{form_of(cell)}"


def setting_label(cell: dict) -> str:
    """E.g. "MNIST (1x28x28, CNN)" or "digits (64 features, MLP)"."""
    name = DATASET_NAMES[cell["dataset"]]
    shape = cell.get("input_shape")
    if shape is None:
        return name
    dims = f"{shape[0]} features" if len(shape) == 1 else "x".join(map(str, shape))
    module = MODULE_NAMES.get(cell.get("module"), cell.get("module"))
    return f"{name} ({dims}, {module})"


def ordered_settings(settings) -> list[str]:
    """Settings by input form (images first), then in the data sets' order."""
    forms, datasets = ["images", "vectors"], list(DATASET_NAMES)

    def key(setting: str) -> tuple[int, int]:
        dataset, form = setting.split("/")
        return forms.index(form), datasets.index(dataset)

    return sorted(set(settings), key=key)


def stats(values: list[float | None]) -> dict:
    """Mean, standard deviation and count of the values that are not None."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "n": len(values),
    }


def _fmt(entry: dict, scale: float = 100.0, digits: int = 1) -> str:
    if entry["mean"] is None:
        return "–"
    text = f"{entry['mean'] * scale:.{digits}f}"
    if entry["n"] > 1:
        text += f" ± {entry['std'] * scale:.{digits}f}"
    return text


@dataclass
class Grid:
    """Aggregated runs and the cells still pending, by (setting, noise, method)."""

    table: dict
    pending: set
    labels: dict

    def has_method(self, method: str) -> bool:
        return any(k[2] == method for k in (*self.table, *self.pending))

    def noises(self, setting: str) -> list[str]:
        keys = (*self.table, *self.pending)
        return [n for n in NOISE_NAMES if (setting, n) in {k[:2] for k in keys}]

    def cell(self, key: tuple, metric: str = "accuracy") -> str:
        entry = self.table.get(key)
        if entry is None:
            return NOT_RUN if key in self.pending else "–"
        # some seeds in, others not yet
        return _fmt(entry[metric]) + (" (partial)" if key in self.pending else "")

    def rows(self, settings: list[str]):
        """(setting, noise) of each table row: where DivideMix ran or will."""
        for setting in settings:
            for noise in self.noises(setting):
                key = (setting, noise, "dividemix")
                if key in self.table or key in self.pending:
                    yield setting, noise

    def line(self, setting: str, noise: str, cells: list[str]) -> str:
        label = f"| {self.labels[setting]} | {NOISE_NAMES[noise]} | "
        return label + " | ".join(cells) + " |"


def accuracy_table(grid: Grid, settings: list[str]) -> str:
    methods = [m for m in METHOD_NAMES if grid.has_method(m)]
    head = "| data set | noise | " + " | ".join(METHOD_NAMES[m] for m in methods)
    lines = [head + " |", "|---|---|" + "---:|" * len(methods)]
    for setting, noise in grid.rows(settings):
        means = {
            m: grid.table[setting, noise, m]["accuracy"]["mean"]
            for m in methods
            if (setting, noise, m) in grid.table
        }
        best = max((v or 0.0 for m, v in means.items() if m != "oracle"), default=0)
        cells = []
        for m in methods:
            text = grid.cell((setting, noise, m))
            if m != "oracle" and m in means and means[m] == best:
                text = f"**{text}**"
            cells.append(text)
        lines.append(grid.line(setting, noise, cells))
    return "\n".join(lines)


def detection_table(grid: Grid, settings: list[str]) -> str:
    metrics = ("precision", "recall", "f1", "roc_auc")
    head = "| data set | noise | flipped | "
    head += " | ".join(f"DM {m}" for m in ("P", "R", "F1", "AUC")) + " | "
    head += " | ".join(f"CL {m}" for m in ("P", "R", "F1", "AUC")) + " |"
    lines = [head, "|---|---|---:|" + "---:|" * 8]
    for setting, noise in grid.rows(settings):
        cells = [grid.cell((setting, noise, "dividemix"), "realized_noise")]
        for method in ("dividemix", "cleanlearning"):
            cells += [grid.cell((setting, noise, method), m) for m in metrics]
        lines.append(grid.line(setting, noise, cells))
    return "\n".join(lines)


def estimate_table(grid: Grid, settings: list[str]) -> str:
    """DivideMix's ``estimated_clean_accuracy`` against its true test accuracy."""
    head = (
        "| data set | noise | seeds | true | estimated | error | largest error "
        "| 95 % interval | says it can't |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for setting, noise in grid.rows(settings):
        entry = grid.table.get((setting, noise, "dividemix"))
        if entry is None or not entry["estimate"]["n"]:
            continue
        cells = [str(entry["estimate"]["n"])]
        cells += [
            _fmt(entry[m]) for m in ("estimate_truth", "estimate", "estimate_error")
        ]
        cells.append(_fmt(entry["estimate_max_error"]))
        width, unreliable = entry["estimate_half_width"], entry["says_unreliable"]
        cells.append("–" if width["mean"] is None else f"±{width['mean'] * 100:.1f}")
        cells.append(
            "–"
            if unreliable["mean"] is None
            else f"{round(unreliable['mean'] * unreliable['n'])} of {unreliable['n']}"
        )
        lines.append(grid.line(setting, noise, cells))
    if len(lines) == 2:
        return "_No DivideMix run has recorded the estimate yet._"
    return "\n".join(lines)


def cost_table(runs, missing, settings: list[str], labels: dict) -> str:
    groups, waiting = defaultdict(list), defaultdict(int)
    for run in runs:
        groups[setting_of(run), run["method"]].append(run)
    for cell in missing:
        waiting[setting_of(cell), cell["method"]] += 1
    lines = [
        "| data set | method | runs | fit time (s) | peak RSS (MiB) "
        "| median peak increase (MiB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for setting in settings:
        for method in METHOD_NAMES:
            members = groups.get((setting, method), [])
            count = f"{len(members)} of {len(members) + waiting[setting, method]}"
            name = f"| {labels[setting]} | {METHOD_NAMES[method]} | {count} |"
            if not members:
                if waiting[setting, method]:
                    lines.append(f"{name} {NOT_RUN} | | |")
                continue
            fit = stats([m["fit_seconds"] for m in members])
            rss = stats([m["peak_rss_mib"] for m in members])
            increases = [m.get("peak_rss_increase_mib") for m in members]
            increases = [v for v in increases if v is not None]
            inc = f"{np.median(increases):.0f}" if increases else "–"
            lines.append(f"{name} {_fmt(fit, 1.0, 1)} | {_fmt(rss, 1.0, 0)} | {inc} |")
    return "\n".join(lines)


def targets_section(checks: list[dict], labels: dict) -> str:
    done = [c for c in checks if c["met"] is not None]
    met = sum(c["met"] for c in done)
    waiting = len(checks) - len(done)
    lines = [
        f"{met} of {len(done)} checks met"
        + (f" ({waiting} more not run yet)" if waiting else "")
        + ". Margins are in accuracy points (or F1 points); a negative margin "
        "is the shortfall. For 'within 3 points of the oracle' the margin is "
        "what is left of the 3 points.",
        "",
        "| target | data set | noise | DivideMix | reference | margin | met |",
        "|---|---|---|---:|---:|---:|:---:|",
    ]
    for c in checks:
        head = f"| {c['target']} | {labels[c['setting']]} | {NOISE_NAMES[c['noise']]}"
        if c["met"] is None:
            lines.append(f"{head} | {NOT_RUN} | | | |")
            continue
        lines.append(
            f"{head} | {100 * c['value']:.1f} | {100 * c['reference']:.1f} "
            f"| {100 * c['margin']:+.1f} | {'yes' if c['met'] else '**no**'}"
            f"{' (partial)' if c['partial'] else ''} |"
        )
    return "\n".join(lines)


def setup_table(cells: list[dict], runs: list[dict], labels: dict) -> str:
    """One row per setting: sizes, input, module, budget, seeds, runs done."""
    by_setting = defaultdict(list)
    for cell in cells:
        by_setting[setting_of(cell)].append(cell)
    done = defaultdict(int)
    for run in runs:
        done[setting_of(run)] += 1
    lines = [
        "| data set | train / test | input, module | epochs | batch | lr | seeds "
        "| runs done |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    for setting in ordered_settings(by_setting):
        members = by_setting[setting]
        first, budget = members[0], members[0]["budget"]
        shape = "x".join(str(s) for s in first["input_shape"])
        seeds = ", ".join(str(s) for s in sorted({m["seed"] for m in members}))
        lines.append(
            f"| {labels[setting]} | {first['n_train']} / {first['n_test']} "
            f"| {shape}, {first['module']} | {budget['max_epochs']} "
            f"| {budget['batch_size']} | {budget['lr']} | {seeds} "
            f"| {done[setting]} of {len(members)} |"
        )
    return "\n".join(lines)


def machine_line(result: dict) -> str:
    m = result["machine"]
    total = sum(r["fit_seconds"] + r["predict_seconds"] for r in result["runs"])
    return (
        f"{m['cpu']}, {m['logical_cpus']} logical CPUs (shared with other jobs), "
        f"{m['torch_threads']} torch thread(s); Python {m['python']}, torch "
        f"{m['torch']}, skorch {m['skorch']}, scikit-learn {m['scikit-learn']}, "
        f"cleanlab {m['cleanlab']}. Sum of fit and predict times over all "
        f"{len(result['runs'])} runs: {total / 60:.1f} min."
    )
