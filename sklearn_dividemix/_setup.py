"""What a fit builds before training: device, modules, nets, first-batch checks.

Kept apart from the estimator so that each rule (which device, which module
arguments, which optimizer defaults) is one small function with one test.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from torch import nn

from ._augment import check_augmented
from ._modules import MLPClassifierModule, SmallCNNClassifierModule
from ._net import DivideMixNet

__all__ = [
    "build_nets",
    "validate_training_data",
    "build_net",
    "check_module_output",
    "resolve_device",
]

_ROUTED_PREFIXES = ("module__", "optimizer__", "callbacks__", "compile__")


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


def _accepts_num_classes(factory: Callable) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    if "num_classes" in parameters:
        return True
    # torchvision's model builders take num_classes through **kwargs
    return any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def module_and_kwargs(
    module: Callable | None, input_shape: tuple[int, ...], n_classes: int
) -> tuple[Callable, dict]:
    """The module factory and the arguments the data decides."""
    if isinstance(module, nn.Module):
        raise TypeError(
            "module must be a callable that returns a torch.nn.Module (a class, "
            "a factory such as torchvision.models.resnet18, or a "
            f"functools.partial), not an instance of {type(module).__name__}: "
            "two nets with different initial weights are built from it."
        )
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
    if _accepts_num_classes(module):
        return module, {"num_classes": n_classes}
    return module, {}


def optimizer_defaults(optimizer: Callable, routed: dict) -> dict:
    """The paper's momentum 0.9 and weight decay 5e-4 for SGD, unless set."""
    if optimizer is not torch.optim.SGD:
        return {}
    defaults = {"optimizer__momentum": 0.9, "optimizer__weight_decay": 5e-4}
    return {k: v for k, v in defaults.items() if k not in routed}


def build_net(
    *,
    module: Callable,
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
) -> DivideMixNet:
    """Build and initialise one skorch net; ``seed`` fixes its weights.

    The seed is applied inside ``fork_rng`` so that the caller's global torch
    random state is left as it was.
    """
    params = {f"module__{k}": v for k, v in module_kwargs.items()}
    params.update(optimizer_defaults(optimizer, routed))
    params.update(routed)
    net = DivideMixNet(
        module=module,
        optimizer=optimizer,
        lr=lr,
        batch_size=batch_size,
        train_split=None,
        callbacks=copy.deepcopy(callbacks),
        device=device,
        amp=amp,
        channels_last=channels_last,
        compile=compile,
        verbose=0,
        **params,
    )
    cuda_devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        try:
            net.initialize()
        except Exception as exc:
            name = getattr(module, "__name__", repr(module))
            optimizer_name = getattr(optimizer, "__name__", repr(optimizer))
            exc.add_note(
                f"sklearn_dividemix: building the net (module {name}, optimizer "
                f"{optimizer_name}, callbacks) from its module__*/optimizer__*/"
                "callbacks__* arguments failed."
            )
            raise
    if not isinstance(net.module_, nn.Module):
        raise TypeError(
            "module must return a torch.nn.Module; calling it returned "
            f"{type(net.module_).__name__}."
        )
    return net


def check_module_output(
    net: DivideMixNet, X: torch.Tensor, n_classes: int, augment: Callable
) -> None:
    """Run the first batch through the augmentation and the module.

    Catches the common mistakes (a module that returns features instead of
    logits, a tuple, the wrong number of classes, an augmentation that
    changes shapes) before any training, with a message that shows what was
    received.
    """
    batch = X[: min(len(X), 8)]
    check_augmented(batch, augment(batch))
    net._set_training(False)
    with torch.inference_mode():
        output = net.module_(net.to_device_input(batch))
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


def validate_training_data(estimator, X, y):
    """Validate ``fit``'s input; return float32 X, classes and encoded y.

    Sets ``n_features_in_`` (and ``feature_names_in_``) on the estimator, as
    ``validate_data`` does.
    """
    check_routed_params(estimator._routed_params())
    if estimator.warmup_epochs > estimator.max_epochs:
        raise InvalidParameterError(
            "The 'warmup_epochs' parameter of DivideMixClassifier must be an "
            f"int in the range [0, max_epochs={estimator.max_epochs}]. Got "
            f"{estimator.warmup_epochs!r} instead."
        )
    X, y = validate_data(
        estimator, X, y, dtype=np.float32, allow_nd=True, ensure_min_samples=2
    )
    if X.ndim not in (2, 4):
        raise ValueError(
            "X must be 2-D (n_samples, n_features) or 4-D images (n_samples, "
            f"channels, height, width); got an array of shape {X.shape}."
        )
    check_classification_targets(y)
    classes, y_encoded = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "DivideMixClassifier needs samples of at least 2 classes; got 1 "
            f"class: {classes[0]!r}."
        )
    # torch.from_numpy on a read-only array (a memmap) is unsupported
    X = X if X.flags.writeable and X.flags.c_contiguous else np.array(X)
    return X, classes, y_encoded


def build_nets(estimator, X, n_classes, device, amp, seeds):
    """Build the two nets of a fit, one seed each."""
    module, module_kwargs = module_and_kwargs(estimator.module, X.shape[1:], n_classes)
    channels_last = estimator.channels_last
    if channels_last == "auto":
        # oneDNN's CPU pooling and batch norm are several times faster in
        # channels-last; other modules may .view() activations, so the CPU
        # gets it only for the default CNN.
        on_cuda = device.startswith("cuda")
        channels_last = X.ndim == 4 and (on_cuda or estimator.module is None)
    return tuple(
        build_net(
            module=module,
            module_kwargs=module_kwargs,
            routed=estimator._routed_params(),
            optimizer=estimator.optimizer,
            lr=estimator.lr,
            batch_size=estimator.batch_size,
            callbacks=estimator.callbacks,
            device=device,
            amp=amp,
            channels_last=bool(channels_last),
            compile=estimator.compile,
            seed=int(seed),
        )
        for seed in seeds
    )
