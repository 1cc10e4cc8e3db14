"""
================================================
Auditing a folder of images: which files to fix
================================================

Noisy labels often live in a folder per class, filled by hand or by a
scraper. This example writes a few hundred real CIFAR-10 images as PNG files
into class folders, a share of them into the wrong folder, reads the folder
with ``torchvision.datasets.ImageFolder`` and fits
:class:`~sklearn_dividemix.DivideMixClassifier` on it directly. Because the
dataset knows its files, the label-issue table has a ``path`` column: the
audit ends in a list of files to move, shown with their given and suggested
labels.

The images come from ``shared/data/cifar10.npz`` next to the repository (set
``SKDM_SHARED_DATA`` to another folder); without it the example says so and
stops.
"""

# %%
# Writing an image folder with wrong labels
# -----------------------------------------
# 300 CIFAR-10 test images of four classes, 25 % of them saved into the folder
# of another class: the given label of a file is its folder.
import os
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.transforms import PILToTensor

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels

# The test suite sets SKDM_EXAMPLE_FAST=1 to run every example in seconds.
FAST = os.environ.get("SKDM_EXAMPLE_FAST") == "1"
try:
    HERE = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery may run the code without __file__
    HERE = Path.cwd()
DATA = Path(os.environ.get("SKDM_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
CIFAR10 = DATA / "cifar10.npz"
if not CIFAR10.exists():
    print(f"skipped: this example needs CIFAR-10 at {CIFAR10}, which is absent")
    sys.exit(0)

CLASSES = ["airplane", "automobile", "frog", "ship"]
with np.load(CIFAR10) as archive:
    names = list(archive["class_names"])
    images, labels = archive["x_test"], archive["y_test"]
keep = np.isin(labels, [names.index(c) for c in CLASSES])
n = 120 if FAST else 300
images, labels = images[keep][:n], labels[keep][:n]
true = np.array([CLASSES.index(names[k]) for k in labels])
given, is_wrong = make_noisy_labels(
    true, noise_rate=0.25, kind="symmetric_exclusive", random_state=0
)

root = Path(tempfile.mkdtemp(prefix="noisy_folder_"))
for i, (image, label) in enumerate(zip(images, given, strict=True)):
    folder = root / CLASSES[label]
    folder.mkdir(exist_ok=True)
    Image.fromarray(image).save(folder / f"img_{i:04d}.png")
print(f"{n} PNG files in {root}, {is_wrong.sum()} in the wrong folder")

# %%
# Fitting on the folder
# ---------------------
# ``ImageFolder`` reads each file as a PIL image; ``PILToTensor`` makes it a
# uint8 tensor of one shape, and nothing random: augmentation is the
# estimator's job, on whole batches. The labels come from the folder names
# (``dataset.targets``), so ``fit`` needs no ``y``. Loader options are set
# the skorch way, e.g. ``iterator_train__num_workers=4`` for large folders.
dataset = ImageFolder(root, transform=PILToTensor())
clf = DivideMixClassifier(
    max_epochs=4 if FAST else 30,
    warmup_epochs=2 if FAST else 10,
    batch_size=32,
    random_state=0,
)
clf.fit(dataset)

# %%
# The most suspicious files
# -------------------------
# ``get_label_issues`` ranks every file by ``label_quality``, the probability
# that its folder is right; ``path`` says which file to move, and
# ``suggested_label`` where. The folder order of ``ImageFolder`` is not the
# writing order, so the truth is looked up by file name.
table = clf.get_label_issues()
index = table["path"].map(lambda p: int(Path(p).stem.split("_")[1]))
table["truly_wrong"] = is_wrong[index.to_numpy()]
suspects = table.query("is_label_issue").sort_values("label_quality")
shown = suspects.head(10).assign(file=suspects["path"].map(lambda p: Path(p).name))
columns = ["file", "given_label", "suggested_label", "label_quality", "truly_wrong"]
print(shown[columns].to_string(index=False))
found = table["is_label_issue"].to_numpy()
truth = table["truly_wrong"].to_numpy()
print(
    f"flagged {found.sum()} files: {(found & truth).sum()} of the "
    f"{truth.sum()} misfiled ones, {(found & ~truth).sum()} correctly filed"
)

# %%
# A look at them
# --------------
# The twelve lowest-quality files with their folder (given) and the label the
# fit suggests; a red title marks a file that really was misfiled.
fig, axes = plt.subplots(2, 6, figsize=(10, 4))
for ax, (_, row) in zip(axes.ravel(), suspects.head(12).iterrows(), strict=False):
    ax.imshow(Image.open(row["path"]))
    ax.set_title(
        f"{dataset.classes[row['given_label']]}\n"
        f"-> {dataset.classes[row['suggested_label']]}",
        fontsize=8,
        color="tab:red" if row["truly_wrong"] else "black",
    )
    ax.axis("off")
fig.tight_layout()
plt.show()
