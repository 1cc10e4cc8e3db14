"""Benchmark: each epoch on a class-balanced sample, divided over it or over all.

The paper's Clothing1M protocol (issue 18, item 4): every epoch draws a
class-balanced sample of the training set (there 1,000 mini-batches of the
million images) and trains on it. ``samples_per_epoch`` does this, and
``divide_over`` says whether each epoch's division is made over the sample
(the paper's: one eval pass over the sample) or over the whole set (one pass
over everything, then the sample trains on its part of that division). On
the largest set here, all 60,000 MNIST training images as 1x28x28 images
with the default CNN and symmetric 50 % noise, this fits both, with the same
sample size, epochs and seed, and reports test accuracy (5,000 test images),
the detection F1 of ``clean_mask_`` (the final division always covers every
image) and the time. Results go to ``benchmarks/results/epoch_sampling.json``
and ``docs/epoch_sampling.md``.

Usage (from the repository root)::

    nice -n 10 python -m benchmarks.studies.epoch_sampling
    python -m benchmarks.studies.epoch_sampling --quick --output-dir /tmp/es
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.metrics import f1_score

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels

from .. import _pages
from .._data import subsets
from .._pages import pct, run_on, table
from . import _study

NAME = "epoch_sampling"
MODES = ("sample", "all")


def images(x: np.ndarray) -> np.ndarray:
    """uint8 28x28 images as float32 1x28x28 in [0, 1]."""
    return (x[:, None] / 255.0).astype(np.float32)


def run_one(data: tuple, mode: str, seed: int, args) -> dict:
    """One fit with the epochs' samples divided over ``mode``."""
    x_train, y_train, x_test, y_test = data
    y_noisy, flipped = make_noisy_labels(
        y_train, noise_rate=0.5, kind="symmetric", random_state=seed
    )
    clf = DivideMixClassifier(
        max_epochs=args.epochs,
        warmup_epochs=args.warmup,
        samples_per_epoch=args.batches * 64,
        divide_over=mode,
        batch_size=64,
        random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x_train, y_noisy)
    seconds = time.perf_counter() - start
    return {
        "divide_over": mode,
        "seed": seed,
        "n_train": len(y_train),
        "samples_per_epoch": args.batches * 64,
        "epochs": args.epochs,
        "test_accuracy": float(np.mean(clf.predict(x_test) == y_test)),
        "detection_f1": float(f1_score(flipped, ~clf.clean_mask_)),
        "realized_noise": float(flipped.mean()),
        "fit_seconds": seconds,
        "epoch_seconds": [float(row["dur"]) for row in clf.history_],
    }


def markdown(rows: list[dict]) -> str:
    """The page: one row per divide_over, means over seeds."""
    body = []
    for mode in MODES:
        group = [r for r in rows if r["divide_over"] == mode]
        if not group:
            continue
        mixmatch = [np.mean(r["epoch_seconds"][2:]) for r in group]
        body.append(
            [
                f"`divide_over='{mode}'`",
                len(group),
                pct(np.mean([r["test_accuracy"] for r in group])),
                pct(np.mean([r["detection_f1"] for r in group])),
                f"{np.median([r['fit_seconds'] for r in group]):.0f} s",
                f"{np.median(mixmatch):.0f} s",
            ]
        )
    first = rows[0]
    head = (
        "# Each epoch on a sample of the training set\n\n"
        f"MNIST, all {first['n_train']:,} training images as 1x28x28 images, "
        "default CNN, symmetric 50 % noise; every epoch trains on a "
        f"class-balanced sample of {first['samples_per_epoch']:,} images "
        f"(`samples_per_epoch`), {first['epochs']} epochs. Test accuracy on "
        "5,000 test images; detection F1 of `clean_mask_`, whose final "
        "division covers every image. Times are medians over seeds; an epoch "
        "after warm-up is the median of its epochs.\n\n"
    )
    columns = [
        "division",
        "seeds",
        "test accuracy",
        "detection F1",
        "fit",
        "epoch after warm-up",
    ]
    return head + table(columns, body, "lrrrrr") + f"\n\n{run_on()}\n"


def main(argv=None) -> list[dict]:
    parser = _study.parser(__doc__, datasets=["mnist"], seeds=[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, default=100, help="per epoch")
    args = parser.parse_args(argv)
    outputs = _study.start(args, NAME)
    n_train, n_test = (2000, 500) if args.quick else (None, 5000)
    if args.quick:
        args.epochs, args.batches = 3, 5
    x_train, y_train, x_test, y_test = subsets("mnist", n_train, n_test)
    data = (images(x_train), y_train, images(x_test), y_test)
    rows = []
    for seed in args.seeds:
        for mode in MODES:
            rows.append(run_one(data, mode, seed, args))
            print({k: v for k, v in rows[-1].items() if k != "epoch_seconds"})
            outputs.save(args, rows)
    _pages.write_page(outputs.page, markdown(rows))
    return rows


if __name__ == "__main__":
    main()
