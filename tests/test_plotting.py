"""Displays: loss division and training curves, from a fitted estimator."""

import copy
import sys

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.history import History

from sklearn_dividemix import (
    DivideMixClassifier,
    LossDivisionDisplay,
    TrainingCurvesDisplay,
)
from sklearn_dividemix._division import divide_losses
from sklearn_dividemix._plotting import clean_posterior, division_threshold

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

N_SAMPLES = 300
PARAMS = dict(max_epochs=5, warmup_epochs=2, lr=0.1, random_state=0)

# Fits of a few epochs often have a weak split; that warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


@pytest.fixture(scope="module")
def fitted(noisy_digits):
    X, y = noisy_digits["X_train"][:N_SAMPLES], noisy_digits["y_noisy"][:N_SAMPLES]
    return DivideMixClassifier(**PARAMS).fit(X, y)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _bimodal_losses(seed=0):
    rng = np.random.RandomState(seed)
    return np.clip(np.r_[rng.normal(0.2, 0.05, 600), rng.normal(0.7, 0.1, 400)], 0, 1)


# -- the mixture maths -------------------------------------------------------


def test_clean_posterior_matches_gaussian_mixture():
    losses = _bimodal_losses().reshape(-1, 1)
    gmm = GaussianMixture(2, random_state=0).fit(losses)
    order = np.argsort(gmm.means_.ravel())
    grid = np.linspace(0, 1, 50)
    posterior = clean_posterior(
        grid,
        tuple(gmm.means_.ravel()[order]),
        tuple(gmm.covariances_.ravel()[order]),
        tuple(gmm.weights_[order]),
    )
    expected = gmm.predict_proba(grid.reshape(-1, 1))[:, order[0]]
    np.testing.assert_allclose(posterior, expected, atol=1e-10)


@pytest.mark.parametrize("p_threshold", [0.3, 0.5, 0.8])
def test_threshold_separates_labeled_from_unlabeled(p_threshold):
    losses = _bimodal_losses()
    division = divide_losses(losses, random_state=0)
    threshold = division_threshold(
        division.means, division.variances, division.weights, p_threshold
    )
    assert division.means[0] < threshold < division.means[1]
    # away from the grid step, the threshold decides exactly like clean_proba
    clear = np.abs(losses - threshold) > 1e-3
    labeled = division.clean_proba > p_threshold
    np.testing.assert_array_equal(labeled[clear], (losses < threshold)[clear])


@pytest.mark.parametrize(
    "variances, weights", [((0.0, 0.0), (1.0, 0.0)), ((0.01, 0.01), (1.0, 0.0))]
)
def test_degenerate_mixture_has_no_threshold(variances, weights):
    assert division_threshold((0.2, 0.2), variances, weights, 0.5) is None


def test_degenerate_division_still_plots():
    histogram = np.zeros(50)
    histogram[0] = 100
    display = LossDivisionDisplay(
        histogram=histogram,
        means=(0.0, 0.0),
        variances=(0.0, 0.0),
        weights=(1.0, 0.0),
        p_threshold=0.5,
    ).plot()
    assert display.threshold_ is None
    assert display.threshold_line_ is None
    assert display.lines_ == {}
    assert sum(bar.get_height() for bar in display.bars_["labeled"]) == 100


# -- LossDivisionDisplay -----------------------------------------------------


@pytest.mark.parametrize("net", [1, 2])
def test_loss_division_after_last_epoch(fitted, net):
    display = LossDivisionDisplay.from_estimator(fitted, net=net)
    division = fitted.final_divisions_[net - 1]
    np.testing.assert_array_equal(display.histogram, division["histogram"])
    assert display.means == division["means"]
    assert display.p_threshold == fitted.p_threshold_
    assert display.histogram.sum() == N_SAMPLES
    bars = [*display.bars_["labeled"], *display.bars_["unlabeled"]]
    assert len(bars) == 50
    assert sum(bar.get_height() for bar in bars) == N_SAMPLES
    assert set(display.lines_) == {"clean", "noisy", "mixture"}
    assert display.threshold_line_.get_xdata()[0] == display.threshold_
    assert f"net{net}" in display.ax_.get_title()
    assert "after the last epoch" in display.ax_.get_title()


