"""Fine-tuning controls: a slower backbone and a frozen start.

A pretrained backbone already computes useful features; a fresh head does
not. The usual fear is that the head's first, large and noisy gradients
undo the pretraining; two controls answer it: the backbone can get a
fraction of the learning rate (an optimizer parameter group, which the epoch
loop's warm-up and decay scale like any other) and no updates at all for the
first epochs while the head settles.
"""

from __future__ import annotations

from skorch.callbacks import Callback

__all__ = [
    "AUTO_BACKBONE_LR_RATIO",
    "FreezeBackbone",
    "backbone_lr_ratio",
    "finetune_params",
    "head_param_groups",
]

# backbone_lr_ratio='auto' when a head was replaced. Measured (one seed,
# docs/fine_tuning.md): on the CIFAR-10 0-4 -> 5-9 transfer at symmetric 50 %,
# DivideMix with the whole net at lr reached 66.5 % test accuracy against
# 62.9 % with the backbone at 0.1 lr; with cross-entropy the two were within
# 0.3 points. The paper's Clothing1M runs fine-tune every layer at one rate
# too. 'auto' stays a rule of its own, for when a stronger backbone says
# otherwise.
AUTO_BACKBONE_LR_RATIO = 1.0


def backbone_lr_ratio(ratio: float | str, head_replaced: bool) -> float:
    """The ratio of ``backbone_lr_ratio='auto'``, or ``ratio`` itself.

    ``'auto'`` is :data:`AUTO_BACKBONE_LR_RATIO` under a head that was just
    replaced (measured: 1) and 1 otherwise: a module trained from scratch
    has no pretrained part to protect.
    """
    if ratio != "auto":
        return float(ratio)
    return AUTO_BACKBONE_LR_RATIO if head_replaced else 1.0


def _head_patterns(head: str) -> list[str]:
    # skorch matches parameter names with fnmatch; a compiled module's names
    # carry torch.compile's _orig_mod. prefix.
    return [f"{head}.*", f"_orig_mod.{head}.*"]


def head_param_groups(head: str, lr: float, user_groups: list | None) -> list:
    """skorch ``optimizer__param_groups``: the head at ``lr``.

    The net's own learning rate (the backbone's) is set by the caller; the
    user's groups come first, so that their patterns win, and the head's
    group is first among ours, so that the history's ``lr`` is the head's.
    """
    groups = list(user_groups or [])
    groups += [(pattern, {"lr": lr}) for pattern in _head_patterns(head)]
    return groups


class FreezeBackbone(Callback):
    """Train only the head during the first ``epochs`` epochs.

    Parameters
    ----------
    head : str
        Dotted name of the head module; every other parameter that requires
        gradients is frozen, then released.
    epochs : int
        Number of epochs with a frozen backbone.

    Notes
    -----
    A frozen parameter gets no gradient, so SGD skips it (no weight decay,
    no momentum) and the backward pass stops at the head: these epochs cost
    little more than forward passes. Batch-norm statistics still adapt to
    the new data.
    """

    def __init__(self, head: str, epochs: int) -> None:
        self.head = head
        self.epochs = epochs

    def _backbone(self, net) -> list:
        prefixes = tuple(pattern[:-1] for pattern in _head_patterns(self.head))
        return [
            p
            for name, p in net.module_.named_parameters()
            if not name.startswith(prefixes)
        ]

    def on_train_begin(self, net, **kwargs) -> None:
        # Parameters the user froze stay frozen.
        self.trainable_ = [p for p in self._backbone(net) if p.requires_grad]

    def on_epoch_begin(self, net, **kwargs) -> None:
        # skorch's own on_epoch_begin has added this epoch's row already
        train = len(net.history) > self.epochs
        for p in getattr(self, "trainable_", []):
            p.requires_grad_(train)

    def on_train_end(self, net, **kwargs) -> None:
        for p in getattr(self, "trainable_", []):
            p.requires_grad_(True)
        self.trainable_ = []


def finetune_params(
    prepared, lr: float, ratio: float | str, freeze_epochs: int, routed: dict
) -> tuple[float, dict, list]:
    """The backbone's learning rate, param groups and freezing callback."""
    ratio = backbone_lr_ratio(ratio, prepared.head_replaced)
    if prepared.head is None and (ratio != 1.0 or freeze_epochs > 0):
        raise ValueError(
            "backbone_lr_ratio and freeze_backbone_epochs need the module's "
            "classification head, and none was found (an nn.Linear at fc, "
            "classifier, classifier[-1], heads.head or head, or timm's "
            "reset_classifier). Set optimizer__param_groups=[('<head>.*', "
            "{'lr': ...})] yourself, or leave both at their defaults."
        )
    params, callbacks = {}, []
    if ratio != 1.0:
        user_groups = routed.get("optimizer__param_groups")
        groups = head_param_groups(prepared.head, lr, user_groups)
        params["optimizer__param_groups"] = groups
    if freeze_epochs > 0:
        callbacks = [("freeze_backbone", FreezeBackbone(prepared.head, freeze_epochs))]
    return lr * ratio, params, callbacks
