"""Real CIFAR-10 images as image users hold them: uint8 NHWC, Datasets, folders.

Skipped where ``shared/data/cifar10.npz`` is absent.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset
from torchvision.datasets import ImageFolder
from torchvision.models import resnet18
from torchvision.transforms import Compose, PILToTensor, Resize

from sklearn_dividemix import DivideMixClassifier, make_noisy_labels

CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"
pytestmark = [
    pytest.mark.skipif(
        not CIFAR10.exists(), reason=f"real images absent: no {CIFAR10}"
    ),
    pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning"),
]
AIRPLANE, FROG = 0, 6


@pytest.fixture(scope="module")
def cifar_two_classes():
    """Airplanes and frogs of CIFAR-10's test split: uint8 (n, 32, 32, 3)."""
    with np.load(CIFAR10) as archive:
        images, labels = archive["x_test"], archive["y_test"]
    keep = np.isin(labels, [AIRPLANE, FROG])
    images, labels = images[keep], (labels[keep] == FROG).astype(np.int64)
    y_noisy, _ = make_noisy_labels(
        labels[:1000], noise_rate=0.2, kind="symmetric_exclusive", random_state=0
    )
    return {
        "X": images[:1000],
        "y": y_noisy,
        "X_test": images[1000:1600],
        "y_test": labels[1000:1600],
    }


def test_uint8_nhwc_fits_as_well_as_float_nchw(cifar_two_classes):
    d = cifar_two_classes
    params = dict(max_epochs=5, warmup_epochs=2, random_state=0)
    as_stored = DivideMixClassifier(**params).fit(d["X"], d["y"])
    nchw = np.ascontiguousarray(d["X"].transpose(0, 3, 1, 2)).astype(np.float32)
    converted = DivideMixClassifier(**params).fit(nchw / 255, d["y"])
    test_nchw = d["X_test"].transpose(0, 3, 1, 2).astype(np.float32) / 255
    scores = (
        as_stored.score(d["X_test"], d["y_test"]),
        converted.score(test_nchw, d["y_test"]),
    )
    # airplanes against frogs: far above chance either way, and the same
    # images in another layout and dtype learn the same thing
    assert min(scores) > 0.75
    assert abs(scores[0] - scores[1]) < 0.05
    # the model fitted on NHWC arrays predicts on NCHW input of other dtype
    agreement = as_stored.predict(test_nchw) == as_stored.predict(d["X_test"])
    assert agreement.mean() > 0.99


def test_tensor_dataset_fit_equals_the_array_fit(cifar_two_classes):
    d = cifar_two_classes
    X, y = d["X"][:200], d["y"][:200]
    params = dict(max_epochs=3, warmup_epochs=1, batch_size=32, random_state=0)
    array = DivideMixClassifier(**params).fit(X, y)
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    from_dataset = DivideMixClassifier(**params).fit(dataset, None)
    np.testing.assert_allclose(from_dataset.clean_proba_, array.clean_proba_, atol=1e-6)
    np.testing.assert_allclose(
        from_dataset.predict_proba(d["X_test"]), array.predict_proba(d["X_test"])
    )


def test_resnet18_on_an_image_folder(cifar_two_classes, tmp_path):
    d = cifar_two_classes
    for i, (image, label) in enumerate(zip(d["X"][:64], d["y"][:64], strict=True)):
        folder = tmp_path / ("frog" if label else "airplane")
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    folder = ImageFolder(tmp_path, transform=Compose([Resize(32), PILToTensor()]))
    clf = DivideMixClassifier(
        module=resnet18, max_epochs=2, warmup_epochs=1, batch_size=16, random_state=0
    ).fit(folder)
    assert clf.net1_.module_.fc.out_features == 2
    assert clf.image_layout_ == "NCHW" and clf.input_shape_ == (3, 32, 32)
    table = clf.get_label_issues()
    assert sorted(table["path"]) == sorted(str(p) for p in tmp_path.rglob("*.png"))
    assert clf.predict(folder).shape == (64,)
    # the same model takes the images as uint8 NHWC arrays too
    assert clf.predict_proba(d["X_test"][:10]).shape == (10, 2)
