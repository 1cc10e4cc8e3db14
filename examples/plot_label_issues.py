"""
===================================================
Finding wrong labels and plotting the loss division
===================================================

Often the point of a fit is not the classifier but the list of wrong labels:
to relabel them, to audit annotations, or to clean a data set before anything
else is trained on it. :meth:`~sklearn_dividemix.DivideMixClassifier.get_label_issues`
returns that list as a table with cleanlab's column names, plus a suggested
label for each flagged sample. This example reads the table, checks it
against the labels we corrupted, and draws the loss division that produced it.
"""

# %%
# Fit on data with 30 % wrong labels
# ----------------------------------
# All 1,797 digits are used for training: finding wrong labels needs no test
# set. Since we corrupted the labels ourselves, we know which ones are wrong
# and can grade the table.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import precision_score, recall_score

from sklearn_dividemix import (
    DivideMixClassifier,
    LossDivisionDisplay,
    make_noisy_labels,
)

# The test suite sets SKDM_EXAMPLE_FAST=1 to run every example in seconds.
FAST = os.environ.get("SKDM_EXAMPLE_FAST") == "1"
MAX_EPOCHS, WARMUP_EPOCHS = (4, 2) if FAST else (30, 10)

digits = load_digits()
X = (digits.data / 16.0).astype(np.float32)
y_true = digits.target
y_noisy, is_wrong = make_noisy_labels(
    y_true, noise_rate=0.3, kind="symmetric_exclusive", random_state=0
)

clf = DivideMixClassifier(
    max_epochs=MAX_EPOCHS, warmup_epochs=WARMUP_EPOCHS, lr=0.1, random_state=0
)
clf.fit(X, y_noisy)

# %%
# The label-issue table
# ---------------------
# One row per training sample, in training order. ``label_quality`` is the
# probability that the given label is right (``clean_proba_``);
# ``is_label_issue`` flags the samples at or below ``p_threshold``.
# ``predicted_label`` is both nets' prediction and ``suggested_label`` the
# co-refined label that DivideMix trained a flagged sample towards.
issues = clf.get_label_issues()
suspects = issues.query("is_label_issue").sort_values("label_quality")
print(suspects.head(10).round(3).to_string())

# %%
# How good is the list? Precision: the share of flagged labels that are really
# wrong. Recall: the share of wrong labels that were flagged. For the flagged
# labels that are really wrong, the suggested label is compared with the truth.
flagged = issues["is_label_issue"].to_numpy()
print(f"flagged {flagged.sum()} of {len(issues)} labels ({is_wrong.sum()} are wrong)")
print(f"precision {precision_score(is_wrong, flagged):.3f}")
print(f"recall    {recall_score(is_wrong, flagged):.3f}")
found = flagged & is_wrong
fixed = issues["suggested_label"].to_numpy()[found] == y_true[found]
print(
    f"suggested label is the true one for {fixed.mean():.1%} of the wrong labels found"
)

# %%
# Label quality of right and wrong labels
# ---------------------------------------
# ``label_quality`` separates the two groups sharply: most right labels sit
# near 1, most wrong ones near 0, and ``p_threshold`` (0.5) cuts between.
fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
bins = np.linspace(0, 1, 26)
quality = issues["label_quality"].to_numpy()
ax.hist(quality[~is_wrong], bins=bins, alpha=0.6, color="tab:green", label="right")
ax.hist(quality[is_wrong], bins=bins, alpha=0.6, color="tab:red", label="wrong")
ax.axvline(clf.p_threshold_, color="black", linestyle=":", label="p_threshold_")
ax.set(xlabel="label_quality", ylabel="samples", yscale="log")
ax.legend(title="given label")

# %%
# The loss division, epoch by epoch
# ---------------------------------
# After the warm-up, each net fits a two-component Gaussian mixture to its
# per-sample losses (min-max normalised); the samples to the right of the
# threshold become unlabeled for the *other* net. Early on the two modes
# overlap; as training goes on the wrong labels' losses move right and the
# split sharpens. ``epoch=None`` is the division after the last epoch, the one
# behind ``clean_proba_``.
first = clf.warmup_epochs_ + 1  # warm-up may run past WARMUP_EPOCHS
epochs = [first, (first + MAX_EPOCHS) // 2, None]
fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
for epoch, ax in zip(epochs, axes, strict=True):
    LossDivisionDisplay.from_estimator(clf, net=1, epoch=epoch, ax=ax)
for ax in axes[1:]:
    ax.get_legend().remove()

# %%
# The most suspicious samples
# ---------------------------
# The twelve flagged samples of lowest label quality, with their given label,
# the suggested one and (known here only because we made the noise) the true
# one. A green title marks a suggestion that recovers the truth.
fig, axes = plt.subplots(2, 6, figsize=(12, 4.6), constrained_layout=True)
for ax, (i, row) in zip(axes.ravel(), suspects.head(12).iterrows(), strict=False):
    ax.imshow(digits.images[i], cmap="gray_r")
    ax.set_axis_off()
    right = row["suggested_label"] == y_true[i]
    ax.set_title(
        f"given {row['given_label']}, suggested {row['suggested_label']}\n"
        f"true {y_true[i]}",
        fontsize=9,
        color="tab:green" if right else "tab:red",
    )
