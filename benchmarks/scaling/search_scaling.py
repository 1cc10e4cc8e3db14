"""Grid search of DivideMixClassifier: serial against Dask and Ray workers.

One ``GridSearchCV`` (4 candidates, ``cv=2``, 8 fits and the refit) on
scikit-learn's digits with 40 % symmetric label noise, run serially
(``n_jobs=1``) and with ``n_jobs=-1`` under joblib's Dask backend and under
Ray's. Each measurement starts the configuration's cluster in a fresh
interpreter, runs one search that is not timed (the workers import torch) and
one that is. ``--repeats`` rounds measure every configuration in turn, so
that other load on the machine meets all of them alike; the table gives the
median. Every fit records ``torch.get_num_threads()`` and its process id from
inside the worker, so the table also shows how many torch threads ran at
once; the scores are compared with the serial ones and across rounds. (A
fresh interpreter each time: a Dask nanny leaves ``OMP_NUM_THREADS=1`` in the
environment of the process that started it, which would reach the workers
of the next configuration.)

Configurations (``--variants``):

* ``serial``: ``n_jobs=1``, torch's default threads (all CPUs);
* ``serial_t1``: ``n_jobs=1`` with ``torch.set_num_threads(1)``;
* ``dask``: ``LocalCluster(n_workers=2, threads_per_worker=1)``, processes
  started by nannies (Dask's default, ``OMP_NUM_THREADS=1`` in workers);
* ``dask_unlimited``: the same with the nanny's ``pre-spawn-environ``
  emptied, as a worker without a nanny: nothing limits torch's threads;
* ``dask_threads``: ``LocalCluster(processes=False, n_workers=1,
  threads_per_worker=2)``, both fits in one process;
* ``dask_threads_limited``: the same with each fit inside
  ``limit_torch_threads(worker_thread_budget())``;
* ``ray``: ``ray.init(num_cpus=2)`` and Ray's joblib backend.

Examples::

    python -m benchmarks.scaling.search_scaling
    python -m benchmarks.scaling.search_scaling --repeats 1 --variants serial dask
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._threads import limit_torch_threads, worker_thread_budget

from .._common import RESULTS_DIR, ROOT, command_line, machine_info, write_json
from .._data import digits

RESULTS = RESULTS_DIR / "search_scaling.json"
GRID = {"lr": [0.05, 0.1], "lambda_u": [0, 25]}
VARIANTS = {
    "serial": "n_jobs=1, torch's default threads",
    "serial_t1": "n_jobs=1, torch.set_num_threads(1)",
    "dask": "Dask, 2 worker processes x 1 thread (nanny: OMP_NUM_THREADS=1)",
    "dask_unlimited": "Dask, 2 worker processes x 1 thread, OMP_NUM_THREADS unset",
    "dask_threads": "Dask, 1 process x 2 threads (processes=False)",
    "dask_threads_limited": "the same, fits in limit_torch_threads(...)",
    "ray": "Ray, ray.init(num_cpus=2), 2 actors",
}


class ThreadsSeen(Callback):
    """Notes torch's threads when training begins, inside ``fit``."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.torch_threads_ = torch.get_num_threads()


class LimitedClassifier(DivideMixClassifier):
    """DivideMixClassifier whose fit runs within the worker's thread budget."""

    def fit(self, X, y):
        with limit_torch_threads(worker_thread_budget()):
            return super().fit(X, y)


def _torch_threads(estimator, X, y):
    return dict(estimator.net1_.callbacks_)["ThreadsSeen"].torch_threads_


def _pid(estimator, X, y):
    # scored in the process that fitted
    return os.getpid()


