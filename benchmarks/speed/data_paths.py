"""The data seam measured: epoch cost and memory of each kind of input.

Three measurements, each printed as a table and written to
``benchmarks/results/data_paths_<part>.json``:

``speed``
    Seconds per warm-up and MixMatch epoch on the same MNIST images held as a
    float32 NCHW array (the in-memory path), a uint8 array, and a
    tensor-backed ``TensorDataset`` read by 2 loader workers. The
    configurations alternate within each repeat, so the ratios compare runs
    made under the same machine load; ``--baseline PATH`` adds the same
    in-memory fit with the package found at PATH (a checkout of an earlier
    commit) to compare against the code before the seam.
``memory``
    A fit of one warm-up and one MixMatch epoch on a disk-backed Dataset: an
    ``np.memmap`` of ``--n`` 3x32x32 uint8 images (default 200,000, 614 MB;
    2.4 GB as float32) in a temporary file. The growth of anonymous memory
    (``RssAnon``, what the process itself allocated, not the page cache of
    the mapped file) is sampled every 50 ms.
``quality``
    Test accuracy of the same CIFAR-10 images fitted as uint8 NHWC arrays and
    as float32 NCHW arrays scaled to [0, 1], at 40 % symmetric noise.

Examples::

    python -m benchmarks.speed.data_paths speed --repeats 3
    python -m benchmarks.speed.data_paths speed --baseline /tmp/old
    python -m benchmarks.speed.data_paths memory --n 200000
    python -m benchmarks.speed.data_paths quality --n 4000 --epochs 12
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .._common import (
    RESULTS_DIR,
    ROOT,
    PeakSampler,
    machine_info,
    status_mib,
    write_json,
)
from .._data import archive


def machine() -> dict:
    """The shared machine description, with the load and the date."""
    return {
        **machine_info(),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _write(part: str, result: dict) -> None:
    path = write_json(RESULTS_DIR / f"data_paths_{part}.json", result, indent=2)
    print(f"written {path}")


def _epoch_seconds(clf) -> dict:
    rows = [row for row in clf.history_ if "dur" in row]
    by_phase: dict = {}
    for row in rows:
        by_phase.setdefault(row["phase"], []).append(row["dur"])
    return {phase: float(np.median(durs)) for phase, durs in by_phase.items()}


# -- speed ---------------------------------------------------------------------

SPEED_CONFIGS = (
    "array float32",
    "array uint8",
    "TensorDataset, 2 workers",
    "TensorDataset, main process",
)


def _mnist(n: int):
    arrays = archive("mnist", ("x_train", "y_train"))
    X, y = arrays["x_train"][:n], arrays["y_train"][:n]
    rng = np.random.RandomState(0)
    flip = rng.rand(n) < 0.4
    y = np.where(flip, (y + rng.randint(1, 10, n)) % 10, y)
    return X[:, None], y  # uint8 (n, 1, 28, 28)


def _speed_fit(config: str, X_uint8, y, epochs: int) -> dict:
    from torch.utils.data import TensorDataset

    from sklearn_dividemix import DivideMixClassifier

    params = dict(
        max_epochs=2 * epochs, warmup_epochs=epochs, max_warmup_epochs=0, lambda_u=25
    )
    if config == "array uint8":
        clf = DivideMixClassifier(**params, random_state=0).fit(X_uint8, y)
    elif config == "array float32":
        X = X_uint8.astype(np.float32) / 255
        clf = DivideMixClassifier(**params, random_state=0).fit(X, y)
    else:
        X = torch.from_numpy(X_uint8.astype(np.float32) / 255)
        dataset = TensorDataset(X, torch.from_numpy(y))
        workers = 2 if "2 workers" in config else 0
        clf = DivideMixClassifier(
            **params,
            random_state=0,
            iterator_train__num_workers=workers,
            iterator_valid__num_workers=workers,
        ).fit(dataset)
    return _epoch_seconds(clf)


def _baseline_fit(path: str, n: int, epochs: int) -> dict:
    """The in-memory fit in a subprocess importing the package at ``path``.

    ``PYTHONPATH`` puts that checkout's package first; the repository root
    after it provides this module.
    """
    code = (
        "import sys, json; "
        "from benchmarks.speed.data_paths import _mnist, _epoch_seconds; "
        "from sklearn_dividemix import DivideMixClassifier; "
        "X, y = _mnist(int(sys.argv[1])); e = int(sys.argv[2]); "
        "clf = DivideMixClassifier(max_epochs=2 * e, warmup_epochs=e, "
        "max_warmup_epochs=0, lambda_u=25, random_state=0)"
        ".fit(X.astype('float32') / 255, y); "
        "print(json.dumps(_epoch_seconds(clf)))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", code, str(n), str(epochs)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        # '' heads sys.path: from here, the package at ``path`` comes first
        cwd=path,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_speed(args) -> None:
    X, y = _mnist(args.n)
    configs = list(SPEED_CONFIGS) + (["before the seam"] if args.baseline else [])
    runs: dict = {c: [] for c in configs}
    for repeat in range(args.repeats):
        for config in configs:
            if config == "before the seam":
                seconds = _baseline_fit(args.baseline, args.n, args.epochs)
            else:
                seconds = _speed_fit(config, X, y, args.epochs)
            runs[config].append(seconds)
            print(repeat, config, seconds, flush=True)
    table = []
    for config in configs:
        row = {"config": config}
        for phase in ("warmup", "mixmatch"):
            values = [run[phase] for run in runs[config]]
            ratios = [
                run[phase] / ref[phase]
                for run, ref in zip(runs[config], runs[configs[0]], strict=True)
            ]
            row[phase] = float(np.median(values))
            row[f"{phase}_ratio"] = float(np.median(ratios))
        table.append(row)
    print(f"\nMNIST n={args.n}, default CNN, median of {args.repeats} repeats")
    print(f"{'input':<28}{'warm-up s':>10}{'ratio':>8}{'MixMatch s':>12}{'ratio':>8}")
    for row in table:
        print(
            f"{row['config']:<28}{row['warmup']:>10.2f}{row['warmup_ratio']:>8.3f}"
            f"{row['mixmatch']:>12.2f}{row['mixmatch_ratio']:>8.3f}"
        )
    _write("speed", {"machine": machine(), "args": vars(args), "table": table})


# -- memory --------------------------------------------------------------------


class _MemmapImages(torch.utils.data.Dataset):
    """(x, label) pairs read from a uint8 memmap, one sample at a time."""

    def __init__(self, images: np.memmap, labels: np.ndarray) -> None:
        self.images, self.targets = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.from_numpy(np.array(self.images[i])), int(self.targets[i])


class _Tiny(torch.nn.Module):
    """A small conv net: the memory of the data path, not of the model."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(),
            torch.nn.Linear(128, num_classes),
        )

    def forward(self, X):
        return self.body(X)


