"""
====================================================
Model selection when the validation labels are noisy
====================================================

Cross-validation scores a model against the labels it has, and when the
training labels are noisy the validation folds cut from them are noisy too.
Under class-dependent noise, accuracy on those labels can rank models
differently from accuracy on the true labels. Here two
:class:`~sklearn.model_selection.GridSearchCV` searches over
``confidence_penalty`` run side by side, one scored by accuracy on the noisy
labels and one by :func:`~sklearn_dividemix.estimated_clean_accuracy`, and
each choice is then measured on clean test labels.
"""

# %%
# Pair-flip noise on the training labels
# --------------------------------------
# The digits are scaled to [0, 1] and split into train and test sets. In
# each class, 40 % of the training labels are replaced by the next class (a
# 3 becomes a 4, a 9 a 0): ``kind="asymmetric"`` with its default map. The
# validation folds of the searches are cut from these labels, so they carry
# the same noise; only the test labels are clean, and no search sees them.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from sklearn_dividemix import (
    DivideMixClassifier,
    estimated_clean_accuracy,
    make_noisy_labels,
)

# The test suite sets SKDM_EXAMPLE_FAST=1 to run every example in seconds.
FAST = os.environ.get("SKDM_EXAMPLE_FAST") == "1"

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
if FAST:
    X_train, y_train = X_train[:200], y_train[:200]
y_noisy, is_wrong = make_noisy_labels(
    y_train, noise_rate=0.4, kind="asymmetric", random_state=0
)
print(f"{is_wrong.sum()} of {len(y_noisy)} training labels are wrong")

# %%
# Why noisy accuracy can mislead here
# -----------------------------------
# With pair flipping at rate ``r``, a prediction scores on a noisy label
# when it is the true class (probability ``1 - r``) or the class the noise
# flips it to (probability ``r``). The noisy accuracy is therefore
# ``(1 - r) * acc + r * flip``, where ``flip`` is the share of predictions
# that equal the flipped class: a model that has learnt part of the noise
# gets credit for it. :func:`~sklearn_dividemix.estimated_clean_accuracy`
# removes that credit with the noise transition matrix the fit estimated
# (see :ref:`noisy_validation`).
#
# The setting searched is ``confidence_penalty``, the negative-entropy
# penalty on the warm-up that the DivideMix paper adds for asymmetric noise
# so that the nets do not become confident in the flipped labels before the
# division starts. Both searches use the same folds and the same
# ``random_state``, so they fit the same models and differ only in how they
# score them; each refits its choice on the whole training set.
estimator = DivideMixClassifier(
    max_epochs=2 if FAST else 15,
    warmup_epochs=1 if FAST else 5,
    lr=0.1,
    random_state=0,
)
param_grid = {"confidence_penalty": [False, True]}
cv = StratifiedKFold(n_splits=2 if FAST else 3, shuffle=True, random_state=0)

by_noisy = GridSearchCV(estimator, param_grid, scoring="accuracy", cv=cv)
by_noisy.fit(X_train, y_noisy)
by_estimate = GridSearchCV(
    estimator, param_grid, scoring=estimated_clean_accuracy, cv=cv
)
by_estimate.fit(X_train, y_noisy)

for name, search in [("noisy accuracy", by_noisy), ("estimated", by_estimate)]:
    scores = search.cv_results_["mean_test_score"]
    print(
        f"scored by {name:15s}: CV scores (False, True) = "
        f"({scores[0]:.3f}, {scores[1]:.3f}), chose "
        f"confidence_penalty={search.best_params_['confidence_penalty']}"
    )

# %%
# Each choice on the clean test labels
# ------------------------------------
# The refitted ``best_estimator_`` of each search is scored on the clean
# test labels. For the plot below every candidate needs a fit on the whole
# training set; the searches' refits cover one or both, the loop fits the
# rest.
fitted = {
    search.best_params_["confidence_penalty"]: search.best_estimator_
    for search in (by_noisy, by_estimate)
}
for value in param_grid["confidence_penalty"]:
    if value not in fitted:
        fitted[value] = clone(estimator).set_params(confidence_penalty=value)
        fitted[value].fit(X_train, y_noisy)
test_accuracy = {value: clf.score(X_test, y_test) for value, clf in fitted.items()}
for value in param_grid["confidence_penalty"]:
    print(f"confidence_penalty={value}: clean test accuracy {test_accuracy[value]:.3f}")

choice_noisy = by_noisy.best_params_["confidence_penalty"]
choice_estimate = by_estimate.best_params_["confidence_penalty"]
print(
    f"choice by noisy accuracy, confidence_penalty={choice_noisy}: "
    f"clean test accuracy {test_accuracy[choice_noisy]:.3f}"
)
print(
    f"choice by estimated clean accuracy, confidence_penalty={choice_estimate}: "
    f"clean test accuracy {test_accuracy[choice_estimate]:.3f}"
)
difference = test_accuracy[choice_estimate] - test_accuracy[choice_noisy]
if choice_noisy == choice_estimate:
    print("both scorers chose the same setting")
else:
    better = "estimated clean accuracy" if difference > 0 else "noisy accuracy"
    print(f"{better} chose better, by {100 * abs(difference):.1f} points")

# %%
# What this run shows
# -------------------
# In the full run (fast mode is too short to mean anything) both scorers
# rank ``confidence_penalty=True`` first, so they choose the same setting,
# whose clean test accuracy is 0.906. The printed test accuracy of each
# candidate shows whether that was the better one; in a single-threaded
# run of the same seed (the benchmark's) ``False`` scored 0.926, 2 points
# better, so neither score on the noisy folds found the better candidate.
# One run cannot tell which scorer is the better guide: at this scale the
# gaps between the candidates are of the size of the noise of a 3-fold
# estimate on about 400 validation labels a fold. The benchmark
# :doc:`/model_selection` repeats the comparison over seeds: on digits the
# two scorers disagree in some seeds, and their choices average within a
# fraction of a point of each other on the clean test labels.

# %%
# Scores per candidate
# --------------------
# The mean cross-validated accuracy on the noisy labels, the mean estimated
# clean accuracy on the same folds, and the accuracy on the clean test
# labels of the candidate fitted on the whole training set. The noisy
# accuracy sits far below the others by construction (a perfect model
# agrees with only 60 % of these labels); what matters for a search is
# the order of the candidates within each group of bars.
values = param_grid["confidence_penalty"]
bars = {
    "CV accuracy, noisy labels": by_noisy.cv_results_["mean_test_score"],
    "CV estimated clean accuracy": by_estimate.cv_results_["mean_test_score"],
    "test accuracy, clean labels": [test_accuracy[v] for v in values],
}
fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
width = 0.25
for i, (label, heights) in enumerate(bars.items()):
    positions = np.arange(len(values)) + (i - 1) * width
    rects = ax.bar(positions, heights, width, label=label)
    ax.bar_label(rects, fmt="%.3f", fontsize=8)
ax.set(
    xticks=range(len(values)),
    xticklabels=[f"confidence_penalty={v}" for v in values],
    ylim=(0, 1.1),
    ylabel="accuracy",
)
ax.legend(loc="lower right", fontsize=8)
