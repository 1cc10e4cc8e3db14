"""The skeleton the studies share: arguments, outputs, the per-fit JSON.

A study loops over data sets and seeds, fits, writes its rows to
``benchmarks/results/<name>.json`` and a page to ``docs/<name>.md`` (both
into ``--output-dir`` when given), on one torch thread by default. This
module holds that set-up once; a study adds its own arguments and its loop.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from .._common import RESULTS_DIR, ROOT, write_json

__all__ = ["Outputs", "parser", "reproduce", "start"]


def parser(
    doc: str, *, datasets: list[str], seeds: list[int]
) -> argparse.ArgumentParser:
    """An argument parser with the options every study has.

    ``--datasets``, ``--seeds``, ``--threads`` (torch threads, default 1),
    ``--quick`` (a tiny smoke run: the study shrinks its own budget) and
    ``--output-dir`` (results and page there instead of the repository's).
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=datasets)
    parser.add_argument("--seeds", nargs="+", type=int, default=seeds)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--output-dir", type=Path, default=None)
    return parser


@dataclass(frozen=True)
class Outputs:
    """Where a study writes: its JSON results and its docs page."""

    results: Path
    page: Path

    def save(self, args: argparse.Namespace, rows: list[dict]) -> None:
        """The rows so far, with the settings that made them."""
        settings = {k: str(v) for k, v in vars(args).items()}
        write_json(self.results, {"settings": settings, "rows": rows}, indent=2)


def start(args: argparse.Namespace, name: str) -> Outputs:
    """Set torch's threads and say where study ``name`` writes."""
    # One thread: on a shared CPU, more oversubscribe and slow every fit.
    torch.set_num_threads(args.threads)
    return Outputs(
        results=(args.output_dir or RESULTS_DIR) / f"{name}.json",
        page=(args.output_dir or ROOT / "docs") / f"{name}.md",
    )


def reproduce(name: str, args: argparse.Namespace) -> str:
    """The command, with the seeds, that a study's page says reproduces it."""
    seeds = " ".join(str(s) for s in args.seeds)
    return f"nice -n 10 python -m benchmarks.studies.{name} --seeds {seeds}"
