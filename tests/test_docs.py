"""The documentation builds without a warning (the gallery is not executed),
and the code blocks of the user guide's pages run."""

import doctest
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sklearn_dividemix import DivideMixClassifier

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "myst_parser")


def test_docs_build_without_warnings(tmp_path):
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(missing)})")
    # Build from a copy: sphinx-gallery and autosummary write into the source
    # tree, and the test must not touch the checkout.
    shutil.copytree(
        ROOT / "docs",
        tmp_path / "docs",
        ignore=shutil.ignore_patterns("_build", "auto_examples", "generated"),
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "SKDM_DOCS_PLOT_GALLERY": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(tmp_path / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    html = tmp_path / "html"
    for page in (
        "index.html",
        "user_guide.html",
        "api.html",
        "auto_examples/index.html",
        "auto_examples/plot_quickstart.html",
        "generated/sklearn_dividemix.DivideMixClassifier.html",
        "generated/sklearn_dividemix.LossDivisionDisplay.html",
    ):
        assert (html / page).is_file(), page
    api = (html / "generated/sklearn_dividemix.DivideMixClassifier.html").read_text()
    assert "get_label_issues" in api
    assert "train_proba_" in api


# -- the user guide's code blocks run -----------------------------------------

DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# A block whose first line is this comment is shown but not run; the rest of
# the line says why. Keep such blocks rare: make a slow block smaller instead.
SKIP = "# not run:"
# Pages whose blocks are not run, and why.
NOT_RUN = {
    "scaling.md": "starts Dask and Ray clusters, torchrun processes and GPU "
    "workers; its Dask and Ray searches run in tests/test_distributed_search.py",
    "your_data.md": "fragments over the reader's own files (a CIFAR-10 root, a "
    "folder of photos, an array X)",
}
PAGES = sorted(p.name for p in DOCS.glob("*.md") if FENCE.search(p.read_text()))


def code_blocks(page: str) -> list[str]:
    """The ```python blocks of a page, in order."""
    return [m.group(1) for m in FENCE.finditer((DOCS / page).read_text())]


def run_block(block: str, namespace: dict, name: str) -> None:
    """A doctest block is checked against its output; any other is executed."""
    if block.lstrip().startswith(">>>"):
        parser = doctest.DocTestParser()
        test = parser.get_doctest(block, namespace, name, name, 0)
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        runner = doctest.DocTestRunner(optionflags=flags)
        runner.run(test, out=lambda text: pytest.fail(text, pytrace=False))
        namespace.update(test.globs)
    else:
        exec(compile(block, name, "exec"), namespace)


def test_every_page_with_code_is_run_or_says_why():
    assert set(NOT_RUN) <= set(PAGES)
    assert {"noisy_validation.md", "reading_a_fit.md"} <= set(PAGES)
    assert "when_plain_training_wins.md" in PAGES


@pytest.mark.parametrize("page", [p for p in PAGES if p not in NOT_RUN])
def test_user_guide_code_blocks_run(page, tmp_path, monkeypatch, capsys):
    """Every block of a page runs, in order, in one namespace, as a reader would."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    ran = 0
    for i, block in enumerate(code_blocks(page), start=1):
        if block.startswith(SKIP):
            assert block.split("\n")[0][len(SKIP) :].strip(), "say why it is not run"
            continue
        run_block(block, namespace, f"{page}, block {i}")
        ran += 1
    assert ran, f"{page} has no block that runs"


# -- what the pages say is what the code does ----------------------------------


def test_readme_says_how_to_install():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e .  " in readme
    for extra in ("docs", "benchmarks", "distributed"):
        assert f'pip install -e ".[{extra}]"' in readme
    assert "pip install timm" in readme


def test_label_issue_table_needs_no_extra():
    """The table of a first fit is a DataFrame: pandas is a core dependency."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[ ]", dep)[0] for dep in project["dependencies"]]
    assert "pandas" in names


@pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")
def test_normalize_auto_leaves_feature_vectors_alone_in_code_and_pages(tiny_images):
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 6).astype(np.float32) * 5, np.arange(40) % 2
    vectors = DivideMixClassifier(max_epochs=1, warmup_epochs=1).fit(X, y)
    assert vectors.input_mean_ is None
    images = DivideMixClassifier(max_epochs=1, warmup_epochs=1).fit(*tiny_images)
    assert images.input_mean_.shape == (3,)
    for page in ("estimated_accuracy.md", "noisy_validation.md"):
        text = (DOCS / page).read_text()
        assert "default per-feature standardisation" not in text.lower()


@pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")
def test_fitted_nets_keep_no_optimizer_state_as_compatibility_says():
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 6).astype(np.float32), np.arange(40) % 2
    clf = DivideMixClassifier(max_epochs=2, warmup_epochs=1).fit(X, y)
    for net in (clf.net1_, clf.net2_):
        assert not net.optimizer_.state
        assert all(p.grad is None for p in net.module_.parameters())
    text = (DOCS / "compatibility.md").read_text()
    assert "each net's\n  optimizer state, as any skorch net does" not in text
    assert "do not keep their optimizer state" in text


def test_pages_name_the_warning_a_fit_raises():
    """Mid-fit DivisionWarnings are gone: one UntrustedFitWarning at the end."""
    for path in (DOCS / "noisy_validation.md", ROOT / "examples/plot_resnet_cifar.py"):
        text = path.read_text()
        assert "DivisionWarning" not in text, path.name
        assert "UntrustedFitWarning" in text, path.name
