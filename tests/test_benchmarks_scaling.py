"""The scaling estimate's pass counts match what the speed benchmark counted."""

import json

import pytest

from benchmarks.scaling.scaling_estimate import (
    ASSUMED_GPU,
    CPU_SPEED_JSON,
    fit_hours,
    main,
    pass_counts,
)


def test_pass_counts_match_a_measured_mixmatch_epoch():
    measured = json.loads(CPU_SPEED_JSON.read_text())["dividemix"]["mixmatch"]
    epoch = measured["epochs"][1]
    n = 1024
    share = sum(epoch["labeled"]) / (2 * n)
    counts = pass_counts(n, epochs=1, warmup_epochs=0, labeled_share=share)
    passes = epoch["passes"]
    assert counts["train_rows"] == pytest.approx(passes["fwd_bwd_rows"])
    no_grad = passes["own_no_grad_rows"] + passes["peer_no_grad_rows"]
    assert counts["no_grad_rows"] == pytest.approx(no_grad)
    # one division pass per epoch, plus the final one
    assert counts["eval_rows"] == passes["division_rows"] + 2 * n


@pytest.mark.parametrize("devices", [1, 2, 8])
def test_time_divides_among_processes(devices):
    counts = pass_counts(1000, epochs=4, warmup_epochs=2, labeled_share=0.5)
    one = fit_hours(counts, ASSUMED_GPU, 1, efficiency=1.0)
    assert fit_hours(counts, ASSUMED_GPU, devices, 1.0) == pytest.approx(one / devices)


def test_warmup_epochs_train_every_sample_once_per_net():
    counts = pass_counts(100, epochs=3, warmup_epochs=3, labeled_share=0.7)
    assert counts == {
        "train_rows": 600,
        "no_grad_rows": 0,
        "eval_rows": 200,
        "decoded_samples": 700,
    }


def test_the_command_prints_and_writes(tmp_path, capsys):
    result = main(["--n", "1000", "--gpus", "2", "--output", str(tmp_path / "e.json")])
    assert "compute:" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["devices"] == 2
    assert result["memory"]["nets_gib"] > 0
