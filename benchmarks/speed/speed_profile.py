"""Where an epoch's time goes: an exclusive-time breakdown of a real fit.

A skorch callback, given to ``DivideMixClassifier(callbacks=...)`` and so to
both nets, splits each epoch at the events the estimator notifies
(``on_epoch_begin``, ``on_batch_begin``, ``on_grad_computed``,
``on_batch_end``, ``on_epoch_end``); forward hooks on each net's module time
its forward passes, and a hook on the training logits marks where the
backward pass reaches the module. Per phase, the seconds of each part,
exclusive of the parts nested in it:

* ``module forward``: every forward pass of the modules (training steps,
  the MixMatch targets' no-grad passes, the division's eval passes);
* ``backward``: from the gradient of the logits to ``on_grad_computed``;
* ``optimizer step + skorch``: from ``on_grad_computed`` to ``on_batch_end``;
* ``losses (rest of train step)``: the rest of a training step;
* ``batch preparation``: between steps (gather, augmentation and, in
  MixMatch, the targets' and mixup's work around their forward passes);
* ``division (GMM, bookkeeping)``: from the start of a MixMatch epoch to its
  first step, its eval passes' forwards aside (the first batch's
  preparation is counted here too);
* ``loop (rest)``: the rest of the epoch as ``history_`` times it.

``--operators N`` also runs ``torch.profiler`` through every epoch and adds,
per phase, the ``N`` operators of largest self time (``key_averages``); the
part timings then include the profiler's overhead.

Until issue 10 this script wrapped private functions of the package in
timers. It now uses skorch's callback events and torch hooks only, so the
parts are cut at those events: the loss's own backward ops count as
``losses`` (they were ``backward``), and the GMM, the division's bookkeeping
and the no-grad passes' softmax are no longer told apart from their
neighbours (they were about 1 % of an epoch)::

    python -m benchmarks.speed.speed_profile --dataset mnist --n 10000 --threads 2
    python -m benchmarks.speed.speed_profile --quick --operators 10
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import defaultdict
from pathlib import Path

import torch
from skorch.callbacks import Callback

from sklearn_dividemix import UntrustedFitWarning

from .._common import RESULTS_DIR, command_line, machine_info, write_json
from .speed import dividemix_estimator, load_data

# region -> part, per phase; a region runs from one event to the next
REGIONS = {
    "start": {"warmup": "batch preparation", "mixmatch": "division (GMM, bookkeeping)"},
    "prepare": "batch preparation",
    "step": "losses (rest of train step)",
    "backward": "backward",
    "optimizer": "optimizer step + skorch",
    "after": "loop (rest)",
}


class PartTimer(Callback):
    """Exclusive seconds per part of each epoch, from skorch events and hooks.

    skorch gives each net a deep copy of the callbacks; ``__deepcopy__``
    returns this object so that one timer follows both nets' events.
    """

    def __init__(self, operators: int = 0) -> None:
        self.operators = operators
        self.seconds = defaultdict(lambda: defaultdict(float))
        # per epoch: first to last event, and the profiler's own time
        self.spans, self.overheads, self.ops = [], [], defaultdict(dict)
        self._handles, self._ended = [], 0
        self._epoch = self._mark = self._profiler = None

    def __deepcopy__(self, memo):
        return self

    # -- bookkeeping of regions ------------------------------------------------

    def _close(self, region: str, now: float | None = None) -> None:
        """Charge the time since the last event, forwards aside, to ``region``."""
        now = time.perf_counter() if now is None else now
        self._epoch[region] += now - self._mark - self._forward
        self._mark, self._forward = now, 0.0

    def _forward_pre(self, module, inputs) -> None:
        self._forward_start = time.perf_counter()

    def _forward_post(self, module, inputs, output) -> None:
        elapsed = time.perf_counter() - self._forward_start
        if self._epoch is None:  # a pass outside the epochs (final division)
            return
        self._forward += elapsed
        self._epoch["module forward"] += elapsed
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(self._backward_reaches_module)

    def _backward_reaches_module(self, grad) -> None:
        self._close("step")

    # -- skorch events ---------------------------------------------------------

    def on_train_begin(self, net, **kwargs):
        module = net.module_
        self._handles += [
            module.register_forward_pre_hook(self._forward_pre),
            module.register_forward_hook(self._forward_post),
        ]

    def on_train_end(self, net, **kwargs):
        while self._handles:
            self._handles.pop().remove()

    def on_epoch_begin(self, net, **kwargs):
        if self._epoch is not None:  # the second net's
            return
        start = time.perf_counter()
        if self.operators:
            self._profiler = torch.profiler.profile(activities=_activities())
            self._profiler.start()
        self._epoch, self._forward = defaultdict(float), 0.0
        self._overhead = time.perf_counter() - start
        self._begin = self._mark = time.perf_counter()
        self._first_step = True

    def on_batch_begin(self, net, **kwargs):
        self._close("start" if self._first_step else "prepare")
        self._first_step = False

    def on_grad_computed(self, net, **kwargs):
        self._close("backward")

    def on_batch_end(self, net, **kwargs):
        self._close("optimizer")

    def on_epoch_end(self, net, **kwargs):
        self._ended += 1
        if self._ended % 2:  # net 1's; the epoch ends with net 2's
            return
        end = time.perf_counter()
        self._close("after", end)
        phase = net.history[-1]["phase"]
        for region, seconds in self._epoch.items():
            part = REGIONS.get(region, region)
            part = part[phase] if isinstance(part, dict) else part
            self.seconds[phase][part] += seconds
        self.spans.append(end - self._begin)
        if self._profiler is not None:
            self._profiler.stop()
            _add_operators(self.ops[phase], self._profiler.key_averages())
            self._profiler = None
        self.overheads.append(self._overhead + time.perf_counter() - end)
        self._epoch = None


def _activities() -> list:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return activities


def _add_operators(totals: dict, averages) -> None:
    """Add one epoch's ``key_averages`` to a phase's totals (microseconds)."""
    for event in averages:
        row = totals.setdefault(event.key, {"calls": 0, "self_cpu_us": 0.0})
        row["calls"] += event.count
        row["self_cpu_us"] += event.self_cpu_time_total
        device = getattr(event, "self_device_time_total", 0.0)
        row["self_device_us"] = row.get("self_device_us", 0.0) + device


def profile(args) -> dict:
    """Fit once with the timer; return the breakdown per phase."""
    X, y = load_data(args.dataset, args.n)
    timer = PartTimer(operators=args.operators)
    clf = dividemix_estimator(args, X, y, [timer])
    with warnings.catch_warnings():
        # a profile times the fit; whether its result is any good is not asked
        warnings.simplefilter("ignore", UntrustedFitWarning)
        clf.fit(X, y)
    return _summary(timer, clf)


def _summary(timer: PartTimer, clf) -> dict:
    """Seconds per epoch and share of each part; the loop's rest from history."""
    rows = [row for row in clf.history_ if "dur" in row]
    out = {}
    for phase in ("warmup", "mixmatch"):
        epochs = zip(rows, timer.spans, timer.overheads, strict=True)
        epochs = [
            (r["dur"], span, extra) for r, span, extra in epochs if r["phase"] == phase
        ]
        if not epochs:
            continue
        parts = dict(timer.seconds[phase])
        # history_'s epoch time beyond the first to the last event, the
        # profiler's own time aside
        rest = sum(dur - span - extra for dur, span, extra in epochs)
        parts["loop (rest)"] = parts.get("loop (rest)", 0.0) + rest
        total, n = sum(parts.values()), len(epochs)
        out[phase] = {
            "epochs": n,
            "seconds_per_epoch": total / n,
            "parts": {
                part: {"seconds_per_epoch": s / n, "share": s / total}
                for part, s in sorted(parts.items(), key=lambda kv: -kv[1])
            },
        }
        if timer.operators:
            out[phase]["operators"] = _top_operators(
                timer.ops[phase], n, timer.operators
            )
    return out


