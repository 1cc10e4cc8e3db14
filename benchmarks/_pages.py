"""The benchmarks' one page writer: markdown tables, numbers, pages.

What every report needs to turn results into a docs page, written once:

* :func:`table` (and :func:`table_head`, :func:`table_row`), a markdown table
  from a header, an alignment and rows of cells;
* :func:`pct` and :func:`points`, a fraction as a percentage and a
  difference of fractions as signed percentage points;
* :func:`replace_between`, a page's generated part between two HTML
  comments, the prose around it kept as written;
* :func:`run_on`, the sentence that says what a page was measured with;
* :func:`write_page`, the page written (its folder created).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "pct",
    "points",
    "replace_between",
    "run_on",
    "table",
    "table_head",
    "table_row",
    "write_page",
]

_ALIGN = {"l": "---", "r": "---:", "c": ":---:"}


def pct(value: float, digits: int = 1) -> str:
    """``0.1234`` as ``'12.3'``: a fraction in percent."""
    return f"{100 * value:.{digits}f}"


def points(value: float | None, digits: int = 1) -> str:
    """``0.012`` as ``'+1.2'``: a difference of fractions in signed points.

    ``None`` (nothing to compare with) is an empty cell.
    """
    return "" if value is None else f"{100 * value:+.{digits}f}"


def table_row(cells: Iterable) -> str:
    """``| a | b |``: one row of a markdown table."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table_head(columns: Sequence[str], align: str | None = None) -> list[str]:
    """The header and separator lines of a markdown table.

    ``align`` has one letter per column, ``l`` (default), ``r`` or ``c``.
    """
    align = align or "l" * len(columns)
    if len(align) != len(columns):
        raise ValueError(f"{len(columns)} columns but alignment {align!r}")
    separator = "|" + "|".join(_ALIGN[a] for a in align) + "|"
    return [table_row(columns), separator]


def table(
    columns: Sequence[str], rows: Iterable[Iterable], align: str | None = None
) -> str:
    """A markdown table: header, separator and one line per row of cells."""
    return "\n".join([*table_head(columns, align), *map(table_row, rows)])


def replace_between(page: str, start: str, end: str, body: str) -> str:
    """``page`` with what lies between the markers ``start`` and ``end`` replaced."""
    head, rest = page.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def run_on(threads: str = "one thread") -> str:
    """``Run on x86_64, one thread, torch 2.x, scikit-learn 1.x.``"""
    import sklearn
    import torch

    return (
        f"Run on {platform.machine()}, {threads}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}."
    )


def write_page(path: Path, text: str) -> Path:
    """Write a page, creating its folder; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
