"""Where an epoch's time goes: an exclusive-time breakdown of a real fit.

Wraps the functions of one fit's training loop in timers (a few microseconds
per call) and reports, per phase, the seconds spent in each part exclusive of
the parts nested in it: the module's forward passes and the backward pass
(the floor's work), augmentation, targets and mixup, the optimizer and
skorch's step machinery, the division's GMM and bookkeeping, and the rest
(the loop's own Python)::

    python benchmarks/speed_profile.py --dataset mnist --n 10000 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import RESULTS_DIR, dividemix_module, load_data  # noqa: E402

from sklearn_dividemix import DivideMixClassifier, _epochs, _net, _training  # noqa: E402

# (owner, attribute, part): the wrapped functions and what they count as.
PARTS = [
    (_epochs, "_epoch", "loop (rest)"),
    (_training, "_train_step", "optimizer step + skorch"),
    (_net.DivideMixNet, "train_step_single", "losses (rest of train step)"),
    (_net.DivideMixNet, "forward_proba", "no-grad passes (rest)"),
    (_training, "compute_divisions", "division bookkeeping"),
    (_training, "eval_pass", "division bookkeeping"),
    (_net.DivideMixNet, "eval_logits", "division bookkeeping"),
    (_training, "divide_losses", "GMM"),
    (_training.TrainingData, "view", "gather + augment"),
    (_training, "co_refine", "targets + mixup"),
    (_training, "co_guess", "targets + mixup"),
    (_training, "mixup", "targets + mixup"),
]


class _Timers:
    """Exclusive time per part: a nested timer's time is not its parent's.

    Times accumulate per epoch and go to the epoch's phase when it ends.
    """

    def __init__(self) -> None:
        self.epoch = defaultdict(float)
        self.seconds = defaultdict(lambda: defaultdict(float))
        self._stack: list[float] = []

    def add(self, part: str, elapsed: float, nested: float) -> None:
        self.epoch[part] += elapsed - nested
        if self._stack:
            self._stack[-1] += elapsed

    def wrap(self, func, part: str):
        def timed(*args, **kwargs):
            self._stack.append(0.0)
            start = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            finally:
                self.add(part, time.perf_counter() - start, self._stack.pop())
            if func.__name__ == "_epoch":
                for name, seconds in self.epoch.items():
                    self.seconds[result["phase"]][name] += seconds
                self.epoch.clear()
            return result

        return timed


def _module_timer(timers: _Timers, module: torch.nn.Module) -> None:
    """Count the module's forward passes as their own part."""
    starts = []

    def pre(mod, inputs):
        timers._stack.append(0.0)
        starts.append(time.perf_counter())

    def post(mod, inputs, output):
        elapsed = time.perf_counter() - starts.pop()
        timers.add("module forward", elapsed, timers._stack.pop())

    module.register_forward_pre_hook(pre)
    module.register_forward_hook(post)


def profile(args) -> dict:
    timers = _Timers()
    originals = []
    for owner, name, part in PARTS:
        func = getattr(owner, name)
        originals.append((owner, name, func))
        setattr(owner, name, timers.wrap(func, part))
    backward = torch.Tensor.backward
    torch.Tensor.backward = timers.wrap(backward, "backward")
    try:
        X, y = load_data(args.dataset, args.n)
        module, kwargs = dividemix_module(args.module, X, int(y.max()) + 1)

        clf = DivideMixClassifier(
            module,
            max_epochs=args.warmup_epochs + args.mixmatch_epochs,
            warmup_epochs=args.warmup_epochs,
            max_warmup_epochs=args.warmup_epochs,
            batch_size=args.batch_size,
            random_state=0,
            callbacks=[_HookInstaller(timers)],
            **{f"module__{k}": v for k, v in kwargs.items()},
        )
        clf.fit(X, y)
    finally:
        for owner, name, func in originals:
            setattr(owner, name, func)
        torch.Tensor.backward = backward
    return _summary(timers, clf)


class _HookInstaller(Callback):
    """A skorch callback that times each net's module forward passes."""

    def __init__(self, timers: _Timers) -> None:
        self.timers = timers

    def __deepcopy__(self, memo):
        return self

    def on_train_begin(self, net, **kwargs):
        _module_timer(self.timers, net.module_)


def _summary(timers: _Timers, clf) -> dict:
    epochs = {"warmup": 0, "mixmatch": 0}
    for row in clf.history_:
        epochs[row["phase"]] += 1
    out = {}
    for phase, parts in timers.seconds.items():
        if phase not in epochs:
            continue
        total = sum(parts.values())
        out[phase] = {
            "epochs": epochs[phase],
            "seconds_per_epoch": total / epochs[phase],
            "parts": {
                part: {"seconds_per_epoch": s / epochs[phase], "share": s / total}
                for part, s in sorted(parts.items(), key=lambda kv: -kv[1])
            },
        }
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--module", default="cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--mixmatch-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "command": "python benchmarks/speed_profile.py "
        + " ".join(argv or sys.argv[1:]),
        "torch_threads": torch.get_num_threads(),
        "phases": profile(args),
    }
    name = f"{args.dataset}_{args.n}_{args.module}_t{torch.get_num_threads()}"
    out = args.out or RESULTS_DIR / f"speed_profile_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for phase, summary in result["phases"].items():
        print(f"{phase}: {summary['seconds_per_epoch']:.2f} s per epoch")
        for part, value in summary["parts"].items():
            seconds, share = value["seconds_per_epoch"], value["share"]
            print(f"  {part:<30} {seconds:8.3f} s {share:6.1%}")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
