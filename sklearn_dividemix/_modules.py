"""Default torch modules, sized from the data: an MLP and a small CNN.

They are what ``module=None`` builds: good enough for tabular data and small
grey or colour images on a CPU. Bring your own module (any factory of
``torch.nn.Module``) for anything serious.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLPClassifierModule", "SmallCNNClassifierModule", "is_built_in"]


class MLPClassifierModule(nn.Module):
    """Multi-layer perceptron returning logits, for 2-D input.

    Parameters
    ----------
    n_features : int
        Number of input features.
    num_classes : int
        Number of output logits.
    hidden_units : int, default=128
        Width of each hidden layer.
    n_hidden_layers : int, default=2
        Number of hidden layers.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    """

    def __init__(
        self,
        n_features: int,
        num_classes: int,
        hidden_units: int = 128,
        n_hidden_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for _ in range(n_hidden_layers):
            layers += [nn.Linear(width, hidden_units), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_units
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.layers(X)


def _conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SmallCNNClassifierModule(nn.Module):
    """Three convolution blocks and a linear head, for (n, C, H, W) input.

    Two max-poolings and a global average pooling make it work on any image
    size from 4x4 up; at 28x28 it costs about 2 million multiply-adds per
    image, small enough for DivideMix's many forward passes on a CPU.

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    num_classes : int
        Number of output logits.
    width : int, default=16
        Channels of the first block; the next ones have 2x and 4x.
    dropout : float, default=0.0
        Dropout probability before the linear head.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(in_channels, width),
            nn.MaxPool2d(2, ceil_mode=True),
            *_conv_block(width, 2 * width),
            nn.MaxPool2d(2, ceil_mode=True),
            *_conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(4 * width, num_classes)
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(X))


def is_built_in(module: object) -> bool:
    """Whether ``module`` is one of this package's networks: None (built from
    the data), one of their classes, or an instance of one (a built-in
    network pretrained by the user). Their defaults (``lr='auto'``) follow
    the architecture, not whether it starts from trained weights."""
    built_in = (MLPClassifierModule, SmallCNNClassifierModule)
    if module is None:
        return True
    if isinstance(module, type):
        return issubclass(module, built_in)
    return isinstance(module, built_in)
