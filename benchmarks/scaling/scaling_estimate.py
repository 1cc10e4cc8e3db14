"""Time and memory of a data-parallel fit, from per-row costs and pass counts.

A DivideMix fit is a fixed number of network passes, whatever the hardware:

* a warm-up epoch trains each net once on every sample (``n`` training rows
  per net);
* every later epoch starts with a division pass, one eval-mode forward of
  each net over every sample (``2 n`` eval rows);
* then each net trains one MixMatch step per labeled mini-batch of ``B``
  samples (``f n / B`` steps, ``f`` the labeled share): two views of ``B``
  labeled and ``B`` unlabeled samples, one no-grad forward of its own over
  the four views (``4 B`` rows) and one of the peer over the two unlabeled
  views (``2 B``), six no-grad rows per labeled sample, and one forward and
  backward of the four mixed views (``4 B`` training rows).

Multiplied by seconds per row (training, no-grad and eval) on one device and
divided among ``k`` data-parallel processes, this gives the fit's time; the
data side is the number of samples decoded per epoch. Per-row costs come from
this machine's CPU measurement (``--costs cpu``: the ResNet-18 run of the
speed benchmark, scaled by the pixel ratio) or from the assumed GPU costs
below (``--costs gpu``), which are *not measured here* (no GPU); with
``--costs measured``, those ``benchmarks.scaling.gpu_check`` measured on a GPU.

Usage (from the repository root)::

    python -m benchmarks.scaling.scaling_estimate     # 1M 224x224 images, 8 GPUs
    python -m benchmarks.scaling.scaling_estimate --gpus 16 --epochs 100
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks._common import RESULTS_DIR, write_json

CPU_SPEED_JSON = RESULTS_DIR / "speed_cifar10_1024_resnet18_b64.json"


@dataclass(frozen=True)
class RowCosts:
    """Seconds per row of one device: training, no-grad forward, eval forward."""

    train_s: float
    no_grad_s: float
    eval_s: float
    source: str


# ResNet-18, 224x224, bf16 autocast, channels-last on one A100-class GPU.
# ASSUMED, not measured here: NVIDIA's published ResNet-50 mixed-precision
# training throughput on an A100 (about 2,700 images/s) scaled by the FLOPs
# ratio of ResNet-18 to ResNet-50 (1.8 / 4.1 GFLOPs), and a forward pass
# taken as a third of a training step.
ASSUMED_GPU = RowCosts(
    train_s=1 / 6000, no_grad_s=1 / 18000, eval_s=1 / 18000, source="assumed A100"
)


def cpu_costs(path: Path = CPU_SPEED_JSON, pixel_ratio: float = 49.0) -> RowCosts:
    """This machine's measured ResNet-18 per-row costs, scaled to 224x224.

    The speed benchmark times warm-up epochs (training rows only) and
    MixMatch epochs (training, no-grad and eval rows); the no-grad cost is
    what a MixMatch epoch takes beyond its training rows. ResNet-18's work
    grows with the number of pixels: 224x224 is 49 times 32x32.
    """
    measured = json.loads(path.read_text())["dividemix"]
    warm = measured["warmup"]["epochs"][1]
    train = warm["actual_s"] / warm["passes"]["fwd_bwd_rows"]
    mix = measured["mixmatch"]["epochs"][1]
    passes = mix["passes"]
    forward_rows = (
        passes["own_no_grad_rows"]
        + passes["peer_no_grad_rows"]
        + passes["division_rows"]
    )
    no_grad = (mix["actual_s"] - train * passes["fwd_bwd_rows"]) / forward_rows
    return RowCosts(
        train * pixel_ratio,
        no_grad * pixel_ratio,
        no_grad * pixel_ratio,
        source=f"{path.name} x {pixel_ratio:g} pixels",
    )


def measured_costs(path: Path = RESULTS_DIR / "gpu_check.json") -> RowCosts:
    """Per-row costs that ``benchmarks.scaling.gpu_check`` measured on a GPU."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m benchmarks.scaling.gpu_check` on a GPU "
            "machine first (it has not run here: no GPU)."
        )
    costs = json.loads(path.read_text())["row_costs"]
    return RowCosts(
        costs["train_s"],
        costs["no_grad_s"],
        costs["eval_s"],
        source=f"gpu_check on {costs['device']}, {costs['image_size']}px",
    )


