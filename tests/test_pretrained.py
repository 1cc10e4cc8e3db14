"""Pretrained modules: copies per net, heads, fine-tuning controls, input."""

import functools
import importlib.util
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from torch import nn
from torchvision.models import mobilenet_v3_small, resnet18
from torchvision.models.vision_transformer import VisionTransformer

from sklearn_dividemix import DivideMixClassifier, FrozenFeatures
from sklearn_dividemix._finetune import (
    AUTO_BACKBONE_LR_RATIO,
    backbone_lr_ratio,
    head_param_groups,
)
from sklearn_dividemix._pretrained import (
    find_head,
    fit_head,
    module_and_kwargs,
    prepare_module,
    unwrap_logits,
)
from sklearn_dividemix._pretrained_input import (
    IMAGENET_MEAN,
    fixed_stats,
    resize_batch,
)

# tiny random data: the verdict is rightly unimpressed
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.UntrustedFitWarning")

FAST = dict(max_epochs=2, warmup_epochs=1, batch_size=8, random_state=0)


class _TinyNet(nn.Module):
    """torchvision's shape in miniature: a backbone, then ``fc``."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(4, num_classes)

    def forward(self, X):
        return self.fc(self.features(X))


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(16, 12, 12, 3)).astype(np.uint8)
    return X, np.arange(16) % 3


def _pretrained_tiny(seed=0):
    torch.manual_seed(seed)
    return _TinyNet(10)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _backbone_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a if not k.startswith("fc."))


# -- finding and replacing heads ---------------------------------------------


@pytest.mark.parametrize(
    "build, name",
    [
        (resnet18, "fc"),
        (mobilenet_v3_small, "classifier.3"),
        (
            functools.partial(
                VisionTransformer, 16, 8, 1, 2, 8, 8, num_classes=7
            ),  # image_size, patch_size, layers, heads, hidden, mlp
            "heads.head",
        ),
        (lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), "1"),
    ],
)
def test_find_head_names_torchvision_heads(build, name):
    found = find_head(build())
    assert found is not None and found[0] == name
    assert isinstance(found[1], nn.Linear)


def test_find_head_is_none_without_a_linear_head():
    assert find_head(nn.Conv2d(3, 10, 1)) is None


def test_fit_head_replaces_a_wrong_size_head_from_the_generator():
    model, same = _pretrained_tiny(), _pretrained_tiny()
    backbone = _state(model)
    name, replaced = fit_head(model, 3, torch.Generator().manual_seed(1))
    fit_head(same, 3, torch.Generator().manual_seed(1))
    assert (name, replaced) == ("fc", True)
    assert model.fc.out_features == 3 and model.fc.in_features == 4
    assert torch.equal(model.fc.weight, same.fc.weight)
    assert _backbone_equal(backbone, _state(model))
    other = _pretrained_tiny()
    fit_head(other, 3, torch.Generator().manual_seed(2))
    assert not torch.equal(model.fc.weight, other.fc.weight)


def test_fit_head_keeps_a_head_of_the_right_size():
    model = _pretrained_tiny()
    weight = model.fc.weight.clone()
    assert fit_head(model, 10, torch.Generator()) == ("fc", False)
    assert torch.equal(model.fc.weight, weight)


def test_prepare_module_copies_an_instance_and_leaves_it_alone():
    model = _pretrained_tiny()
    before = _state(model)
    prepared = prepare_module(model, {}, 3, seed=0)
    assert prepared.module is not model and prepared.head_replaced
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.fc.out_features == 10 and not model._forward_hooks
    with pytest.raises(TypeError, match="module__width.*cannot be used"):
        prepare_module(model, {"width": 3}, 3, seed=0)


class _TimmLike(nn.Module):
    """timm's interface: reset_classifier, num_classes, pretrained_cfg."""

    pretrained_cfg = {"classifier": "head", "mean": (0.5,) * 3, "std": (0.25,) * 3}

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_classes = 10
        self.head = nn.Linear(3, 10)

    def reset_classifier(self, num_classes):
        # as timm: 0 classes, no head (the features)
        self.num_classes = num_classes
        self.head = nn.Linear(3, num_classes) if num_classes else nn.Identity()

    def forward(self, X):
        return self.head(self.body(X))


def test_timm_heads_are_reset_and_redrawn_from_the_generator():
    a, b = _TimmLike(), _TimmLike()
    assert fit_head(a, 4, torch.Generator().manual_seed(0)) == ("head", True)
    fit_head(b, 4, torch.Generator().manual_seed(0))
    assert a.num_classes == 4 and a.head.out_features == 4
    assert torch.equal(a.head.weight, b.head.weight)


