"""Every example runs, in its fast mode, so that none of them can rot."""

import ast
import importlib.util
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
# Optional dependencies an example may import; it is skipped without them.
OPTIONAL = {"cleanlab", "matplotlib", "pandas"}

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"


def _missing_data(path: Path) -> str | None:
    if "cifar10.npz" in path.read_text() and not CIFAR10.exists():
        return f"{path.name} needs CIFAR-10 at {CIFAR10}, which is absent"
    return None


def _missing_optional(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    if "label_issues" in path.read_text():
        names.add("pandas")  # the label-issue table is a DataFrame
    return sorted(
        name for name in names & OPTIONAL if importlib.util.find_spec(name) is None
    )


def test_examples_are_found():
    names = {path.name for path in EXAMPLES}
    assert "plot_quickstart.py" in names
    assert len(names) >= 6


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_in_fast_mode(path, tmp_path, monkeypatch, capsys):
    missing = _missing_optional(path)
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}")
    if _missing_data(path):
        pytest.skip(_missing_data(path))
    monkeypatch.setenv("SKDM_EXAMPLE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")
    assert capsys.readouterr().out.strip(), f"{path.name} printed nothing"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_quickstart_writes_the_plot_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKDM_EXAMPLE_FAST", "1")
    monkeypatch.chdir(tmp_path)
    quickstart = next(path for path in EXAMPLES if path.name == "plot_quickstart.py")
    try:
        runpy.run_path(str(quickstart), run_name="__main__")
    finally:
        plt.close("all")
    out = capsys.readouterr().out
    written = tmp_path / "dividemix_quickstart.png"
    assert written.stat().st_size > 10_000
    assert f"diagnostic plot written to {written}" in out
    for expected in ("precision", "recall", "DivideMix:", "plain skorch net:"):
        assert expected in out