def run_memory(args) -> None:
    from sklearn_dividemix import DivideMixClassifier

    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "images.u8"
        images = np.memmap(path, np.uint8, "w+", shape=(args.n, 3, 32, 32))
        for start in range(0, args.n, 10000):
            stop = min(start + 10000, args.n)
            images[start:stop] = rng.randint(0, 256, (stop - start, 3, 32, 32))
        images.flush()
        del images
        mapped = np.memmap(path, np.uint8, "r", shape=(args.n, 3, 32, 32))
        dataset = _MemmapImages(mapped, rng.randint(0, 10, args.n))
        clf = DivideMixClassifier(
            module=_Tiny, max_epochs=2, warmup_epochs=1, batch_size=256, lambda_u=25
        )
        before = status_mib("RssAnon")
        start = time.perf_counter()
        with PeakSampler(("RssAnon",), interval=0.05) as sampler:
            clf.fit(dataset)
        seconds = time.perf_counter() - start
        peak = [sampler.peak["RssAnon"] / 2**20]
    float_mib = args.n * 3 * 32 * 32 * 4 / 2**20
    growth = max(peak) - before
    result = {
        "machine": machine(),
        "args": vars(args),
        "n": args.n,
        "uint8_data_mib": float_mib / 4,
        "float32_data_mib": float_mib,
        "rss_anon_before_mib": before,
        "rss_anon_peak_mib": max(peak),
        "growth_mib": growth,
        "growth_share_of_float32": growth / float_mib,
        "target_share": 0.25,
        "seconds": seconds,
    }
    print(
        f"n={args.n}: data {float_mib / 4:.0f} MiB uint8 on disk "
        f"({float_mib:.0f} MiB as float32); RssAnon {before:.0f} -> "
        f"{max(peak):.0f} MiB, growth {growth:.0f} MiB = "
        f"{growth / float_mib:.1%} of float32 (target < 25 %), {seconds:.0f} s"
    )
    _write("memory", result)


# -- quality -------------------------------------------------------------------


def run_quality(args) -> None:
    from sklearn_dividemix import DivideMixClassifier, make_noisy_labels

    arrays = archive("cifar10")
    X, y = arrays["x_train"][: args.n], arrays["y_train"][: args.n]
    X_test, y_test = arrays["x_test"][:2000], arrays["y_test"][:2000]
    y_noisy, _ = make_noisy_labels(y, noise_rate=0.4, random_state=0)
    params = dict(max_epochs=args.epochs, warmup_epochs=args.epochs // 3)
    rows = []
    for seed in range(args.seeds):
        for name in ("uint8 NHWC", "float32 NCHW"):
            convert = (
                (lambda a: a)
                if name == "uint8 NHWC"
                else (lambda a: a.transpose(0, 3, 1, 2).astype(np.float32) / 255)
            )
            start = time.perf_counter()
            clf = DivideMixClassifier(**params, random_state=seed)
            clf.fit(np.ascontiguousarray(convert(X)), y_noisy)
            score = clf.score(np.ascontiguousarray(convert(X_test)), y_test)
            rows.append({"input": name, "seed": seed, "accuracy": score})
            print(name, seed, f"{score:.4f}", f"{time.perf_counter() - start:.0f} s")
    _write("quality", {"machine": machine(), "args": vars(args), "rows": rows})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["speed", "memory", "quality"])
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--baseline", default=None)
    args = parser.parse_args(argv)
    defaults = {"speed": 4000, "memory": 200_000, "quality": 4000}
    args.n = args.n or defaults[args.part]
    {"speed": run_speed, "memory": run_memory, "quality": run_quality}[args.part](args)


if __name__ == "__main__":
    main()
