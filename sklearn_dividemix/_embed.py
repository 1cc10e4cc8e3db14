"""The fast route on a CPU: embed once with a frozen backbone.

Fine-tuning a pretrained network with DivideMix runs it forward seven times
per sample and step; on a CPU that is hours for a ResNet. Its penultimate
features are often nearly as good: embed every image once, then run
DivideMix (its MLP) on the vectors, in seconds::

    make_pipeline(FrozenFeatures(resnet), DivideMixClassifier())
"""

from __future__ import annotations

import copy
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from ._data import ArraySource
from ._layout import Preprocess, RunningMoments, channels_first_shape, resolve_layout
from ._pretrained import find_head, unwrap_logits
from ._pretrained_input import fixed_stats, resize_batch
from ._setup import resolve_device

__all__ = ["FrozenFeatures"]


def strip_head(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose forward returns its penultimate features.

    timm models drop their head with ``reset_classifier(0)``; others get an
    ``nn.Identity`` in place of the head :func:`~._pretrained.find_head`
    finds.
    """
    model = copy.deepcopy(model)
    if callable(getattr(model, "reset_classifier", None)):
        model.reset_classifier(0)
        return model
    found = find_head(model)
    if found is None:
        raise ValueError(
            f"No classification head found in {type(model).__name__} (an "
            "nn.Linear at fc, classifier, classifier[-1], heads.head or head): "
            "pass a module that returns features, e.g. with its last layer set "
            "to torch.nn.Identity()."
        )
    parent_name, _, child = found[0].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Identity())
    return model


class FrozenFeatures(TransformerMixin, BaseEstimator):
    """Embed images with a frozen pretrained network, for DivideMix on vectors.

    The network's classification head is removed (replaced by an identity,
    or timm's ``reset_classifier(0)``) and each image batch is converted as
    :class:`DivideMixClassifier` converts it (layout, uint8 to [0, 1], the
    network's normalisation, resize), then run once through the backbone in
    eval mode. The weights are never trained.

    Read more in the :doc:`User Guide </fine_tuning>`.

    Parameters
    ----------
    module : torch.nn.Module
        A pretrained classifier (torchvision, timm, Hugging Face) or a module
        that returns features. It is copied, never modified.
    normalize : 'auto', 'imagenet', (mean, std) or bool, default='imagenet'
        Per-channel standardisation of input scaled to [0, 1]:
        ``'imagenet'``, a ``(mean, std)`` pair, ``'auto'`` (a timm model's
        ``pretrained_cfg``, else the data's statistics learnt in fit),
        ``True`` (the data's), ``False`` (none).
    input_size : int or None, default=None
        Side of the square images the network expects; images are resized
        (shorter side, then a centre crop). None keeps their size.
    image_layout : {'auto', 'NCHW', 'NHWC'}, default='auto'
        Axis order of the images, as in :class:`DivideMixClassifier`.
    batch_size : int, default=256
        Images per forward pass.
    device : str, default='auto'
        ``'auto'`` is CUDA when available, else the CPU.

    Attributes
    ----------
    backbone_ : torch.nn.Module
        The copy of ``module`` without its head, in eval mode.
    input_mean_, input_std_ : ndarray of shape (n_channels,) or None
        The standardisation applied.
    n_features_in_ : int
        Number of channels of the images seen in fit.
    input_shape_ : tuple of int
        Shape of one image as given in fit.

    See Also
    --------
    DivideMixClassifier : Fits on the features, or fine-tunes the network.

    Examples
    --------
    >>> import numpy as np
    >>> from torchvision.models import resnet18
    >>> from sklearn_dividemix import FrozenFeatures
    >>> X = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    >>> FrozenFeatures(resnet18()).fit_transform(X).shape
    (4, 512)
    """

    _parameter_constraints: dict = {
        "module": [nn.Module],
        "normalize": [StrOptions({"auto", "imagenet"}), "boolean", tuple],
        "input_size": [Interval(Integral, 1, None, closed="left"), None],
        "image_layout": [StrOptions({"auto", "NCHW", "NHWC"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
    }

    def __init__(
        self,
        module,
        *,
        normalize="imagenet",
        input_size=None,
        image_layout="auto",
        batch_size=256,
        device="auto",
    ):
        self.module = module
        self.normalize = normalize
        self.input_size = input_size
        self.image_layout = image_layout
        self.batch_size = batch_size
        self.device = device

    def _stats(self, X: np.ndarray, layout: str) -> tuple:
        stats = fixed_stats(self.normalize, self.module)
        if stats is not None or self.normalize is False:
            return stats if stats is not None else (None, None)
        running = RunningMoments()
        for batch in ArraySource(X, Preprocess(layout), "cpu").stream(self.batch_size):
            running.update(batch)
        return running.result()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Copy the network without its head and learn the input conversion.

        Parameters
        ----------
        X : array-like of shape (n_samples, channels, height, width), \
                (n_samples, height, width, channels) or \
                (n_samples, height, width)
            Images, uint8 (0-255) or float in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        X = validate_data(self, X, dtype=[np.float32, np.uint8], allow_nd=True)
        layout = resolve_layout(X.shape[1:], self.image_layout)
        if layout is None:
            raise ValueError(
                f"FrozenFeatures embeds images; got feature vectors of shape {X.shape}."
            )
        self.input_shape_ = tuple(X.shape[1:])
        self.n_features_in_ = channels_first_shape(self.input_shape_, layout)[0]
        self.input_mean_, self.input_std_ = self._stats(X, layout)
        self.device_ = resolve_device(self.device)
        self.backbone_ = strip_head(self.module).to(self.device_).eval()
        self.backbone_.requires_grad_(False)
        return self

    def transform(self, X):
        """Features of each image: one forward pass of the frozen backbone.

        Parameters
        ----------
        X : array-like of images
            As in ``fit``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        # images: n_features_in_ is their channel count, not X.shape[1]
        X = check_array(X, dtype=[np.float32, np.uint8], allow_nd=True)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has images of shape {X.shape[1:]}; FrozenFeatures was "
                f"fitted on {self.input_shape_}."
            )
        layout = resolve_layout(self.input_shape_, self.image_layout)
        preprocess = Preprocess.build(
            layout, self.input_mean_, self.input_std_, self.device_
        )
        source = ArraySource(X, preprocess, self.device_, keep_on_host=True)
        chunks = []
        with torch.inference_mode():
            for batch in source.stream(self.batch_size):
                output = self.backbone_(resize_batch(batch, self.input_size))
                output = unwrap_logits(self.backbone_, (), output)
                chunks.append(output.flatten(1).float().cpu())
        return torch.cat(chunks).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags
