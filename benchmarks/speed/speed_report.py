"""Render the speed benchmark's JSON results into ``docs/performance.md``.

The tables go between two HTML comments in the page, so the prose around them
stays as written::

    python -m benchmarks.speed.speed_report            # all results/speed_*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._common import RESULTS_DIR, ROOT
from .._pages import replace_between, table_head, table_row

PAGE = ROOT / "docs" / "performance.md"
START, END = "<!-- speed-tables:start -->", "<!-- speed-tables:end -->"
PROFILE_START = "<!-- speed-profile:start -->"
PROFILE_END = "<!-- speed-profile:end -->"
TARGETS = {"cnn": 0.85, "resnet18": 0.9}
MIB = 2**20


def _label(result: dict) -> str:
    config = result["config"]
    shape = "x".join(str(d) for d in result.get("input_shape", [])[1:])
    layout = result.get("dividemix", {}).get("channels_last")
    layout = {True: ", channels-last", False: ", NCHW"}.get(layout, "")
    extra = ", fused SGD" if config.get("optimizer_fused") else ""
    extra += f", {config['amp']}" if config.get("amp") else ""
    return (
        f"{config['module']}, {config['dataset']} {shape}, n={config['n']}, "
        f"batch {config['batch_size']}{layout}{extra}"
    )


def _threads(result: dict) -> int:
    return result["machine"]["torch_threads"]


def _best(phase: dict, kind: str) -> float:
    """Seconds of the fastest measured epoch (the first one is not measured)."""
    epochs = phase["epochs"][1:] or phase["epochs"]
    return min(e[f"{kind}_s"] for e in epochs)


def efficiency_table(results: list[dict]) -> list[str]:
    lines = table_head(
        [
            "configuration",
            "torch threads",
            "phase",
            "s / epoch: fastest (median)",
            "floor: fastest (median)",
            "efficiency: median (range)",
            "efficiency (CPU time)",
            "target",
        ],
        "lrlrrrrr",
    )
    for result in results:
        target = TARGETS.get(result["config"]["module"])
        phases = [
            ("DivideMix warm-up", result["dividemix"]["warmup"], target),
            ("DivideMix MixMatch", result["dividemix"]["mixmatch"], target),
            ("plain skorch", result["skorch"], None),
        ]
        for name, phase, goal in phases:
            low, high = phase["efficiency_range"]
            goal_text = f">= {goal:.2f}" if goal else ""
            lines.append(
                f"| {_label(result)} | {_threads(result)} | {name} "
                f"| {_best(phase, 'actual'):.2f} ({phase['actual_s']:.2f}) "
                f"| {_best(phase, 'floor'):.2f} ({phase['floor_s']:.2f}) "
                f"| **{phase['efficiency']:.3f}** ({low:.2f}-{high:.2f}) "
                f"| {phase['efficiency_cpu']:.3f} | {goal_text} |"
            )
    return lines


def ratio_table(results: list[dict]) -> list[str]:
    lines = table_head(
        [
            "configuration",
            "torch threads",
            "phase",
            "DivideMix / skorch epoch, measured",
            "floor",
            "measured / floor",
        ],
        "lrlrrr",
    )
    for result in results:
        ratios = result["ratios"]
        for phase, name in (("warmup", "warm-up"), ("mixmatch", "MixMatch")):
            lines.append(
                f"| {_label(result)} | {_threads(result)} | {name} "
                f"| {ratios[f'{phase}_over_skorch_actual']:.2f} "
                f"| {ratios[f'{phase}_over_skorch_floor']:.2f} "
                f"| **{ratios[f'{phase}_excess']:.3f}** |"
            )
    return lines


def _memory_row(config: dict, m: dict) -> str:
    name = "DivideMix, 1 warm-up + 1 MixMatch epoch"
    if m.get("method") == "skorch":
        name = "plain skorch, 2 epochs"
    malloc = ", ".join(f"{k}={v}" for k, v in m.get("malloc_env", {}).items())
    return (
        f"| {name}: {config['module']}, {config['dataset']}, n={m['n']} "
        f"({m['fit_s']:.0f} s){', ' + malloc if malloc else ''} "
        f"| {m['data_bytes'] / MIB:.0f} MiB | {m['model_bytes'] / MIB:.2f} MiB "
        f"| {m['rss_after_import'] / MIB:.0f} MiB | {m['baseline_rss'] / MIB:.0f} MiB "
        f"| {m['fit_peak_rss'] / MIB:.0f} MiB "
        f"| {m['fit_working_set'] / MIB:.0f} MiB "
        f"| {m['fit_peak_over_baseline'] / MIB:.0f} MiB "
        f"| {m['budget_bytes'] / MIB:.0f} MiB "
        f"| {'yes' if m['within_budget'] else 'no'} |"
    )


def memory_table(results: list[dict]) -> list[str]:
    lines = table_head(
        [
            "fit",
            "float32 data",
            "models",
            "RSS after import",
            "libraries' baseline",
            "fit peak RSS",
            "peak - RSS before fit",
            "peak - baseline",
            "budget 2 x (data + models) + 300 MiB",
            "within",
        ],
        "lrrrrrrrrl",
    )
    for result in results:
        memory = result["memory"]
        lines.append(_memory_row(result["config"], memory))
        if "skorch" in memory:
            lines.append(_memory_row(result["config"], memory["skorch"]))
    return lines


def conditions_table(results: list[dict]) -> list[str]:
    lines = table_head(
        ["run", "date", "load average before, after (1, 5, 15 min)", "command"]
    )
    for result in results:
        before = ", ".join(f"{x:.1f}" for x in result["loadavg_before"])
        after = ", ".join(f"{x:.1f}" for x in result["loadavg_after"])
        name = "memory" if "dividemix" not in result else _label(result)
        lines.append(
            table_row(
                [name, result["date"], f"{before}; {after}", f"`{result['command']}`"]
            )
        )
    return lines


def render(results: list[dict]) -> str:
    timed = [r for r in results if "dividemix" in r and not r["config"]["quick"]]
    memory = [r for r in results if "memory" in r]
    machine = (timed or memory or results)[0]["machine"]
    parts = [
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
        f"Python {machine['python']}, torch {machine['torch']}, "
        f"{'CUDA' if machine['cuda'] else 'no GPU'}.",
        "",
        "### Efficiency: floor / actual seconds per epoch",
        "",
        *efficiency_table(timed),
        "",
        "### Cost relative to a plain skorch epoch",
        "",
        *ratio_table(timed),
        "",
        "### Peak memory",
        "",
        *memory_table(memory),
        "",
        "### Run conditions",
        "",
        *conditions_table(timed + memory),
    ]
    return "\n".join(parts)


def profile_table(profiles: list[dict]) -> list[str]:
    lines = []
    for profile in profiles:
        phases = profile["phases"]
        parts = list(phases["mixmatch"]["parts"])
        parts += [p for p in phases["warmup"]["parts"] if p not in parts]
        lines += [
            f"`{profile['command']}`, {profile['torch_threads']} torch threads:",
            "",
            *table_head(["part", "warm-up epoch", "MixMatch epoch"], "lrr"),
        ]
        for part in parts:
            cells = []
            for phase in ("warmup", "mixmatch"):
                value = phases[phase]["parts"].get(part)
                text = ""
                if value:
                    text = f"{value['seconds_per_epoch']:.3f} s ({value['share']:.1%})"
                cells.append(text)
            lines.append(f"| {part} | {cells[0]} | {cells[1]} |")
        total = [phases[p]["seconds_per_epoch"] for p in ("warmup", "mixmatch")]
        lines += [f"| total | {total[0]:.2f} s | {total[1]:.2f} s |", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="result files (default: results/speed_*.json)",
    )
    parser.add_argument("--page", type=Path, default=PAGE, help="page to update")
    args = parser.parse_args(argv)
    files = args.paths or sorted(RESULTS_DIR.glob("speed_*.json"))
    loaded = [json.loads(path.read_text()) for path in files]
    results = [r for r in loaded if "config" in r]
    profiles = [r for r in loaded if "phases" in r]
    page = replace_between(args.page.read_text(), START, END, render(results))
    if profiles:
        body = "\n".join(profile_table(profiles)).rstrip()
        page = replace_between(page, PROFILE_START, PROFILE_END, body)
    args.page.write_text(page)
    print(f"updated {args.page} from {len(loaded)} result files")


if __name__ == "__main__":
    main()