def test_loss_division_of_a_past_epoch(fitted):
    epoch = fitted.warmup_epochs_ + 2
    display = LossDivisionDisplay.from_estimator(fitted, net=2, epoch=epoch)
    row = next(row for row in fitted.history_ if row["epoch"] == epoch)
    np.testing.assert_array_equal(display.histogram, row["division_net2"]["histogram"])
    assert display.weights == row["division_net2"]["weights"]
    assert f"epoch {epoch}" in display.ax_.get_title()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epoch=1), "No division of net1 in epoch 1"),
        (dict(epoch=99), "epochs after warm-up"),
        (dict(net=3), "net must be 1 or 2"),
    ],
)
def test_loss_division_bad_arguments(fitted, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossDivisionDisplay.from_estimator(fitted, **kwargs)


def test_loss_division_draws_on_given_axes(fitted):
    fig, ax = plt.subplots()
    display = LossDivisionDisplay.from_estimator(fitted, ax=ax)
    assert display.ax_ is ax
    assert display.figure_ is fig


# -- TrainingCurvesDisplay ---------------------------------------------------


def test_training_curves_follow_history(fitted):
    display = TrainingCurvesDisplay.from_estimator(fitted)
    np.testing.assert_array_equal(
        display.epochs, np.arange(1, PARAMS["max_epochs"] + 1)
    )
    for net in ("net1", "net2"):
        labeled = np.array([row[f"labeled_{net}"] for row in fitted.history_])
        np.testing.assert_allclose(display.labeled_fractions[net], labeled / N_SAMPLES)
        np.testing.assert_allclose(
            display.losses[net], [row[f"loss_{net}"] for row in fitted.history_]
        )
        warmup = display.labeled_fractions[net][: fitted.warmup_epochs_]
        np.testing.assert_array_equal(warmup, 1.0)
        line = display.lines_["labeled", net]
        np.testing.assert_allclose(line.get_ydata(), display.labeled_fractions[net])
    assert display.final_clean_fraction == pytest.approx(fitted.clean_mask_.mean())
    assert display.warmup_epochs == fitted.warmup_epochs_
    assert len(display.ax_) == 2


def test_training_curves_skip_interrupted_row(fitted):
    interrupted = copy.copy(fitted)
    interrupted.history_ = History(
        [*fitted.history_[:3], {"epoch": 4, "interrupted": True}]
    )
    display = TrainingCurvesDisplay.from_estimator(interrupted)
    np.testing.assert_array_equal(display.epochs, [1, 2, 3])


def test_training_curves_need_two_axes(fitted):
    _, ax = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="2 Axes"):
        TrainingCurvesDisplay.from_estimator(fitted, ax=ax)


# -- what from_estimator accepts ----------------------------------------------


@pytest.mark.parametrize("display", [LossDivisionDisplay, TrainingCurvesDisplay])
def test_displays_accept_a_pipeline(noisy_digits, display):
    X, y = noisy_digits["X_train"][:100], noisy_digits["y_noisy"][:100]
    params = {**PARAMS, "max_epochs": 3}
    pipe = make_pipeline(StandardScaler(), DivideMixClassifier(**params)).fit(X, y)
    assert display.from_estimator(pipe).figure_ is not None


@pytest.mark.parametrize("display", [LossDivisionDisplay, TrainingCurvesDisplay])
def test_displays_reject_unfitted_and_foreign_estimators(noisy_digits, display):
    with pytest.raises(NotFittedError):
        display.from_estimator(DivideMixClassifier())
    X, y = noisy_digits["X_train"][:50], noisy_digits["y_noisy"][:50]
    with pytest.raises(TypeError, match="DivideMixClassifier"):
        display.from_estimator(LogisticRegression().fit(X, y))


@pytest.mark.parametrize("display", [LossDivisionDisplay, TrainingCurvesDisplay])
def test_clear_error_without_matplotlib(fitted, monkeypatch, display):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="requires matplotlib"):
        display.from_estimator(fitted)
