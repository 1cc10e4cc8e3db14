"""Speed of DivideMixClassifier against its compute floor and plain skorch.

For one data set size, module and batch size, in one process:

* the seconds of warm-up and MixMatch epochs of ``DivideMixClassifier``;
* the compute floor of each of those epochs: the same forward passes (no
  grad) and forward + backward passes of the same module at the same batch
  shapes on pre-made tensors, run right after the epoch (``speed_floor``);
* the same for a plain skorch ``NeuralNetClassifier`` epoch;

and reports efficiency = floor / actual per phase (median over the measured
epochs; the first epoch of each phase is a warm-up and is not counted).
``--memory`` also fits in a fresh subprocess and reports its peak memory.

Examples::

    python -m benchmarks.speed.speed --quick
    python -m benchmarks.speed.speed --dataset mnist --n 10000 --module cnn
    python -m benchmarks.speed.speed --dataset cifar10 --n 512 --module resnet18
    python -m benchmarks.speed.speed --memory-only --dataset mnist --n 60000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_dividemix import DivideMixClassifier

from .._common import (
    RESULTS_DIR,
    ROOT,
    PeakSampler,
    command_line,
    machine_info,
    module_spec,
    read_status,
    reset_peak_rss,
    write_json,
)
from .speed_session import DivideMixFloor, SkorchFloor

NOISE_RATE = 0.4


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion_mnist", "cifar10", "synthetic"],
    )
    add("--n", type=int, default=10000, help="training samples")
    add("--module", default="cnn", choices=["cnn", "resnet18", "mlp"])
    add("--batch-size", type=int, default=64)
    add("--eval-batch-size", type=int, default=1024)
    add("--warmup-epochs", type=int, default=3, help="first one not counted")
    add("--mixmatch-epochs", type=int, default=3, help="first one not counted")
    add("--amp", choices=["bf16", "fp16"], default=None)
    add(
        "--optimizer-fused",
        action="store_true",
        help="fused SGD (one kernel per step) for DivideMix and skorch alike",
    )
    add(
        "--channels-last",
        choices=["auto", "true", "false"],
        default="auto",
        help="memory format of the nets (auto: the estimator's default)",
    )
    add("--threads", type=int, default=None, help="torch threads (default: all)")
    add("--memory", action="store_true", help="also measure peak memory of a fit")
    add("--memory-only", action="store_true", help="only measure peak memory")
    add("--memory-child", action="store_true", help=argparse.SUPPRESS)
    add("--memory-method", default="dividemix", help=argparse.SUPPRESS)
    add("--quick", action="store_true", help="tiny synthetic run, a few seconds")
    add("--out", type=Path, default=None, help="JSON file (default: results/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.n, args.module = "synthetic", 192, "cnn"
        args.batch_size, args.eval_batch_size = 32, 128
        args.warmup_epochs = args.mixmatch_epochs = 2
    return args


# -- data and modules -------------------------------------------------------


def load_data(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 images (n, C, H, W) and labels with 40 % symmetric noise."""
    rng = np.random.RandomState(seed)
    if name == "synthetic":
        X = rng.rand(n, 1, 12, 12).astype(np.float32)
        y = np.arange(n) % 4
        X[np.arange(n), 0, y, :] += 1.0
    else:
        # imported here: the memory baseline of a synthetic run stays lean
        from .._data import load_dataset

        data = load_dataset(name, n, 100)
        X, y = data.X_train, data.y_train
    n_classes = int(y.max()) + 1
    flipped = rng.rand(len(y)) < NOISE_RATE
    y = y.copy()
    y[flipped] = (y[flipped] + rng.randint(1, n_classes, flipped.sum())) % n_classes
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)


def dividemix_module(name: str, X: np.ndarray, n_classes: int):
    """(module, module kwargs) for DivideMix: ``None`` is the default CNN/MLP."""
    if name in ("cnn", "mlp") and X.ndim == (4 if name == "cnn" else 2):
        return None, {}
    return module_spec(X, n_classes, name)


# -- the two fits -------------------------------------------------------------


def _phase_summary(epochs: list[dict]) -> dict:
    """Medians of the epochs after the first one, by wall clock and CPU time."""
    measured = epochs[1:] if len(epochs) > 1 else epochs
    summary = {"epochs": epochs, "measured_epochs": len(measured)}
    for clock in ("", "_cpu"):
        actual = np.array([e[f"actual{clock}_s"] for e in measured])
        floor = np.array([e[f"floor{clock}_s"] for e in measured])
        ratio = floor / actual
        summary[f"actual{clock}_s"] = float(np.median(actual))
        summary[f"floor{clock}_s"] = float(np.median(floor))
        # the least loaded epoch: the best estimate of an idle machine's time
        summary[f"best_actual{clock}_s"] = float(actual.min())
        summary[f"best_floor{clock}_s"] = float(floor.min())
        summary[f"efficiency{clock}"] = float(np.median(ratio))
        summary[f"efficiency{clock}_range"] = [float(ratio.min()), float(ratio.max())]
    return summary


def _optimizer_kwargs(args) -> dict:
    return {"optimizer__fused": True} if args.optimizer_fused else {}


# The MixMatch step this benchmark has timed since 0.1, the paper's (two
# views of the labeled and unlabeled rows, mixup, one pass over the labeled
# set): the 0.3 defaults train the labeled set only, a lighter step that the
# floor of DivideMixFloor does not model.
PAPER_LOOP = {
    "division": "global",
    "lambda_u": "auto",
    "alpha": 0.5,
    "steps_per_epoch": "labeled",
    "noise_floor": False,
}


def dividemix_estimator(args, X, y, callbacks: list, **params) -> DivideMixClassifier:
    """DivideMix with ``args.warmup_epochs`` and ``args.mixmatch_epochs`` exactly."""
    module, module_kwargs = dividemix_module(args.module, X, int(y.max()) + 1)
    return DivideMixClassifier(
        module,
        max_epochs=args.warmup_epochs + args.mixmatch_epochs,
        warmup_epochs=args.warmup_epochs,
        # phases exactly as asked: no warm-up extension (it divides as well)
        max_warmup_epochs=args.warmup_epochs,
        batch_size=args.batch_size,
        random_state=0,
        callbacks=callbacks,
        **{**PAPER_LOOP, **params},
        **{f"module__{k}": v for k, v in module_kwargs.items()},
    )


def time_dividemix(args, X, y, after_epoch=None) -> dict:
    n_classes = int(y.max()) + 1
    batch_size = min(args.batch_size, len(X))
    recorder = DivideMixFloor(
        X, n_classes, batch_size, args.eval_batch_size, after_epoch=after_epoch
    )
    clf = dividemix_estimator(
        args,
        X,
        y,
        [recorder],
        eval_batch_size=args.eval_batch_size,
        amp=args.amp,
        channels_last={"true": True, "false": False}.get(args.channels_last, "auto"),
        **_optimizer_kwargs(args),
    )
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    epochs = recorder.records
    return {
        "channels_last": clf.net1_.channels_last,
        "amp": clf.net1_.amp,
        "fit_s": fit_s,
        "epochs_s": float(sum(row["dur"] for row in clf.history_)),
        "warmup": _phase_summary([e for e in epochs if e["phase"] == "warmup"]),
        "mixmatch": _phase_summary([e for e in epochs if e["phase"] == "mixmatch"]),
    }


def skorch_net(args, X, y, callbacks="floor", max_epochs=1):
    """A plain skorch net of the same module, optimizer and batch size.

    It trains one epoch at a time (``partial_fit``) between DivideMix epochs;
    its ``SkorchFloor`` callback keeps the records.
    """
    from skorch import NeuralNetClassifier

    n_classes = int(y.max()) + 1
    module, module_kwargs = module_spec(X, n_classes, args.module)
    batch_size = min(args.batch_size, len(X))
    net = NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        optimizer__weight_decay=5e-4,
        lr=0.02,
        batch_size=batch_size,
        max_epochs=max_epochs,
        train_split=None,
        iterator_train__shuffle=True,
        callbacks=[("floor", SkorchFloor(X, n_classes, batch_size))]
        if callbacks == "floor"
        else None,
        device="cpu" if not torch.cuda.is_available() else "cuda",
        verbose=0,
        **_optimizer_kwargs(args),
        **{f"module__{k}": v for k, v in module_kwargs.items()},
    )
    return net.initialize()


