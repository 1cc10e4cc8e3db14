"""Pretrained networks in: a copy per net, a head sized to the classes.

A user who starts from pretrained weights passes a module *instance* (or a
factory that loads weights) whose classification head has as many outputs as
the pretraining task had classes. Each net gets its own deep copy (the
instance, a scikit-learn parameter, is never modified); a head of the wrong
size is replaced by a fresh ``nn.Linear`` drawn from a seeded
``torch.Generator``, so that the two nets start from the same backbone but
different heads, as in the paper's Clothing1M runs.

Where the head is found, in order: timm's ``reset_classifier`` (the model
knows its own head), then the attributes torchvision and Hugging Face image
classifiers use (``fc``, ``classifier`` or ``classifier[-1]``, ``heads.head``,
``head``), then the last layer of a plain ``nn.Sequential``.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._modules import MLPClassifierModule, SmallCNNClassifierModule

if TYPE_CHECKING:
    from ._net import DivideMixNet

__all__ = [
    "HEAD_ATTRIBUTES",
    "PreparedModule",
    "check_headless_output",
    "find_head",
    "module_and_kwargs",
    "prepare_module",
    "unwrap_logits",
]

# Attributes that hold the classification head in torchvision (fc: ResNet,
# RegNet; classifier: VGG, MobileNet, EfficientNet, ConvNeXt, DenseNet;
# heads: ViT; head: Swin) and in Hugging Face image classifiers (classifier).
HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head", "last_linear")


@dataclass
class PreparedModule:
    """One net's module, and what was done to fit it to the classes.

    Attributes
    ----------
    module : nn.Module
        The module to train (a copy when an instance was given).
    head : str or None
        Dotted name of the classification head (``'fc'``,
        ``'classifier.3'``, ...); None when none was found.
    head_replaced : bool
        True when the head was replaced by a fresh one of ``n_classes``
        outputs.
    """

    module: nn.Module
    head: str | None
    head_replaced: bool


def _last_linear(container: nn.Module, prefix: str) -> tuple[str, nn.Linear] | None:
    if isinstance(container, nn.Linear):
        return prefix, container
    if isinstance(container, nn.Sequential) and len(container) > 0:
        name, last = list(container.named_children())[-1]
        if isinstance(last, nn.Linear):
            return f"{prefix}.{name}" if prefix else name, last
    return None


def find_head(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The dotted name and the ``nn.Linear`` of ``model``'s classification head.

    Parameters
    ----------
    model : nn.Module
        A torchvision, timm or Hugging Face classifier, or a plain
        ``nn.Sequential`` ending in a linear layer.

    Returns
    -------
    head : tuple of (str, nn.Linear) or None
        None when no linear head is found (a convolutional head such as
        SqueezeNet's, or a model of unknown structure).
    """
    for attribute in HEAD_ATTRIBUTES:
        found = _last_linear(getattr(model, attribute, None), attribute)
        if found is not None:
            return found
    # timm's ClassifierHead (and NormMlpClassifierHead) keep their Linear in .fc
    found = _last_linear(getattr(getattr(model, "head", None), "fc", None), "head.fc")
    if found is not None:
        return found
    if isinstance(model, nn.Sequential):
        return _last_linear(model, "")
    return None


def _fresh_linear(
    old: nn.Linear, n_classes: int, generator: torch.Generator
) -> nn.Linear:
    """A new head of ``n_classes`` outputs, drawn from ``generator``.

    PyTorch's own ``nn.Linear`` initialisation (uniform in +-1/sqrt(fan_in)),
    drawn on the CPU from a seeded generator rather than the global stream.
    """
    weight = old.weight
    head = nn.Linear(old.in_features, n_classes, bias=old.bias is not None)
    bound = 1.0 / math.sqrt(old.in_features) if old.in_features > 0 else 0.0
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=generator)
        if head.bias is not None:
            head.bias.uniform_(-bound, bound, generator=generator)
    return head.to(device=weight.device, dtype=weight.dtype)


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _timm_head(model: nn.Module) -> str | None:
    """Dotted name of a timm model's head, from its pretrained config."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = cfg.get("classifier") if isinstance(cfg, dict) else None
    return name if isinstance(name, str) else None


def _reset_timm_head(
    model: nn.Module, n_classes: int, generator: torch.Generator
) -> str | None:
    """timm's ``reset_classifier``, then the new head redrawn from ``generator``.

    timm initialises the new head from the global random stream; redrawing it
    from the net's generator keeps the fit reproducible and the nets distinct.
    """
    model.reset_classifier(n_classes)
    name = _timm_head(model)
    head = model.get_submodule(name) if name else None
    if not isinstance(head, nn.Linear):
        found = find_head(model)
        name, head = found if found is not None else (name, None)
    if isinstance(head, nn.Linear):
        _set_submodule(model, name, _fresh_linear(head, n_classes, generator))
    return name


def _head_out_features(model: nn.Module) -> int | None:
    """Outputs of a timm model's head (``num_classes``), or of the head found."""
    if hasattr(model, "reset_classifier") and hasattr(model, "num_classes"):
        return int(model.num_classes)
    found = find_head(model)
    return None if found is None else found[1].out_features


