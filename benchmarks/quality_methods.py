"""The four methods of the quality benchmark, built from one shared budget.

Every method gets the same module factory, the same augmentation (applied to
training batches only), the same optimizer (SGD, momentum 0.9, weight decay
5e-4), learning rate and step decay halfway, the same number of epochs and the
same batch size:

* ``dividemix``: :class:`~sklearn_dividemix.DivideMixClassifier`.
* ``cross_entropy``: a skorch ``NeuralNetClassifier`` on the noisy labels.
* ``cleanlearning``: cleanlab's ``CleanLearning`` around that same skorch net
  (K-fold cross-validated probabilities, flagged rows removed, refit).
* ``oracle``: the skorch net on the true labels, the ceiling.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler
from torch import nn

from sklearn_dividemix import (
    DivideMixClassifier,
    UnreliableEstimateWarning,
    estimated_clean_accuracy,
)
from sklearn_dividemix._augment import resolve_augment

from ._common import module_spec

__all__ = [
    "AugmentedModule",
    "BASELINE_VIEWS",
    "Budget",
    "METHODS",
    "dividemix_views",
    "fit_method",
]

METHODS = ("dividemix", "cross_entropy", "cleanlearning", "oracle")
# Part of a baseline cell's key since the baselines got DivideMix's own views
# (see dividemix_views); runs without it had jitter of 0.1 on every input.
BASELINE_VIEWS = "as dividemix"


@dataclass
class Budget:
    """What every method of a cell shares: epochs, batch, optimizer, lr."""

    max_epochs: int
    batch_size: int = 64
    lr: float = 0.1
    lr_decay: float = 0.1
    cv_n_folds: int = 3
    # DivideMixClassifier parameters beyond the shared ones (empty = defaults,
    # apart from the shared budget above).
    dividemix: dict = field(default_factory=dict)


class AugmentedModule(nn.Module):
    """Apply a batch augmentation in train mode, then the wrapped module.

    Gives a plain skorch net the same training views as DivideMix (the same
    augmentation object, drawn from the global torch generator), and none at
    prediction time.
    """

    def __init__(self, inner: type[nn.Module], augment=None, **inner_kwargs) -> None:
        super().__init__()
        self.inner = inner(**inner_kwargs)
        self.augment = augment

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.training and self.augment is not None:
            X = self.augment(X)
        return self.inner(X)


class TensorBatches:
    """Mini-batches sliced from whole tensors, for skorch's ``iterator_*``.

    Numerically what skorch's default ``DataLoader`` does (a fresh permutation
    per epoch when shuffling), without its per-sample indexing and collation,
    which would otherwise dominate the baselines' wall time on small modules.
    Like DivideMix, a trailing training batch of one sample is dropped
    (BatchNorm cannot normalise it).
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, **_) -> None:
        self.X = torch.as_tensor(np.asarray(dataset.X))
        y = dataset.y
        self.y = torch.zeros(len(self.X)) if y is None else torch.as_tensor(y)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def _batches(self) -> list[torch.Tensor]:
        n = len(self.X)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        batches = list(order.split(self.batch_size))
        if self.shuffle and len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()
        return batches

    def __iter__(self):
        for index in self._batches():
            yield self.X[index], self.y[index]

    def __len__(self) -> int:
        n_batches = -(-len(self.X) // self.batch_size)
        ends_with_one = len(self.X) % self.batch_size == 1 and n_batches > 1
        return n_batches - int(self.shuffle and ends_with_one)


def dividemix_views(X: np.ndarray):
    """The augmentation DivideMix's ``augment='auto'`` makes for ``X``.

    Crops (and flips, for three channels) for images; for feature rows,
    Gaussian jitter of 10 % of each feature's sample standard deviation
    (``ddof=1``, as the estimator's running moments compute it). Until 0.3
    the baselines passed the data where the sample shape belongs, so every
    input, images included, got jitter of 0.1 instead: their runs are keyed
    apart (``BASELINE_VIEWS``).
    """
    if X.ndim == 4:
        return resolve_augment("auto", X.shape[1:])
    std = torch.from_numpy(X.astype(np.float64).std(axis=0, ddof=1))
    return resolve_augment("auto", X.shape[1:], std.float())


def make_cross_entropy_net(
    X: np.ndarray, n_classes: int, budget: Budget
) -> NeuralNetClassifier:
    """The plain skorch baseline with the shared module, views and schedule."""
    inner, inner_kwargs = module_spec(X, n_classes)
    augment = dividemix_views(X)
    milestone = budget.max_epochs // 2
    return NeuralNetClassifier(
        AugmentedModule,
        module__inner=inner,
        module__augment=augment,
        **{f"module__{k}": v for k, v in inner_kwargs.items()},
        # skorch's default NLLLoss expects log-probabilities; these are logits
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        optimizer__weight_decay=5e-4,
        lr=budget.lr,
        max_epochs=budget.max_epochs,
        batch_size=budget.batch_size,
        iterator_train=TensorBatches,
        iterator_train__shuffle=True,
        iterator_valid=TensorBatches,
        callbacks=[
            (
                "lr_decay",
                LRScheduler(
                    policy=torch.optim.lr_scheduler.MultiStepLR,
                    milestones=[milestone] if milestone > 0 else [],
                    gamma=budget.lr_decay,
                ),
            )
        ],
        train_split=None,
        verbose=0,
        device="cpu",
    )


class DivisionTrace(Callback):
    """Each division of a fit against the true flips, through ``on_division``.

    An observer: it reads the divisions the fit makes and changes nothing.
    Per division: the epoch, the stage, the share flagged, its precision and
    recall as a detector of wrong labels, and the loss ranking's ROC AUC.
    The share flagged is read at the threshold in force at that division
    (``p_threshold='auto'`` resolves when warm-up ends), so the rows are
    made after the fit, by :meth:`read`.
    """

    def __init__(self, is_flipped=None) -> None:
        self.is_flipped = is_flipped

    def initialize(self):
        self.seen = []
        return self

    def on_division(self, net, *, epoch, stage, losses, division, used, sample):
        flipped = np.asarray(self.is_flipped, dtype=bool)
        if sample is not None:
            # a division over the epoch's sample (samples_per_epoch)
            flipped = flipped[sample]
        both = 0 < flipped.sum() < len(flipped)
        auc = float(roc_auc_score(flipped, losses)) if both else None
        self.seen.append((epoch, stage, flipped, division, auc))

    def read(self, clf) -> list[dict]:
        """The rows, each at the threshold of its epoch's history row (the
        fit's ``p_threshold_`` for the final division)."""
        history = list(clf.history_)
        rows = []
        for epoch, stage, flipped, division, auc in self.seen:
            threshold = clf.p_threshold_
            if stage != "final":
                # warm-up checks: the threshold before 'auto' resolved
                default = 0.5 if clf.p_threshold == "auto" else clf.p_threshold
                threshold = history[epoch].get("p_threshold", default)
            flagged = division.clean_proba <= threshold
            rows.append(
                {
                    "epoch": epoch,
                    "stage": stage,
                    "flagged": float(flagged.mean()),
                    "precision": (
                        float(flipped[flagged].mean()) if flagged.any() else None
                    ),
                    "recall": float(flagged[flipped].mean()) if flipped.any() else None,
                    "auc": auc,
                    "separation": float(division.separation),
                }
            )
        return rows


def _fit_dividemix(data, y_noisy, budget: Budget, seed: int, is_flipped) -> dict:
    params = dict(
        max_epochs=budget.max_epochs,
        batch_size=budget.batch_size,
        lr=budget.lr,
        lr_decay=budget.lr_decay,
        device="cpu",
        random_state=seed,
    )
    params.update(budget.dividemix)
    trace = DivisionTrace(is_flipped)
    clf = DivideMixClassifier(**params, callbacks=[("trace", trace)])
    clf.fit(data.X_train, y_noisy)
    history = clf.history_
    return {
        "model": clf,
        "noise_score": 1.0 - clf.clean_proba_,
        "flagged": ~clf.clean_mask_,
        "extra": {
            "params": {k: v for k, v in params.items() if k != "device"},
            "labeled_fraction_last": float(history[-1, "labeled_net1"] / len(y_noisy)),
            "notes": sorted({n for row in history for n in row.get("notes", [])}),
            # what the automatic choices came to
            "warmup_epochs_": clf.warmup_epochs_,
            "lambda_u_": clf.lambda_u_,
            "alpha_": clf.alpha_,
            "balance_labeled_": clf.balance_labeled_,
            "p_threshold_": clf.p_threshold_,
            "loss_window_": clf.loss_window_,
            "noise_floor_": clf.noise_floor_,
            # each net's share flagged by the first division after warm-up,
            # from which the 'auto' choices were made
            "first_noise_rates": [
                net["first_noise_rate"] for net in clf.fit_verdict_["nets"]
            ],
            # net1's divisions against the truth, epoch by epoch
            "divisions_net1": dict(clf.net1_.callbacks_)["trace"].read(clf),
            "estimate": estimate_on_noisy_test(clf, data, y_noisy, seed),
        },
    }


def estimate_on_noisy_test(clf, data, y_noisy: np.ndarray, seed: int) -> dict:
    """``estimated_clean_accuracy`` from test labels noised as the training's.

    The test labels get the training labels' realised class-conditional noise
    (each true class relabelled with the shares its training samples were),
    the assumption the estimate rests on; returned beside the accuracy on
    those noisy labels, so the report can set both against the truth.
    """
    k = data.n_classes
    mass = np.zeros((k, k))
    np.add.at(mass, (np.asarray(data.y_train), np.asarray(y_noisy)), 1.0)
    empty = mass.sum(axis=1) == 0
    mass[empty] = np.eye(k)[empty]
    cumulative = np.cumsum(mass / mass.sum(axis=1, keepdims=True), axis=1)
    # a stream of its own: the fit's and the noise's stay as they were
    draws = np.random.RandomState(seed + 7919).random_sample(len(data.y_test))
    y_test_noisy = np.minimum(
        (draws[:, None] > cumulative[data.y_test]).sum(axis=1), k - 1
    )
    with warnings.catch_warnings(record=True) as caught:
        # recorded, not shown: the report sets the warning against the error
        warnings.simplefilter("always")
        estimate, std = estimated_clean_accuracy(
            clf, data.X_test, y_test_noisy, return_std=True
        )
    return {
        "estimated_clean_accuracy": float(estimate),
        "estimate_std": float(std),
        "says_unreliable": any(
            issubclass(w.category, UnreliableEstimateWarning) for w in caught
        ),
        "noisy_test_accuracy": float(np.mean(clf.predict(data.X_test) == y_test_noisy)),
    }


def _fit_cleanlearning(data, y_noisy, budget: Budget, seed: int) -> dict:
    from cleanlab.classification import CleanLearning

    net = make_cross_entropy_net(data.X_train, data.n_classes, budget)
    cl = CleanLearning(net, seed=seed, cv_n_folds=budget.cv_n_folds, verbose=False)
    cl.fit(data.X_train, y_noisy)
    issues = cl.get_label_issues()
    flagged = issues["is_label_issue"].to_numpy()
    return {
        "model": cl,
        # label_quality is high for labels cleanlab trusts
        "noise_score": 1.0 - issues["label_quality"].to_numpy(),
        "flagged": flagged,
        "extra": {"cv_n_folds": budget.cv_n_folds, "removed": int(flagged.sum())},
    }


def fit_method(
    method: str, data, y_noisy: np.ndarray, budget: Budget, seed: int, is_flipped=None
):
    """Fit one method on one cell; returns the model and its noise flags.

    The global torch generator is seeded here: skorch draws its initial
    weights, shuffling and (through :class:`AugmentedModule`) its views from
    it. DivideMixClassifier forks it and seeds itself from ``random_state``.
    """
    torch.manual_seed(seed)
    if method == "dividemix":
        return _fit_dividemix(data, y_noisy, budget, seed, is_flipped)
    if method == "cleanlearning":
        return _fit_cleanlearning(data, y_noisy, budget, seed)
    labels = {"cross_entropy": y_noisy, "oracle": data.y_train}[method]
    net = make_cross_entropy_net(data.X_train, data.n_classes, budget)
    net.fit(data.X_train, labels)
    return {"model": net, "noise_score": None, "flagged": None, "extra": {}}