def _paired_ratios(ours: list[dict], theirs: list[dict]) -> dict:
    """Per phase, medians over epoch pairs of DivideMix / skorch seconds.

    ``excess`` is measured ratio / floor ratio (skorch's efficiency over
    DivideMix's): at most 1 when a DivideMix epoch costs no more, relative to
    a skorch epoch, than the floor predicts.
    """
    ratios = {}
    for phase in ("warmup", "mixmatch"):
        pairs = [
            (m, t) for m, t in zip(ours, theirs, strict=True) if m["phase"] == phase
        ]
        pairs = pairs[1:] if len(pairs) > 1 else pairs
        actual = np.array([m["actual_s"] / t["actual_s"] for m, t in pairs])
        floor = np.array([m["floor_s"] / t["floor_s"] for m, t in pairs])
        ratios[f"{phase}_over_skorch_actual"] = float(np.median(actual))
        ratios[f"{phase}_over_skorch_floor"] = float(np.median(floor))
        ratios[f"{phase}_excess"] = float(np.median(actual / floor))
    return ratios


def time_both(args, X, y) -> tuple[dict, dict, dict]:
    """DivideMix epochs, each followed by one plain skorch epoch, paired."""
    net = skorch_net(args, X, y)
    dividemix = time_dividemix(args, X, y, after_epoch=lambda: net.partial_fit(X, y))
    theirs = dict(net.callbacks_)["floor"].records
    ours = sorted(
        dividemix["warmup"]["epochs"] + dividemix["mixmatch"]["epochs"],
        key=lambda e: e["epoch"],
    )
    return dividemix, _phase_summary(theirs), _paired_ratios(ours, theirs)


# -- memory -------------------------------------------------------------------


def _memory_fit(args, X, y, max_epochs=2):
    n_classes = int(y.max()) + 1
    if args.memory_method == "skorch":
        net = skorch_net(args, X, y, callbacks=None, max_epochs=max_epochs)
        return net.fit(X, y)
    module, module_kwargs = dividemix_module(args.module, X, n_classes)
    clf = DivideMixClassifier(
        module,
        max_epochs=max_epochs,
        warmup_epochs=1,
        max_warmup_epochs=1,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        random_state=0,
        **PAPER_LOOP,
        **{f"module__{k}": v for k, v in module_kwargs.items()},
    )
    return clf.fit(X, y)


def memory_child(args) -> dict:
    """Peak memory of one fit (1 warm-up + 1 MixMatch epoch), in this process.

    With ``--memory-method=skorch``, of a plain skorch fit of two epochs of
    the same module instead.

    A tiny fit on random data of the same shape runs first, so that the
    baseline holds the libraries a fit loads lazily (the GMM's scipy, oneDNN's
    kernels) and the budget is about the data and the fit's working set.
    """
    import gc

    imported = read_status()
    X, y = load_data(args.dataset, args.n)
    rng = np.random.RandomState(0)
    X_tiny = rng.rand(64, *X.shape[1:]).astype(np.float32)
    _memory_fit(args, X_tiny, np.arange(64) % (int(y.max()) + 1))
    del X_tiny
    gc.collect()
    loaded = read_status()
    hwm_reset = reset_peak_rss()
    start = time.perf_counter()
    with PeakSampler() as sampler:
        clf = _memory_fit(args, X, y)
    fit_s = time.perf_counter() - start
    after = read_status()
    nets = [clf] if args.memory_method == "skorch" else [clf.net1_, clf.net2_]
    model_bytes = sum(
        t.numel() * t.element_size()
        for net in nets
        for t in [*net.module_.parameters(), *net.module_.buffers()]
    )
    peak = after["VmHWM"] if hwm_reset else sampler.peak["VmRSS"]
    # What the process holds apart from the data and this fit: interpreter,
    # libraries (about 0.6 GB for a CUDA build of torch, even on a CPU).
    baseline = loaded["VmRSS"] - X.nbytes - y.nbytes
    data_bytes = X.nbytes
    budget = 2 * (data_bytes + model_bytes) + 300 * 2**20
    return {
        "method": args.memory_method,
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "n": len(X),
        "fit_s": fit_s,
        "data_bytes": data_bytes,
        "model_bytes": model_bytes,
        "rss_after_import": imported["VmRSS"],
        "rss_before_fit": loaded["VmRSS"],
        "anon_before_fit": loaded["RssAnon"],
        "baseline_rss": baseline,
        "fit_peak_rss": peak,
        "fit_peak_rss_sampled": sampler.peak["VmRSS"],
        "fit_peak_anon_sampled": sampler.peak["RssAnon"],
        "hwm_reset": hwm_reset,
        "fit_peak_over_baseline": peak - baseline,
        "fit_working_set": peak - loaded["VmRSS"],
        "budget_bytes": budget,
        "within_budget": bool(peak - baseline <= budget),
    }


