"""The benchmarks' shared helpers: machine, memory, default module, output."""

import json
import sys

import numpy as np
import pytest
import torch

from benchmarks import _common
from sklearn_dividemix import MLPClassifierModule, SmallCNNClassifierModule


def test_machine_info_has_the_keys_results_rely_on():
    info = _common.machine_info(("cleanlab", "no-such-package"))
    for key in ("cpu", "logical_cpus", "torch_threads", "python", "platform"):
        assert info[key] is not None
    assert info["torch"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["scikit-learn"] and info["skorch"]
    assert info["no-such-package"] is None
    json.dumps(info)


def test_memory_readers_give_numbers_or_none():
    rss = _common.status_mib("VmRSS")
    if sys.platform.startswith("linux"):
        assert rss > 0
        status = _common.read_status()
        assert status["VmHWM"] >= status["VmRSS"] > 0
    else:
        assert rss is None and _common.read_status() == {}
    assert _common.status_mib("NoSuchField") is None
    assert isinstance(_common.reset_peak_rss(), bool)
    _common.release_free_memory()


def test_peak_sampler_sees_at_least_the_resident_set_at_entry():
    before = _common.read_status(("VmRSS",)).get("VmRSS", 0)
    with _common.PeakSampler(("VmRSS",), interval=0.001) as sampler:
        np.ones(2**20).sum()
    assert sampler.peak["VmRSS"] >= (before if before else 0)


@pytest.mark.parametrize(
    ("shape", "name", "module", "kwargs"),
    [
        ((5, 7), None, MLPClassifierModule, {"n_features": 7, "num_classes": 3}),
        ((5, 1, 8, 8), None, SmallCNNClassifierModule, {"in_channels": 1}),
        ((5, 1, 8, 8), "mlp", MLPClassifierModule, {"n_features": 64}),
    ],
)
def test_module_spec_is_the_estimators_default(shape, name, module, kwargs):
    got, got_kwargs = _common.module_spec(np.zeros(shape), 3, name)
    assert got is module
    assert kwargs.items() <= got_kwargs.items()
    assert got_kwargs["num_classes"] == 3


def test_command_line_and_write_json(tmp_path):
    line = _common.command_line("benchmarks.speed", ["--quick", "--out", "a b"])
    assert line == "python -m benchmarks.speed --quick --out 'a b'"
    path = _common.write_json(tmp_path / "sub" / "x.json", {"a": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"a": 0.5}
