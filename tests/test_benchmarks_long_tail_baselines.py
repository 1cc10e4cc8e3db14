"""The long-tail study's baselines, cache keys, tagged rows and page."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks.quality_methods import TensorBatches
from benchmarks.studies import long_tail, long_tail_report
from benchmarks.studies.long_tail_baselines import (
    BalancedBatches,
    dividemix_budget,
    fit_baseline,
)
from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._augment import GaussianJitter
from sklearn_dividemix._setup import validate_training_data


def _tiny(seed=0, sizes=(120, 40, 12), n_features=6):
    """Long-tailed blobs: class k centred at 3 * e_k."""
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.normal(size=(len(y), n_features)).astype(np.float32)
    X[np.arange(len(y)), y] += 3.0
    return X, y


@pytest.mark.parametrize("method", ["cross_entropy", "cross_entropy_balanced"])
def test_baseline_fits_with_dividemix_budget(method):
    X, y = _tiny()
    net = fit_baseline(method, X, y, epochs=4, seed=0)
    assert net.predict(X).shape == y.shape
    assert np.mean(net.predict(X) == y) > 0.8
    # DivideMix's schedule: lr 0.1, cut tenfold at max_epochs // 2
    assert net.history[:, "event_lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert net.batch_size == 64 and len(net.history) == 4
    expected = BalancedBatches if method.endswith("balanced") else TensorBatches
    assert net.iterator_train is expected
    # seeded: the same seed, the same net
    again = fit_baseline(method, X, y, epochs=4, seed=0)
    np.testing.assert_array_equal(net.predict_proba(X), again.predict_proba(X))


def test_baselines_share_dividemix_settings():
    params = DivideMixClassifier().get_params()
    budget = dividemix_budget(30)
    assert (budget.max_epochs, budget.batch_size, budget.lr) == (30, 64, 0.1)
    assert budget.lr_decay == params["lr_decay"]
    X, y = _tiny()
    net = fit_baseline("cross_entropy", X, y, epochs=1, seed=0)
    jitter = net.module_.augment
    assert isinstance(jitter, GaussianJitter)
    # the scale DivideMix (normalize=False) gives its own jitter
    clf = DivideMixClassifier(normalize=False, device="cpu")
    fit_input, _, _ = validate_training_data(clf, X, y, "cpu")
    np.testing.assert_allclose(jitter.scale, 0.1 * fit_input.feature_std("cpu"))
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baseline("mixup", X, y, epochs=1, seed=0)


def test_balanced_batches_draw_rare_classes_as_often():
    y = np.repeat([0, 1, 2], [1000, 100, 10])
    data = SimpleNamespace(X=np.zeros((len(y), 2), np.float32), y=y)
    torch.manual_seed(0)
    balanced = BalancedBatches(data, batch_size=64)
    drawn = torch.cat([yb for _, yb in balanced]).numpy()
    # as many samples per epoch as the set has, in as many batches
    assert len(drawn) == len(y) and len(list(balanced)) == len(balanced) == 18
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(shares, 1 / 3, atol=0.05)
    # plain shuffling keeps the data's shares: the rarest class 1 %
    plain = torch.cat([yb for _, yb in TensorBatches(data, 64, shuffle=True)])
    assert np.bincount(plain.numpy())[2] == 10


def _run(row, seed=0, accuracy=(0.9, 0.8, 0.5), **extra):
    """A cached run of one cell: a division, or ``baseline``/``tag`` in extra."""
    run = {"dataset": "d", "imbalance": 50.0, "seed": seed, "epochs": 30}
    run |= {"fit_s": 1.0, "class_accuracy": list(accuracy)}
    run |= {"test_accuracy": float(np.mean(accuracy))}
    run |= {"balanced_accuracy": float(np.mean(accuracy))}
    if "baseline" not in extra:
        run |= {"division": row, "warmup_epochs": 10}
        run |= dict.fromkeys(long_tail_report.METRICS[:5], 0.5)
    return run | extra


def test_old_cache_keys_unchanged():
    old = _run("per_class_raw", seed=2)
    assert long_tail._key(old) == ("d", 50.0, "per_class_raw", 2, 30)
    base = _run(None, baseline="cross_entropy")
    assert long_tail._key(base) == ("d", 50.0, "cross_entropy", 0, 30)
    tagged = _run("per_class", tag="candidate", params={"alpha": 0})
    assert long_tail._key(tagged) == ("d", 50.0, "candidate", 0, 30)
    path = long_tail.ROOT / "benchmarks" / "results" / "long_tail_runs.jsonl"
    divisions = [r for r in long_tail.load_cache(path) if "baseline" not in r]
    for run in (r for r in divisions if "tag" not in r):
        key = (run["dataset"], run["imbalance"], run["division"])
        assert long_tail._key(run) == (*key, run["seed"], run["epochs"])


def _cell():
    ce = [_run(None, s, (0.9, 0.8, 0.5), baseline="cross_entropy") for s in (0, 1)]
    balanced_ce = [
        _run(None, s, (0.7, 0.8, 0.6), baseline="cross_entropy_balanced")
        for s in (0, 1)
    ]
    # global loses class 2 in seed 1 only; per_class never, and is better
    glob = [_run("global", 0, (0.9, 0.9, 0.6)), _run("global", 1, (0.9, 0.9, 0.1))]
    per_class = [_run("per_class", s, (0.9, 0.9, 0.7)) for s in (0, 1)]
    return ce + balanced_ce + glob + per_class


def test_summary_compares_with_plain_ce():
    order = [*long_tail.BASELINES, *long_tail.DIVISIONS]
    rows = {r["row"]: r for r in long_tail_report.summarize(_cell(), order)}
    assert list(rows) == ["cross_entropy", "cross_entropy_balanced", "global"] + [
        "per_class"
    ]
    glob, per_class = rows["global"], rows["per_class"]
    assert glob["lost_vs_ce"] == [] and glob["lost_vs_ce_seeds"] == [[2, 1]]
    assert glob["under_keep"] == [] and rows["cross_entropy"]["under_keep"] == []
    # (0.8 + 1.9 / 3) / 2 - 2.2 / 3: below CE too
    assert glob["delta_balanced_accuracy_ce"] == pytest.approx(-1 / 60)
    assert long_tail_report.meets_bar(glob) is False
    assert long_tail_report.meets_bar(per_class) is True
    assert long_tail_report.meets_bar(rows["cross_entropy_balanced"]) is None
    assert rows["cross_entropy"]["f1_rare_given"] is None
    assert rows["cross_entropy"]["division"] is None


def test_page_has_ce_rows_and_columns():
    runs = _cell() + [
        _run("per_class", s, (0.9, 0.2, 0.9), tag="cand", params={"alpha": 0})
        for s in (0, 1)
    ]
    rows = long_tail_report.summarize(runs, [*long_tail.BASELINES])
    page = long_tail_report.markdown(rows, runs, min_class_size=30)
    for column in ("| vs CE |", "| lost vs CE |", "| lost vs CE, per seed |"):
        assert column in page
    assert "| under 30 % |" in page and "| meets the bar |" in page
    assert "- `cand`: `alpha=0`" in page
    ce_table = page.split("## Against plain cross-entropy")[1]
    lines = {
        line.split(" | ")[2]: line for line in ce_table.splitlines() if "| d |" in line
    }
    assert set(lines) == {
        "cross_entropy",
        "cross_entropy_balanced",
        "global",
        "per_class",
        "cand",
    }
    # cand loses class 1 (CE keeps it at 80 %) in both seeds
    assert "| 1 | 1 | 1 (s0 s1) | no |" in lines["cand"]
    assert "| none | none | 2 (s1) | no |" in lines["global"]
    assert "| none | none | none | yes |" in lines["per_class"]
    # the detection table: baselines have no detection cells
    detection = page.split("## Reading the table")[0]
    assert "| d | 50 | cross_entropy | 2 |  |  |  |  |  |  | 0.7333 |" in detection


def test_tagged_row_arguments(tmp_path):
    args = long_tail.parse_args(
        ["--divisions", "--baselines", "--dividemix", "division=per_class"]
        + ["lambda_u=0", "noise_floor=auto", "--tag", "candidate"]
    )
    assert args.params == {
        "division": "per_class",
        "lambda_u": 0,
        "noise_floor": "auto",
    }
    keys = [key for key, _ in long_tail.planned(args)]
    assert keys == [
        ("fashion_mnist", 50.0, "candidate", 0, 30),
        ("fashion_mnist", 20.0, "candidate", 0, 30),
    ]
    for bad in (
        ["--dividemix", "alpha=0"],
        ["--tag", "x"],
        ["--dividemix", "alpha=0", "--tag", "per_class"],
        ["--dividemix", "max_epochs=5", "--tag", "x"],
        ["--baselines", "mixup"],
    ):
        with pytest.raises(SystemExit):
            long_tail.parse_args(bad)
    cached = [_run("per_class", tag="candidate", params={"alpha": 0})]
    long_tail.check_tag(cached, "candidate", {"alpha": 0})
    with pytest.raises(ValueError, match="choose another tag"):
        long_tail.check_tag(cached, "candidate", {"alpha": 0.5})


def test_main_caches_tagged_row_and_baselines(tmp_path, monkeypatch):
    calls = []

    def fake_one(name, imbalance, division, seed, epochs, params=None, tag=None):
        calls.append((division, tag, params))
        run = _run(division, seed, tag=tag, params=params)
        return run | {"dataset": name, "imbalance": imbalance, "epochs": epochs}

    def fake_baseline(name, imbalance, baseline, seed, epochs):
        calls.append((baseline,))
        run = _run(None, seed, baseline=baseline)
        return run | {"dataset": name, "imbalance": imbalance, "epochs": epochs}

    monkeypatch.setattr(long_tail, "run_one", fake_one)
    monkeypatch.setattr(long_tail, "run_baseline", fake_baseline)
    argv = ["--output-dir", str(tmp_path), "--imbalances", "50", "--divisions"]
    argv += ["global", "--dividemix", "alpha=0", "--tag", "cand"]
    runs = long_tail.main(argv)
    assert calls == [
        ("cross_entropy",),
        ("cross_entropy_balanced",),
        ("global", None, None),
        ("global", "cand", {"alpha": 0}),
    ]
    assert long_tail.main(argv) == runs and len(calls) == 4  # all cached
    cache = tmp_path / "benchmarks" / "results" / "long_tail_runs.jsonl"
    assert [json.loads(line).get("tag") for line in cache.read_text().splitlines()] == [
        None,
        None,
        None,
        "cand",
    ]
    page = (tmp_path / "docs" / "long_tail.md").read_text()
    assert "| fashion_mnist | 50 | cand |" in page
    summary = json.loads((tmp_path / "benchmarks/results/long_tail.json").read_text())
    assert [r["row"] for r in summary["summary"]] == [
        "cross_entropy",
        "cross_entropy_balanced",
        "global",
        "cand",
    ]


@pytest.mark.filterwarnings("ignore")  # a 2-epoch fit is not trusted
def test_tagged_and_baseline_runs_record_their_settings(monkeypatch):
    X, y = _tiny(sizes=(150, 60, 30), n_features=8)
    X_test, y_test = _tiny(seed=1, sizes=(30, 30, 30), n_features=8)
    monkeypatch.setattr(
        long_tail, "load_long_tail", lambda name, imbalance: (X, y, X_test, y_test)
    )
    params = {"division": "per_class_raw", "warmup_epochs": 1, "alpha": 0}
    run = long_tail.run_one("d", 50.0, "global", 0, 2, params=params, tag="t")
    assert long_tail._key(run) == ("d", 50.0, "t", 0, 2)
    assert run["division"] == "per_class_raw" and run["params"] == params
    assert {"lambda_u_", "noise_floor_", "f1_rare_given"} <= set(run)
    base = long_tail.run_baseline("d", 50.0, "cross_entropy_balanced", 0, 2)
    assert long_tail._key(base) == ("d", 50.0, "cross_entropy_balanced", 0, 2)
    assert (base["lr"], base["batch_size"], base["lr_decay"]) == (0.1, 64, 0.1)
    assert len(base["class_accuracy"]) == 3 and "f1_rare_given" not in base
    json.dumps([run, base])  # the cache can hold them
