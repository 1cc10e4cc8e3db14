"""The process seam: one process, or data-parallel replicas of one fit.

The training loop talks to its processes through one small interface,
:class:`Replicas`, whether there is one process (:class:`SingleProcess`, where
every method is the identity) or several under ``torch.distributed``
(:class:`DataParallel`, for example launched by ``torchrun``).

Data parallelism here keeps every rank's *plan* identical without sending it:
every rank draws the same index batches, permutations, mixup coefficients and
division seeds from the same seeded streams, and then

- trains on its own share of each mini-batch (:meth:`Replicas.shard`), with
  its own augmentation stream (:meth:`Replicas.view_generator`), and averages
  the gradients of all ranks before each optimizer step, so the weights stay
  the same on every rank;
- computes the per-sample losses of the division passes for its own
  contiguous block of rows, and all-gathers them: every rank then fits the
  same mixtures to the same losses;
- averages floating-point buffers (BatchNorm statistics) before each eval
  pass, since each rank normalised only its share of the batches.

A rank that dies or hangs does not leave the others waiting forever: every
collective fails within the process group's timeout (``SKLEARN_DIVIDEMIX_TIMEOUT``
seconds when this library initialises the group, 1800 by default; gloo
notices a killed peer at once) and is reported as a :class:`ReplicaFailure`
naming the rank, so that ``torchrun --max-restarts`` can restart the fit,
which resumes from its last checkpoint (``checkpoint_dir``).
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from typing import Any, Protocol

import torch
from torch import nn

__all__ = [
    "DataParallel",
    "ReplicaFailure",
    "Replicas",
    "SingleProcess",
    "collective_timeout",
    "resolve_replicas",
]

# Spreads the ranks' augmentation seeds far apart (a large prime).
_RANK_SEED_STRIDE = 1_000_003
TIMEOUT_VARIABLE = "SKLEARN_DIVIDEMIX_TIMEOUT"
_DEFAULT_TIMEOUT_S = 1800.0


class ReplicaFailure(RuntimeError):
    """A collective of a data-parallel fit failed: another process died or hung."""


def collective_timeout() -> datetime.timedelta:
    """How long a collective waits for the other processes (the group's
    timeout when this library initialises it): ``SKLEARN_DIVIDEMIX_TIMEOUT``
    seconds, 1800 by default."""
    value = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        seconds = float(value) if value else _DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(
            f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds."
        ) from None
    return datetime.timedelta(seconds=seconds)


class Replicas(Protocol):
    """What the training loop needs to know about the processes of a fit."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """True on the process that reports progress."""
        ...

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This process's share of one mini-batch of sample indices."""
        ...

    def rows(self, n: int) -> tuple[int, int]:
        """The block ``[start, stop)`` of ``n`` rows this process evaluates."""
        ...

    def gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """Every process's block of per-row results, in row order (dim 0)."""
        ...

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over the processes."""
        ...

    def average_gradients(self, module: nn.Module) -> None:
        """Replace every gradient by its mean over the processes."""
        ...

    def average_buffers(self, module: nn.Module) -> None:
        """Replace floating-point buffers by their mean over the processes."""
        ...

    def broadcast_module(self, module: nn.Module) -> None:
        """Give every process the main process's parameters and buffers."""
        ...

    def view_generator(self, generator: torch.Generator, seed: int) -> torch.Generator:
        """The stream of this process's augmentation and mixing draws."""
        ...

    def broadcast_object(self, obj: Any) -> Any:
        """The main process's ``obj``, on every process."""
        ...

    def gather_objects(self, obj: Any) -> list:
        """Every process's ``obj``, by rank."""
        ...


class SingleProcess:
    """A fit in one process: every collective is the identity."""

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return True

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        return index

    def rows(self, n: int) -> tuple[int, int]:
        return 0, n

    def gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        return local

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def average_gradients(self, module: nn.Module) -> None:
        return None

    def average_buffers(self, module: nn.Module) -> None:
        return None

    def broadcast_module(self, module: nn.Module) -> None:
        return None

    def view_generator(self, generator: torch.Generator, seed: int) -> torch.Generator:
        # One stream for plan and views: exactly the draws of earlier versions.
        return generator

    def broadcast_object(self, obj: Any) -> Any:
        return obj

    def gather_objects(self, obj: Any) -> list:
        return [obj]


