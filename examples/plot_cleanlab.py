"""
=========================================
Handing the label-issue table to cleanlab
=========================================

:meth:`~sklearn_dividemix.DivideMixClassifier.get_label_issues` returns a
table with the column names of cleanlab's ``find_label_issues``, so code
written around cleanlab takes it as it is. This example passes it to
``cleanlab.classification.CleanLearning``, which then trains any
scikit-learn model on the labels DivideMix kept, and feeds DivideMix's
predicted probabilities to cleanlab's own label-issue rule. It needs
``pip install cleanlab``.
"""

# %%
# DivideMix's label issues
# ------------------------
import os
import textwrap

import matplotlib.pyplot as plt
import numpy as np
from cleanlab.classification import CleanLearning
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score
from sklearn.model_selection import train_test_split

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels

# The test suite sets SKDM_EXAMPLE_FAST=1 to run every example in seconds.
FAST = os.environ.get("SKDM_EXAMPLE_FAST") == "1"
MAX_EPOCHS, WARMUP_EPOCHS = (3, 2) if FAST else (30, 10)

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
y_noisy, is_wrong = make_noisy_labels(
    y_train, noise_rate=0.4, kind="symmetric_exclusive", random_state=0
)
clf = DivideMixClassifier(
    max_epochs=MAX_EPOCHS, warmup_epochs=WARMUP_EPOCHS, lr=0.1, random_state=0
)
issues = clf.fit(X_train, y_noisy).get_label_issues()
print(issues.head().to_string())

# %%
# cleanlab trains a model on the labels DivideMix kept
# ------------------------------------------------------
# ``CleanLearning.fit`` accepts precomputed label issues: it drops the rows
# with ``is_label_issue`` and fits its model on the rest. Here the model is a
# logistic regression; compare it with the same model trained on all noisy
# labels, and with cleanlab finding the issues itself from the logistic
# regression's cross-validated predictions.
logistic = LogisticRegression(max_iter=1000)
accuracies = {
    "all noisy labels": logistic.fit(X_train, y_noisy).score(X_test, y_test),
}
cleaned_by_dividemix = CleanLearning(LogisticRegression(max_iter=1000))
cleaned_by_dividemix.fit(X_train, y_noisy, label_issues=issues)
accuracies["labels kept by DivideMix"] = cleaned_by_dividemix.score(X_test, y_test)
cleaned_by_cleanlab = CleanLearning(LogisticRegression(max_iter=1000), cv_n_folds=3)
cleaned_by_cleanlab.fit(X_train, y_noisy)
accuracies["labels kept by cleanlab"] = cleaned_by_cleanlab.score(X_test, y_test)
for name, accuracy in accuracies.items():
    print(f"logistic regression on {name:<26} test accuracy {accuracy:.3f}")

# %%
# cleanlab's rule on DivideMix's predictions
# ------------------------------------------
# ``train_proba_`` holds both nets' predicted probabilities on the training
# samples, the ``pred_probs`` that cleanlab's functions take. cleanlab asks
# for out-of-sample predictions; DivideMix's are in-sample, but its nets are
# trained not to fit the labels they flag, so their predictions on those
# samples stay informative.
flagged = {
    "DivideMix": issues["is_label_issue"].to_numpy(),
    "cleanlab on DivideMix's pred_probs": cleanlab_find_label_issues(
        y_noisy, clf.train_proba_
    ),
    "cleanlab on logistic regression (CV)": (
        cleaned_by_cleanlab.get_label_issues()["is_label_issue"].to_numpy()
    ),
}
scores = {
    name: {
        "precision": precision_score(is_wrong, mask),
        "recall": recall_score(is_wrong, mask),
    }
    for name, mask in flagged.items()
}
for name, score in scores.items():
    print(
        f"{name:<38} precision {score['precision']:.3f}, recall {score['recall']:.3f}"
    )

# %%
# Precision and recall of the three lists against the labels we corrupted.
fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
positions = np.arange(len(scores))
for offset, metric in ((-0.2, "precision"), (0.2, "recall")):
    values = [score[metric] for score in scores.values()]
    ax.bar(positions + offset, values, width=0.4, label=metric)
ax.set_xticks(positions, [textwrap.fill(name, 20) for name in scores])
ax.set_ylim(0, 1.05)
ax.legend(loc="lower right")