class _HFLike(nn.Module):
    """A Hugging Face image classifier: a ``classifier``, output ``.logits``."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(3, 1000)

    def forward(self, X):
        return SimpleNamespace(logits=self.classifier(self.body(X)), loss=None)


def test_unwrap_logits_reads_dot_logits_and_passes_tensors():
    tensor = torch.zeros(2, 3)
    assert unwrap_logits(None, (), tensor) is tensor
    assert unwrap_logits(None, (), SimpleNamespace(logits=tensor)) is tensor
    assert unwrap_logits(None, (), (tensor, tensor))[0] is tensor


def test_hugging_face_style_model_fits_and_pickles(images):
    X, y = images
    clf = DivideMixClassifier(_HFLike(), **FAST).fit(X, y)
    assert clf.head_replaced_ == "classifier"
    assert clf.predict_proba(X).shape == (16, 3)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))


# -- the estimator with a module instance ------------------------------------


def test_resnet18_instance_keeps_its_weights_and_gets_a_new_head(tmp_path, images):
    # "pretrained" weights made here, saved and loaded back (no download)
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), tmp_path / "weights.pt")
    model = resnet18()
    model.load_state_dict(torch.load(tmp_path / "weights.pt"))
    given = _state(model)
    X, y = images
    clf = DivideMixClassifier(
        model, **{**FAST, "max_epochs": 1}, freeze_backbone_epochs=1
    ).fit(X[:8], y[:8])
    assert clf.head_replaced_ == "fc"
    assert all(torch.equal(given[k], v) for k, v in model.state_dict().items())
    nets = clf.net1_.module_, clf.net2_.module_
    for net in nets:
        assert net.fc.out_features == 3
        # a frozen backbone keeps the given weights (batch-norm statistics
        # adapt, as in any epoch)
        for name, param in net.named_parameters():
            if not name.startswith("fc."):
                assert torch.equal(param.detach(), given[name]), name
            assert param.requires_grad
    assert not torch.equal(nets[0].fc.weight, nets[1].fc.weight)


def test_nets_differ_only_in_their_heads_and_are_reproducible(images):
    X, y = images
    model = _pretrained_tiny()
    params = dict(max_epochs=1, warmup_epochs=1, batch_size=8, random_state=3)
    clf = DivideMixClassifier(model, **params, backbone_lr_ratio=0.0)
    clf.fit(X, y)
    again = DivideMixClassifier(model, **params, backbone_lr_ratio=0.0).fit(X, y)
    a, b = clf.net1_.module_, clf.net2_.module_
    assert torch.equal(a.features[0].weight, model.features[0].weight)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.fc.weight, b.fc.weight)
    np.testing.assert_allclose(clf.predict_proba(X), again.predict_proba(X))


def test_clone_and_grid_search_copy_the_instance(images):
    X, y = images
    model = _pretrained_tiny()
    clf = DivideMixClassifier(model, **FAST)
    copy = clone(clf)
    assert copy.module is not model
    assert torch.equal(copy.module.fc.weight, model.fc.weight)
    search = GridSearchCV(clf, {"backbone_lr_ratio": [0.1, 1.0]}, cv=2).fit(X, y)
    assert search.best_estimator_.head_replaced_ == "fc"
    assert search.best_estimator_.module is not model
    assert model.fc.out_features == 10


def test_backbone_lr_ratio_sets_param_groups(images):
    X, y = images
    clf = DivideMixClassifier(
        _pretrained_tiny(), **FAST, lr=0.05, lr_decay=1.0, backbone_lr_ratio=0.2
    ).fit(X, y)
    head, backbone = clf.net1_.optimizer_.param_groups
    assert head["lr"] == pytest.approx(0.05) and len(head["params"]) == 2
    assert backbone["lr"] == pytest.approx(0.01)
    assert clf.history_[-1]["lr"] == pytest.approx(0.05)


def test_backbone_lr_ratio_auto_and_head_groups():
    assert backbone_lr_ratio("auto", head_replaced=True) == AUTO_BACKBONE_LR_RATIO
    assert backbone_lr_ratio("auto", head_replaced=False) == 1.0
    assert backbone_lr_ratio(0.5, head_replaced=False) == 0.5
    groups = head_param_groups("fc", 0.1, [("features.0.*", {"lr": 0.0})])
    assert groups[0] == ("features.0.*", {"lr": 0.0})
    assert groups[1] == ("fc.*", {"lr": 0.1})


def test_skorch_param_groups_work(images):
    X, y = images
    clf = DivideMixClassifier(
        _pretrained_tiny(),
        **FAST,
        lr=0.1,
        lr_decay=1.0,
        backbone_lr_ratio=1.0,
        optimizer__param_groups=[("features.*", {"lr": 0.0})],
    ).fit(X, y)
    frozen, rest = clf.net1_.optimizer_.param_groups
    assert frozen["lr"] == 0.0 and rest["lr"] == pytest.approx(0.1)


class _Headless(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 10, 1)

    def forward(self, X):
        return self.conv(X).mean(dim=(2, 3))


def test_instance_without_a_head_of_the_wrong_size_says_what_to_do(images):
    X, y = images
    with pytest.raises(ValueError, match="no classification head was found"):
        DivideMixClassifier(_Headless(), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="need the module's classification head"):
        DivideMixClassifier(_Headless(), **FAST, freeze_backbone_epochs=1).fit(X, y)


def test_factory_given_weights_gets_no_num_classes():
    def build(weights=None, **kwargs):
        return _TinyNet(**kwargs)

    assert module_and_kwargs(build, (3, 8, 8), 3)[1] == {"num_classes": 3}
    loads = functools.partial(build, weights="given")
    assert module_and_kwargs(loads, (3, 8, 8), 3) == (loads, {})
    assert module_and_kwargs(_TinyNet(), (3, 8, 8), 3)[1] == {}


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="no timm")
def test_timm_pretrained_model_keeps_its_weights_and_gets_a_new_head(tmp_path, images):
    import timm

    # pretrained=True, its weights a file made here: timm reads it, no download
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "w.pth")
    model = timm.create_model(
        "resnet18", pretrained=True, pretrained_cfg_overlay={"file": tmp_path / "w.pth"}
    )
    given = _state(model)
    assert torch.equal(
        given["conv1.weight"], torch.load(tmp_path / "w.pth")["conv1.weight"]
    )
    X, y = images
    clf = DivideMixClassifier(
        model, **{**FAST, "max_epochs": 1}, freeze_backbone_epochs=1
    ).fit(X[:8], y[:8])
    # the head timm's reset_classifier redrew; timm's ImageNet statistics
    assert clf.head_replaced_ == "fc"
    np.testing.assert_allclose(clf.input_mean_, IMAGENET_MEAN, rtol=1e-6)
    assert model.num_classes == 1000
    assert all(torch.equal(given[k], v) for k, v in model.state_dict().items())
    nets = clf.net1_.module_, clf.net2_.module_
    for net in nets:
        assert net.num_classes == 3 and net.fc.out_features == 3
        for name, param in net.named_parameters():
            if not name.startswith("fc."):
                assert torch.equal(param.detach(), given[name]), name
    assert not torch.equal(nets[0].fc.weight, nets[1].fc.weight)
    assert clf.predict(X[:2]).shape == (2,)


# -- the input a pretrained net expects --------------------------------------


def test_resize_batch_resizes_the_shorter_side_then_crops_the_centre():
    X = torch.arange(2 * 3 * 8 * 16, dtype=torch.float32).reshape(2, 3, 8, 16)
    out = resize_batch(X, 4)
    assert out.shape == (2, 3, 4, 4)
    assert resize_batch(X[..., :8], 8) is not None
    assert resize_batch(X[..., :8], 8).shape == (2, 3, 8, 8)
    same = torch.rand(1, 3, 5, 5)
    assert resize_batch(same, 5) is same and resize_batch(same, None) is same
    constant = torch.full((1, 3, 7, 7), 0.3)
    torch.testing.assert_close(
        resize_batch(constant, 12), torch.full_like(torch.empty(1, 3, 12, 12), 0.3)
    )


def test_fixed_stats():
    mean, std = fixed_stats("imagenet", None)
    np.testing.assert_allclose(mean, IMAGENET_MEAN)
    assert fixed_stats("auto", nn.Linear(1, 1)) is None
    np.testing.assert_allclose(fixed_stats("auto", _TimmLike())[1], [0.25] * 3)
    assert fixed_stats(((0.5,), (0.5,)), None)[0].tolist() == [0.5]
    assert fixed_stats(True, None) is None
    with pytest.raises(ValueError, match="positive standard deviation"):
        fixed_stats(((0.5, 0.5), (0.5, 0.0)), None)


class _RecordShape(_TinyNet):
    def forward(self, X):
        self.seen = tuple(X.shape[1:])
        return super().forward(X)


def test_imagenet_normalisation_and_resize_reach_the_module(images):
    X, y = images
    clf = DivideMixClassifier(
        _RecordShape(3), **FAST, normalize="imagenet", input_size=20
    ).fit(X, y)
    np.testing.assert_allclose(clf.input_mean_, IMAGENET_MEAN)
    assert clf.net1_.module_.seen == (3, 20, 20)
    clf.predict(X[:2])
    assert clf.net1_.module_.seen == (3, 20, 20)
    # the ImageNet statistics replace the data's: applied once
    batch = clf._prediction_source(X[:1])
    first = next(iter(batch.stream(1)))
    expected = (X[:1].transpose(0, 3, 1, 2) / 255.0 - 0.485) / 0.229
    np.testing.assert_allclose(first[0, 0].cpu().numpy(), expected[0, 0], atol=1e-5)


def test_input_size_resizes_an_image_folder_of_mixed_sizes(images, tmp_path):
    from PIL import Image
    from torchvision.datasets import ImageFolder

    X, y = images
    sizes = [(12, 12), (20, 14), (9, 17), (30, 30)]
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        folder = tmp_path / f"class_{label}"
        folder.mkdir(exist_ok=True)
        width, height = sizes[i % len(sizes)]
        Image.fromarray(image).resize((width, height)).save(folder / f"{i:02d}.png")
    dataset = ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="different shapes.*Set input_size"):
        DivideMixClassifier(_RecordShape(3), **FAST).fit(dataset)
    clf = DivideMixClassifier(_RecordShape(3), **FAST, input_size=10).fit(dataset)
    assert clf.input_shape_ == (10, 10, 3) and clf.image_layout_ == "NHWC"
    assert clf.net1_.module_.seen == (3, 10, 10)
    assert clf.predict(dataset).shape == (16,)
    # with an input_size, prediction takes images of any size (here 12x12)
    assert clf.predict_proba(X[:3]).shape == (3, 3)
    assert clf.net1_.module_.seen == (3, 10, 10)


def test_timm_normalisation_is_the_auto_default(images):
    X, y = images
    clf = DivideMixClassifier(_TimmLike(), **FAST).fit(X, y)
    np.testing.assert_allclose(clf.input_mean_, [0.5] * 3)
    assert clf.head_replaced_ == "head"


def test_fixed_normalisation_needs_matching_channels(images):
    X, y = images
    with pytest.raises(ValueError, match="3 channels but the input has 1"):
        DivideMixClassifier(**FAST, normalize="imagenet").fit(X[..., 0], y)


def test_replace_head_forces_or_forbids_a_new_head(images):
    X, y = images
    model = _TinyNet(3)
    forced = DivideMixClassifier(model, **FAST, replace_head=True).fit(X, y)
    assert forced.head_replaced_ == "fc"
    assert not torch.equal(forced.net1_.module_.fc.weight, model.fc.weight)
    kept = DivideMixClassifier(model, **FAST).fit(X, y)
    assert kept.head_replaced_ is None
    with pytest.raises(ValueError, match=r"returned shape \(8, 10\)"):
        DivideMixClassifier(_pretrained_tiny(), **FAST, replace_head=False).fit(X, y)


# -- frozen features ----------------------------------------------------------


def test_frozen_features_embed_with_the_backbone_and_leave_it_alone(images):
    X, y = images
    model = _pretrained_tiny()
    before = _state(model)
    features = FrozenFeatures(model, input_size=8).fit(X)
    out = features.transform(X)
    assert out.shape == (16, 4) and out.dtype == np.float32
    np.testing.assert_allclose(features.transform(X), out)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(features.backbone_.fc, nn.Identity)
    # the same as the backbone by hand: ImageNet statistics, then resize
    x = torch.from_numpy(X).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor((0.229, 0.224, 0.225))[:, None, None]
    with torch.inference_mode():
        expected = model.eval().features(resize_batch((x - mean) / std, 8))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_frozen_features_then_dividemix_in_a_pipeline(images):
    X, y = images
    pipe = make_pipeline(
        FrozenFeatures(_TimmLike(), normalize="auto"),
        DivideMixClassifier(**FAST, normalize=True),
    ).fit(X, y)
    assert pipe.predict(X).shape == (16,)
    np.testing.assert_allclose(pipe[0].input_mean_, [0.5] * 3)
    assert pipe[0].transform(X).shape == (16, 3)


def test_frozen_features_need_a_head_to_remove(images):
    with pytest.raises(ValueError, match="No classification head found"):
        FrozenFeatures(_Headless()).fit(images[0])


class _Wide(_TinyNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.features.append(nn.Linear(4, 8192))
        self.fc = nn.Linear(8192, num_classes)


def test_a_pickled_net_holds_the_weights_once(images):
    X, y = images
    clf = DivideMixClassifier(_Wide(), **FAST).fit(X, y)
    weights = sum(p.numel() * 4 for p in clf.net1_.module_.parameters())
    assert len(pickle.dumps(clf.net1_)) < 1.5 * weights
    restored = pickle.loads(pickle.dumps(clf.net1_))
    assert restored.module is restored.module_
