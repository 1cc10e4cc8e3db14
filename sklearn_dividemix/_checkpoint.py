"""Checkpoints of a fit: what they hold, how they are written and read back.

A checkpoint is one ``torch.save`` file per written epoch in the fit's
``checkpoint_dir``, ``epoch-000012.pt``: both nets (module, optimizers,
gradient scaler, skorch history), the loop's :class:`~._fit_state.FitState`,
every random stream (the plan's torch generator and numpy stream, and per
process the global torch CPU and CUDA streams and the augmentation stream),
the final division's seeds, and the fit's :class:`Fingerprint` (data, labels,
the parameters that shape training). Restored into freshly built nets, it
continues the fit bit for bit on the CPU.

Writes are atomic (a temporary file, fsync, rename; the directory fsynced)
and the last two files are kept, so a fit killed while writing leaves the
previous one intact. Nothing is copied before writing: ``torch.save`` reads
the live weights, one storage at a time for a GPU.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointDir",
    "CheckpointWarning",
    "Fingerprint",
    "data_fingerprint",
    "describe_param",
    "labels_fingerprint",
    "open_checkpoints",
    "params_fingerprint",
    "restore",
    "resume",
    "save",
    "snapshot",
]

FORMAT = 1
KEEP = 2
_NAME = re.compile(r"^epoch-(\d{6})\.pt$")
# Parameters that decide where a fit runs and what it reports, not what it
# computes: a fit resumed on another device, with another log level, other
# callbacks or other loader workers is the same fit.
_RUN_ONLY = {
    "verbose",
    "callbacks",
    "device",
    "distributed",
    "checkpoint_dir",
    "checkpoint_every",
}
_RUN_ONLY_PREFIXES = ("callbacks__", "iterator_train__", "iterator_valid__")
# all rows of a small data set are hashed, else this many spread over it
_FULL_HASH_ROWS = 2048
_SAMPLE_ROWS = 512


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read, or is resumed on another device."""


