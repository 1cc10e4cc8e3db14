"""GridSearchCV of DivideMixClassifier on Dask and Ray workers, on small data.

Each fit notes, from inside the worker, its torch threads (a skorch callback),
its process and the GPUs it may see; scorers hand them back through
``cv_results_``. The clusters are closed in ``finally`` blocks, and the tests
check that their worker processes are gone.
"""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from joblib import Parallel, cpu_count, delayed, parallel_config
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._threads import limit_torch_threads, worker_thread_budget

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning"),
    # one at a time with the other tests that start processes (conftest.py)
    pytest.mark.usefixtures("one_multiprocess_test_at_a_time"),
]

GRID = {"lr": [0.05, 0.1]}
N_WORKERS = 2


class ThreadsSeen(Callback):
    """Notes torch's threads when training begins, inside ``fit``."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.torch_threads_ = torch.get_num_threads()


def _visible_gpu(estimator, X, y):
    """The one GPU the fit's process may see, -1 without CUDA_VISIBLE_DEVICES."""
    return float(os.environ.get("CUDA_VISIBLE_DEVICES", "-1"))


def _torch_threads(estimator, X, y):
    return dict(estimator.net1_.callbacks_)["ThreadsSeen"].torch_threads_


def _pid(estimator, X, y):
    # scored in the process that fitted
    return os.getpid()


SCORING = {
    "accuracy": "accuracy",
    "torch_threads": _torch_threads,
    "pid": _pid,
    "gpu": _visible_gpu,
}


def _search(X, y, n_jobs):
    # on the CPU everywhere: the same numbers in every process, GPUs or not
    estimator = DivideMixClassifier(
        max_epochs=2,
        warmup_epochs=1,
        batch_size=32,
        device="cpu",
        random_state=0,
        callbacks=[ThreadsSeen()],
    )
    search = GridSearchCV(
        estimator, GRID, cv=2, scoring=SCORING, refit=False, n_jobs=n_jobs
    )
    return search.fit(X, y).cv_results_


def _per_fit(results, name):
    return np.ravel([results[f"split{i}_test_{name}"] for i in range(2)])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    y_noisy, _ = make_noisy_labels(y, noise_rate=0.4, random_state=0)
    return X, y_noisy


@pytest.fixture(scope="module")
def serial_results(digits):
    return _search(*digits, n_jobs=1)


