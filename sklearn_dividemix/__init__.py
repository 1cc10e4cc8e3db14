"""DivideMix for scikit-learn: learn from noisy labels and find the wrong ones."""

from ._classifier import DivideMixClassifier
from ._division import DivisionWarning
from ._embed import FrozenFeatures
from ._find_issues import find_label_issues
from ._metrics import UnreliableEstimateWarning, estimated_clean_accuracy
from ._modules import MLPClassifierModule, SmallCNNClassifierModule
from ._net import DivideMixNet
from ._noise import CIFAR10_ASYMMETRIC_MAP, make_noisy_labels, noise_transition_matrix
from ._plotting import LossDivisionDisplay, TrainingCurvesDisplay
from ._transition import noise_transition_matrix_estimate
from ._verdict import UntrustedFitWarning

__version__ = "0.1.0"

__all__ = [
    "CIFAR10_ASYMMETRIC_MAP",
    "DivideMixClassifier",
    "DivideMixNet",
    "DivisionWarning",
    "FrozenFeatures",
    "LossDivisionDisplay",
    "MLPClassifierModule",
    "SmallCNNClassifierModule",
    "TrainingCurvesDisplay",
    "UnreliableEstimateWarning",
    "UntrustedFitWarning",
    "__version__",
    "estimated_clean_accuracy",
    "find_label_issues",
    "make_noisy_labels",
    "noise_transition_matrix",
    "noise_transition_matrix_estimate",
]
