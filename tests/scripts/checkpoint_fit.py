"""A fit that kills itself, for ``tests/test_checkpoint.py``.

Run as ``python checkpoint_fit.py CHECKPOINT_DIR EPOCH``: fits the tiny noisy
digits of :func:`data` with :data:`PARAMS` and ``checkpoint_dir``, and sends
itself SIGKILL in the middle of epoch ``EPOCH + 1``, after the checkpoint of
epoch ``EPOCH`` was written: no clean-up, no ``finally``, as a preempted
machine or the out-of-memory killer would.
"""

import os
import signal
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from sklearn_dividemix import DivideMixClassifier

# warm-up ends after epoch 2 (a checkpoint then), MixMatch from epoch 3
PARAMS = dict(max_epochs=5, warmup_epochs=2, batch_size=32, random_state=0)


def data(n_samples=400, noise=0.3):
    """The first digits scaled to [0, 1], a share of their labels shifted."""
    X, y = load_digits(return_X_y=True)
    X, y = (X[:n_samples] / 16).astype(np.float32), y[:n_samples].copy()
    flipped = np.random.RandomState(0).rand(n_samples) < noise
    y[flipped] = (y[flipped] + 1) % 10
    return X, y


class KillAt(Callback):
    """SIGKILL at the second training step of epoch ``epoch + 1``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def initialize(self):
        self.steps_ = 0
        return self

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == self.epoch + 1:
            self.steps_ += 1
            if self.steps_ == 2:
                os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    torch.set_num_threads(1)
    X, y = data()
    DivideMixClassifier(
        **PARAMS, checkpoint_dir=sys.argv[1], callbacks=[KillAt(int(sys.argv[2]))]
    ).fit(X, y)
    sys.exit("the fit was not killed")
