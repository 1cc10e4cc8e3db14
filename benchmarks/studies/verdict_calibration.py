"""Calibrate the end-of-fit verdict (``_verdict.py``) on real fits.

Fits :class:`~sklearn_dividemix.DivideMixClassifier` on a few sound and a few
failing settings, gathers from each fitted estimator the evidence the verdict
reads (each net's final division, its predictions, the first division's noise
estimate, the notes of ``history_``), judges it with
:func:`sklearn_dividemix._verdict.judge_fit` and prints the evidence next to
what the fit really achieved (accuracy against the true labels, how well
``clean_mask_`` finds the wrong labels), so that every threshold of the
verdict can be checked against measurement.

Cases:

- ``digits40-s{0,1,2}``: digits ``X / 16``, 40 % symmetric noise, defaults
  (a sound fit: the verdict must trust it);
- ``digits20-s0``, ``digits80-s0``, ``digits40asym-s0``: other noise rates
  and pair-flipping (asymmetric) noise, defaults;
- ``digits0-s0``: digits without noise, defaults (nothing to find: the
  losses are not bimodal);
- ``digits40-unscaled``: ``X`` not divided by 16, defaults;
- ``digits40-warmup``: ``max_epochs=4, warmup_epochs=4`` (training never
  leaves warm-up);
- ``digits40-short``: the same data, ``max_epochs=3, warmup_epochs=1,
  lr=0.5`` (under-trained);
- ``digits40-tiny``: 150 samples, ``max_epochs=4, warmup_epochs=1``;
- ``cifar-resnet18``: 512 CIFAR-10 test-split images with 35 % wrong labels,
  ``module=torchvision.models.resnet18, max_epochs=3, warmup_epochs=1``
  (the failure of the issue), test accuracy on 1,000 other images.

Fitted evidence is cached under ``benchmarks/cache/verdict/`` so that the
thresholds can be re-judged without refitting (``--refit`` ignores the
cache). Run with ``nice -n 10 python -m benchmarks.studies.verdict_calibration
[case ...]``; a digits case takes 10-20 s on two idle CPU cores, the CIFAR
one about three minutes.

Each net's divisions are recorded through the estimator's ``on_division``
callback hook (:class:`DivisionRecorder`; the fitted attributes keep only
both nets' mean clean probability). Once the estimator has ``fit_verdict_``,
the report prints its ``trusted`` next to this script's.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels
from sklearn_dividemix._division import estimate_noise_rate
from sklearn_dividemix._verdict import judge_fit

from .._common import CACHE_DIR
from .._data import archive, digits

CACHE = CACHE_DIR / "verdict"


def _digits(noise_rate, seed, n_samples=None, kind="symmetric", scale=16):
    X, y = digits(scale)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    y_noisy, flipped = make_noisy_labels(
        y, noise_rate=noise_rate, kind=kind, random_state=seed
    )
    return X, y, y_noisy, flipped, X, y


def _cifar(n_train=512, n_test=1000, seed=0):
    data = archive("cifar10", ("x_test", "y_test"))
    images, labels = data["x_test"], data["y_test"].ravel()
    X = images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    X_train, y = X[:n_train], labels[:n_train]
    y_noisy, flipped = make_noisy_labels(
        y, noise_rate=0.35, kind="symmetric_exclusive", random_state=seed
    )
    test = slice(n_train, n_train + n_test)
    return X_train, y, y_noisy, flipped, X[test], labels[test]


def _cases():
    import torchvision

    short = {"max_epochs": 3, "warmup_epochs": 1, "lr": 0.5}
    resnet = {
        "module": torchvision.models.resnet18,
        "max_epochs": 3,
        "warmup_epochs": 1,
    }
    cases = {f"digits40-s{s}": (lambda s=s: _digits(0.4, s), {}, s) for s in range(3)}
    for rate in (0, 20, 80):
        cases[f"digits{rate}-s0"] = (lambda r=rate: _digits(r / 100, 0), {}, 0)
    cases["digits40asym-s0"] = (lambda: _digits(0.4, 0, kind="asymmetric"), {}, 0)
    cases["digits40-unscaled"] = (lambda: _digits(0.4, 0, scale=1), {}, 0)
    cases["digits40-warmup"] = (
        lambda: _digits(0.4, 0),
        {"max_epochs": 4, "warmup_epochs": 4},
        0,
    )
    cases["digits40-short"] = (lambda: _digits(0.4, 0), short, 0)
    cases["digits40-tiny"] = (
        lambda: _digits(0.4, 0, n_samples=150),
        {"max_epochs": 4, "warmup_epochs": 1},
        0,
    )
    cases["cifar-resnet18"] = (_cifar, resnet, 0)
    return cases


class DivisionRecorder(Callback):
    """Record one net's divisions through the ``on_division`` hook.

    The fitted attributes keep only the mean clean probability of both nets;
    the verdict needs each net's. Every MixMatch epoch and the final division
    are recorded as ``(division, used)``: the first is the first division
    after warm-up, the last's ``used`` the division behind ``clean_proba_``.
    Each net gets its own copy (see :func:`recorded`).
    """

    def initialize(self):
        self.calls = []
        return self

    def on_division(self, net, *, epoch, stage, losses, division, used, sample):
        if stage != "warmup_check":
            self.calls.append((division, used))


def recorded(est) -> list[tuple[list, list]]:
    """Both nets' recorded divisions: ``[(divisions, used), ...]`` by call."""
    per_net = [
        dict(net.callbacks_)["divisions"].calls for net in (est.net1_, est.net2_)
    ]
    return [([a[0], b[0]], [a[1], b[1]]) for a, b in zip(*per_net, strict=True)]


