"""Data-parallel fits: the process seam, its collectives, a torchrun fit."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.metrics import f1_score
from torch import nn

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._distributed import (
    DataParallel,
    SingleProcess,
    _initialise_from_environment,
    collective_timeout,
    replica_device,
    resolve_replicas,
)

# Tests that start processes run one at a time (see conftest.py).
pytestmark = pytest.mark.usefixtures("one_multiprocess_test_at_a_time")

SCRIPT = Path(__file__).parent / "scripts" / "torchrun_fit.py"
ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("torchrun_fit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the worker script's row counter, to count one process's rows the same way
_worker = _load_script()
RowCounter, trained_rows = _worker.RowCounter, _worker.trained_rows


def test_single_process_is_the_identity():
    replicas = SingleProcess()
    index = torch.tensor([4, 1, 3])
    assert replicas.shard(index) is index
    assert replicas.rows(7) == (0, 7)
    rows = torch.arange(7.0)
    assert replicas.gather_rows(rows, 7) is rows
    generator = torch.Generator()
    assert replicas.view_generator(generator, 3) is generator
    assert replica_device("cuda", replicas) == "cuda"


@pytest.mark.parametrize("distributed", [False, "auto"])
def test_no_process_group_means_one_process(distributed):
    assert not dist.is_initialized()
    assert isinstance(resolve_replicas(distributed, "cpu"), SingleProcess)


def test_distributed_true_outside_torchrun_says_how(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        resolve_replicas(True, "cpu")
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DivideMixClassifier(distributed=True, max_epochs=1).fit(X, np.arange(40) % 2)


def test_each_elastic_attempt_gets_store_keys_of_its_own(monkeypatch):
    """A restarted rank must not read the dead ranks' addresses (issue 19)."""
    # the module, not torch.distributed's function of the same name
    rendezvous_module = sys.modules["torch.distributed.rendezvous"]
    shared = dist.HashStore()  # torchrun's agent store, kept across restarts
    monkeypatch.setattr(
        rendezvous_module, "rendezvous", lambda url, timeout: iter([(shared, 0, 2)])
    )
    calls = []
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(kw))
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    _initialise_from_environment("cpu")
    calls[0]["store"].set("rank_0", "address of a process that died")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    _initialise_from_environment("cpu")
    assert not calls[1]["store"].check(["rank_0"])
    assert calls[1]["rank"] == 0 and calls[1]["world_size"] == 2
    assert calls[1]["timeout"] == collective_timeout()
    # outside torchrun's agent: torch's own env:// rendezvous, as before
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT")
    _initialise_from_environment("cpu")
    assert calls[2] == {"backend": "gloo", "timeout": collective_timeout()}


class _WithUnusedHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        self.unused = nn.Linear(1, 1)

    def forward(self, X):
        return self.body(X)


