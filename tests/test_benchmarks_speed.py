"""The speed benchmark counts the method's passes right and writes its report.

No timing thresholds: timings depend on the machine and its load. What is
checked is that the floor runs exactly the passes the training loop runs, and
that the quick mode and the memory measurement produce complete JSON.
"""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from benchmarks.speed import speed, speed_floor
from sklearn_dividemix import SmallCNNClassifierModule
from sklearn_dividemix._distributed import SingleProcess
from sklearn_dividemix._training import TrainingData

PHASE_KEYS = {"epochs", "measured_epochs", "actual_s", "floor_s", "efficiency"}
PHASE_KEYS |= {"actual_cpu_s", "floor_cpu_s", "efficiency_cpu"}


@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 17, 33, 64, 65])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_batch_sizes_are_the_training_loops_batches(n, batch_size):
    # The floor re-derives the loop's batching (last batch of one dropped).
    # TrainingData.batches reads only the batch size and the processes
    settings = SimpleNamespace(batch_size=batch_size, replicas=SingleProcess())
    loop = [len(b) for b in TrainingData.batches(settings, torch.arange(n))]
    assert speed_floor.batch_sizes(n, batch_size) == loop


def test_skorch_batches_keep_the_last_row():
    assert speed_floor.batch_sizes(33, 16, drop_single=False) == [16, 16, 1]


def test_warmup_passes_are_one_forward_backward_per_batch_and_net():
    passes = speed_floor.warmup_passes(40, 16)
    assert passes.steps == [(0, 0, 16), (0, 0, 16), (0, 0, 8)] * 2
    assert passes.division == []


def test_mixmatch_passes_by_hand():
    # n=100, batch 16, division chunks of 64. Net 1 trains on 30 labeled rows
    # (batches 16 + 14, each with as many unlabeled rows); net 2 on none, so
    # it passes over the 100 unlabeled rows in 7 full batches.
    passes = speed_floor.mixmatch_passes(100, (30, 0), 16, 64)
    net1 = [(64, 32, 64), (56, 28, 56)]
    net2 = [(32, 32, 32)] * math.ceil(100 / 16)
    assert passes.steps == net1 + net2
    assert passes.division == [64, 36, 64, 36]
    counts = passes.counts()
    assert counts["steps"] == 9
    assert counts["fwd_bwd_rows"] == counts["own_no_grad_rows"] == 120 + 7 * 32
    assert counts["peer_no_grad_rows"] == 60 + 7 * 32
    assert counts["division_rows"] == 200


def test_mixmatch_passes_without_unlabeled_rows_skip_the_peer():
    passes = speed_floor.mixmatch_passes(20, (20, 20), 16, 64)
    assert passes.steps == [(32, 0, 32), (8, 0, 8)] * 2
    assert passes.counts()["peer_no_grad_passes"] == 0


def test_floor_runs_exactly_the_listed_passes():
    own = SmallCNNClassifierModule(1, 3, width=4)
    peer = SmallCNNClassifierModule(1, 3, width=4)
    seen = []

    def recorder(name):
        def hook(module, inputs):
            mode = (
                "inference"
                if torch.is_inference_mode_enabled()
                else ("grad" if torch.is_grad_enabled() else "no_grad")
            )
            seen.append((name, len(inputs[0]), module.training, mode))

        return hook

    own.register_forward_pre_hook(recorder("own"))
    peer.register_forward_pre_hook(recorder("peer"))
    inputs = torch.rand(64, 1, 8, 8)
    floor = speed_floor.Floor(own, peer, inputs, 3, device="cpu")
    passes = speed_floor.EpochPasses(steps=[(12, 6, 12), (0, 0, 5)], division=[64, 3])
    wall, cpu = floor.time(passes)
    assert wall > 0 and cpu > 0
    assert seen == [
        ("own", 64, False, "inference"),
        ("own", 3, False, "inference"),
        ("own", 12, True, "no_grad"),
        ("peer", 6, False, "no_grad"),
        ("own", 12, True, "grad"),
        ("own", 5, True, "grad"),
    ]
    # the forward + backward passes leave no gradient behind
    assert all(p.grad is None for p in own.parameters())


def test_quick_mode_writes_valid_json(tmp_path):
    out = tmp_path / "quick.json"
    result = speed.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python -m benchmarks.speed.speed --quick")
    assert saved["machine"]["torch"] == torch.__version__
    phases = ("warmup", "mixmatch")
    assert set(saved["ratios"]) == {
        f"{phase}_{kind}"
        for phase in phases
        for kind in ("over_skorch_actual", "over_skorch_floor", "excess")
    }
    assert all(v > 0 and math.isfinite(v) for v in saved["ratios"].values())
    n, batch_size = result["config"]["n"], result["config"]["batch_size"]
    for phase in (saved["dividemix"]["warmup"], saved["dividemix"]["mixmatch"]):
        assert PHASE_KEYS <= set(phase)
        assert phase["actual_s"] > 0 and phase["floor_s"] > 0
        assert math.isfinite(phase["efficiency"]) and phase["efficiency"] > 0
    warmup = saved["dividemix"]["warmup"]["epochs"]
    assert len(warmup) == result["config"]["warmup_epochs"]
    # every warm-up epoch: each net one forward + backward over all rows
    assert all(e["passes"]["fwd_bwd_rows"] == 2 * n for e in warmup)
    for epoch in saved["dividemix"]["mixmatch"]["epochs"]:
        counts = epoch["passes"]
        assert counts["division_rows"] == 2 * n
        assert counts["own_no_grad_rows"] == counts["fwd_bwd_rows"]
        assert len(epoch["labeled"]) == 2
    # one plain skorch epoch after each DivideMix epoch
    skorch = saved["skorch"]["epochs"]
    assert len(skorch) == len(warmup) + len(saved["dividemix"]["mixmatch"]["epochs"])
    assert all(e["passes"]["steps"] == math.ceil(n / batch_size) for e in skorch)


def test_memory_measurement_in_a_fresh_process(tmp_path):
    out = tmp_path / "memory.json"
    speed.main(["--quick", "--memory-only", "--threads", "1", "--out", str(out)])
    memory = json.loads(out.read_text())["memory"]
    assert memory["data_bytes"] == 192 * 12 * 12 * 4
    assert memory["model_bytes"] > 0
    assert memory["fit_peak_rss"] >= memory["rss_before_fit"] > 0
    assert (
        memory["fit_working_set"] == memory["fit_peak_rss"] - memory["rss_before_fit"]
    )
    assert (
        memory["budget_bytes"]
        == 2 * (memory["data_bytes"] + memory["model_bytes"]) + 300 * 2**20
    )
    assert isinstance(memory["within_budget"], bool)
    # the plain skorch fit of the same module, measured the same way
    skorch = memory["skorch"]
    assert skorch["method"] == "skorch" and memory["method"] == "dividemix"
    assert skorch["data_bytes"] == memory["data_bytes"]
    assert 0 < skorch["model_bytes"] == memory["model_bytes"] / 2
