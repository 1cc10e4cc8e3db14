"""The profile splits a real fit's epochs into parts through skorch events."""

import pytest

from benchmarks.speed import speed_profile


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "profile.json"
    return speed_profile.main(
        ["--quick", "--threads", "1", "--operators", "5"] + ["--out", str(out)]
    )


def test_every_phase_is_split_into_parts_that_add_up(quick):
    command = "python -m benchmarks.speed.speed_profile --quick"
    assert quick["command"].startswith(command)
    phases = quick["phases"]
    assert set(phases) == {"warmup", "mixmatch"}
    for phase in phases.values():
        parts = phase["parts"]
        assert {"module forward", "backward", "optimizer step + skorch"} <= set(parts)
        assert sum(p["share"] for p in parts.values()) == pytest.approx(1.0)
        total = sum(p["seconds_per_epoch"] for p in parts.values())
        assert total == pytest.approx(phase["seconds_per_epoch"])
        assert all(p["seconds_per_epoch"] >= 0 for p in parts.values())
    assert "division (GMM, bookkeeping)" in phases["mixmatch"]["parts"]


def test_operator_table_from_torch_profiler(quick):
    for phase in quick["phases"].values():
        operators = phase["operators"]
        assert 0 < len(operators) <= 5
        seconds = [row["self_cpu_s_per_epoch"] for row in operators]
        assert seconds == sorted(seconds, reverse=True)
