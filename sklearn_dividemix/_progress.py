"""What a fit prints: one line per epoch, a progress bar, the final division.

Kept apart from the epoch loop: the loop calls a reporter and never prints.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["EpochReporter"]

_COLUMNS = (
    "epoch",
    "phase",
    "loss_net1",
    "loss_net2",
    "labeled_net1",
    "labeled_net2",
    "dur",
)


def _end_fit_line(clean_mask: np.ndarray, verdict) -> str:
    share = float(np.mean(clean_mask)) if len(clean_mask) else 0.0
    nets = ", ".join(
        f"net{i} {1 - net.noise_rate:.1%}" for i, net in enumerate(verdict.nets, 1)
    )
    # The reasons are the UntrustedFitWarning's to give, once: printed here
    # as well, a verbose fit showed them twice.
    state = (
        "trusted"
        if verdict.trusted
        else "NOT trusted (see the UntrustedFitWarning and fit_verdict_)"
    )
    return (
        f"final division: clean_mask_ keeps {share:.1%} of the labels "
        f"(each net's division: {nets}); {state}"
    )


class EpochReporter:
    """Prints one line per epoch (``verbose >= 1``) and a bar (``verbose >= 2``)."""

    def __init__(self, verbose: int, stream=None) -> None:
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self._bar = None
        self._header = False

    def resumed(self, path, epoch: int, max_epochs: int) -> None:
        """Say that the fit continues from a checkpoint (``verbose >= 1``)."""
        if self.verbose >= 1:
            print(
                f"resuming from checkpoint {path} after epoch {epoch} of {max_epochs}",
                file=self.stream,
                flush=True,
            )

    def start_epoch(self, n_steps: int, description: str) -> None:
        if self.verbose >= 2:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=n_steps, desc=description, leave=False)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        """Close the progress bar of an epoch that did not finish."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def end_fit(self, clean_mask: np.ndarray, verdict) -> None:
        """One closing line: the final mask and whether it can be trusted.

        The epoch lines show each net's *training* division (the peer's);
        this line shows the final one, behind ``clean_mask_``, so that the
        printed table and the mask tell the same story. Why a fit is not
        trusted is left to the warning, so that it is said once.
        """
        if self.verbose >= 1:
            print(_end_fit_line(clean_mask, verdict), file=self.stream, flush=True)

    def end_epoch(self, row: dict, n_samples: int) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose < 1:
            return
        if not self._header:  # epoch 1, or the first after a resume
            self._header = True
            header = "{:>5}  {:<8}  {:>9}  {:>9}  {:>12}  {:>12}  {:>6}"
            print(header.format(*_COLUMNS), file=self.stream)
        line = "{:>5}  {:<8}  {:>9.4f}  {:>9.4f}  {:>12.1%}  {:>12.1%}  {:>6.2f}"
        print(
            line.format(
                row["epoch"],
                row["phase"],
                row["loss_net1"],
                row["loss_net2"],
                row["labeled_net1"] / n_samples,
                row["labeled_net2"] / n_samples,
                row["dur"],
            ),
            file=self.stream,
            flush=True,
        )
