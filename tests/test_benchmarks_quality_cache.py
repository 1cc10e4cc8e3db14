"""The quality benchmark's run cache: the defaults' digest and its lookups."""

from dataclasses import asdict

import pytest

pytest.importorskip("cleanlab", reason="cleanlab is an optional benchmark dependency")

from benchmarks.quality_cache import (  # noqa: E402
    LEGACY_DEFAULTS,
    RunCache,
    cell_key,
    dividemix_defaults,
    resolved_training,
)
from benchmarks.quality_methods import Budget  # noqa: E402
from sklearn_dividemix import DivideMixClassifier  # noqa: E402

FIELDS = ("dataset", "n_train", "seed", "method", "budget", "dividemix_defaults")


def _cell(budget: Budget, n_train: int, seed: int = 0) -> dict:
    cell = {"dataset": "toy", "n_train": n_train, "seed": seed, "method": "dividemix"}
    cell["budget"] = asdict(budget)
    digest = dividemix_defaults(budget, n_train)
    return {**cell, **({} if digest is None else {"dividemix_defaults": digest})}


def test_the_digest_follows_what_the_defaults_resolve_to():
    params = DivideMixClassifier().get_params()
    budget = Budget(max_epochs=20)
    # 'auto' warms up for 10 epochs at 20 optimiser steps an epoch, and for 3
    # at 94: different fits, different digests
    warmup = {n: dict(resolved_training(params, budget, n)) for n in (1257, 6000)}
    assert warmup[1257]["warmup_epochs"] == 10 and warmup[6000]["warmup_epochs"] == 3
    assert dividemix_defaults(budget, 6000) is not None
    assert dividemix_defaults(budget, 6000) != dividemix_defaults(budget, 1257)
    # the legacy defaults resolve to 0.2's fixed schedule
    legacy = dict(resolved_training({**params, **LEGACY_DEFAULTS}, budget, 6000))
    assert legacy["warmup_epochs"] == 10 and legacy["division"] == "global"
    # settings added since keep their old behaviour there (off: not listed)
    assert "balance_labeled" not in legacy and not legacy["noise_floor"]
    # a budget where the defaults differ from 0.2's gets a digest
    assert dividemix_defaults(Budget(max_epochs=6)) is not None


@pytest.mark.parametrize(
    "unset", [{"samples_per_epoch": None}, {"balance_labeled": False}]
)
def test_a_setting_added_later_leaves_the_digest_while_unset(unset):
    # runs made before the setting existed ran without it: their digests stand
    (name,) = unset
    params = {**DivideMixClassifier().get_params(), **unset}
    settings = dict(resolved_training(params, Budget(max_epochs=20), 6000))
    assert name not in settings
    on = {"samples_per_epoch": 0.5, "balance_labeled": True}[name]
    digests = {
        dividemix_defaults(Budget(max_epochs=20, dividemix={name: value}), 6000)
        for value in (unset[name], on)
    }
    assert len(digests) == 2


def test_a_run_is_found_by_its_settings_however_spelt(tmp_path):
    cache = RunCache(tmp_path / "runs.jsonl", FIELDS)
    # 94 steps an epoch: warmup_epochs=3 is what 'auto' resolves to
    explicit = _cell(Budget(max_epochs=20, dividemix={"warmup_epochs": 3}), 6000)
    default = _cell(Budget(max_epochs=20), 6000)
    assert cell_key(explicit) != cell_key(default)
    assert cache.get(default) is None
    run = cache.add(explicit, {"test_accuracy": 0.9})
    assert cache.get(explicit) == run
    assert cache.get(default) == run
    # read back from the file, the same
    again = RunCache(tmp_path / "runs.jsonl", FIELDS)
    assert again.get(default)["test_accuracy"] == 0.9
    assert again.all_runs() == [run]


@pytest.mark.parametrize(
    "other",
    [
        {"warmup_epochs": 4},  # another fit
        {"module": "resnet18"},  # outside what the digest covers
    ],
)
def test_other_settings_are_not_found(tmp_path, other):
    cache = RunCache(tmp_path / "runs.jsonl", FIELDS)
    cache.add(_cell(Budget(max_epochs=20, dividemix={"warmup_epochs": 3}), 6000), {})
    assert cache.get(_cell(Budget(max_epochs=20, dividemix=other), 6000)) is None
    # nor another seed of the same settings
    assert cache.get(_cell(Budget(max_epochs=20), 6000, seed=1)) is None


