"""The documentation builds without a warning (the gallery is not executed)."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
