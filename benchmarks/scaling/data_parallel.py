"""Data-parallel speed-up: one process against two under ``torchrun``.

Fits the same DivideMixClassifier (default CNN, MNIST digits as 1x28x28
uint8 images, 40 % symmetric noise) three ways on this machine's CPUs, each
launched by ``torchrun`` so that start-up costs are alike:

* one process with one torch thread;
* one process with two torch threads (the usual way to use two cores);
* two processes with one thread each, ``distributed=True`` (gloo).

Each is repeated and the median fit time reported, with the test accuracy
and detection F1 of each fit, and whether both ranks ended with identical
weights. Writes ``benchmarks/results/data_parallel.json``; the table goes into
``docs/scaling.md`` by hand.

Usage (from the repository root)::

    python -m benchmarks.scaling.data_parallel            # ~3 minutes on 2 cores
    python -m benchmarks.scaling.data_parallel --smoke    # seconds, checks the plumbing
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .._common import RESULTS_DIR, machine_info, write_json
from .._data import archive

# (processes, torch threads per process)
CONFIGS = ((1, 1), (1, 2), (2, 1))


def _worker(args) -> None:
    """One rank: fit, then write timings, quality and a weight digest."""
    import torch
    from sklearn.metrics import f1_score

    from sklearn_dividemix import DivideMixClassifier

    torch.set_num_threads(args.threads)
    data = np.load(args.data)
    clf = DivideMixClassifier(
        max_epochs=args.epochs,
        warmup_epochs=max(1, args.epochs // 2),
        distributed=True,
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(data["X"], data["y"])
    fit_seconds = time.perf_counter() - start
    weights = torch.cat(
        [t.float().reshape(-1) for t in clf.net1_.module_.state_dict().values()]
    )
    rank = torch.distributed.get_rank()
    result = {
        "rank": rank,
        "world_size": torch.distributed.get_world_size(),
        "fit_seconds": fit_seconds,
        "test_accuracy": float(np.mean(clf.predict(data["X_test"]) == data["y_test"])),
        "detection_f1": float(f1_score(data["flipped"], ~clf.clean_mask_)),
        "weights": weights.tolist()[:64] + [float(weights.sum())],
    }
    Path(args.out, f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


def _data(n: int, n_test: int, path: Path, smoke: bool) -> None:
    from sklearn_dividemix import make_noisy_labels

    if smoke:
        rng = np.random.RandomState(0)
        x = rng.randint(0, 256, (n + n_test, 28, 28)).astype(np.uint8)
        y = np.arange(n + n_test) % 10
        arrays = {"x_train": x[:n], "y_train": y[:n]}
        arrays.update({"x_test": x[n:], "y_test": y[n:]})
    else:
        arrays = archive("mnist")
    y_noisy, flipped = make_noisy_labels(
        arrays["y_train"][:n], noise_rate=0.4, random_state=0
    )
    np.savez(
        path,
        X=arrays["x_train"][:n],
        y=y_noisy,
        flipped=flipped,
        X_test=arrays["x_test"][:n_test],
        y_test=arrays["y_test"][:n_test],
    )


def _launch(processes: int, threads: int, data: Path, epochs: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += [f"--nproc_per_node={processes}"]
        command += ["-m", "benchmarks.scaling.data_parallel"]
        command += ["--worker", "--out", out, "--data", str(data)]
        command += ["--threads", str(threads), "--epochs", str(epochs)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, timeout=1800)
        wall = time.perf_counter() - start
        ranks = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*"))]
    for rank in ranks:
        rank["wall_seconds"] = wall
    return ranks


def _summary(processes: int, threads: int, repeats: list[list[dict]]) -> dict:
    main_ranks = [ranks[0] for ranks in repeats]
    return {
        "processes": processes,
        "threads_per_process": threads,
        "fit_seconds": [r["fit_seconds"] for r in main_ranks],
        "median_fit_seconds": statistics.median(r["fit_seconds"] for r in main_ranks),
        "median_wall_seconds": statistics.median(r["wall_seconds"] for r in main_ranks),
        "test_accuracy": main_ranks[0]["test_accuracy"],
        "detection_f1": main_ranks[0]["detection_f1"],
        "ranks_identical": all(
            all(r["weights"] == ranks[0]["weights"] for r in ranks) for ranks in repeats
        ),
    }


def _print_table(rows: list[dict]) -> None:
    base = rows[0]["median_fit_seconds"]
    print(
        f"{'processes x threads':>20} {'fit s (median)':>15} {'speed-up':>9} "
        f"{'accuracy':>9} {'F1':>6} {'ranks equal':>12}"
    )
    for row in rows:
        print(
            f"{row['processes']:>10} x {row['threads_per_process']:<7} "
            f"{row['median_fit_seconds']:>15.1f} "
            f"{base / row['median_fit_seconds']:>8.2f}x "
            f"{row['test_accuracy']:>9.4f} {row['detection_f1']:>6.3f} "
            f"{row['ranks_identical']!s:>12}"
        )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random data")
    parser.add_argument("--n", type=int, default=3000, help="training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="JSON path")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return {}
    if args.smoke:
        args.n, args.epochs, args.repeats = 256, 2, 1
    output = args.output or (
        Path(tempfile.mkdtemp()) / "data_parallel.json"
        if args.smoke
        else RESULTS_DIR / "data_parallel.json"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "data.npz")
        _data(args.n, 2000 if not args.smoke else 100, data, args.smoke)
        rows = []
        for processes, threads in CONFIGS:
            repeats = [
                _launch(processes, threads, data, args.epochs)
                for _ in range(args.repeats)
            ]
            rows.append(_summary(processes, threads, repeats))
    _print_table(rows)
    result = {
        "command": "python -m benchmarks.scaling.data_parallel "
        + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "n_train": args.n,
        "max_epochs": args.epochs,
        "repeats": args.repeats,
        "rows": rows,
    }
    write_json(output, result)
    print(f"Wrote {output}")
    return result


if __name__ == "__main__":
    main()