class DataParallel:
    """Data-parallel replicas over a ``torch.distributed`` process group.

    Parameters
    ----------
    group : ProcessGroup or None, default=None
        The processes of the fit; ``None`` is the default group.
    """

    def __init__(self, group=None) -> None:
        import torch.distributed as dist

        self._dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextlib.contextmanager
    def _collective(self, name: str):
        """Report a failed collective as the failure of the fit it is."""
        try:
            yield
        except RuntimeError as error:  # gloo/NCCL errors, timeouts included
            raise ReplicaFailure(
                f"Process {self.rank} of {self.world_size} of a data-parallel "
                f"fit stopped: {name} failed ({str(error).strip()[:300]}). "
                "Another process died or stopped answering. Under torchrun, "
                "--max-restarts restarts the fit, and with checkpoint_dir set "
                "every process resumes from the last checkpoint."
            ) from error

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        # Strided, so that shares differ by at most one sample.
        return index[self.rank :: self.world_size]

    def rows(self, n: int) -> tuple[int, int]:
        block = math.ceil(n / self.world_size)
        return min(self.rank * block, n), min((self.rank + 1) * block, n)

    def gather_rows(self, local: torch.Tensor, n: int) -> torch.Tensor:
        # all_gather needs equal shapes: pad every block to the longest.
        block = math.ceil(n / self.world_size)
        padded = local.new_zeros((block, *local.shape[1:]))
        padded[: len(local)] = local
        blocks = [torch.empty_like(padded) for _ in range(self.world_size)]
        with self._collective("all_gather"):
            self._dist.all_gather(blocks, padded.contiguous(), group=self.group)
        return torch.cat(blocks)[:n]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        with self._collective("all_reduce"):
            self._dist.all_reduce(total, group=self.group)
        return total

    def _averaged(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Element-wise means over the processes, one collective for all."""
        flat = torch.cat([t.reshape(-1) for t in tensors])
        with self._collective("all_reduce"):
            self._dist.all_reduce(flat, group=self.group)
        flat /= self.world_size
        chunks = flat.split([t.numel() for t in tensors])
        return [c.view_as(t).to(t.dtype) for c, t in zip(chunks, tensors, strict=True)]

    def average_gradients(self, module: nn.Module) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            return
        # A parameter without a gradient still takes part (as zeros), or the
        # flattened buffers would not line up across ranks; it keeps no
        # gradient, so that the optimizer skips it as it would alone.
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        for param, grad in zip(params, self._averaged(grads), strict=True):
            if param.grad is not None:
                param.grad = grad

    def average_buffers(self, module: nn.Module) -> None:
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if buffers:
            for buffer, mean in zip(buffers, self._averaged(buffers), strict=True):
                buffer.copy_(mean)

    def broadcast_module(self, module: nn.Module) -> None:
        source = self._main_rank()
        with torch.no_grad(), self._collective("broadcast"):
            for tensor in [*module.parameters(), *module.buffers()]:
                self._dist.broadcast(tensor.data, src=source, group=self.group)

    def view_generator(self, generator: torch.Generator, seed: int) -> torch.Generator:
        own = torch.Generator(device=generator.device)
        return own.manual_seed(seed + _RANK_SEED_STRIDE * (self.rank + 1))

    def _main_rank(self) -> int:
        return 0 if self.group is None else self._dist.get_global_rank(self.group, 0)

    def broadcast_object(self, obj: Any) -> Any:
        objects = [obj]
        with self._collective("broadcast_object_list"):
            self._dist.broadcast_object_list(
                objects, src=self._main_rank(), group=self.group
            )
        return objects[0]

    def gather_objects(self, obj: Any) -> list:
        objects: list = [None] * self.world_size
        with self._collective("all_gather_object"):
            self._dist.all_gather_object(objects, obj, group=self.group)
        return objects


def _launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))


def _initialise_from_environment(device: str) -> None:
    import torch.distributed as dist

    if not _launched_by_torchrun():
        raise RuntimeError(
            "distributed=True needs an initialised torch.distributed process "
            "group or a torchrun launch (RANK, WORLD_SIZE and MASTER_ADDR "
            "unset). Run the script with `torchrun --nproc_per_node=N "
            "script.py`, or call torch.distributed.init_process_group first."
        )
    backend = "nccl" if device.startswith("cuda") else "gloo"
    # bounded: a rank that dies or hangs stops the others (ReplicaFailure)
    timeout = collective_timeout()
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None:
        dist.init_process_group(backend=backend, timeout=timeout)
        return
    # After a restart torchrun's agent hands the new ranks the store of the
    # first attempt (same MASTER_PORT), still holding the dead ranks'
    # addresses under the process group's keys: a new rank that reads them
    # before its peer rewrites them connects to a port nobody listens on
    # ("connectFullMesh failed ... Connection refused", or a hang). Each
    # attempt gets keys of its own.
    from torch.distributed.rendezvous import rendezvous

    store, rank, world_size = next(rendezvous("env://", timeout=timeout))
    dist.init_process_group(
        backend=backend,
        store=dist.PrefixStore(f"sklearn_dividemix/attempt_{attempt}", store),
        rank=rank,
        world_size=world_size,
        timeout=timeout,
    )


def resolve_replicas(distributed: bool | str, device: str) -> Replicas:
    """The replicas of a fit for the ``distributed`` parameter.

    ``'auto'`` trains data-parallel when a ``torch.distributed`` process
    group with more than one process is initialised, else in this process
    alone; ``True`` also initialises the group from a ``torchrun`` launch
    (NCCL for CUDA, gloo otherwise); ``False`` always fits in this process.
    """
    if distributed is False or not torch.distributed.is_available():
        return SingleProcess()
    import torch.distributed as dist

    if distributed is True and not dist.is_initialized():
        _initialise_from_environment(device)
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return SingleProcess()
    return DataParallel()


def replica_device(device: str, replicas: Replicas) -> str:
    """One GPU per process: ``'cuda'`` becomes ``cuda:<LOCAL_RANK>``."""
    if replicas.world_size == 1 or device != "cuda":
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", replicas.rank))
    index = local_rank % max(torch.cuda.device_count(), 1)
    torch.cuda.set_device(index)
    return f"cuda:{index}"