@pytest.fixture
def restore_environ():
    # A Dask nanny writes OMP_NUM_THREADS=1 (and more) into the environment of
    # the process that starts it; keep it from reaching later tests.
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _assert_exited(pids, timeout=45):
    psutil = pytest.importorskip("psutil")
    procs = [psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    assert not alive


@pytest.fixture
def dask_client(restore_environ):
    distributed = pytest.importorskip(
        "dask.distributed", reason="Dask's joblib backend needs dask[distributed]"
    )
    cluster = distributed.LocalCluster(
        n_workers=N_WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    )
    pids = []
    try:
        client = distributed.Client(cluster)
        try:
            pids = list(client.run(os.getpid).values())
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
        _assert_exited(pids)


def test_dask_search_matches_serial_without_oversubscription(
    digits, serial_results, dask_client
):
    with parallel_config(backend="dask"):
        results = _search(*digits, n_jobs=-1)
    np.testing.assert_array_equal(
        results["mean_test_accuracy"], serial_results["mean_test_accuracy"]
    )
    np.testing.assert_array_equal(
        _per_fit(results, "accuracy"), _per_fit(serial_results, "accuracy")
    )
    workers = set(dask_client.run(os.getpid).values())
    assert set(_per_fit(results, "pid")) <= workers
    # Nannies start workers with OMP_NUM_THREADS=1: one torch thread per task.
    threads = _per_fit(results, "torch_threads")
    assert set(threads) == {1}
    assert threads.max() * N_WORKERS <= cpu_count()


def test_dask_gpu_recipe_pins_one_device_per_worker(restore_environ):
    # docs/scaling.md: one single-threaded worker per GPU, each started with
    # its own CUDA_VISIBLE_DEVICES and a GPU resource the tasks ask for.
    distributed = pytest.importorskip(
        "dask.distributed", reason="Dask's joblib backend needs dask[distributed]"
    )
    workers = {
        f"gpu{i}": {
            "cls": distributed.Nanny,
            "options": {
                "nthreads": 1,
                "env": {"CUDA_VISIBLE_DEVICES": str(i)},
                "resources": {"GPU": 1},
            },
        }
        for i in range(N_WORKERS)
    }
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": None}}
    cluster = distributed.SpecCluster(workers=workers, scheduler=scheduler)
    pids = []
    try:
        client = distributed.Client(cluster)
        try:
            seen = client.run(lambda: (os.getpid(), os.environ["CUDA_VISIBLE_DEVICES"]))
            pids = [pid for pid, _ in seen.values()]
            assert sorted(gpu for _, gpu in seen.values()) == ["0", "1"]
            # joblib's Dask backend hands `resources` on to Client.submit
            with parallel_config(backend="dask", resources={"GPU": 1}):
                gpus = Parallel(n_jobs=-1)(
                    delayed(_visible_gpu)(None, None, None) for _ in range(4)
                )
            assert set(gpus) <= {0.0, 1.0}
        finally:
            client.close()
    finally:
        cluster.close()
        _assert_exited(pids)


def test_ray_search_matches_serial_and_pins_one_gpu_per_actor(
    digits, serial_results, restore_environ
):
    ray = pytest.importorskip("ray", reason="Ray's joblib backend needs ray")
    from ray.util.joblib import register_ray

    # Ray's workers do not inherit sys.path: this module must be importable.
    tests = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    # Two logical GPUs: Ray sets CUDA_VISIBLE_DEVICES in each actor holding
    # one, whether or not the GPUs exist.
    ray.init(
        num_cpus=N_WORKERS,
        num_gpus=N_WORKERS,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        register_ray()
        remote_args = {"num_cpus": 1, "num_gpus": 1}
        with parallel_config(backend="ray", ray_remote_args=remote_args):
            results = _search(*digits, n_jobs=N_WORKERS)
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(
        _per_fit(results, "accuracy"), _per_fit(serial_results, "accuracy")
    )
    assert _per_fit(results, "torch_threads").max() * N_WORKERS <= cpu_count()
    # each actor process sees exactly one GPU, its own
    pids, gpus = _per_fit(results, "pid"), _per_fit(results, "gpu")
    pairs = set(zip(pids, gpus, strict=True))
    assert set(gpus) <= {0.0, 1.0}
    assert len(pairs) == len(set(pids)) == len(set(gpus))
    # Ray's raylet ends its actors asynchronously after shutdown: seconds on
    # an idle machine, more than 45 s on a 2-core one running other jobs.
    _assert_exited([int(pid) for pid in set(pids)], timeout=180)


# -- the thread budget --------------------------------------------------------


def test_limit_torch_threads_lowers_restores_and_never_raises():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with limit_torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(KeyError), limit_torch_threads(1):
            raise KeyError
        assert torch.get_num_threads() == 2
        for cap in (None, 2, 8):
            with limit_torch_threads(cap):
                assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_limit_torch_threads_leaves_other_threads_alone():
    before = torch.get_num_threads()
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def task():
        with limit_torch_threads(1):
            seen["task"] = torch.get_num_threads()
            inside.set()
            release.wait(10)

    try:
        torch.set_num_threads(2)
        thread = threading.Thread(target=task)
        thread.start()
        inside.wait(10)
        seen["main"] = torch.get_num_threads()
        release.set()
        thread.join()
    finally:
        torch.set_num_threads(before)
    assert seen == {"task": 1, "main": 2}


def _budget_and_threads():
    with limit_torch_threads(worker_thread_budget()):
        return worker_thread_budget(), torch.get_num_threads()


def test_worker_thread_budget_shares_the_cpus_of_a_threaded_worker(restore_environ):
    distributed = pytest.importorskip(
        "dask.distributed", reason="Dask's joblib backend needs dask[distributed]"
    )
    assert worker_thread_budget() is None
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_count())
    try:
        # processes=False: both tasks run in this process, where nothing
        # limits torch's threads but the budget.
        with (
            distributed.LocalCluster(
                n_workers=1,
                threads_per_worker=N_WORKERS,
                processes=False,
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            budgets = client.gather(
                [client.submit(_budget_and_threads, pure=False) for _ in range(2)]
            )
    finally:
        torch.set_num_threads(before)
    expected = max(1, cpu_count() // N_WORKERS)
    assert budgets == [(expected, expected)] * 2