SCORING = {"accuracy": "accuracy", "torch_threads": _torch_threads, "pid": _pid}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--repeats", type=int, default=3, help="rounds: timed searches per variant")
    add("--max-epochs", type=int, default=6)
    add("--warmup-epochs", type=int, default=2)
    add("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    add("--out", type=Path, default=RESULTS, help="JSON file")
    add("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_data() -> tuple[np.ndarray, np.ndarray]:
    X, y = digits(dtype=np.float64)
    y_noisy, _ = make_noisy_labels(y, noise_rate=0.4, random_state=0)
    return X, y_noisy


# -- backends ------------------------------------------------------------------


@contextmanager
def serial_backend(threads: int | None = None):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        yield {"n_jobs": 1, "tasks_at_once": 1}
    finally:
        torch.set_num_threads(previous)


@contextmanager
def dask_backend(processes: bool, n_workers: int, threads: int, nanny_env: bool):
    import dask
    from dask.distributed import Client, LocalCluster

    # With an empty pre-spawn environment the worker processes start as a
    # worker without a nanny does: no OMP_NUM_THREADS.
    config = {} if nanny_env else {"distributed.nanny.pre-spawn-environ": {}}
    start = time.perf_counter()
    with dask.config.set(config):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=processes,
            dashboard_address=None,
        )
    client = Client(cluster)
    try:
        startup = time.perf_counter() - start
        with parallel_config(backend="dask"):
            yield {
                "n_jobs": -1,
                "tasks_at_once": n_workers * threads,
                "startup_s": startup,
            }
    finally:
        client.close()
        cluster.close()


@contextmanager
def ray_backend(num_cpus: int):
    import ray
    from ray.util.joblib import register_ray

    start = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        startup = time.perf_counter() - start
        with parallel_config(backend="ray"):
            yield {"n_jobs": -1, "tasks_at_once": num_cpus, "startup_s": startup}
    finally:
        ray.shutdown()


def backend(name: str):
    if name.startswith("serial"):
        return serial_backend(threads=1 if name == "serial_t1" else None)
    if name == "ray":
        return ray_backend(num_cpus=2)
    if name.startswith("dask_threads"):
        return dask_backend(processes=False, n_workers=1, threads=2, nanny_env=True)
    return dask_backend(
        processes=True, n_workers=2, threads=1, nanny_env=name != "dask_unlimited"
    )


# -- measurement ---------------------------------------------------------------


def search(args, name: str, n_jobs: int, X, y) -> tuple[float, GridSearchCV]:
    estimator_class = LimitedClassifier if name.endswith("limited") else None
    estimator = (estimator_class or DivideMixClassifier)(
        max_epochs=args.max_epochs,
        warmup_epochs=args.warmup_epochs,
        random_state=0,
        callbacks=[ThreadsSeen()],
    )
    grid = GridSearchCV(
        estimator, GRID, cv=2, scoring=SCORING, refit="accuracy", n_jobs=n_jobs
    )
    start = time.perf_counter()
    grid.fit(X, y)
    return time.perf_counter() - start, grid


def summarize(grid: GridSearchCV) -> dict:
    results = grid.cv_results_
    splits = range(grid.n_splits_)
    threads = [results[f"split{i}_test_torch_threads"] for i in splits]
    pids = [results[f"split{i}_test_pid"] for i in splits]
    return {
        "best_params": grid.best_params_,
        "mean_test_score": results["mean_test_accuracy"].tolist(),
        "split_test_scores": [
            results[f"split{i}_test_accuracy"].tolist() for i in splits
        ],
        "torch_threads_in_fits": sorted({int(t) for t in np.ravel(threads)}),
        "fit_processes": len({int(p) for p in np.ravel(pids)}),
        "refit_s": grid.refit_time_,
    }


def measure_once(args, name: str, X, y) -> dict:
    """Start the cluster of ``name``, run an untimed and a timed search."""
    load_before = os.getloadavg()
    with backend(name) as info:
        first_s, _ = search(args, name, info["n_jobs"], X, y)
        seconds, grid = search(args, name, info["n_jobs"], X, y)
    return {
        **info,
        "first_search_s": first_s,
        "search_s": seconds,
        **summarize(grid),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }


def measure_in_child(args, name: str) -> dict:
    """Run :func:`measure_once` for ``name`` in a fresh interpreter."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.scaling.search_scaling",
        f"--child={name}",
        f"--max-epochs={args.max_epochs}",
        f"--warmup-epochs={args.warmup_epochs}",
    ]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def aggregate(name: str, rounds: list[dict]) -> dict:
    """One variant's rounds: medians, and whether every round scored alike."""
    first = rounds[0]
    threads = sorted({t for r in rounds for t in r["torch_threads_in_fits"]})
    return {
        "description": VARIANTS[name],
        "n_jobs": first["n_jobs"],
        "tasks_at_once": first["tasks_at_once"],
        "startup_s": [r.get("startup_s") for r in rounds],
        "first_search_s": [r["first_search_s"] for r in rounds],
        "search_s": [r["search_s"] for r in rounds],
        "median_s": statistics.median(r["search_s"] for r in rounds),
        "refit_s": statistics.median(r["refit_s"] for r in rounds),
        # the fits of the search proper, without the refit in this process
        "cv_s": statistics.median(r["search_s"] - r["refit_s"] for r in rounds),
        "best_params": first["best_params"],
        "mean_test_score": first["mean_test_score"],
        "split_test_scores": first["split_test_scores"],
        "rounds_agree": all(
            r["split_test_scores"] == first["split_test_scores"] for r in rounds
        ),
        "torch_threads_in_fits": threads,
        "threads_at_once": max(threads) * first["tasks_at_once"],
        "fit_processes": max(r["fit_processes"] for r in rounds),
        "loadavg_before": [r["loadavg_before"] for r in rounds],
        "loadavg_after": [r["loadavg_after"] for r in rounds],
    }


def compare(results: dict) -> None:
    """Speed-ups and score identity, against the serial run when there is one."""
    serial = results.get("serial")
    for result in results.values():
        if serial is None:
            break
        result["speedup"] = serial["median_s"] / result["median_s"]
        result["speedup_cv"] = serial["cv_s"] / result["cv_s"]
        result["same_best_params"] = result["best_params"] == serial["best_params"]
        result["same_scores"] = (
            result["split_test_scores"] == serial["split_test_scores"]
        )


def print_table(results: dict) -> None:
    print(
        f"{'variant':<21} {'threads/fit':>11} {'at once':>7} {'procs':>5} "
        f"{'search s':>8} {'refit s':>7} {'CV s':>5} {'speed-up':>8} "
        f"{'CV speed-up':>11} {'as serial':>9} {'reproducible':>12}"
    )
    for name, r in results.items():
        threads = ",".join(str(t) for t in r["torch_threads_in_fits"])
        print(
            f"{name:<21} {threads:>11} {r['threads_at_once']:>7} "
            f"{r['fit_processes']:>5} {r['median_s']:>8.2f} {r['refit_s']:>7.2f} "
            f"{r['cv_s']:>5.2f} {r.get('speedup', float('nan')):>8.2f} "
            f"{r.get('speedup_cv', float('nan')):>11.2f} "
            f"{str(r.get('same_scores', '-')):>9} {str(r['rounds_agree']):>12}"
        )


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure_once(args, args.child, *load_data())))
        return {}
    # Rounds of every variant in turn, so that whatever else loads the
    # machine meets all of them alike.
    rounds = {name: [] for name in args.variants}
    for i in range(args.repeats):
        for name in args.variants:
            rounds[name].append(measure_in_child(args, name))
            seconds = rounds[name][-1]["search_s"]
            print(f"round {i + 1}, {name}: {seconds:.2f} s", file=sys.stderr)
    results = {name: aggregate(name, rounds[name]) for name in args.variants}
    compare(results)
    report = {
        "command": command_line("benchmarks.scaling.search_scaling", argv),
        "config": {
            "grid": GRID,
            "cv": 2,
            "max_epochs": args.max_epochs,
            "warmup_epochs": args.warmup_epochs,
            "repeats": args.repeats,
            "data": "digits X/16, make_noisy_labels(noise_rate=0.4, random_state=0)",
        },
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": results,
    }
    print_table(results)
    write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
