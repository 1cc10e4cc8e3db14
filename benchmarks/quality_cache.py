"""The quality benchmark's cache of finished runs: keys and lookups.

Every finished run is one JSON line, found again by the key of its cell (data
set, sizes, noise, seed, method, budget). A DivideMix cell's key also holds
a digest of the training settings DivideMix's defaults resolve to for it
(:func:`dividemix_defaults`), so a run is not reused once the defaults change
what such a fit does.

A DivideMix run is found a second way, by what its fit resolved to: a run
made with explicit parameters (a candidate, ``--dividemix name=value``)
stands for the default cell once the defaults resolve to exactly those
settings, whichever way each was spelt. Runs from before the digest existed
carry none and are only found by their own key.

A setting that resolves only during the fit (``alpha``, ``balance_labeled``,
``p_threshold`` and ``loss_window`` set to ``'auto'``, from the first
division after warm-up) is matched by what the run recorded: a run made with
``alpha=0.5`` stands for the ``'auto'`` cell when its own first division
resolves ``'auto'`` to 0.5. Warm-up does not depend on alpha or the balance,
so that run is the ``'auto'`` fit, bit for bit (``tests/test_schedule.py``);
warm-up's divisions do read the threshold and the window, so a run stands
for their ``'auto'`` only with the values they have during warm-up (0.5 and
1), and only where its first division keeps them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._epoch_sample import epoch_steps
from sklearn_dividemix._epochs import LoopSettings
from sklearn_dividemix._schedule import (
    AUTO_BALANCE_NOISE,
    AUTO_HIGH_NOISE,
    AUTO_MIXUP_NOISE,
    DEFAULT_LOSS_WINDOW,
    DEFAULT_P_THRESHOLD,
    auto_alpha,
    auto_balance_labeled,
    auto_loss_window,
    auto_p_threshold,
)

from .quality_methods import Budget

__all__ = [
    "LEGACY_DEFAULTS",
    "RunCache",
    "cell_key",
    "FIT_TIME_AUTO",
    "auto_spellings",
    "dividemix_defaults",
    "first_noise_rate",
    "resolved_training",
]

# The defaults before the digest was recorded (version 0.2): what older
# cached runs ran under. Parameters added since default to their old
# behaviour (steps_per_epoch='labeled', noise_floor=False,
# balance_labeled=False); parameters whose
# default changed since are listed with their 0.2 value.
LEGACY_DEFAULTS = {
    "warmup_epochs": 10,
    "rampup_epochs": 16,
    "division": "global",
    "lambda_u": "auto",
    "alpha": 0.5,
    "steps_per_epoch": "labeled",
    "noise_floor": False,
    "balance_labeled": False,
    "p_threshold": 0.5,
    "loss_window": 1,
}
# A run that recorded only net1's first division (the runs made before both
# nets' rates were recorded) is matched to alpha='auto' only this far from
# its boundary: the two nets' rates differ by a few hundredths.
NET1_ONLY_MARGIN = 0.05
# Parameters outside the loop's settings that a cell's digest covers.
_OTHER_SETTINGS = ("lr", "batch_size", "augment", "normalize", "optimizer")
# The fields of a cell (see benchmarks.quality._cell), and the digest's.
DIGEST = "dividemix_defaults"


def resolved_training(params: dict, budget: Budget, n_train: int | None) -> list:
    """The training settings a fit of ``budget`` resolves ``params`` to.

    ``n_train`` (the training set's size) sizes an ``'auto'`` warm-up in
    optimiser steps, as a fit does; None resolves it by the budget alone.
    """
    params = {**params, **asdict(budget), **budget.dividemix}
    params.pop("dividemix")
    steps = None
    if n_train is not None:
        steps = epoch_steps(params.get("samples_per_epoch"), n_train, budget.batch_size)
    settings = asdict(LoopSettings.from_params(params, steps))
    # added later, and no-ops unset: the digests of earlier runs stand
    if settings["samples_per_epoch"] is None:
        del settings["samples_per_epoch"], settings["divide_over"]
    if not settings["balance_labeled"]:
        del settings["balance_labeled"]
    return sorted([*settings.items(), *((k, params.get(k)) for k in _OTHER_SETTINGS)])


def _digest(settings: list) -> str:
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:12]


def dividemix_defaults(budget: Budget, n_train: int | None = None) -> str | None:
    """A digest of the training settings DivideMix's defaults resolve to here.

    Part of a DivideMix cell's key: a run cached under one set of defaults is
    not reused once the defaults change what a fit of this budget does (a
    cell's budget only lists the parameters the suite pins). Settings are
    compared as resolved for the budget and the training set's size ('auto'
    epoch counts included), so a default that changes nothing here keeps the
    keys; None when they are those of the defaults before the digest was
    recorded, whose runs carry no digest.
    """
    params = DivideMixClassifier().get_params()
    now = resolved_training(params, budget, n_train)
    if now == resolved_training({**params, **LEGACY_DEFAULTS}, budget, n_train):
        return None
    return _digest(now)


def cell_key(cell: dict) -> str:
    """The key a cell's run is cached under."""
    text = json.dumps(cell, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _settings_key(cell: dict) -> str | None:
    """The key of what a DivideMix cell's fit resolves to, however spelt.

    The cell without its explicit parameters, keyed with the digest of its
    resolved settings: its own digest where it has one (the settings of the
    defaults it ran under), else those of the 0.2 defaults with its explicit
    parameters (what a cell without a digest ran, or runs now). None where an
    explicit parameter lies outside what a digest covers.
    """
    explicit = cell["budget"].get("dividemix", {})
    covered = {*LoopSettings.__dataclass_fields__, *_OTHER_SETTINGS}
    if any(name not in covered for name in explicit):
        return None
    digest = cell.get(DIGEST)
    if digest is None:
        budget = Budget(**cell["budget"])
        params = {**DivideMixClassifier().get_params(), **LEGACY_DEFAULTS}
        digest = _digest(resolved_training(params, budget, cell.get("n_train")))
    rest = {k: v for k, v in cell.items() if k != DIGEST}
    budget = {k: v for k, v in cell["budget"].items() if k != "dividemix"}
    return cell_key({**rest, "budget": budget, "resolved settings": digest})


def first_noise_rate(run: dict) -> tuple[float, bool] | None:
    """The share of labels a run's first division after warm-up flagged.

    Returns the rate and whether it is both nets' mean (recorded since
    ``alpha='auto'``) rather than net1's alone (read off its division trace),
    or None when the run recorded neither.
    """
    extra = run.get("extra") or {}
    rates = extra.get("first_noise_rates")
    if rates and None not in rates:
        return float(np.mean(rates)), True
    trace = extra.get("divisions_net1") or []
    first = next((row for row in trace if row.get("stage") == "mixmatch"), None)
    return None if first is None else (float(first["flagged"]), False)


# Settings whose 'auto' is resolved during the fit, from the share of labels
# the first division after warm-up flags, and the rule that resolves each.
FIT_TIME_AUTO = {
    "alpha": auto_alpha,
    "balance_labeled": auto_balance_labeled,
    "p_threshold": auto_p_threshold,
    "loss_window": auto_loss_window,
}
# The rates at which those rules change their answer.
_BOUNDARIES = (AUTO_MIXUP_NOISE, AUTO_BALANCE_NOISE, AUTO_HIGH_NOISE)
# Settings that warm-up reads too (its divisions' window and threshold): a
# run that set one of them stands for 'auto' only where it set the value
# 'auto' has during warm-up, as it then is the same fit; a run of
# p_threshold=0.6 read its warm-up divisions at 0.6, which 'auto' never does.
_SAME_WARMUP_ONLY = {
    "p_threshold": DEFAULT_P_THRESHOLD,
    "loss_window": DEFAULT_LOSS_WINDOW,
}
# Other spellings of a resolved value: alpha's 0 was the int 0 of the earlier
# default, and 'auto' resolves to the float.
_ALSO_SPELT = {("alpha", 0.0): (0, 0.0)}


def _resolves_to(run: dict, values: dict) -> bool:
    """Whether the run's first division resolves each 'auto' to ``values``."""
    found = first_noise_rate(run)
    if found is None:
        return False
    rate, both_nets = found
    near = any(abs(rate - b) < NET1_ONLY_MARGIN for b in _BOUNDARIES)
    if not both_nets and near:
        return False
    return all(FIT_TIME_AUTO[name](rate) == value for name, value in values.items())


def _choices(name: str, value) -> list[tuple[object, bool]]:
    """(spelling, is it concrete) of one resolved setting, 'auto' first."""
    if name in _SAME_WARMUP_ONLY and value != _SAME_WARMUP_ONLY[name]:
        return [("auto", False)]
    spelt = _ALSO_SPELT.get((name, value), (value,))
    return [("auto", False), *((v, True) for v in spelt)]


def auto_spellings(cell: dict) -> list[tuple[dict, dict]]:
    """The cell spelt with the values its fit-time ``'auto'`` may become.

    Empty unless the cell is one of today's defaults (its digest is theirs)
    and they leave a setting of :data:`FIT_TIME_AUTO` at ``'auto'`` for it.
    Each entry is ``(values, spelt cell)``: the concrete values the spelling
    names (a run of it stands for the cell where its own first division
    resolves ``'auto'`` to them), every other such setting left ``'auto'``.
    """
    budget, n_train = Budget(**cell["budget"]), cell.get("n_train")
    if cell.get(DIGEST) != dividemix_defaults(budget, n_train):
        return []
    resolved = dict(
        resolved_training(DivideMixClassifier().get_params(), budget, n_train)
    )
    autos = [name for name in FIT_TIME_AUTO if resolved.get(name) == "auto"]
    # what the rules answer together, rate by rate
    answers = {
        tuple(FIT_TIME_AUTO[name](rate) for name in autos)
        for rate in np.linspace(0.0, 1.0, 201).tolist()
    }
    spellings = []
    for answer in sorted(answers, key=repr):
        options = [_choices(n, v) for n, v in zip(autos, answer, strict=True)]
        for choice in itertools.product(*options):
            values = {
                n: v for n, (v, concrete) in zip(autos, choice, strict=True) if concrete
            }
            if values:
                spellings.append((values, _spelt(cell, values, n_train)))
    return spellings


def _spelt(cell: dict, values: dict, n_train: int | None) -> dict:
    explicit = {**cell["budget"].get("dividemix", {}), **values}
    budget = {**cell["budget"], "dividemix": explicit}
    spelt = {k: v for k, v in cell.items() if k != DIGEST}
    spelt["budget"] = budget
    digest = dividemix_defaults(Budget(**budget), n_train)
    if digest is not None:
        spelt[DIGEST] = digest
    return spelt


class RunCache:
    """The runs of one JSON-lines file, found by cell.

    Parameters
    ----------
    path : Path
        The cache file; created on the first :meth:`add`.
    cell_fields : tuple of str
        The fields of a run that make up its cell.
    resolved_methods : tuple of str
        Methods whose runs are also found by their resolved settings.
    """

    def __init__(
        self,
        path: Path,
        cell_fields: tuple[str, ...],
        resolved_methods: tuple[str, ...] = ("dividemix",),
    ) -> None:
        self.path = Path(path)
        self.cell_fields = cell_fields
        self.resolved_methods = resolved_methods
        self._runs: dict[str, dict] = {}
        self._by_settings: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    self._index(json.loads(line))

    def _index(self, run: dict) -> None:
        self._runs[run["key"]] = run
        cell = {k: run[k] for k in self.cell_fields if k in run}
        settings = self._settings_key(cell)
        if settings is not None:
            # the first run made of these settings stands for all spellings
            self._by_settings.setdefault(settings, run)

    def _settings_key(self, cell: dict) -> str | None:
        if cell.get("method") not in self.resolved_methods:
            return None
        return _settings_key(cell)

    def get(self, cell: dict) -> dict | None:
        """The cached run of ``cell``, or of a cell resolving to the same fit."""
        run = self._get_spelt(cell)
        if run is not None or cell.get("method") not in self.resolved_methods:
            return run
        for values, spelt in auto_spellings(cell):
            run = self._get_spelt(spelt)
            if run is not None and _resolves_to(run, values):
                return run
        return None

    def _get_spelt(self, cell: dict) -> dict | None:
        run = self._runs.get(cell_key(cell))
        if run is None and (settings := self._settings_key(cell)) is not None:
            run = self._by_settings.get(settings)
        return run

    def add(self, cell: dict, result: dict) -> dict:
        """Append a finished run of ``cell``; return it."""
        run = {"key": cell_key(cell), **cell, **result}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(run, default=str) + "\n")
        self._index(run)
        return run

    def all_runs(self) -> list[dict]:
        """Every run in the file, the last of each key."""
        return list(self._runs.values())
