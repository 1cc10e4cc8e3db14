"""Default modules: output shapes, dropout and sizes counted by hand."""

import pytest
import torch
from torch import nn

from sklearn_dividemix import MLPClassifierModule, SmallCNNClassifierModule


def _n_parameters(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("n_features, num_classes", [(1, 2), (7, 3), (64, 10)])
def test_mlp_output_shape(n_features, num_classes):
    module = MLPClassifierModule(n_features, num_classes)
    X = torch.rand(5, n_features, generator=torch.Generator().manual_seed(0))
    assert module(X).shape == (5, num_classes)


@pytest.mark.parametrize(
    "hidden_units, n_hidden_layers, expected",
    [
        # 10*128+128 + 128*128+128 + 128*3+3
        (128, 2, 1408 + 16512 + 387),
        # 10*16+16 + 16*3+3
        (16, 1, 176 + 51),
        # no hidden layer: logistic regression, 10*3+3
        (16, 0, 33),
    ],
)
def test_mlp_parameter_count(hidden_units, n_hidden_layers, expected):
    module = MLPClassifierModule(
        10, 3, hidden_units=hidden_units, n_hidden_layers=n_hidden_layers
    )
    assert _n_parameters(module) == expected


@pytest.mark.parametrize("dropout, n_dropout", [(0.0, 0), (0.5, 3)])
def test_mlp_dropout_layers(dropout, n_dropout):
    module = MLPClassifierModule(4, 2, n_hidden_layers=3, dropout=dropout)
    dropouts = [m for m in module.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == n_dropout
    assert all(m.p == dropout for m in dropouts)


def test_dropout_is_random_in_training_and_off_in_eval():
    module = MLPClassifierModule(8, 3, dropout=0.5)
    X = torch.rand(16, 8, generator=torch.Generator().manual_seed(0))
    module.train()
    assert not torch.equal(module(X), module(X))
    module.eval()
    assert torch.equal(module(X), module(X))


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [(4, 4), (5, 7), (8, 8), (28, 28), (32, 32)])
def test_cnn_output_shape(in_channels, size):
    module = SmallCNNClassifierModule(in_channels, 10, width=4)
    X = torch.rand(2, in_channels, *size, generator=torch.Generator().manual_seed(0))
    assert module(X).shape == (2, 10)
    module.eval()
    assert module(X[:1]).shape == (1, 10)


@pytest.mark.parametrize(
    "in_channels, width, num_classes, expected",
    [
        # convs 3*16*9 + 16*32*9 + 32*64*9, batch norms 2*(16+32+64), head 64*10+10
        (3, 16, 10, 432 + 4608 + 18432 + 224 + 650),
        (1, 16, 10, 144 + 4608 + 18432 + 224 + 650),
        # 1*4*9 + 4*8*9 + 8*16*9, 2*(4+8+16), 16*2+2
        (1, 4, 2, 36 + 288 + 1152 + 56 + 34),
    ],
)
def test_cnn_parameter_count(in_channels, width, num_classes, expected):
    module = SmallCNNClassifierModule(in_channels, num_classes, width=width)
    assert _n_parameters(module) == expected


def test_cnn_costs_about_two_million_multiply_adds_on_28x28():
    """The docstring's cost claim, counted on the convolutions' outputs."""
    module = SmallCNNClassifierModule(1, 10)
    macs = []

    def count(conv, inputs, output):
        per_output = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        macs.append(output[0].numel() * per_output)

    for conv in (m for m in module.modules() if isinstance(m, nn.Conv2d)):
        conv.register_forward_hook(count)
    module.eval()
    module(torch.zeros(1, 1, 28, 28))
    # 28*28*16*9 + 14*14*32*16*9 + 7*7*64*32*9
    assert macs == [112896, 903168, 903168]
    assert 1.5e6 < sum(macs) < 2.5e6


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_cnn_dropout_option(dropout):
    module = SmallCNNClassifierModule(3, 5, width=4, dropout=dropout)
    (layer,) = [m for m in module.modules() if isinstance(m, nn.Dropout)]
    assert layer.p == dropout
    X = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    module.eval()
    assert torch.equal(module(X), module(X))
