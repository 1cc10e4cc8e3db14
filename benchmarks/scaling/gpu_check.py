"""One prepared run for a machine with one CUDA GPU, sized for about 8 minutes.

Three parts, one summary table, one JSON file
(``benchmarks/results/gpu_check.json``):

1. **CUDA-only checks** that the CPU test suite cannot run: fp16 autocast with
   the gradient scaler, bf16, channels-last chosen by ``'auto'`` for a
   torchvision ResNet, ``compile=True`` with Inductor, a uint8 NHWC array kept
   on the device, and a model trained on CUDA unpickled and used in a
   process that sees no GPU.
2. **Speed**: ``python -m benchmarks.speed.speed`` on full CIFAR-10 with ``resnet18``
   (its efficiency table: DivideMix epochs against their compute floor and
   a plain skorch epoch).
3. **Quality**: full CIFAR-10 at symmetric 50 % noise, DivideMix against plain
   cross-entropy (the same estimator with warm-up only: same network,
   augmentation and schedule), for as many epochs as ``--epochs`` says.
4. **Per-row costs** of ResNet-18 on 224x224 images (bf16 autocast,
   channels-last): seconds per training row, per no-grad forward row and per
   eval row, the inputs of ``python -m benchmarks.scaling.scaling_estimate --costs
   measured`` (the estimate for a million images on 8 GPUs).

``--smoke`` runs everything small on the CPU (the CUDA-only checks report
"skipped: no CUDA") so the script is tested before a GPU is at hand::

    python -m benchmarks.scaling.gpu_check --smoke
    python -m benchmarks.scaling.gpu_check            # on the GPU machine
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .._common import DATA_DIR, ROOT, machine_info, write_json
from .._common import RESULTS_DIR as RESULTS
from .._data import archive

CIFAR10 = DATA_DIR / "cifar10.npz"


def load_cifar(n_train: int, n_test: int):
    """uint8 NHWC CIFAR-10 (or random images of its shape without the file)."""
    if not CIFAR10.exists():
        rng = np.random.RandomState(0)
        n = n_train + n_test
        X = rng.randint(0, 256, (n, 32, 32, 3)).astype(np.uint8)
        y = rng.randint(0, 10, n)
        return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    arrays = archive("cifar10")
    return (
        arrays["x_train"][:n_train],
        arrays["y_train"][:n_train],
        arrays["x_test"][:n_test],
        arrays["y_test"][:n_test],
    )


def _estimator(**params):
    from torchvision.models import resnet18

    from sklearn_dividemix import DivideMixClassifier

    return DivideMixClassifier(module=resnet18, random_state=0, **params)


def _small_fit(X, y, **params):
    start = time.perf_counter()
    clf = _estimator(max_epochs=2, warmup_epochs=1, **params).fit(X, y)
    return clf, time.perf_counter() - start


def check_amp(X, y, amp: str) -> str:
    clf, seconds = _small_fit(X, y, amp=amp)
    scaler = clf.net1_.grad_scaler_
    assert (scaler is not None) == (amp == "fp16"), "gradient scaler"
    assert np.isfinite(clf.predict_proba(X[:64])).all(), "finite predictions"
    return f"fit {seconds:.1f} s, scaler {'on' if scaler else 'off'}"


def check_channels_last(X, y) -> str:
    clf, _ = _small_fit(X, y)
    assert clf.net1_.channels_last, "'auto' picks channels-last on CUDA"
    conv = clf.net1_.module_.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    return "conv weights channels-last"


def check_compile(X, y) -> str:
    clf, seconds = _small_fit(X, y, compile=True)
    assert np.isfinite(clf.predict_proba(X[:64])).all()
    return f"Inductor fit {seconds:.1f} s (compilation included)"


def check_uint8_on_device(X, y) -> str:
    torch.cuda.reset_peak_memory_stats()
    clf, _ = _small_fit(X, y)
    peak = torch.cuda.max_memory_allocated() / 2**20
    return f"uint8 {X.nbytes / 2**20:.1f} MiB of data, peak GPU {peak:.0f} MiB"


def check_cpu_unpickle(X, y) -> str:
    clf, _ = _small_fit(X, y)
    expected = clf.predict_proba(X[:32])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pkl"
        path.write_bytes(pickle.dumps(clf))
        np.save(Path(folder) / "X.npy", X[:32])
        code = (
            "import pickle, sys, numpy as np, torch; "
            "assert not torch.cuda.is_available(); "
            "clf = pickle.loads(open(sys.argv[1], 'rb').read()); "
            "np.save(sys.argv[3], clf.predict_proba(np.load(sys.argv[2])))"
        )
        out = Path(folder) / "proba.npy"
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        subprocess.run(
            [sys.executable, "-c", code, str(path), str(Path(folder) / "X.npy"), out],
            check=True,
            env=env,
        )
        got = np.load(out)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    return f"{path.stat().st_size if path.exists() else 0} B pickle, CPU = GPU"


CUDA_CHECKS = {
    "fp16 autocast + gradient scaler": lambda X, y: check_amp(X, y, "fp16"),
    "bf16 autocast": lambda X, y: check_amp(X, y, "bf16"),
    "channels-last by 'auto'": check_channels_last,
    "compile (Inductor)": check_compile,
    "uint8 NHWC array on the device": check_uint8_on_device,
    "CUDA-trained model used on a CPU-only process": check_cpu_unpickle,
}


def run_checks(X, y) -> list[dict]:
    rows = []
    for name, check in CUDA_CHECKS.items():
        if not torch.cuda.is_available():
            rows.append({"check": name, "status": "skipped: no CUDA", "detail": ""})
            continue
        try:
            rows.append({"check": name, "status": "ok", "detail": check(X, y)})
        except Exception as exc:  # a failed check is a result, not a crash
            rows.append({"check": name, "status": "FAILED", "detail": repr(exc)})
    return rows


def run_speed(n: int, epochs: int) -> dict:
    out = RESULTS / "gpu_check_speed.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.speed.speed",
        "--dataset",
        "cifar10",
        "--n",
        str(n),
        "--module",
        "resnet18",
        "--warmup-epochs",
        str(epochs),
        "--mixmatch-epochs",
        str(epochs),
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    tail = (done.stdout + done.stderr)[-3000:]
    print(tail)
    return {
        "command": "python " + " ".join(command[1:]),
        "returncode": done.returncode,
        "seconds": time.perf_counter() - start,
        "result_file": str(out),
        "output_tail": tail,
    }


def run_quality(X, y, X_test, y_test, epochs: int, warmup: int) -> list[dict]:
    from sklearn_dividemix import UntrustedFitWarning, make_noisy_labels

    y_noisy, _ = make_noisy_labels(y, noise_rate=0.5, random_state=0)
    rows = []
    for method, warmup_epochs in (("DivideMix", warmup), ("cross-entropy", epochs)):
        start = time.perf_counter()
        clf = _estimator(
            max_epochs=epochs,
            warmup_epochs=warmup_epochs,
            max_warmup_epochs=warmup_epochs,
            lambda_u=25,
            batch_size=128,
            eval_batch_size=4096,
        )
        with warnings.catch_warnings():
            # warm-up only is the point of the baseline, not a fit to judge
            warnings.simplefilter("ignore", UntrustedFitWarning)
            clf.fit(X, y_noisy)
        rows.append(
            {
                "method": method,
                "epochs": epochs,
                "test_accuracy": float(clf.score(X_test, y_test)),
                "seconds": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    return rows


def _seconds_per_row(step, batch: int, repeats: int) -> float:
    for _ in range(2):  # cuDNN autotuning and allocator warm-up
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (repeats * batch)


def run_row_costs(size: int, batch: int, repeats: int) -> dict:
    """ResNet-18 seconds per row: train step, no-grad (train mode), eval."""
    from torchvision.models import resnet18

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = resnet18(num_classes=1000).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    X = torch.randn(batch, 3, size, size, device=device)
    X = X.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16)

    def train():
        model.train()
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(X).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def forward(training: bool):
        model.train(training)
        with torch.no_grad(), autocast:
            model(X)

    return {
        "image_size": size,
        "batch": batch,
        "device": device,
        "train_s": _seconds_per_row(train, batch, repeats),
        "no_grad_s": _seconds_per_row(lambda: forward(True), batch, repeats),
        "eval_s": _seconds_per_row(lambda: forward(False), batch, repeats),
    }


def summary(result: dict) -> str:
    lines = ["| part | item | result | detail |", "|---|---|---|---|"]
    for row in result["checks"]:
        lines.append(f"| check | {row['check']} | {row['status']} | {row['detail']} |")
    speed = result["speed"]
    lines.append(
        f"| speed | `{speed['command']}` | exit {speed['returncode']} | "
        f"{speed['seconds']:.0f} s, table in {speed['result_file']} |"
    )
    for row in result["quality"]:
        lines.append(
            f"| quality | {row['method']}, sym 50 %, {row['epochs']} epochs | "
            f"{row['test_accuracy']:.4f} | {row['seconds']:.0f} s |"
        )
    costs = result["row_costs"]
    lines.append(
        f"| row costs | ResNet-18 {costs['image_size']}px, batch {costs['batch']} | "
        f"train {costs['train_s'] * 1e3:.3f} ms/row | no-grad "
        f"{costs['no_grad_s'] * 1e3:.3f}, eval {costs['eval_s'] * 1e3:.3f} ms/row |"
    )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, on the CPU")
    parser.add_argument("--epochs", type=int, default=6, help="quality epochs")
    parser.add_argument("--warmup", type=int, default=2, help="quality warm-up")
    parser.add_argument("--speed-epochs", type=int, default=2)
    args = parser.parse_args(argv)
    n_train, n_test = (256, 128) if args.smoke else (50000, 10000)
    if args.smoke:
        args.epochs, args.warmup, args.speed_epochs = 2, 1, 1
    X, y, X_test, y_test = load_cifar(n_train, n_test)
    start = time.perf_counter()
    result = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "smoke": args.smoke,
        "checks": run_checks(X[:2048], y[:2048]),
        "speed": run_speed(min(n_train, 50000), args.speed_epochs),
        "quality": run_quality(X, y, X_test, y_test, args.epochs, args.warmup),
        "row_costs": run_row_costs(*((64, 4, 2) if args.smoke else (224, 256, 20))),
    }
    result["seconds"] = time.perf_counter() - start
    name = "gpu_check_smoke.json" if args.smoke else "gpu_check.json"
    write_json(RESULTS / name, result)
    print(summary(result))
    print(f"total {result['seconds']:.0f} s; wrote {RESULTS / name}")
    return result


if __name__ == "__main__":
    main()