def _auto_alpha_cache(tmp_path, ran_with, extra) -> tuple[RunCache, dict]:
    cache = RunCache(tmp_path / "runs.jsonl", FIELDS)
    ran = _cell(Budget(max_epochs=20, dividemix={"alpha": ran_with}), 6000)
    cache.add(ran, {"extra": extra})
    return cache, _cell(Budget(max_epochs=20, dividemix={"alpha": "auto"}), 6000)


@pytest.mark.parametrize(
    "rates, ran_with, found",
    [
        ([0.42, 0.44], 0.5, True),  # 'auto' resolves to 0.5: that run is it
        ([0.42, 0.44], 0.0, False),
        ([0.20, 0.22], 0, True),  # the int 0 of the earlier default, too
        ([0.20, 0.22], 0.5, False),
        ([0.29, 0.32], 0.5, True),  # the mean decides: 0.305
    ],
)
def test_a_run_stands_for_alpha_auto_where_its_first_division_resolves_to_it(
    tmp_path, rates, ran_with, found
):
    cache, auto = _auto_alpha_cache(tmp_path, ran_with, {"first_noise_rates": rates})
    assert (cache.get(auto) is not None) is found


@pytest.mark.parametrize("net1_rate, found", [(0.47, True), (0.33, False)])
def test_a_run_with_net1s_trace_only_stands_for_alpha_auto_away_from_the_boundary(
    tmp_path, net1_rate, found
):
    trace = [
        {"epoch": 2, "stage": "warmup_check", "flagged": 0.9},  # warm-up went on
        {"epoch": 3, "stage": "mixmatch", "flagged": net1_rate},
    ]
    cache, auto = _auto_alpha_cache(tmp_path, 0.5, {"divisions_net1": trace})
    assert (cache.get(auto) is not None) is found
    # and a run that recorded neither is never taken for an 'auto' fit
    bare, auto = _auto_alpha_cache(tmp_path / "bare", 0.5, {})
    assert bare.get(auto) is None


@pytest.mark.parametrize(
    "ran_with, rates, found",
    [
        # balanced without mixup: what 'auto' does below 30 %
        ({"balance_labeled": True, "alpha": 0.0}, [0.16, 0.18], True),
        ({"balance_labeled": True, "alpha": 0.0}, [0.42, 0.44], False),
        # alpha left 'auto' resolves itself; the balance must still match
        ({"balance_labeled": True}, [0.16, 0.18], True),
        ({"balance_labeled": True}, [0.42, 0.44], False),
        # a run of the earlier defaults (no balance) at high noise
        ({"balance_labeled": False, "alpha": 0.5}, [0.42, 0.44], True),
        ({"balance_labeled": False}, [0.42, 0.44], True),
        ({"balance_labeled": False}, [0.16, 0.18], False),
    ],
)
def test_a_run_stands_for_balance_labeled_auto_where_it_resolves_to_it(
    tmp_path, ran_with, rates, found
):
    cache = RunCache(tmp_path / "runs.jsonl", FIELDS)
    ran = _cell(Budget(max_epochs=20, dividemix=ran_with), 6000)
    cache.add(ran, {"extra": {"first_noise_rates": rates}})
    auto = {"alpha": "auto", "balance_labeled": "auto"}
    assert (
        cache.get(_cell(Budget(max_epochs=20, dividemix=auto), 6000)) is not None
    ) is found


@pytest.mark.parametrize(
    "ran_with, rates, found",
    [
        # the earlier defaults' threshold and window: what 'auto' keeps below
        # 30 %, and warm-up is the same fit
        ({"p_threshold": 0.5, "loss_window": 1}, [0.16, 0.18], True),
        ({"p_threshold": 0.5, "loss_window": 1}, [0.42, 0.44], False),
        # the values 'auto' picks above 30 %, set from the start: warm-up read
        # its divisions at 0.6 over a window, which 'auto' never does
        ({"p_threshold": 0.6, "loss_window": 5}, [0.42, 0.44], False),
        ({"p_threshold": 0.6, "loss_window": 5}, [0.16, 0.18], False),
    ],
)
def test_a_run_stands_for_threshold_and_window_auto_only_with_their_warmup_values(
    tmp_path, ran_with, rates, found
):
    cache = RunCache(tmp_path / "runs.jsonl", FIELDS)
    ran = _cell(Budget(max_epochs=20, dividemix=ran_with), 6000)
    cache.add(ran, {"extra": {"first_noise_rates": rates}})
    assert (cache.get(_cell(Budget(max_epochs=20), 6000)) is not None) is found
