"""Transfer under noisy labels: a pretrained backbone against training from scratch.

No weights can be downloaded here, so the benchmark makes its own pretrained
backbone (issue 18): the built-in small CNN trained with cross-entropy on the
*clean* labels of classes 0-4, then fine-tuned on classes 5-9 under
symmetric 50 % and pair-flip 40 % noise. Rows, on the same few thousand
training images and the same epochs:

- ``scratch_ce`` / ``scratch_dividemix``: the CNN from random weights;
- ``pretrained_ce`` / ``pretrained_dividemix``: the pretrained CNN given as a
  module instance (its head replaced, the backbone at ``backbone_lr_ratio``
  of the learning rate, its own normalisation as ``normalize=(mean, std)``);
- ``frozen_dividemix``: :class:`FrozenFeatures` of the pretrained backbone,
  then DivideMix's MLP on the vectors;
- on symmetric 50 % only, the defaults study: ``backbone_lr_ratio=0.1``,
  ``freeze_backbone_epochs=1`` and ``lr=0.1`` against the defaults
  (``lr='auto'``, which was 0.02 for the pretrained instance until December
  and is now 0.1, the built-in CNN's rate however it starts; ratio 1). The
  first run
  (``results/transfer.json``) was made while the ratio's default was 0.1:
  there ``pretrained_dividemix`` has 0.1 and ``pretrained_dividemix_ratio_1``
  the ratio 1.

"CE" is the same two nets trained for the same epochs with cross-entropy
only (``warmup_epochs=max_epochs``). Test accuracy is on the clean test
images of classes 5-9, after the last epoch.

``--rows`` runs the rows it names, for every noise: these, the study's,
``pretrained_dividemix_freeze_warmup`` (the backbone frozen during the
warm-up: linear probing, then fine-tuning) and ``pretrained_ce_lr_0.1``.

Run: ``python -m benchmarks.transfer`` (about 35 minutes of one CPU core at
the defaults); ``--table`` prints the Markdown table of the saved JSON.
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from torch import nn

from benchmarks._common import command_line, machine_info, parse_param, write_json
from sklearn_dividemix import (
    DivideMixClassifier,
    FrozenFeatures,
    SmallCNNClassifierModule,
    make_noisy_labels,
)
from sklearn_dividemix._augment import RandomCropFlip

DATA = {
    "cifar10": Path("/work/shared/data/cifar10.npz"),
    "fashion_mnist": Path("/work/shared/data/fashion_mnist.npz"),
}
RESULTS = Path(__file__).parent / "results" / "transfer.json"
NOISES = {
    "symmetric 50 %": dict(noise_rate=0.5, kind="symmetric"),
    "pair-flip 40 %": dict(noise_rate=0.4, kind="asymmetric"),
}
NOISE_NAMES = {"sym50": "symmetric 50 %", "pair40": "pair-flip 40 %"}
SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
STUDY_ROWS = (
    "pretrained_dividemix_ratio_0.1",
    "pretrained_dividemix_freeze_1",
    "pretrained_dividemix_lr_0.1",
)
# the settings that make a row; a saved row of other settings is not reused
_ROW_SETTINGS = (
    "dataset",
    "n_pretrain",
    "pretrain_epochs",
    "n_train",
    "epochs",
    "warmup",
    "width",
    "seed",
)


def load_classes(dataset: str, classes, n: int | None, split: str, seed: int):
    """Images of ``classes`` (labels renumbered 0..4), ``n`` drawn at random."""
    data = np.load(DATA[dataset])
    X, y = data[f"x_{split}"], data[f"y_{split}"].astype(np.int64)
    index = np.flatnonzero(np.isin(y, classes))
    if n is not None and n < len(index):
        index = np.sort(np.random.RandomState(seed).choice(index, n, replace=False))
    return X[index], np.searchsorted(classes, y[index])


def _channels_first(X: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(X).float() / 255.0
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def pretrain(X, y, *, width: int, epochs: int, seed: int) -> dict:
    """The small CNN trained with cross-entropy on clean labels (one net)."""
    x = _channels_first(X)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    x = (x - mean[:, None, None]) / std[:, None, None]
    labels = torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SmallCNNClassifierModule(x.shape[1], len(SOURCE), width=width)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4
    )
    augment = RandomCropFlip(padding=4, flip=x.shape[1] == 3)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.train()
    for epoch in range(epochs):
        if epoch == epochs // 2:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        for index in torch.randperm(len(x), generator=generator).split(128):
            loss = nn.functional.cross_entropy(
                model(augment(x[index], generator=generator)), labels[index]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return {
        "module": model,
        "stats": (mean.numpy(), std.numpy()),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "transform": lambda X: (
            (_channels_first(X) - mean[:, None, None]) / std[:, None, None]
        ),
    }


def _source_accuracy(pretrained: dict, X, y) -> float:
    with torch.inference_mode():
        logits = pretrained["module"](pretrained["transform"](X))
    return float((logits.argmax(1).numpy() == y).mean())


def estimators(pretrained: dict, args, noise: str) -> dict:
    """The rows of one noise setting: name -> estimator factory."""
    pair_flip = noise.startswith("pair")
    common = dict(
        max_epochs=args.epochs,
        max_warmup_epochs=args.warmup,
        rampup_epochs=max(1, (args.epochs - args.warmup) // 2),
        random_state=args.seed,
        channels_last=True,
    )
    dividemix = dict(common, warmup_epochs=args.warmup, confidence_penalty=pair_flip)
    dividemix.update(variant(args))
    ce = dict(common, warmup_epochs=args.epochs, max_warmup_epochs=args.epochs)
    scratch = dict(module__width=args.width)
    # classes 5-9 are as many as 0-4: the head is replaced all the same
    tuned = dict(
        module=pretrained["module"], normalize=pretrained["stats"], replace_head=True
    )
    rows = {
        "scratch_ce": lambda: DivideMixClassifier(**ce, **scratch),
        "scratch_dividemix": lambda: DivideMixClassifier(**dividemix, **scratch),
        "pretrained_ce": lambda: DivideMixClassifier(**ce, **tuned),
        "pretrained_dividemix": lambda: DivideMixClassifier(**dividemix, **tuned),
        "frozen_dividemix": lambda: make_pipeline(
            FrozenFeatures(pretrained["module"], normalize=pretrained["stats"]),
            DivideMixClassifier(
                max_epochs=30,
                warmup_epochs=10,
                normalize=True,
                confidence_penalty=pair_flip,
                random_state=args.seed,
            ),
        ),
    }
    if args.tag:
        # a variant: its DivideMix rows only, named apart
        changed = ("scratch_dividemix", "pretrained_dividemix")
        return {f"{k}[{args.tag}]": rows[k] for k in changed}
    changes = {
        # the defaults study (symmetric rows, unless --no-study)
        "pretrained_dividemix_ratio_0.1": dict(backbone_lr_ratio=0.1),
        "pretrained_dividemix_freeze_1": dict(freeze_backbone_epochs=1),
        "pretrained_dividemix_lr_0.1": dict(lr=0.1),
        # with --rows only: linear probing during the warm-up, then fine-tuning
        # (LP-FT), and the baseline at the lr row's rate, for a fair comparison
        "pretrained_dividemix_freeze_warmup": dict(freeze_backbone_epochs=args.warmup),
        "pretrained_ce_lr_0.1": dict(lr=0.1),
    }
    extra = {}
    for name, change in changes.items():
        base = ce if name.startswith("pretrained_ce") else dividemix
        extra[name] = partial(DivideMixClassifier, **{**base, **tuned, **change})
    if args.rows:
        return pick_rows({**rows, **extra}, args.rows)
    if not (pair_flip or args.no_study):
        rows.update({name: extra[name] for name in STUDY_ROWS})
    return rows


def pick_rows(rows: dict, names: list[str]) -> dict:
    """The rows ``--rows`` names, in its order."""
    unknown = sorted(set(names) - set(rows))
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {sorted(rows)}")
    return {name: rows[name] for name in names}


def variant(args) -> dict:
    """``--dividemix NAME=VALUE`` pairs, values read as Python literals."""
    pairs = (parse_param(text) for text in args.dividemix)
    return dict(pairs)


def run_row(make, X, y_noisy, flipped, X_test, y_test) -> dict:
    """Fit one row; its time, test accuracy and detection F1."""
    model = make()
    # CPU time as well as wall time: on a shared machine the wall clock
    # measures the other processes too (one thread: CPU time is the work)
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        # CE rows never leave warm-up: the verdict says so, rightly
        warnings.simplefilter("ignore")
        model.fit(X, y_noisy)
    seconds = time.perf_counter() - start
    clf = model[-1] if hasattr(model, "steps") else model
    row = {
        "fit_seconds": seconds,
        "fit_cpu_seconds": time.process_time() - cpu_start,
        "test_accuracy": float((model.predict(X_test) == y_test).mean()),
        "head_replaced": getattr(clf, "head_replaced_", None),
    }
    if clf.warmup_epochs_ < clf.max_epochs:
        row["detection_f1"] = float(f1_score(flipped, ~clf.clean_mask_))
        # what the fit-time 'auto' settings came to
        row["alpha_"] = clf.alpha_
        row["balance_labeled_"] = clf.balance_labeled_
        row["p_threshold_"] = clf.p_threshold_
        row["loss_window_"] = clf.loss_window_
    return row


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(DATA), default="cifar10")
    parser.add_argument("--n-pretrain", type=int, default=8000)
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-study", action="store_true")
    parser.add_argument(
        "--rows", nargs="+", default=None, help="run only these rows (any noise)"
    )
    parser.add_argument(
        "--noises", nargs="+", choices=sorted(NOISE_NAMES), default=sorted(NOISE_NAMES)
    )
    parser.add_argument(
        "--fresh", action="store_true", help="rerun rows --output already holds"
    )
    parser.add_argument(
        "--dividemix",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="extra parameters of the DivideMix rows (with --tag)",
    )
    parser.add_argument(
        "--tag", default=None, help="suffix of the rows --dividemix changes"
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--table", action="store_true", help="print the table")
    return parser.parse_args(argv)


def output_path(args) -> Path:
    """``--output``, else CIFAR-10's results file or one per other data set."""
    if args.output is not None:
        return args.output
    if args.dataset == "cifar10":
        return RESULTS
    return RESULTS.with_name(f"transfer_{args.dataset}.json")


