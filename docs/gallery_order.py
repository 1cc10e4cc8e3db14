"""Order of the example gallery: the quick start first, then the rest by name.

A module of its own because sphinx-gallery takes the sort key as an importable
name (a function defined in conf.py cannot be cached by Sphinx).
"""

FIRST = ("plot_quickstart.py", "plot_label_issues.py")


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        rank = FIRST.index(filename) if filename in FIRST else len(FIRST)
        return (rank, filename)

    def __repr__(self):
        return f"{type(self).__name__}()"
