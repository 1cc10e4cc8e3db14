"""What a fit builds before training: device, modules, nets, first-batch checks.

Kept apart from the estimator so that each rule (which device, which module
arguments, which optimizer defaults) is one small function with one test.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from torch import nn

from ._augment import check_augmented
from ._callbacks import check_callbacks, per_net_callbacks
from ._data import check_loader_params, is_dataset
from ._finetune import finetune_params
from ._inputs import FitInput, InputSettings, read_fit_input
from ._modules import is_built_in
from ._net import DivideMixNet
from ._pretrained import check_headless_output, module_and_kwargs, prepare_module
from ._pretrained_input import check_stats_channels, fixed_stats

__all__ = [
    "build_net",
    "build_nets",
    "check_module_output",
    "input_settings",
    "resolve_device",
    "validate_training_data",
]

_NET_PREFIXES = ("module__", "optimizer__", "callbacks__", "compile__")
_LOADER_PREFIXES = ("iterator_train__", "iterator_valid__")
_ROUTED_PREFIXES = _NET_PREFIXES + _LOADER_PREFIXES


def resolve_device(device: str | torch.device) -> str:
    """``'auto'`` is CUDA when present; CUDA asked for but absent falls back."""
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InvalidParameterError(
            "The 'device' parameter of DivideMixClassifier must be 'auto' or a "
            f"torch device such as 'cpu' or 'cuda:0'. Got {device!r} instead."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={str(device)!r} was requested but CUDA is not available; "
            "training on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return "cpu"
    return str(resolved)


def check_routed_params(params: dict) -> None:
    """Reject keyword arguments that skorch would not know where to route."""
    unknown = sorted(k for k in params if not k.startswith(_ROUTED_PREFIXES))
    if unknown:
        raise TypeError(
            f"Got unexpected parameter(s) {unknown}. Extra keyword parameters "
            f"must start with one of {list(_ROUTED_PREFIXES)}, e.g. "
            "module__hidden_units=64 or optimizer__momentum=0.9."
        )


def net_params(routed: dict) -> dict:
    """The routed parameters skorch's net takes (not the loaders')."""
    return {k: v for k, v in routed.items() if k.startswith(_NET_PREFIXES)}


def loader_params(routed: dict, prefix: str) -> dict:
    """``iterator_train__*`` or ``iterator_valid__*`` as DataLoader keywords."""
    params = {k[len(prefix) :]: v for k, v in routed.items() if k.startswith(prefix)}
    return check_loader_params(params, prefix)


def optimizer_defaults(optimizer: Callable, routed: dict) -> dict:
    """The paper's momentum 0.9 and weight decay 5e-4 for SGD, unless set."""
    if optimizer is not torch.optim.SGD:
        return {}
    defaults = {"optimizer__momentum": 0.9, "optimizer__weight_decay": 5e-4}
    return {k: v for k, v in defaults.items() if k not in routed}


def _module_name(module: nn.Module | Callable) -> str:
    if isinstance(module, nn.Module):
        return f"instance of {type(module).__name__}"
    return getattr(module, "__name__", repr(module))


def build_net(
    *,
    module: nn.Module | Callable,
    module_kwargs: dict,
    routed: dict,
    optimizer: Callable,
    lr: float,
    batch_size: int,
    callbacks: list | None,
    device: str,
    amp: str | None,
    channels_last: bool,
    compile: bool,
    seed: int,
    n_classes: int | None = None,
    backbone_lr_ratio: float | str = "auto",
    freeze_backbone_epochs: int = 0,
    input_size: int | None = None,
    replace_head: str | bool = "auto",
) -> DivideMixNet:
    """Build and initialise one skorch net; ``seed`` fixes its weights.

    The module is built (or an instance copied) here, its head fitted to
    ``n_classes`` (when given), and handed to skorch ready-made. The seed is
    applied inside ``fork_rng`` so that the caller's global torch random
    state is left as it was. The net's ``head_`` and ``head_replaced_`` say
    which head was found and whether it was replaced.
    """
    prefix = "module__"
    kwargs = {**module_kwargs}
    kwargs.update(
        {k[len(prefix) :]: v for k, v in routed.items() if k.startswith(prefix)}
    )
    params = optimizer_defaults(optimizer, routed)
    params.update({k: v for k, v in routed.items() if not k.startswith(prefix)})
    cuda_devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        try:
            prepared = prepare_module(module, kwargs, n_classes, seed, replace_head)
            if not isinstance(prepared.module, nn.Module):
                raise TypeError(
                    "module must return a torch.nn.Module; calling it returned "
                    f"{type(prepared.module).__name__}."
                )
            net_lr, finetune, extra_callbacks = finetune_params(
                prepared, lr, backbone_lr_ratio, freeze_backbone_epochs, routed
            )
            params.update(finetune)
            net = DivideMixNet(
                module=prepared.module,
                optimizer=optimizer,
                lr=net_lr,
                batch_size=batch_size,
                train_split=None,
                callbacks=copy.deepcopy(callbacks or []) + extra_callbacks,
                device=device,
                amp=amp,
                channels_last=channels_last,
                compile=compile,
                input_size=input_size,
                verbose=0,
                **params,
            )
            net.initialize()
        except Exception as exc:
            optimizer_name = getattr(optimizer, "__name__", repr(optimizer))
            exc.add_note(
                f"sklearn_dividemix: building the net (module {_module_name(module)}, "
                f"optimizer {optimizer_name}, callbacks) from its module__*/"
                "optimizer__*/callbacks__* arguments failed."
            )
            raise
    net.head_, net.head_replaced_ = prepared.head, prepared.head_replaced
    return net