def pass_counts(
    n: int, epochs: int, warmup_epochs: int, labeled_share: float
) -> dict[str, float]:
    """Rows of each kind over a whole fit, both nets together."""
    mixmatch_epochs = epochs - warmup_epochs
    labeled = labeled_share * n
    return {
        "train_rows": 2 * n * warmup_epochs + mixmatch_epochs * 2 * 4 * labeled,
        "no_grad_rows": mixmatch_epochs * 2 * 6 * labeled,
        "eval_rows": (mixmatch_epochs + 1) * 2 * n,  # +1: the final division
        "decoded_samples": n * warmup_epochs * 2
        + (mixmatch_epochs + 1) * n
        + mixmatch_epochs * 2 * 2 * labeled,
    }


def fit_hours(counts: dict, costs: RowCosts, devices: int, efficiency: float) -> float:
    """Compute time of the fit on ``devices`` processes, in hours."""
    seconds = (
        counts["train_rows"] * costs.train_s
        + counts["no_grad_rows"] * costs.no_grad_s
        + counts["eval_rows"] * costs.eval_s
    )
    return seconds / devices / efficiency / 3600


def memory_gib(
    n: int, n_classes: int, params: float, batch: int, activation_mib: float
) -> dict[str, float]:
    """Per-process memory: weights and optimizer, activations, per-sample state."""
    gib = 2**30
    per_net = params * 4 * 3  # fp32 weights, gradients, SGD momentum
    return {
        "nets_gib": 2 * per_net / gib,
        # the four mixed views of a step are held for the backward pass
        "activations_gib": 4 * batch * activation_mib * 2**20 / gib,
        # train_proba_ (float32, every sample and class) on the host; each
        # process also holds its block of it on the device in the final pass
        "train_proba_host_gib": n * n_classes * 4 / gib,
    }


def estimate(args) -> dict:
    costs = {"cpu": cpu_costs, "measured": measured_costs}.get(
        args.costs, lambda: ASSUMED_GPU
    )()
    counts = pass_counts(args.n, args.epochs, args.warmup_epochs, args.labeled_share)
    hours = fit_hours(counts, costs, args.gpus, args.efficiency)
    decode_rate = args.decode_per_core * args.cores
    return {
        "n": args.n,
        "devices": args.gpus,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "labeled_share": args.labeled_share,
        "costs": asdict(costs),
        "pass_counts": counts,
        "compute_hours": hours,
        "decode_hours": counts["decoded_samples"] / decode_rate / 3600,
        "memory": memory_gib(
            args.n, args.classes, 11.7e6, args.batch_per_gpu, args.activation_mib
        ),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--warmup-epochs", type=int, default=10)
    parser.add_argument("--labeled-share", type=float, default=0.6)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batch-per-gpu", type=int, default=64)
    parser.add_argument("--efficiency", type=float, default=0.8, help="scaling")
    parser.add_argument(
        "--activation-mib", type=float, default=20.0, help="per 224x224 row, bf16"
    )
    parser.add_argument("--cores", type=int, default=64, help="decoding CPU cores")
    parser.add_argument("--decode-per-core", type=float, default=400.0)
    parser.add_argument("--costs", choices=("gpu", "cpu", "measured"), default="gpu")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    result = estimate(args)
    print(f"{args.n:,} images, {args.gpus} processes, {args.epochs} epochs")
    print(f"per-row costs: {result['costs']}")
    for name, value in result["pass_counts"].items():
        print(f"  {name:>16}: {value:,.0f}")
    print(
        f"compute: {result['compute_hours']:.1f} h, decoding: "
        f"{result['decode_hours']:.1f} h on {args.cores} cores"
    )
    for name, value in result["memory"].items():
        print(f"  {name:>20}: {value:.2f} GiB")
    if args.output:
        write_json(args.output, result)
    return result


if __name__ == "__main__":
    main()