def _collectives(rank: int, world_size: int, store_path: str, out_dir: str):
    store = dist.FileStore(store_path, world_size)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size)
    try:
        replicas = DataParallel()
        n = 7
        first, last = replicas.rows(n)
        # each rank's block holds its own row numbers, gathered in order
        gathered = replicas.gather_rows(torch.arange(first, last).float(), n)
        torch.manual_seed(rank)  # different weights and gradients per rank
        module = _WithUnusedHead()
        (module(torch.randn(5, 3)) * torch.randn(5, 2)).sum().backward()
        grads = [p.grad.clone() for p in module.body.parameters()]
        bn = module.body[1]
        own_stats = [bn.running_mean.clone(), bn.running_var.clone()]
        replicas.average_gradients(module)
        replicas.average_buffers(module)
        averaged_stats = [bn.running_mean.clone(), bn.running_var.clone()]
        own_weight = module.body[0].weight.detach().clone()
        replicas.broadcast_module(module)
        torch.save(
            {
                "rows": (first, last),
                "shard": replicas.shard(torch.arange(9)),
                "gathered": gathered,
                "own_grads": grads,
                "averaged_grads": [p.grad for p in module.body.parameters()],
                "own_stats": own_stats,
                "averaged_stats": averaged_stats,
                "own_weight": own_weight,
                "broadcast_state": list(module.state_dict().values()),
                "sum": replicas.sum(torch.tensor([rank + 1.0])),
                "unused_grad": module.unused.weight.grad,
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def test_data_parallel_collectives_on_gloo(tmp_path):
    mp.spawn(
        _collectives,
        args=(2, str(tmp_path / "store"), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert [r["rows"] for r in ranks] == [(0, 4), (4, 7)]
    assert ranks[0]["shard"].tolist() == [0, 2, 4, 6, 8]
    assert ranks[1]["shard"].tolist() == [1, 3, 5, 7]
    for r in ranks:
        assert r["gathered"].tolist() == list(range(7))
        assert r["sum"].item() == 3.0
        # as alone, a parameter that got no gradient keeps none
        assert r["unused_grad"] is None
    for i, (g0, g1) in enumerate(
        zip(ranks[0]["own_grads"], ranks[1]["own_grads"], strict=True)
    ):
        assert not torch.equal(g0, g1)
        for r in ranks:
            torch.testing.assert_close(r["averaged_grads"][i], (g0 + g1) / 2)
    # BatchNorm statistics averaged, weights left to the broadcast
    for i in range(2):
        mean = (ranks[0]["own_stats"][i] + ranks[1]["own_stats"][i]) / 2
        for r in ranks:
            torch.testing.assert_close(r["averaged_stats"][i], mean)
    assert not torch.equal(ranks[0]["own_weight"], ranks[1]["own_weight"])
    for t0, t1 in zip(
        ranks[0]["broadcast_state"], ranks[1]["broadcast_state"], strict=True
    ):
        assert torch.equal(t0, t1)


@pytest.fixture(scope="module", params=["array", "dataset"])
def digits_npz(request, tmp_path_factory, noisy_digits):
    path = tmp_path_factory.mktemp("dp") / "digits.npz"
    np.savez(
        path,
        as_dataset=request.param == "dataset",
        X=noisy_digits["X_train"],
        y=noisy_digits["y_noisy"],
        X_test=noisy_digits["X_test"],
        max_epochs=12,
        warmup_epochs=5,
        batch_size=64,
    )
    return path


def _kill_tree(process: subprocess.Popen) -> None:
    """Kill torchrun and every process under it.

    torchrun's elastic agent starts its ranks in sessions of their own, so
    killing torchrun's process group leaves them running, holding the output
    pipe open (``communicate`` would then wait for ever): they are found
    through the process tree before anything is killed.
    """
    try:
        import psutil

        tree = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # psutil absent, or torchrun already gone
        tree = []
    os.killpg(process.pid, signal.SIGKILL)
    for child in tree:
        try:
            child.kill()
        except Exception:
            pass


def _torchrun(
    n_processes: int, out_dir: Path, data: Path, *options: str, **env: str
) -> None:
    """torchrun on a free port; the whole process group dies on a timeout."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [torchrun or "torchrun", "--standalone", *options]
    command += [f"--nproc_per_node={n_processes}", str(SCRIPT), str(out_dir), str(data)]
    # A rank left waiting for a dead peer gives up after this many seconds
    # (the library's collective timeout), so no rank outlives its test.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "SKLEARN_DIVIDEMIX_TIMEOUT": "120",
        # the elastic agent's own steps (rendezvous, restarts) in the output
        # a failure shows
        "LOGLEVEL": "INFO",
        **env,
    }
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        output, _ = process.communicate()
        pytest.fail(f"torchrun did not finish within 300 s:\n{output[-6000:]}")
    assert process.returncode == 0, output[-3000:]


def test_torchrun_two_ranks_fit_one_model(tmp_path, digits_npz, noisy_digits):
    _torchrun(2, tmp_path, digits_npz)
    rank0, rank1 = (np.load(tmp_path / f"rank{r}.npz") for r in range(2))
    assert int(rank0["world_size"]) == 2
    for name in ("clean_mask", "clean_proba", "weights1", "weights2", "losses"):
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)
    np.testing.assert_array_equal(rank0["predictions"], rank1["predictions"])
    # the same quality as one process with the same parameters
    alone = DivideMixClassifier(
        max_epochs=12,
        warmup_epochs=5,
        batch_size=64,
        random_state=0,
        callbacks=[RowCounter()],
    ).fit(noisy_digits["X_train"], noisy_digits["y_noisy"])
    # each rank trained on half of the rows one process trains on
    rows = [int(rank0["trained_rows"]), int(rank1["trained_rows"])]
    assert abs(rows[0] - rows[1]) <= 0.02 * sum(rows)
    assert sum(rows) == pytest.approx(trained_rows(alone), rel=0.1)
    y_test = noisy_digits["y_test"]
    accuracy = np.mean(rank0["predictions"] == y_test)
    assert accuracy >= alone.score(noisy_digits["X_test"], y_test) - 0.03
    flipped = noisy_digits["flipped"]
    f1 = f1_score(flipped, ~rank0["clean_mask"])
    assert f1 >= f1_score(flipped, ~alone.clean_mask_) - 0.03
    assert f1 > 0.9


# -- failed ranks ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory, noisy_digits):
    """256 noisy digits, 4 epochs (warm-up ends after 2): a fit of seconds."""
    path = tmp_path_factory.mktemp("faults") / "digits.npz"
    np.savez(
        path,
        as_dataset=False,
        X=noisy_digits["X_train"][:256],
        y=noisy_digits["y_noisy"][:256],
        X_test=noisy_digits["X_test"][:50],
        max_epochs=4,
        warmup_epochs=2,
        batch_size=32,
    )
    return path


# Was flaky (issue 19): torchrun's agent gives the restarted ranks the first
# attempt's store, and a new rank that read the dead rank's address from it
# was refused or hung. The library now keys each attempt apart.
def test_after_an_elastic_restart_every_rank_resumes_bit_for_bit(tmp_path, tiny_npz):
    reference, restarted = tmp_path / "reference", tmp_path / "restarted"
    reference.mkdir(), restarted.mkdir()
    _torchrun(2, reference, tiny_npz, FIT_CHECKPOINT_DIR=str(reference / "ckpt"))
    # rank 1 dies in epoch 4, after the checkpoint of epoch 3; torchrun
    # stops rank 0 and starts both again
    _torchrun(
        2,
        restarted,
        tiny_npz,
        "--max-restarts=1",
        FIT_CHECKPOINT_DIR=str(restarted / "ckpt"),
        FIT_FAULT="kill:1:3",
    )
    assert (restarted / "fault1").exists()
    expected = np.load(reference / "rank0.npz")
    assert int(expected["resumed_from_epoch"]) == -1
    for rank in range(2):
        resumed = np.load(restarted / f"rank{rank}.npz")
        assert int(resumed["resumed_from_epoch"]) == 3
        for name in ("clean_proba", "weights1", "weights2", "losses", "predictions"):
            np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("fault", ["kill", "hang"])
def test_a_dead_or_hung_rank_stops_the_others_with_a_clear_error(
    tmp_path, tiny_npz, fault
):
    """Without torchrun to stop them, the survivors stop on their own."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "FIT_FAULT": f"{fault}:1:2",
        "SKLEARN_DIVIDEMIX_TIMEOUT": "10",
    }
    ranks = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), str(tmp_path), str(tiny_npz)],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "fault1").exists():
            assert time.monotonic() < deadline, "rank 1 never reached its fault"
            assert ranks[0].poll() is None, ranks[0].stderr.read()[-2000:]
            time.sleep(0.2)
        failed = time.monotonic()
        _, error = ranks[0].communicate(timeout=60)
        stopped_after = time.monotonic() - failed
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert ranks[0].returncode != 0
    assert "ReplicaFailure: Process 0 of 2 of a data-parallel fit stopped" in error
    assert "--max-restarts" in error
    # gloo notices a killed peer at once; a hung one after the timeout
    assert stopped_after < (10 if fault == "kill" else 10 + 20)