def measure_memory(args) -> dict:
    """Run :func:`memory_child` in a fresh interpreter and return its report."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.speed.speed",
        "--memory-child",
        f"--dataset={args.dataset}",
        f"--n={args.n}",
        f"--module={args.module}",
        f"--batch-size={args.batch_size}",
        f"--eval-batch-size={args.eval_batch_size}",
    ]
    if args.threads:
        command.append(f"--threads={args.threads}")
    reports = {}
    for method in ("dividemix", "skorch"):
        output = subprocess.run(
            [*command, f"--memory-method={method}"],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        reports[method] = json.loads(output.strip().splitlines()[-1])
    # the plain skorch fit of the same module and data, for comparison
    return {**reports["dividemix"], "skorch": reports["skorch"]}


# -- report -------------------------------------------------------------------


def print_summary(result: dict) -> None:
    if "dividemix" in result:
        rows = [
            ("DivideMix warm-up", result["dividemix"]["warmup"]),
            ("DivideMix MixMatch", result["dividemix"]["mixmatch"]),
            ("plain skorch", result["skorch"]),
        ]
        print(
            f"{'phase':<20} {'s/epoch':>9} {'floor s':>9} {'efficiency':>10} "
            f"{'eff. (CPU time)':>15}"
        )
        for name, phase in rows:
            print(
                f"{name:<20} {phase['actual_s']:>9.3f} {phase['floor_s']:>9.3f} "
                f"{phase['efficiency']:>10.3f} {phase['efficiency_cpu']:>15.3f}"
            )
        for key, value in result["ratios"].items():
            print(f"{key:<32} {value:.2f}")
    if "memory" in result:
        memory = result["memory"]
        print(
            f"memory: fit peak {memory['fit_peak_rss'] / 2**20:.0f} MiB, "
            f"{memory['fit_peak_over_baseline'] / 2**20:.0f} MiB over the "
            f"libraries' baseline, budget {memory['budget_bytes'] / 2**20:.0f} MiB"
        )


def default_out(args) -> Path:
    name = (
        "quick"
        if args.quick
        else f"{args.dataset}_{args.n}_{args.module}_b{args.batch_size}"
    )
    if args.amp:
        name += f"_{args.amp}"
    if args.optimizer_fused:
        name += "_fused"
    if args.channels_last != "auto":
        name += "_cl" if args.channels_last == "true" else "_nchw"
    if args.threads:
        name += f"_t{args.threads}"
    if args.memory_only:
        name = f"memory_{args.dataset}_{args.n}_{args.module}"
        threshold = os.environ.get("MALLOC_MMAP_THRESHOLD_")
        name += f"_mmap{threshold}" if threshold else ""
    return RESULTS_DIR / f"speed_{name}.json"


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(memory_child(args)))
        return {}
    result = {
        "command": command_line("benchmarks.speed.speed", argv),
        "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
        "machine": machine_info(),
        "loadavg_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if not args.memory_only:
        X, y = load_data(args.dataset, args.n)
        result["input_shape"] = list(X.shape[1:])
        dividemix, skorch, ratios = time_both(args, X, y)
        result.update(dividemix=dividemix, skorch=skorch, ratios=ratios)
    if args.memory or args.memory_only:
        result["memory"] = measure_memory(args)
    result["loadavg_after"] = os.getloadavg()
    out = write_json(args.out or default_out(args), result)
    print_summary(result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