def _net_predictions(est, X):
    """Each net's predicted class index of every sample, as ``predict`` sees X."""
    batches = list(est._prediction_source(X).stream(est.eval_batch_size))
    with torch.inference_mode():
        return [
            torch.cat([net.eval_logits(b).argmax(1).cpu() for b in batches]).numpy()
            for net in (est.net1_, est.net2_)
        ]


def collect(est, X, y_true, flipped, X_test, y_test):
    """The verdict's inputs and the fit's true quality, from a fitted estimator."""
    predictions = _net_predictions(est, X)
    calls = recorded(est)
    rows = list(est.history_)
    stopped_in_warmup = not any(r.get("phase") == "mixmatch" for r in rows)
    first_rates = None
    if not stopped_in_warmup:
        # the first division is read at the threshold before 'auto' resolved
        before = 0.5 if est.p_threshold == "auto" else est.p_threshold
        first_rates = [estimate_noise_rate([d], before) for d in calls[0][0]]
    y_true_enc = np.searchsorted(est.classes_, y_true)
    return {
        "divisions": calls[-1][1],
        "raw_final_divisions": calls[-1][0],
        "predictions": predictions,
        "labels": est._train_labels,
        "n_classes": len(est.classes_),
        "p_threshold": est.p_threshold_,
        "first_noise_rates": first_rates,
        "stopped_in_warmup": stopped_in_warmup,
        "notes": [n for r in rows for n in r.get("notes", [])],
        # the truth, which the verdict never sees
        "flip_rate": float(np.mean(flipped)),
        "mask_accuracy": float(np.mean(est.clean_mask_ == ~flipped)),
        "n_clean_mask": int(est.clean_mask_.sum()),
        "net_true_accuracy": [float(np.mean(p == y_true_enc)) for p in predictions],
        "test_accuracy": float(np.mean(est.predict(X_test) == y_test)),
        "fit_verdict_": getattr(est, "fit_verdict_", None),
    }


def run_case(name, refit=False):
    path = CACHE / f"{name}.pkl"
    if path.exists() and not refit:
        return pickle.loads(path.read_bytes())
    load, params, seed = _cases()[name]
    X, y_true, y_noisy, flipped, X_test, y_test = load()
    start = time.perf_counter()
    est = DivideMixClassifier(
        random_state=seed,
        device="cpu",
        callbacks=[("divisions", DivisionRecorder())],
        **params,
    )
    est.fit(X, y_noisy)
    evidence = collect(est, X, y_true, flipped, X_test, y_test)
    evidence["fit_seconds"] = time.perf_counter() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(evidence))
    return evidence


def report(name, ev):
    verdict = judge_fit(
        ev["divisions"],
        ev["predictions"],
        ev["labels"],
        n_classes=ev["n_classes"],
        p_threshold=ev["p_threshold"],
        first_noise_rates=ev["first_noise_rates"],
        stopped_in_warmup=ev["stopped_in_warmup"],
        notes=ev["notes"],
    )
    raw = [
        f"w=({d.weights[0]:.3f}, {d.weights[1]:.3f}) D={d.separation:.2f}"
        for d in ev["raw_final_divisions"]
    ]
    print(f"== {name}  ({ev.get('fit_seconds', float('nan')):.0f} s fit)")
    print(
        f"   truth: flip rate {ev['flip_rate']:.1%}, clean_mask_ "
        f"{ev['n_clean_mask']} clean, mask accuracy {ev['mask_accuracy']:.1%}, "
        f"nets' accuracy on true labels "
        f"{', '.join(f'{a:.1%}' for a in ev['net_true_accuracy'])}, "
        f"test accuracy {ev['test_accuracy']:.1%}"
    )
    print(f"   last divisions before the healthy ones are kept: {'; '.join(raw)}")
    if ev.get("fit_verdict_") is not None:
        print(
            f"   the estimator's fit_verdict_: trusted={ev['fit_verdict_']['trusted']}"
        )
    print("   " + str(verdict).replace("\n", "\n   "))
    return verdict


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="default: all but the CIFAR one")
    parser.add_argument("--refit", action="store_true", help="ignore the cache")
    args = parser.parse_args()
    names = args.cases or [n for n in _cases() if not n.startswith("cifar")]
    torch.set_num_threads(2)
    for name in names:
        report(name, run_case(name, refit=args.refit))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
