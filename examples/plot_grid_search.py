"""
============================================================
Tuning ``lambda_u`` and a module parameter with GridSearchCV
============================================================

:class:`~sklearn_dividemix.DivideMixClassifier` is a scikit-learn estimator,
so scikit-learn's model selection works on it as on any other: here
:class:`~sklearn.model_selection.GridSearchCV` tunes the weight of the
unlabeled loss, ``lambda_u``, together with the width of the default MLP,
set the skorch way as ``module__hidden_units``.
"""

# %%
# Noisy training labels, clean test labels
# ----------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels

# The test suite sets SKDM_EXAMPLE_FAST=1 to run every example in seconds.
FAST = os.environ.get("SKDM_EXAMPLE_FAST") == "1"

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
if FAST:
    X_train, y_train = X_train[:300], y_train[:300]
y_noisy, is_wrong = make_noisy_labels(
    y_train, noise_rate=0.5, kind="symmetric_exclusive", random_state=0
)

# %%
# The search
# ----------
# Cross-validation can only score against the labels it has, and half of
# them are wrong here. That still ranks models correctly under symmetric
# noise: a model's accuracy on noisy labels is an increasing function of its
# accuracy on the true ones, ``(1 - r) * acc + r * (1 - acc) / (K - 1)`` at
# noise rate ``r`` with ``K`` classes. (Class-dependent noise breaks this;
# keep a small clean validation set then.)
#
# The default ``lambda_u="auto"`` picks a value from the noise rate it
# estimates; a search compares explicit values instead. Each fit has a
# shorter budget than the defaults so that the 13 fits (4
# candidates times 3 folds, plus the refit) take about a minute.
search = GridSearchCV(
    DivideMixClassifier(
        max_epochs=3 if FAST else 15,
        warmup_epochs=2 if FAST else 5,
        lr=0.1,
        random_state=0,
    ),
    param_grid={"lambda_u": [0.0, 25.0], "module__hidden_units": [32, 128]},
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(X_train, y_noisy)

results = pd.DataFrame(search.cv_results_)
columns = ["param_lambda_u", "param_module__hidden_units", "mean_test_score"]
print(results[columns].sort_values("mean_test_score", ascending=False).to_string())
print("best:", search.best_params_)

# %%
# The refitted best model is an ordinary fitted DivideMixClassifier: it
# predicts, and it knows which of the noisy training labels it doubts.
best = search.best_estimator_
print(f"test accuracy of the best model: {best.score(X_test, y_test):.3f}")
flagged = ~best.clean_mask_
print(f"flagged {flagged.sum()} labels, {(flagged & is_wrong).sum()} of them wrong")

# %%
# Scores on the grid
# ------------------
# The mean cross-validated accuracy (on noisy labels) of each candidate.
scores = results.pivot_table(
    index="param_lambda_u",
    columns="param_module__hidden_units",
    values="mean_test_score",
)
fig, ax = plt.subplots(figsize=(4.5, 3.5), constrained_layout=True)
image = ax.imshow(scores.to_numpy(), cmap="viridis")
ax.set(
    xticks=range(scores.shape[1]),
    xticklabels=scores.columns,
    yticks=range(scores.shape[0]),
    yticklabels=scores.index,
    xlabel="module__hidden_units",
    ylabel="lambda_u",
)
for (i, j), value in np.ndenumerate(scores.to_numpy()):
    ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white")
fig.colorbar(image, ax=ax, label="CV accuracy on noisy labels")
