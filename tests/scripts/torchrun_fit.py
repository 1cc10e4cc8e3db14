"""One rank of a data-parallel fit, for ``tests/test_distributed.py``.

Run as ``torchrun --standalone --nproc_per_node=N torchrun_fit.py OUT_DIR
DATA``: every rank fits the same estimator on ``DATA`` (an ``.npz`` with
``X``, ``y``, ``X_test``, ``max_epochs``, ``warmup_epochs``, ``batch_size``
and ``as_dataset``, which passes ``X`` and ``y`` as a ``TensorDataset``) and writes
what it learnt to ``OUT_DIR/rank<R>.npz``. With ``--nproc_per_node=1`` it is
the one-process fit the others are compared with.

Faults, for the failed-rank tests: ``FIT_CHECKPOINT_DIR`` sets
``checkpoint_dir``, and ``FIT_FAULT=kind:rank:epoch`` makes that rank send
itself SIGKILL (``kill``) or SIGSTOP (``hang``) in epoch ``epoch + 1``,
once: a marker file beside ``OUT_DIR``'s outputs keeps a restarted rank alive.
"""

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.utils.data import TensorDataset

from sklearn_dividemix import DivideMixClassifier


class RowCounter(Callback):
    """Counts the rows this process trained on (all views of every step)."""

    def initialize(self):
        self.rows = 0
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        self.rows += len(batch.X)


class Fault(Callback):
    """Kill or freeze this process at the second step of epoch ``epoch + 1``."""

    def __init__(self, kind, epoch, marker):
        self.kind, self.epoch, self.marker = kind, epoch, marker

    def initialize(self):
        self.steps_ = 0
        return self

    def on_batch_end(self, net, **kwargs):
        if len(net.history) != self.epoch + 1 or os.path.exists(self.marker):
            return
        self.steps_ += 1
        if self.steps_ == 2:
            Path(self.marker).touch()
            kill = self.kind == "kill"
            os.kill(os.getpid(), signal.SIGKILL if kill else signal.SIGSTOP)


def _fault_callbacks(out_dir: Path) -> list:
    fault = os.environ.get("FIT_FAULT")
    if not fault:
        return []
    kind, rank, epoch = fault.split(":")
    if int(os.environ["RANK"]) != int(rank):
        return []
    return [Fault(kind, int(epoch), str(out_dir / f"fault{rank}"))]


def trained_rows(clf) -> int:
    """Rows both nets of a fitted classifier trained on in this process."""
    return sum(
        callback.rows
        for net in (clf.net1_, clf.net2_)
        for _, callback in net.callbacks_
        if isinstance(callback, RowCounter)
    )


def _flat_weights(net) -> np.ndarray:
    state = net.module_.state_dict().values()
    return torch.cat([t.detach().float().reshape(-1) for t in state]).numpy()


def main(out_dir: Path, data_path: Path) -> None:
    data = np.load(data_path)
    clf = DivideMixClassifier(
        max_epochs=int(data["max_epochs"]),
        warmup_epochs=int(data["warmup_epochs"]),
        batch_size=int(data["batch_size"]),
        distributed=True,
        random_state=0,
        callbacks=[RowCounter(), *_fault_callbacks(out_dir)],
        checkpoint_dir=os.environ.get("FIT_CHECKPOINT_DIR"),
    )
    X, y = data["X"], data["y"]
    if bool(data["as_dataset"]):
        # the same samples through the Dataset path (DataLoader per rank)
        X = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
        y = None
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    rank = torch.distributed.get_rank()
    np.savez(
        out_dir / f"rank{rank}.npz",
        world_size=torch.distributed.get_world_size(),
        trained_rows=trained_rows(clf),
        fit_seconds=seconds,
        clean_mask=clf.clean_mask_,
        clean_proba=clf.clean_proba_,
        weights1=_flat_weights(clf.net1_),
        weights2=_flat_weights(clf.net2_),
        losses=np.array([row["loss_net1"] for row in clf.history_]),
        predictions=clf.predict(data["X_test"]),
        resumed_from_epoch=-1
        if clf.resumed_from_epoch_ is None
        else clf.resumed_from_epoch_,
    )
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
