"""Sphinx configuration of the sklearn-dividemix documentation.

Build with ``./dev.sh docs`` (or ``python -m sphinx -W --keep-going -b html
docs docs/_build/html``). The example gallery is executed unless the
environment variable ``SKDM_DOCS_PLOT_GALLERY`` is ``0`` or ``CI`` is set; CI
builds it without running the examples (``-D plot_gallery=0`` does the same
from the command line).
"""

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS))

import sklearn_dividemix  # noqa: E402

project = "sklearn-dividemix"
author = "sklearn-dividemix developers"
copyright = "2026, sklearn-dividemix developers"
release = version = sklearn_dividemix.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = []
default_role = "literal"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
# Inherited methods matter (get_label_issues, score), but not the hundred
# that torch and skorch base classes bring.
autodoc_default_options = {
    "members": True,
    "inherited-members": "Module,NeuralNet,BaseEstimator,Warning,BaseException",
}
autodoc_typehints = "none"
# numpydoc renders the Methods table itself; autosummary stubs would duplicate it.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# Docstrings inherited from scikit-learn (score, set_*_request, ...) refer to
# labels and glossary terms of scikit-learn's own site; without network access
# for intersphinx, keep their text and drop the cross-reference so that ours
# stay checked by -W.
_SKLEARN_ROLE = re.compile(r":(?:ref|term):`([^`<]*?)\s*(?:<[^>]*>)?`")


def _plain_sklearn_references(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn."):
        lines[:] = [_SKLEARN_ROLE.sub(r"\1", line) for line in lines]


# Pages the benchmark scripts write (benchmarks/quality.py, speed/speed_report.py): a
# checkout whose benchmarks have not run yet still builds, without them.
BENCHMARK_PAGES = ("benchmarks", "performance")


def _skip_missing_benchmark_pages(app, docname, source):
    for page in BENCHMARK_PAGES:
        if (DOCS / f"{page}.md").exists():
            continue
        text = re.sub(rf"^[ \t]+{page}[ \t]*\n", "", source[0], flags=re.MULTILINE)
        source[0] = re.sub(rf":doc:`([^`<]*?)\s*<{page}>`", r"\1", text)


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_references)
    app.connect("source-read", _skip_missing_benchmark_pages)


# -- markdown pages (benchmarks, compatibility, noise, performance) ----------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- example gallery ---------------------------------------------------------
_execute = os.environ.get(
    "SKDM_DOCS_PLOT_GALLERY", "0" if os.environ.get("CI") else "1"
)
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": _execute not in ("0", "false", "False"),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "gallery_order.ExampleOrder",
    "reset_modules": ("matplotlib",),
}

# -- plots in the user guide -------------------------------------------------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.autolayout": True}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-dividemix {version}"
html_theme_options = {
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False
