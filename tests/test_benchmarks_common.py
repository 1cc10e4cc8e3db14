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
    line = _common.command_line("benchmarks.speed.speed", ["--quick", "--out", "a b"])
    assert line == "python -m benchmarks.speed.speed --quick --out 'a b'"
    path = _common.write_json(tmp_path / "sub" / "x.json", {"a": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"a": 0.5}


def test_pages_table_and_numbers():
    from benchmarks import _pages

    text = _pages.table(["a", "b", "c"], [[1, "x", 0.5], ["y", 2, ""]], "lrc")
    assert text.splitlines() == [
        "| a | b | c |",
        "|---|---:|:---:|",
        "| 1 | x | 0.5 |",
        "| y | 2 |  |",
    ]
    with pytest.raises(ValueError, match="2 columns"):
        _pages.table_head(["a", "b"], "l")
    assert _pages.pct(0.1234) == "12.3"
    assert _pages.points(-0.012) == "-1.2"
    assert _pages.points(None) == ""
    assert "torch" in _pages.run_on() and _pages.run_on().endswith(".")


def test_pages_replace_between_keeps_the_prose(tmp_path):
    from benchmarks import _pages

    page = "intro\n<!-- s -->\nold\n<!-- e -->\nrest\n"
    new = _pages.replace_between(page, "<!-- s -->", "<!-- e -->", "new")
    assert new == "intro\n<!-- s -->\nnew\n<!-- e -->\nrest\n"
    path = _pages.write_page(tmp_path / "docs" / "p.md", new)
    assert path.read_text() == new


def test_data_loader(monkeypatch, tmp_path):
    from benchmarks import _data

    X, y = _data.digits()
    assert X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert len(X) == len(y) == 1797
    images = np.full((3, 2, 2), 255, dtype=np.uint8)
    assert _data.flat(images).shape == (3, 4) and _data.flat(images).max() == 1.0
    # an archive of the shared data's layout, in a folder of our own
    rng = np.random.RandomState(0)
    arrays = {
        "x_train": rng.randint(0, 256, (40, 4, 4)).astype(np.uint8),
        "y_train": np.arange(40, dtype=np.uint8) % 4,
        "x_test": rng.randint(0, 256, (20, 4, 4)).astype(np.uint8),
        "y_test": np.arange(20, dtype=np.uint8) % 4,
    }
    np.savez(tmp_path / "toy.npz", **arrays)
    monkeypatch.setattr(_data, "DATA_DIR", tmp_path)
    assert _data.archive("toy", ("y_test",)).keys() == {"y_test"}
    X_train, y_train, X_test, y_test = _data.subsets("toy", 20, None)
    assert X_train.shape == (20, 4, 4) and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5, 5, 5, 5]
    assert len(X_test) == 20
    with pytest.raises(FileNotFoundError, match="shared/data"):
        _data.archive("absent")