def saved_rows(path: Path, args) -> dict:
    """The rows ``path`` holds for these settings (none with ``--fresh``)."""
    import json

    if args.fresh or not path.exists():
        return {}
    saved = json.loads(path.read_text())
    settings = saved.get("settings", {})
    if any(settings.get(name) != str(getattr(args, name)) for name in _ROW_SETTINGS):
        return {}
    return saved["rows"]


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.dividemix and not args.tag:
        raise SystemExit("--dividemix changes rows: name them with --tag")
    args.output = output_path(args)
    if args.table:
        print(markdown_table(args.output))
        return
    torch.set_num_threads(1)
    X_pre, y_pre = load_classes(args.dataset, SOURCE, args.n_pretrain, "train", 1)
    pretrained = pretrain(
        X_pre, y_pre, width=args.width, epochs=args.pretrain_epochs, seed=args.seed
    )
    X_src, y_src = load_classes(args.dataset, SOURCE, None, "test", 0)
    X, y = load_classes(args.dataset, TARGET, args.n_train, "train", 2)
    X_test, y_test = load_classes(args.dataset, TARGET, None, "test", 0)
    result = {
        "command": command_line("benchmarks.transfer", argv),
        "machine": machine_info(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "pretraining": {
            "seconds": pretrained["seconds"],
            "cpu_seconds": pretrained["cpu_seconds"],
            "source_test_accuracy": _source_accuracy(pretrained, X_src, y_src),
        },
        "rows": saved_rows(args.output, args),
    }
    for noise in (NOISE_NAMES[name] for name in args.noises):
        spec = NOISES[noise]
        y_noisy, flipped = make_noisy_labels(y, **spec, random_state=args.seed)
        for name, make in estimators(pretrained, args, noise).items():
            if name in result["rows"].get(noise, {}):
                continue
            row = run_row(make, X, y_noisy, flipped, X_test, y_test)
            result["rows"].setdefault(noise, {})[name] = row
            print(noise, name, {k: v for k, v in row.items() if v is not None})
            write_json(args.output, result)


def markdown_table(path: Path) -> str:
    """The saved result as a Markdown table, one line per row and noise."""
    import json

    result = json.loads(Path(path).read_text())
    lines = [
        "| noise | route | test accuracy | detection F1 | fit time (s) |",
        "|---|---|---|---|---|",
    ]
    # runs before fit_cpu_seconds was recorded give the wall clock
    for noise, rows in result["rows"].items():
        for name, row in rows.items():
            f1 = row.get("detection_f1")
            lines.append(
                f"| {noise} | {name} | {100 * row['test_accuracy']:.1f} % | "
                f"{'-' if f1 is None else f'{f1:.2f}'} | "
                f"{row.get('fit_cpu_seconds', row['fit_seconds']):.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
