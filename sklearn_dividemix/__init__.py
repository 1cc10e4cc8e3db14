"""DivideMix for scikit-learn: learn from noisy labels and find the wrong ones."""

from ._classifier import DivideMixClassifier
from ._epochs import DivisionWarning
from ._modules import MLPClassifierModule, SmallCNNClassifierModule
from ._net import DivideMixNet

__version__ = "0.1.0"

__all__ = [
    "DivideMixClassifier",
    "DivideMixNet",
    "DivisionWarning",
    "MLPClassifierModule",
    "SmallCNNClassifierModule",
    "__version__",
]
