"""Plots of the quality benchmark: accuracy and detection F1 against noise rate."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

__all__ = ["plot_metric"]

STYLES = {
    "dividemix": {"color": "C0", "marker": "o"},
    "cross_entropy": {"color": "C3", "marker": "s"},
    "cleanlearning": {"color": "C2", "marker": "^"},
    "cross_entropy_time": {"color": "C3", "marker": "s", "linestyle": ":"},
    "oracle": {"color": "0.4", "marker": "", "linestyle": "--"},
}
SYMMETRIC = (("sym20", 0.2), ("sym50", 0.5), ("sym80", 0.8))


def _panel(ax, table, dataset, metric, methods, names) -> None:
    if not any((dataset, noise, m) in table for noise, _ in SYMMETRIC for m in methods):
        ax.text(0.5, 0.5, "not run yet", ha="center", transform=ax.transAxes)
    for method in methods:
        points = [
            (rate, table[dataset, noise, method])
            for noise, rate in SYMMETRIC
            if (dataset, noise, method) in table
        ]
        points = [(r, e[metric]) for r, e in points if e[metric]["mean"] is not None]
        if not points:
            continue
        style = STYLES[method]
        x = [r for r, _ in points]
        y = [100 * s["mean"] for _, s in points]
        err = [100 * (s["std"] or 0.0) for _, s in points]
        ax.errorbar(x, y, yerr=err, label=names[method], capsize=3, **style)
        asym = table.get((dataset, "asym40", method))
        if method != "oracle" and asym and asym[metric]["mean"] is not None:
            ax.plot(
                [0.4],
                [100 * asym[metric]["mean"]],
                marker=style["marker"],
                markerfacecolor="none",
                color=style["color"],
                linestyle="none",
                markersize=9,
            )
    ax.set_xlim(0.1, 0.9)
    ax.set_xticks([0.2, 0.4, 0.5, 0.8], ["20", "asym\n40", "50", "80"])
    ax.set_xlabel("noise rate (%)")
    ax.grid(alpha=0.3)


def plot_metric(
    table: dict,
    datasets: list[str],
    metric: str,
    methods: list[str],
    names: dict,
    dataset_names: dict,
    ylabel: str,
    path: Path,
) -> Path:
    """One panel per setting: ``metric`` against the symmetric noise rate.

    ``datasets`` are the table's settings (a data set in one input form),
    titled by ``dataset_names``. Filled markers joined by lines are symmetric
    noise; the open marker at 40 % is asymmetric noise; a setting without
    runs reads "not run yet".
    """
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(3.4 * len(datasets), 3.3), squeeze=False
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        _panel(ax, table, dataset, metric, methods, names)
        ax.set_title(dataset_names[dataset], fontsize=9)
    axes[0, 0].set_ylabel(ylabel)
    # the legend of every method drawn anywhere: the first panel may be empty
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    handles.append(
        Line2D([], [], marker="o", markerfacecolor="none", color="0.3", ls="none")
    )
    labels.append("asymmetric 40 % (open markers)")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
