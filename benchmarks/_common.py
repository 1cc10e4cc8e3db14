"""What every benchmark shares: paths, the machine, memory readings, modules, output.

One copy of each, so that two benchmarks never describe the machine, read
the resident set or build "the default module" in two different ways:

* paths of the repository, its results and caches, and ``../shared/data``;
* :func:`machine_info`, the description stored with every result;
* readers of ``/proc/self/status`` (current and peak resident set, anonymous
  memory), resetting the kernel's peak mark, handing freed heap memory back
  to the OS, and :class:`PeakSampler`, which samples them in a thread;
* :func:`module_spec`, the module ``DivideMixClassifier`` builds for
  ``module=None`` (or a named one) with its keyword arguments;
* :func:`command_line` and :func:`write_json`, how a result records the
  command that made it and is written.

The memory readers are Linux-only; elsewhere they return ``None`` (or an
empty reading) instead of failing.
"""

from __future__ import annotations

import ast
import ctypes
import gc
import json
import os
import platform
import shlex
import sys
import threading
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "CACHE_DIR",
    "DATA_DIR",
    "RESULTS_DIR",
    "ROOT",
    "PeakSampler",
    "command_line",
    "machine_info",
    "module_spec",
    "parse_param",
    "read_status",
    "release_free_memory",
    "reset_peak_rss",
    "status_mib",
    "write_json",
]

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
CACHE_DIR = ROOT / "benchmarks" / "cache"
# The data sets live next to the repository (see shared/data/README.md).
DATA_DIR = ROOT.parent / "shared" / "data"

_PACKAGES = ("numpy", "scikit-learn", "skorch", "torch")
_STATUS = Path("/proc/self/status")


# -- the machine ----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(packages: tuple[str, ...] = ()) -> dict:
    """The machine and library versions a result was measured with.

    Parameters
    ----------
    packages : tuple of str, default=()
        Distributions whose versions are recorded besides numpy,
        scikit-learn, skorch and torch (``None`` when not installed).

    Returns
    -------
    info : dict
        ``cpu`` (model name), ``logical_cpus``, ``torch_threads``,
        ``python``, ``platform``, ``cuda`` (whether a GPU is visible),
        ``cpu_capability`` (torch's CPU kernel instruction set) and one
        entry per package, e.g. ``info["scikit-learn"]``.
    """
    info = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.is_available(),
        # the instruction set torch's CPU kernels use: runs of one seed agree
        # bit for bit only where it (and the CPU) is the same
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    # torch's own string: a local build tag such as "+cu130" is worth keeping
    info.update({p: _version(p) for p in (*_PACKAGES, *packages)})
    info["torch"] = torch.__version__
    return info


# -- memory ---------------------------------------------------------------------


def read_status(fields: tuple[str, ...] = ("VmRSS", "VmHWM", "RssAnon")) -> dict:
    """Fields of ``/proc/self/status`` in bytes; empty where there is none.

    ``VmRSS`` is the resident set, ``VmHWM`` its peak since the process
    started (or since :func:`reset_peak_rss`), ``RssAnon`` the part the
    process allocated itself (not mapped files).
    """
    try:
        text = _STATUS.read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            values[name] = int(rest.split()[0]) * 1024
    return values


def status_mib(field: str) -> float | None:
    """One field of ``/proc/self/status`` in MiB, or ``None`` off Linux."""
    value = read_status((field,)).get(field)
    return None if value is None else value / 2**20


def release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc).

    So that the resident set before a measurement is what is live, not what
    earlier work left to the allocator.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current size (Linux >= 4.0).

    Returns whether it could, i.e. whether ``VmHWM`` now measures from here.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakSampler:
    """Peaks of ``/proc/self/status`` fields, sampled in a thread.

    Use as a context manager; ``peak`` maps each field to its largest value
    in bytes, the value at entry included. Sampling sees what ``VmHWM``
    cannot split: the peak of anonymous memory alone.
    """

    def __init__(
        self, fields: tuple[str, ...] = ("VmRSS", "RssAnon"), interval: float = 0.01
    ) -> None:
        self.fields = fields
        self.interval = interval
        self.peak = dict.fromkeys(fields, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for key, value in read_status(self.fields).items():
            self.peak[key] = max(self.peak[key], value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# -- modules --------------------------------------------------------------------


def module_spec(
    X: np.ndarray, n_classes: int, name: str | None = None
) -> tuple[type[torch.nn.Module], dict]:
    """A module factory and its keyword arguments, for DivideMix and skorch alike.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_samples, C, H, W)
        The training inputs the module is sized from.
    n_classes : int
        Number of classes.
    name : {'mlp', 'cnn', 'resnet18'} or None, default=None
        ``None`` is what ``DivideMixClassifier`` builds for ``module=None``:
        its MLP for feature rows, its small CNN for images. ``'mlp'`` takes
        any input flattened.

    Returns
    -------
    module : class or callable
    kwargs : dict
        Keyword arguments of ``module``.
    """
    from sklearn_dividemix import MLPClassifierModule, SmallCNNClassifierModule

    if name is None:
        name = "mlp" if X.ndim == 2 else "cnn"
    if name == "resnet18":
        import torchvision

        return torchvision.models.resnet18, {"num_classes": n_classes}
    if name == "mlp":
        n_features = int(np.prod(X.shape[1:]))
        return MLPClassifierModule, {"n_features": n_features, "num_classes": n_classes}
    return SmallCNNClassifierModule, {
        "in_channels": X.shape[1],
        "num_classes": n_classes,
    }


# -- output ---------------------------------------------------------------------


def command_line(module: str, argv: list[str] | None) -> str:
    """How to run ``benchmarks.<module>`` again with these arguments."""
    args = sys.argv[1:] if argv is None else argv
    return f"python -m {module} {shlex.join(args)}".strip()


def write_json(path: Path, data, indent: int = 1) -> Path:
    """Write ``data`` as JSON (numpy scalars as floats), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, default=_plain) + "\n")
    return path


def _plain(value):
    # what json cannot write itself: numpy scalars, then anything by its str
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def parse_param(text: str) -> tuple[str, object]:
    """``name=value`` with the value read as a Python literal when it is one."""
    name, _, value = text.partition("=")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value