def fit_head(
    model: nn.Module,
    n_classes: int,
    generator: torch.Generator,
    replace: str | bool = "auto",
) -> tuple[str | None, bool]:
    """Replace ``model``'s head in place when it has not ``n_classes`` outputs.

    ``replace=True`` replaces it whatever its size (a new task with as many
    classes as the pretraining one), ``False`` never. Returns the head's
    dotted name (None when none was found) and whether it was replaced.
    """
    keep = _head_out_features(model) == n_classes if replace == "auto" else not replace
    if keep:
        found = find_head(model)
        name = _timm_head(model) or (found[0] if found is not None else None)
        return name, False
    if callable(getattr(model, "reset_classifier", None)):
        return _reset_timm_head(model, n_classes, generator), True
    found = find_head(model)
    if found is None:
        return None, False
    name, old = found
    _set_submodule(model, name, _fresh_linear(old, n_classes, generator))
    return name, True


def unwrap_logits(module: nn.Module, args: tuple, output: object) -> object:
    """Forward hook: the ``.logits`` of a Hugging Face model's output object.

    Registered on every module of the user's, so that a model returning
    ``ImageClassifierOutput`` trains like one returning a tensor; other
    outputs pass through unchanged. A module-level function, so that fitted
    estimators pickle.
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else output


def _has_hook(module: nn.Module) -> bool:
    return any(hook is unwrap_logits for hook in module._forward_hooks.values())


def prepare_module(
    source: nn.Module | Callable[..., nn.Module],
    kwargs: dict,
    n_classes: int | None,
    seed: int,
    replace_head: str | bool = "auto",
) -> PreparedModule:
    """One net's module: built or copied, its head fitted to ``n_classes``.

    Parameters
    ----------
    source : nn.Module or callable
        A module instance (deep-copied, never modified) or a factory called
        with ``kwargs``.
    kwargs : dict
        Factory arguments (``module__*`` and ``num_classes``); must be empty
        for an instance.
    n_classes : int or None
        Number of classes of ``y``; None leaves the head as it is.
    seed : int
        Seed of the generator a replaced head is drawn from.
    replace_head : 'auto' or bool, default='auto'
        Replace the head when its size is not ``n_classes`` (``'auto'``),
        always (True) or never (False).

    Returns
    -------
    prepared : PreparedModule
    """
    if isinstance(source, nn.Module):
        if kwargs:
            names = sorted(f"module__{k}" for k in kwargs)
            raise TypeError(
                f"{names} cannot be used with a module instance "
                f"({type(source).__name__}): it is copied as it is. Pass a "
                "factory (a class or functools.partial) to set its arguments."
            )
        model = copy.deepcopy(source)
    else:
        model = source(**kwargs)
    if not isinstance(model, nn.Module):
        return PreparedModule(model, None, False)
    if n_classes is None:
        found = find_head(model)
        return PreparedModule(model, found and found[0], False)
    generator = torch.Generator().manual_seed(int(seed))
    head, replaced = fit_head(model, n_classes, generator, replace_head)
    # the built-in modules return tensors: no hook on their every call
    built_in = isinstance(model, MLPClassifierModule | SmallCNNClassifierModule)
    if not built_in and not _has_hook(model):
        model.register_forward_hook(unwrap_logits)
    return PreparedModule(model, head, replaced)


def _accepts_num_classes(factory: Callable) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    if "num_classes" in parameters:
        return True
    # torchvision's model builders take num_classes through **kwargs
    return any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _loads_weights(factory: Callable) -> bool:
    """A ``functools.partial`` given pretrained weights (torchvision's
    ``weights=``, timm's ``pretrained=True``): torchvision refuses a
    ``num_classes`` other than the weights' own, so its head is replaced."""
    keywords = getattr(factory, "keywords", None)
    if not isinstance(keywords, dict):
        return False
    return any(keywords.get(name) not in (None, False) for name in _WEIGHT_KEYWORDS)


_WEIGHT_KEYWORDS = ("weights", "pretrained")


def module_and_kwargs(
    module: nn.Module | Callable | None, input_shape: tuple[int, ...], n_classes: int
) -> tuple[nn.Module | Callable, dict]:
    """The module (instance or factory) and the arguments the data decides.

    A pretrained module (an instance, or a factory given weights) gets none:
    its head is fitted to the classes when each net's copy is made.
    """
    if module is None:
        if len(input_shape) == 1:
            return MLPClassifierModule, {
                "n_features": input_shape[0],
                "num_classes": n_classes,
            }
        return SmallCNNClassifierModule, {
            "in_channels": input_shape[0],
            "num_classes": n_classes,
        }
    if isinstance(module, nn.Module) or _loads_weights(module):
        return module, {}
    if _accepts_num_classes(module):
        return module, {"num_classes": n_classes}
    return module, {}


def check_headless_output(net: DivideMixNet, shape: tuple, n_classes: int) -> None:
    """A module instance without a head found must give ``n_classes`` logits.

    Its head cannot be replaced, so a pretrained model of unknown structure
    with the pretraining task's outputs fails here, saying what to do. A
    module that fails on zeros is left to the first-batch check.
    """
    probe = torch.zeros((2, *shape), device=net.device)
    net._set_training(False)
    try:
        with torch.inference_mode():
            output = net.module_(net.to_device_input(probe))
    except Exception:
        return
    if isinstance(output, torch.Tensor) and output.ndim == 2:
        if output.shape[1] != n_classes:
            raise ValueError(
                f"The module returns {output.shape[1]} logits for {n_classes} "
                f"classes, and no classification head was found in its "
                f"{type(net.module_).__name__} to replace (an nn.Linear at fc, "
                "classifier, classifier[-1], heads.head or head, or timm's "
                "reset_classifier). Replace its last layer yourself, e.g. "
                f"model.fc = nn.Linear(model.fc.in_features, {n_classes}), or "
                "pass a factory that takes num_classes."
            )
