"""skorch callbacks given to a DivideMix fit: per-net copies, or a clear refusal.

Each net of a fit gets its own deep copy of ``callbacks``. Most callbacks
then work as in skorch (``GradientNormClipping``, ``LRScheduler``,
``Freezer``, a user's own). Those that write files write them per net, each
into a folder of its own: two nets saving to one ``params.pt`` left only the
last net's weights. Those that need what a DivideMix fit does not have (a
validation split, a training loss of one meaning throughout, a fit that
resumes) are refused before training with what to use instead, rather than failing
after an epoch (``KeyError: 'valid_loss'``) or recording nothing.
"""

from __future__ import annotations

import copy
import inspect
import os

from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import (
    BatchScoring,
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    LoadInitState,
    TrainEndCheckpoint,
)

__all__ = ["check_callbacks", "per_net_callbacks"]

# Write files: each net's copy writes into <dirname>/<net name>/.
_FILE_WRITERS = (Checkpoint, TrainEndCheckpoint)

_CHECKPOINT_DIR = (
    "checkpoint_dir=... to save the whole fit (both nets, the divisions, the "
    "epoch) and resume it"
)
_NO_VALIDATION = (
    "DivideMixClassifier's nets train without a validation split (every "
    "sample is used, labeled or not)"
)


def _callback(entry) -> object:
    """The callback of a ``callbacks`` entry: an instance, a class or a
    ``(name, callback)`` pair, as skorch takes them."""
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry[1]
    return entry


def _monitor(callback) -> object:
    """The ``monitor`` of a callback, or of its class's defaults (skorch
    builds a callback given as a class with no arguments)."""
    if not isinstance(callback, type):
        return getattr(callback, "monitor", None)
    try:
        parameter = inspect.signature(callback).parameters.get("monitor")
    except (TypeError, ValueError):
        return None
    return None if parameter is None else parameter.default


def _refusal(callback) -> str | None:
    """Why this callback can't mean what it says in a DivideMix fit, or None."""
    kind = callback if isinstance(callback, type) else type(callback)
    name = kind.__name__
    monitor = _monitor(callback)
    if issubclass(kind, EarlyStopping):
        # train_loss is refused too: the MixMatch loss that follows warm-up
        # is another quantity (mixed soft targets, an unlabeled term whose
        # weight ramps up), so it "stops improving" at the phase change.
        # Measured: EarlyStopping(monitor='train_loss', patience=2) ended a
        # fit one MixMatch epoch after warm-up, its loss going 1.10 -> 1.13.
        return (
            f"{name}(monitor={monitor!r}) has nothing sound to monitor: "
            f"{_NO_VALIDATION}, and their training loss changes meaning when "
            "warm-up ends (the MixMatch loss is another quantity), so it would "
            "stop at that change. Choose max_epochs by cross-validation "
            "(scoring=estimated_clean_accuracy for noisy labels), or read "
            "history_ and fit_verdict_."
        )
    if issubclass(kind, Checkpoint) and isinstance(monitor, str):
        if monitor.startswith("valid") or monitor.endswith("_best"):
            return (
                f"{name}(monitor={monitor!r}) saves when a score improves, and "
                f"no such score is recorded: {_NO_VALIDATION}. Pass "
                f"{name}(dirname=..., monitor=None) to save each net after every "
                "epoch (into <dirname>/net1 and <dirname>/net2), or "
                f"{_CHECKPOINT_DIR}."
            )
    if issubclass(kind, LoadInitState):
        return (
            f"{name} would load one saved net into both nets, and a DivideMix "
            "fit starts both from scratch with different weights. Use "
            f"{_CHECKPOINT_DIR}."
        )
    if issubclass(kind, EpochScoring | BatchScoring):
        return (
            f"{name} scores a net on validation data or on its training "
            f"batches; {_NO_VALIDATION}, and the batches are MixMatch mixtures "
            "with refined labels, so it would record nothing meaningful. Score "
            "the fitted estimator instead (cross_val_score, or "
            "estimated_clean_accuracy for noisy test labels)."
        )
    return None


def check_callbacks(callbacks: list | None) -> None:
    """Refuse, before training, the callbacks a DivideMix fit can't honour.

    Parameters
    ----------
    callbacks : list or None
        The estimator's ``callbacks``: skorch callbacks, their classes, or
        ``(name, callback)`` pairs.

    Raises
    ------
    InvalidParameterError
        Naming the callback, why it can't work here and what to use instead.
    """
    for entry in callbacks or ():
        reason = _refusal(_callback(entry))
        if reason is not None:
            raise InvalidParameterError(
                f"The 'callbacks' parameter of DivideMixClassifier got a "
                f"callback it can't honour: {reason}"
            )


def _into_subfolder(callback: Callback, net_name: str) -> None:
    # TrainEndCheckpoint builds its Checkpoint from ``dirname`` when the net
    # initialises it, so setting the attribute before then is enough.
    callback.dirname = os.path.join(callback.dirname or "", net_name)


def per_net_callbacks(callbacks: list | None, net_name: str) -> list:
    """One net's own copy of ``callbacks``, file writers sent to its folder.

    Parameters
    ----------
    callbacks : list or None
        The estimator's ``callbacks``.
    net_name : str
        ``'net1'`` or ``'net2'``: the subfolder of ``dirname`` that this
        net's ``Checkpoint`` and ``TrainEndCheckpoint`` write into.

    Returns
    -------
    callbacks : list
        A deep copy (the estimator's own callbacks are never changed); the
        entries keep their form (instance, class or ``(name, callback)``).
    """
    copied = copy.deepcopy(list(callbacks or []))
    for entry in copied:
        callback = _callback(entry)
        if isinstance(callback, _FILE_WRITERS):
            _into_subfolder(callback, net_name)
    return copied