def check_module_output(
    net: DivideMixNet, batch: torch.Tensor, n_classes: int, augment: Callable
) -> None:
    """Run the first batch through the augmentation and the module.

    Catches the common mistakes (a module that returns features instead of
    logits, a tuple, the wrong number of classes, probabilities instead of
    logits, an augmentation that changes shapes) before any training, with a
    message that shows what was received.
    """
    check_augmented(batch, augment(batch))
    net._set_training(False)
    try:
        with torch.inference_mode():
            output = net.module_(net.to_device_input(batch))
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        # A wrong-size first layer fails deep in torch ("mat1 and mat2 shapes
        # cannot be multiplied"); say what the module was given.
        raise ValueError(_input_mismatch_message(batch)) from exc
    if not isinstance(output, torch.Tensor):
        raise ValueError(
            "The module must return a tensor of logits of shape (batch, "
            f"n_classes); it returned {type(output).__name__}."
        )
    if output.ndim != 2 or output.shape[1] != n_classes:
        raise ValueError(
            "The module must return logits of shape (batch, n_classes) = "
            f"({len(batch)}, {n_classes}); it returned shape "
            f"{tuple(output.shape)}. Set module__num_classes={n_classes} or "
            "fix the module's last layer."
        )
    if looks_like_probabilities(output):
        raise ValueError(
            "The module must return logits, but its output looks like "
            "probabilities (non-negative rows that sum to 1): it probably ends "
            "in a softmax. DivideMix applies the softmax itself; a softmax "
            "applied twice flattens every prediction and the nets train to "
            "chance. Remove the final Softmax layer."
        )


def _input_mismatch_message(batch: torch.Tensor) -> str:
    shape = tuple(batch.shape)
    if batch.ndim == 2:
        expects = (
            f"its first layer must take {shape[1]} features (e.g. "
            f"module__in_features={shape[1]})"
        )
    else:
        expects = (
            f"its first layer must take {shape[1]} input channels (e.g. "
            f"module__in_channels={shape[1]}) and images of {shape[2]}x"
            f"{shape[3]} pixels; if the channels were misread, set "
            "image_layout='NCHW' or 'NHWC'"
        )
    kind = "(batch, n_features)" if batch.ndim == 2 else "(batch, C, H, W)"
    return (
        "The module failed on the first batch of training input, of shape "
        f"{shape} {kind}, channels first after the layout conversion: "
        f"{expects}. Set the module's arguments with module__<name>=value; "
        "the original error is above."
    )


def looks_like_probabilities(output: torch.Tensor) -> bool:
    """Non-negative rows summing to 1: a softmax output, not logits.

    Log-probabilities (a final ``LogSoftmax``) are *not* flagged: they differ
    from logits by a per-row constant, which the softmax of every loss here
    cancels, so they train exactly as the logits would.
    """
    output = output.detach().float()
    if output.shape[1] < 2 or not bool((output >= 0).all()):
        return False
    sums = output.sum(dim=1)
    return bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3))


def check_fit_params(estimator) -> None:
    """Checks across parameters that ``_parameter_constraints`` cannot express."""
    routed = estimator._routed_params()
    if "warm_start" in routed:
        # Named before the generic "unexpected parameter" error: the user
        # asked for a feature, not a spelling.
        raise InvalidParameterError(
            "DivideMixClassifier does not support warm_start (nor partial_fit): "
            "every fit starts both nets from scratch, with a warm-up and new "
            "divisions. To continue an interrupted fit, use checkpoint_dir=...; "
            "to train longer, raise max_epochs and fit again."
        )
    check_routed_params(routed)
    check_callbacks(estimator.callbacks)
    warmup = estimator.warmup_epochs
    if warmup != "auto" and warmup > estimator.max_epochs:
        raise InvalidParameterError(
            "The 'warmup_epochs' parameter of DivideMixClassifier must be "
            f"'auto' or an int in the range [0, max_epochs={estimator.max_epochs}]. "
            f"Got {warmup!r} instead; the default 'auto' fits any budget."
        )


