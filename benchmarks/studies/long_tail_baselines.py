"""The long-tail study's baselines: plain cross-entropy, with and without
class-balanced sampling.

Both are the quality benchmark's skorch net (:func:`make_cross_entropy_net`:
the default MLP, SGD with momentum 0.9 and weight decay 5e-4, the learning
rate cut by ``lr_decay`` halfway, a trailing batch of one dropped) trained on
the noisy labels with the settings the study gives DivideMix: the estimator's
own defaults for the built-in module (``lr='auto'``, ``batch_size``,
``lr_decay``), the same epochs, the same unscaled inputs
(``normalize=False``) and the same augmentation, Gaussian jitter of 10 % of
each pixel's standard deviation (what ``augment='auto'`` resolves to for
feature vectors).

* ``cross_entropy``: a fresh permutation of the training set every epoch.
* ``cross_entropy_balanced``: every epoch draws as many samples as the set
  has, with replacement, each with probability inversely proportional to the
  size of its *given* class (what ``WeightedRandomSampler`` does), so that
  every class fills about the same share of each mini-batch.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sklearn_dividemix import DivideMixClassifier
from sklearn_dividemix._setup import resolve_lr

from ..quality_methods import (
    Budget,
    TensorBatches,
    make_cross_entropy_net,
)

__all__ = ["BASELINES", "BalancedBatches", "dividemix_budget", "fit_baseline"]

# baseline name -> whether its mini-batches are drawn class-balanced
BASELINES = {"cross_entropy": False, "cross_entropy_balanced": True}


class BalancedBatches(TensorBatches):
    """Training mini-batches drawn class-balanced, for skorch's ``iterator_train``.

    Each epoch draws ``len(dataset)`` indices with replacement, index ``i``
    with probability proportional to ``1 / count(y[i])``, from the global
    torch generator (seeded by the caller); the batches and their number are
    those of :class:`TensorBatches` (a trailing batch of one dropped).
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, **_) -> None:
        super().__init__(dataset, batch_size, shuffle=True)
        counts = torch.bincount(self.y.long())
        self.weights = 1.0 / counts[self.y.long()].double()

    def _batches(self) -> list[torch.Tensor]:
        index = torch.multinomial(self.weights, len(self.weights), replacement=True)
        batches = list(index.split(self.batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()
        return batches


def dividemix_budget(epochs: int) -> Budget:
    """The budget of the study's DivideMix fits, read from the estimator's
    defaults so that a change of default moves the baselines with it."""
    params = DivideMixClassifier().get_params()
    return Budget(
        max_epochs=epochs,
        batch_size=params["batch_size"],
        # the study's DivideMix runs use the built-in MLP (module=None)
        lr=resolve_lr(params["lr"], None),
        lr_decay=params["lr_decay"],
    )


def fit_baseline(
    method: str, X: np.ndarray, y: np.ndarray, *, epochs: int, seed: int
) -> NeuralNetClassifier:
    """Fit one baseline on the noisy labels.

    Parameters
    ----------
    method : {'cross_entropy', 'cross_entropy_balanced'}
        Plain shuffling or class-balanced sampling (:data:`BASELINES`).
    X : ndarray of shape (n_samples, n_features)
        Training rows, float32, as DivideMix gets them.
    y : ndarray of shape (n_samples,)
        The given (noisy) labels, 0 to n_classes - 1.
    epochs : int
        Training epochs (DivideMix's ``max_epochs``).
    seed : int
        Seeds the global torch generator: initial weights, shuffling or
        sampling, and the jitter are drawn from it.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        The fitted net.
    """
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; one of {list(BASELINES)}")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    net = make_cross_entropy_net(X, int(y.max()) + 1, dividemix_budget(epochs))
    if BASELINES[method]:
        net.set_params(iterator_train=BalancedBatches)
    torch.manual_seed(seed)
    return net.fit(X, y)