def _top_operators(totals: dict, epochs: int, count: int) -> list[dict]:
    ranked = sorted(totals.items(), key=lambda kv: -kv[1]["self_cpu_us"])[:count]
    return [
        {
            "operator": name,
            "calls_per_epoch": row["calls"] / epochs,
            "self_cpu_s_per_epoch": row["self_cpu_us"] / 1e6 / epochs,
            "self_device_s_per_epoch": row["self_device_us"] / 1e6 / epochs,
        }
        for name, row in ranked
    ]


def _print(result: dict) -> None:
    for phase, summary in result["phases"].items():
        print(f"{phase}: {summary['seconds_per_epoch']:.2f} s per epoch")
        for part, value in summary["parts"].items():
            seconds, share = value["seconds_per_epoch"], value["share"]
            print(f"  {part:<30} {seconds:8.3f} s {share:6.1%}")
        for row in summary.get("operators", []):
            print(
                f"    {row['operator'][:44]:<44} {row['self_cpu_s_per_epoch']:8.3f} s "
                f"self CPU, {row['calls_per_epoch']:8.0f} calls"
            )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--module", default="cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--mixmatch-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--operators", type=int, default=0, help="top N operators")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic fit")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.n, args.batch_size = "synthetic", 192, 32
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "command": command_line("benchmarks.speed.speed_profile", argv),
        "method": "skorch callback events and module hooks",
        "torch_threads": torch.get_num_threads(),
        "machine": machine_info(),
        "phases": profile(args),
    }
    name = f"{args.dataset}_{args.n}_{args.module}_t{torch.get_num_threads()}"
    out = write_json(args.out or RESULTS_DIR / f"speed_profile_{name}.json", result)
    _print(result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