def input_settings(estimator) -> InputSettings:
    """How the estimator's parameters say input is read."""
    routed = estimator._routed_params()
    return InputSettings(
        image_layout=estimator.image_layout,
        normalize=estimator.normalize,
        jitter=estimator.augment == "jitter",
        eval_batch_size=estimator.eval_batch_size,
        train_loader_params=loader_params(routed, "iterator_train__"),
        eval_loader_params=loader_params(routed, "iterator_valid__"),
        dataset_keys=getattr(estimator, "dataset_keys", None),
        stats=fixed_stats(estimator.normalize, estimator.module),
        input_size=estimator.input_size,
    )


def validate_training_data(estimator, X, y, device: str):
    """Validate ``fit``'s input; return the fit input, classes and encoded y.

    Arrays go through ``validate_data`` (which sets ``n_features_in_`` and
    ``feature_names_in_``); a torch Dataset is read as it is, its labels taken
    from ``y``, its ``targets`` or one scan, and ``n_features_in_`` is its
    number of channels (or features).
    """
    check_fit_params(estimator)
    settings = input_settings(estimator)
    if is_dataset(X):
        fit_input = read_fit_input(X, y, settings, device)
        estimator.n_features_in_ = fit_input.module_shape[0]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        if len(fit_input.labels) < 2:
            raise ValueError(
                f"Found {len(fit_input.labels)} sample(s) in the Dataset while a "
                "minimum of 2 is required by DivideMixClassifier."
            )
    else:
        # uint8 stays uint8 (converted per batch); anything else is float32.
        X, y = validate_data(
            estimator,
            X,
            y,
            dtype=[np.float32, np.uint8],
            allow_nd=True,
            ensure_min_samples=2,
        )
        fit_input = read_fit_input(X, y, settings, device)
        if fit_input.layout is not None:
            # images: their channel count, whatever the layout
            estimator.n_features_in_ = fit_input.module_shape[0]
    channels = fit_input.module_shape[0] if fit_input.layout is not None else None
    check_stats_channels(settings.stats, channels)
    labels = fit_input.labels
    check_classification_targets(labels)
    classes, y_encoded = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "DivideMixClassifier needs samples of at least 2 classes; got 1 "
            f"class: {classes[0]!r}."
        )
    return fit_input, classes, y_encoded


# lr='auto': the built-in small networks were tuned at 0.1 for short budgets,
# from scratch and pretrained alike (a pretrained small CNN fine-tuned at 0.1
# against 0.02 under DivideMix: +2.5 and +6.7 points on CIFAR-10, +4.0 and
# -2.8 on Fashion-MNIST, docs/fine_tuning.md); deeper networks of the user's
# (ResNets) get the paper's 0.02 (measured on CIFAR-10 with torchvision's
# ResNet-18, see docs/parameters.md).
AUTO_LR_BUILT_IN = 0.1
AUTO_LR_OWN_MODULE = 0.02


def resolve_lr(lr: float | str, module: object) -> float:
    """The learning rate of ``lr='auto'`` for this module, or ``lr`` itself."""
    if lr != "auto":
        return float(lr)
    return AUTO_LR_BUILT_IN if is_built_in(module) else AUTO_LR_OWN_MODULE


def build_nets(estimator, fit_input: FitInput, n_classes, device, amp, seeds):
    """Build the two nets of a fit, one seed each."""
    shape = fit_input.module_shape
    module, module_kwargs = module_and_kwargs(estimator.module, shape, n_classes)
    channels_last = estimator.channels_last
    if channels_last == "auto":
        # oneDNN's CPU pooling and batch norm are several times faster in
        # channels-last; other modules may .view() activations, so the CPU
        # gets it only for the default CNN.
        on_cuda = device.startswith("cuda")
        channels_last = len(shape) == 3 and (on_cuda or estimator.module is None)
    nets = tuple(
        build_net(
            module=module,
            module_kwargs=module_kwargs,
            routed=net_params(estimator._routed_params()),
            optimizer=estimator.optimizer,
            lr=resolve_lr(estimator.lr, estimator.module),
            batch_size=estimator.batch_size,
            callbacks=per_net_callbacks(estimator.callbacks, f"net{i}"),
            device=device,
            amp=amp,
            channels_last=bool(channels_last),
            compile=estimator.compile,
            seed=int(seed),
            n_classes=n_classes,
            backbone_lr_ratio=estimator.backbone_lr_ratio,
            freeze_backbone_epochs=estimator.freeze_backbone_epochs,
            input_size=estimator.input_size,
            replace_head=estimator.replace_head,
        )
        for i, seed in enumerate(seeds, start=1)
    )
    if isinstance(estimator.module, nn.Module) and nets[0].head_ is None:
        check_headless_output(nets[0], shape, n_classes)
    return nets