def describe_param(value) -> str:
    """A description of a parameter value that is stable across processes."""
    if isinstance(value, functools.partial):
        parts = [describe_param(value.func), describe_param(value.args)]
        return f"partial({', '.join(parts)}, {describe_param(value.keywords)})"
    if isinstance(value, nn.Module):
        digest = hashlib.sha256(repr(value).encode())
        for name, tensor in value.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return f"{_qualname(type(value))} instance {digest.hexdigest()[:16]}"
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return _qualname(value)
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({', '.join(map(describe_param, value))})"
    if isinstance(value, dict):
        items = sorted((str(k), describe_param(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, np.ndarray):
        return f"array {hashlib.sha256(value.tobytes()).hexdigest()[:16]}"
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        # its draws are restored from the checkpoint, not redrawn
        return type(value).__name__
    if isinstance(value, float) and value.is_integer():
        # lambda_u=0 and lambda_u=0.0 are one fit
        return repr(int(value))
    return repr(value)


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"


def params_fingerprint(params: dict) -> dict[str, str]:
    """The parameters that shape training, described, by name."""
    return {
        name: describe_param(value)
        for name, value in sorted(params.items())
        if name not in _RUN_ONLY and not name.startswith(_RUN_ONLY_PREFIXES)
    }


def data_fingerprint(source, n_samples: int, device) -> str:
    """A hash of the samples as training reads them: all rows of a small
    data set, else a fixed spread of rows (cheap for a Dataset on disk)."""
    if n_samples <= _FULL_HASH_ROWS:
        rows = np.arange(n_samples)
    else:
        rows = np.unique(np.linspace(0, n_samples - 1, _SAMPLE_ROWS).astype(np.int64))
    digest = hashlib.sha256(f"{n_samples}".encode())
    index = torch.as_tensor(rows, device=device)
    for batch in source.batches(list(index.split(256))):
        batch = batch.detach().cpu().contiguous()
        digest.update(f"{tuple(batch.shape)} {batch.dtype}".encode())
        digest.update(batch.numpy().tobytes())
    return digest.hexdigest()


def labels_fingerprint(y_encoded: np.ndarray, classes: np.ndarray) -> str:
    """A hash of every given label and of the classes."""
    digest = hashlib.sha256(repr(np.asarray(classes).tolist()).encode())
    digest.update(np.ascontiguousarray(y_encoded, dtype=np.int64).tobytes())
    return digest.hexdigest()


# Parameters added since checkpoints were first written, with the value that
# trains as the versions before them did: a checkpoint without one of them
# was made with that value (and resumes only where this fit asks for it).
ADDED_PARAMS = {"balance_labeled": False}


@dataclass(frozen=True)
class Fingerprint:
    """What makes two fits the same fit: data, labels, shaping parameters."""

    data: str
    labels: str
    params: dict

    def differences(self, other: dict) -> list[str]:
        """What differs between this fit and a checkpoint's (``asdict``)."""
        found = [
            f"the {name} differ"
            for name in ("data", "labels")
            if other.get(name) != getattr(self, name)
        ]
        theirs = other.get("params", {})
        if theirs:
            added = {k: describe_param(v) for k, v in ADDED_PARAMS.items()}
            theirs = {**added, **theirs}
        for name in sorted(set(self.params) | set(theirs)):
            if self.params.get(name) != theirs.get(name):
                found.append(
                    f"{name} was {theirs.get(name, 'unset')}, "
                    f"is {self.params.get(name, 'unset')}"
                )
        return found


# -- what a checkpoint holds ----------------------------------------------


def _net_state(net) -> dict:
    scaler = getattr(net, "grad_scaler_", None)
    return {
        "module": net.module_.state_dict(),
        "optimizers": {
            name: getattr(net, name + "_").state_dict() for name in net._optimizers
        },
        "grad_scaler": None if scaler is None else scaler.state_dict(),
        "history": net.history,
    }


def local_streams(data) -> dict:
    """This process's own streams: global torch (CPU, CUDA), augmentation."""
    device = data.y.device
    views = data.view_generator
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "views": None if views in (None, data.generator) else views.get_state(),
    }


def snapshot(nets, data, state, final_seeds, streams: list[dict]) -> dict:
    """Everything a resumed fit needs, as references to the live objects.

    ``streams`` holds :func:`local_streams` of every process, by rank.
    """
    return {
        "format": FORMAT,
        "epoch": state.epoch,
        "device_type": data.y.device.type,
        "nets": [_net_state(net) for net in nets],
        "fit_state": state,
        "final_seeds": tuple(final_seeds),
        "plan": {"generator": data.generator.get_state(), "rng": data.rng},
        "local_streams": streams,
    }


def restore(payload: dict, nets, data, rank: int = 0):
    """Load a checkpoint into fresh nets and streams.

    Returns the fit state and the final division's seeds to continue with.
    """
    for net, saved in zip(nets, payload["nets"], strict=True):
        net.module_.load_state_dict(saved["module"])
        for name, optimizer_state in saved["optimizers"].items():
            getattr(net, name + "_").load_state_dict(optimizer_state)
        if saved["grad_scaler"] is not None and net.grad_scaler_ is not None:
            net.grad_scaler_.load_state_dict(saved["grad_scaler"])
        net.history = saved["history"]
    same_device = payload["device_type"] == data.y.device.type
    streams = payload["local_streams"]
    if not same_device or rank >= len(streams):
        warnings.warn(
            f"Resuming on {data.y.device.type} (process {rank}) a fit "
            f"checkpointed on {payload['device_type']} with "
            f"{len(streams)} process(es): the random streams restart, so the "
            "fit goes on but is not its uninterrupted self bit for bit.",
            CheckpointWarning,
            stacklevel=2,
        )
    else:
        data.generator.set_state(payload["plan"]["generator"])
        _set_local_streams(data, streams[rank])
    data.rng.set_state(payload["plan"]["rng"].get_state())
    return payload["fit_state"], tuple(payload["final_seeds"])


def _set_local_streams(data, streams: dict) -> None:
    torch.set_rng_state(streams["torch"])
    if streams["cuda"] is not None:
        torch.cuda.set_rng_state(streams["cuda"], data.y.device)
    if streams["views"] is not None:
        data.view_generator.set_state(streams["views"])


def open_checkpoints(path, every: int, params: dict, data, y_encoded, classes):
    """The :class:`CheckpointDir` of a fit with ``checkpoint_dir=path``, or
    None when ``path`` is None; the fingerprint is taken here."""
    if path is None:
        return None
    fingerprint = Fingerprint(
        data=data_fingerprint(data.source, len(data), data.y.device),
        labels=labels_fingerprint(y_encoded, classes),
        params=params_fingerprint(params),
    )
    return CheckpointDir(path, fingerprint, every)


# -- the loop's two calls -------------------------------------------------


def resume(directory: CheckpointDir, nets, data):
    """Continue from the newest checkpoint of this fit, if there is one.

    Returns ``(fit_state, final_seeds, path)`` or None. In a data-parallel
    fit the main process chooses the file and every process loads it.
    """
    replicas = data.replicas
    found, error = None, None
    if replicas.is_main:
        try:
            found = directory.latest()
        except ValueError as refused:
            error = str(refused)
    path, error = replicas.broadcast_object((found and found[0], error))
    if error is not None:
        raise ValueError(error)
    if path is None:
        return None
    payload = found[1] if found is not None else directory.read(path)
    if payload is None:
        raise RuntimeError(f"Process {replicas.rank} cannot read checkpoint {path}.")
    state, final_seeds = restore(payload, nets, data, replicas.rank)
    return state, final_seeds, path


def save(directory: CheckpointDir, nets, data, state, final_seeds) -> None:
    """Write a checkpoint of the fit as it stands after ``state.epoch``.

    Every process takes part (a data-parallel fit averages its BatchNorm
    statistics, which only eval passes did so far, and gathers each
    process's streams); the main process writes.
    """
    replicas = data.replicas
    for net in nets:
        replicas.average_buffers(net.module_)
    streams = replicas.gather_objects(local_streams(data))
    if replicas.is_main:
        directory.write(snapshot(nets, data, state, final_seeds, streams))


# -- the directory --------------------------------------------------------


class CheckpointDir:
    """A fit's checkpoint directory: atomic writes, the last two kept.

    Parameters
    ----------
    path : str or path-like
        The directory (created on the first write).
    fingerprint : Fingerprint
        This fit's; a checkpoint of another is refused.
    every : int
        Epochs between checkpoints.
    """

    def __init__(self, path, fingerprint: Fingerprint, every: int = 1) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.every = every

    def files(self) -> list[Path]:
        """The checkpoint files, newest (highest epoch) first."""
        if not self.path.is_dir():
            return []
        names = [p for p in self.path.iterdir() if _NAME.match(p.name)]
        return sorted(names, key=lambda p: p.name, reverse=True)

    def write(self, payload: dict) -> Path:
        """Write ``payload`` atomically, then keep only the newest two."""
        self.path.mkdir(parents=True, exist_ok=True)
        payload = {**payload, "fingerprint": asdict(self.fingerprint)}
        final = self.path / f"epoch-{payload['epoch']:06d}.pt"
        temporary = self.path / f".{final.name}.{os.getpid()}.tmp"
        with open(temporary, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        _fsync_directory(self.path)
        for old in self.files()[KEEP:]:
            old.unlink(missing_ok=True)
        for stale in self.path.glob(".epoch-*.tmp"):
            stale.unlink(missing_ok=True)
        return final

    def latest(self) -> tuple[Path, dict] | None:
        """The newest readable checkpoint of this fit and its payload, or None.

        An unreadable file (truncated, corrupt) is skipped with a warning
        and the previous one is tried; a readable one of another fit raises:
        it is never used silently.
        """
        files = self.files()
        for path in files:
            payload = self.read(path)
            if payload is None:
                continue
            differences = self.fingerprint.differences(payload.get("fingerprint", {}))
            if differences:
                raise ValueError(
                    f"checkpoint_dir {str(self.path)!r} holds a checkpoint "
                    f"({path.name}) of another fit: {'; '.join(differences)}. "
                    "It is never used for a different fit: delete the "
                    "directory, or pass another checkpoint_dir, to start fresh."
                )
            return path, payload
        if files:
            warnings.warn(
                f"No readable checkpoint in {str(self.path)!r}: the fit starts fresh.",
                CheckpointWarning,
                stacklevel=3,
            )
        return None

    def read(self, path: Path) -> dict | None:
        """The payload of ``path``, or None (with a warning) if unreadable."""
        try:
            # Checkpoints hold Python objects (the fit state, histories):
            # read only directories you trust, as with any pickle.
            payload = torch.load(path, map_location="cpu", weights_only=False)
            if not isinstance(payload, dict) or payload.get("format") != FORMAT:
                raise ValueError("not a checkpoint of this format")
        except Exception as error:  # noqa: BLE001 - any failure means unreadable
            warnings.warn(
                f"Checkpoint {path} cannot be read ({type(error).__name__}: "
                f"{str(error)[:200]}); trying the previous one.",
                CheckpointWarning,
                stacklevel=3,
            )
            return None
        return payload


def _fsync_directory(path: Path) -> None:
    # The rename itself is durable only once the directory entry is.
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
