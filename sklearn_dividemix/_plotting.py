"""Displays of what a fit did: the loss division and the training curves.

They follow scikit-learn's visualisation API: a class holding the numbers to
draw, ``plot`` to draw them and ``from_estimator`` to take them from a fitted
:class:`DivideMixClassifier` (or a Pipeline ending with one). Everything they
need is in ``history_`` and ``final_divisions_``, so nothing is recomputed
and matplotlib is imported only when drawing.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._history import (
    EPOCH,
    P_THRESHOLD,
    PHASE,
    WARMUP,
    completed,
    division_key,
    labeled_key,
    loss_key,
)

__all__ = ["LossDivisionDisplay", "TrainingCurvesDisplay"]

_NETS = (1, 2)


def check_matplotlib_support(caller: str) -> None:
    """Raise an ImportError that says what needs matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib. Install it with `pip install matplotlib`."
        ) from exc


def _fitted_dividemix(estimator):
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    check_is_fitted(final)
    if not hasattr(final, "final_divisions_"):
        raise TypeError(
            "estimator must be a fitted DivideMixClassifier or a Pipeline ending "
            f"with one; got {type(final).__name__}."
        )
    return final


def _normal_pdf(x: np.ndarray, mean: float, variance: float) -> np.ndarray:
    return np.exp(-0.5 * (x - mean) ** 2 / variance) / np.sqrt(2 * np.pi * variance)


def clean_posterior(
    x: np.ndarray,
    means: tuple[float, float],
    variances: tuple[float, float],
    weights: tuple[float, float],
) -> np.ndarray:
    """Posterior of the (first) clean component at normalised losses ``x``.

    Computed in log space so that far tails give 0 or 1 rather than 0 / 0.
    """
    x = np.asarray(x, dtype=np.float64)[:, None]
    means_, variances_ = np.asarray(means), np.asarray(variances)
    log_joint = (
        np.log(np.maximum(weights, 1e-300))
        - 0.5 * np.log(2 * np.pi * variances_)
        - 0.5 * (x - means_) ** 2 / variances_
    )
    log_joint -= log_joint.max(axis=1, keepdims=True)
    joint = np.exp(log_joint)
    return joint[:, 0] / joint.sum(axis=1)


def division_threshold(
    means: tuple[float, float],
    variances: tuple[float, float],
    weights: tuple[float, float],
    p_threshold: float,
) -> float | None:
    """Normalised loss above which a sample goes to the unlabeled set.

    The first loss right of the clean mean where the clean posterior falls to
    ``p_threshold``, on a grid of 2001 points over [0, 1]; ``None`` when the
    mixture is degenerate (a zero variance) or the posterior never falls that
    low inside [0, 1].
    """
    if min(variances) <= 0 or min(weights) <= 0:
        return None
    grid = np.linspace(max(means[0], 0.0), 1.0, 2001)
    below = np.flatnonzero(
        clean_posterior(grid, means, variances, weights) <= p_threshold
    )
    return float(grid[below[0]]) if below.size else None


class LossDivisionDisplay:
    """Histogram of one net's normalised losses with its two-component mixture.

    DivideMix's picture of label noise (Figure 1 of the paper): per-sample
    losses, min-max normalised to [0, 1], with the fitted clean (low-loss)
    and noisy (high-loss) Gaussian components and the loss at which a
    sample's clean probability falls to ``p_threshold``. Samples left of the
    threshold form the labeled set, the others the unlabeled set.

    Create it with :meth:`from_estimator`; all parameters are stored as
    attributes.

    Parameters
    ----------
    histogram : ndarray of shape (n_bins,)
        Counts of the normalised losses in equal bins over [0, 1].
    means, variances, weights : tuple of 2 float
        Parameters of the (clean, noisy) mixture components.
    p_threshold : float
        Clean probability above which a sample is labeled.
    epoch : int or None, default=None
        Epoch at whose start the division was made; ``None`` for the division
        after the last epoch. Used in the title.
    net : int or None, default=None
        Which net (1 or 2) made the division. Used in the title.

    Attributes
    ----------
    threshold_ : float or None
        Normalised loss where the clean posterior falls to ``p_threshold``.
    bars_ : dict of matplotlib BarContainer
        Histogram bars left (``'labeled'``) and right (``'unlabeled'``) of
        the threshold.
    lines_ : dict of matplotlib Line2D
        ``'clean'``, ``'noisy'`` and ``'mixture'`` densities, scaled to counts.
    threshold_line_ : matplotlib Line2D or None
        The vertical threshold line.
    ax_ : matplotlib Axes
        Axes of the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    TrainingCurvesDisplay : Losses and labeled fractions over the epochs.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dividemix import DivideMixClassifier, LossDivisionDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DivideMixClassifier(max_epochs=3, warmup_epochs=2, random_state=0)
    >>> clf = clf.fit(X / 16, y)
    >>> display = LossDivisionDisplay.from_estimator(clf, net=1)
    >>> sorted(display.lines_)
    ['clean', 'mixture', 'noisy']
    """

    def __init__(
        self, *, histogram, means, variances, weights, p_threshold, epoch=None, net=None
    ):
        self.histogram = histogram
        self.means = means
        self.variances = variances
        self.weights = weights
        self.p_threshold = p_threshold
        self.epoch = epoch
        self.net = net

    def plot(self, ax=None):
        """Draw the histogram, the mixture and the threshold.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.

        Returns
        -------
        display : LossDivisionDisplay
            Object that stores the computed values and the artists.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        counts = np.asarray(self.histogram, dtype=np.float64)
        edges = np.linspace(0.0, 1.0, len(counts) + 1)
        centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        self.threshold_ = division_threshold(
            self.means, self.variances, self.weights, self.p_threshold
        )
        noisy_side = (
            centers > self.threshold_ if self.threshold_ is not None else centers > 1
        )
        self.bars_ = {
            name: ax.bar(
                centers[side],
                counts[side],
                width=width,
                color=color,
                alpha=0.45,
                label=f"{name} set",
            )
            for name, side, color in (
                ("labeled", ~noisy_side, "tab:green"),
                ("unlabeled", noisy_side, "tab:red"),
            )
        }
        self.lines_ = self._plot_mixture(ax, counts.sum() * width)
        self.threshold_line_ = None
        if self.threshold_ is not None:
            self.threshold_line_ = ax.axvline(
                self.threshold_,
                color="black",
                linestyle=":",
                label=f"clean probability = {self.p_threshold:g}",
            )
        ax.set(xlim=(0, 1), xlabel="normalised loss", ylabel="samples")
        when = "after the last epoch" if self.epoch is None else f"epoch {self.epoch}"
        name = "" if self.net is None else f"net{self.net}'s "
        ax.set_title(f"{name}loss division, {when}")
        ax.legend(loc="upper right", fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _plot_mixture(self, ax, scale: float) -> dict:
        if min(self.variances) <= 0:
            return {}
        x = np.linspace(0.0, 1.0, 400)
        densities = [
            self.weights[k] * _normal_pdf(x, self.means[k], self.variances[k])
            for k in (0, 1)
        ]
        # The mixture first, so that the dashed components stay visible on it.
        styles = {
            "mixture": (densities[0] + densities[1], "black", "-"),
            "clean": (densities[0], "tab:green", "--"),
            "noisy": (densities[1], "tab:red", "--"),
        }
        return {
            name: ax.plot(x, scale * y, color=color, linestyle=style, label=name)[0]
            for name, (y, color, style) in styles.items()
        }

    @classmethod
    def from_estimator(cls, estimator, *, net=1, epoch=None, ax=None):
        """Plot one net's loss division from a fitted estimator.

        Parameters
        ----------
        estimator : DivideMixClassifier or Pipeline
            Fitted estimator, or a fitted Pipeline ending with one.
        net : {1, 2}, default=1
            Which net's division to draw.
        epoch : int, default=None
            Draw the division made at the start of this (1-based) epoch, the
            one the other net trained on; it must be an epoch after warm-up.
            ``None`` draws the division after the last epoch, the one behind
            ``clean_proba_``.
        ax : matplotlib Axes, default=None
            Axes to draw on; ``None`` creates a figure.

        Returns
        -------
        display : LossDivisionDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        clf = _fitted_dividemix(estimator)
        if net not in _NETS:
            raise ValueError(f"net must be 1 or 2; got {net!r}.")
        # the threshold in force then (p_threshold='auto' resolves late; a
        # model saved before it could be 'auto' has only p_threshold)
        threshold = getattr(clf, "p_threshold_", clf.p_threshold)
        if epoch is None:
            division = clf.final_divisions_[net - 1]
        else:
            division, threshold = _history_division(clf.history_, epoch, net, threshold)
        display = cls(
            histogram=division["histogram"],
            means=division["means"],
            variances=division["variances"],
            weights=division["weights"],
            p_threshold=threshold,
            epoch=epoch,
            net=net,
        )
        return display.plot(ax=ax)


def _history_division(
    history, epoch: int, net: int, threshold: float
) -> tuple[dict, float]:
    """Net ``net``'s division of ``epoch`` and the threshold it was read at
    (``threshold`` where the row does not say)."""
    rows = {row[EPOCH]: row for row in completed(history)}
    divided = [k for k, row in rows.items() if row.get(division_key(net))]
    if epoch not in divided:
        available = f"{divided[0]}..{divided[-1]}" if divided else "none"
        raise ValueError(
            f"No division of net{net} in epoch {epoch!r}: divisions exist for "
            f"the epochs after warm-up ({available}). Use epoch=None for the "
            "division after the last epoch."
        )
    row = rows[epoch]
    return row[division_key(net)], row.get(P_THRESHOLD, threshold)


class TrainingCurvesDisplay:
    """Training curves of a fit: losses and labeled fractions per epoch.

    The labeled fraction of a net is the share of training samples it trained
    on as labeled in an epoch, chosen by the *other* net's division (all
    samples during warm-up). A fraction that settles near one minus the noise
    rate is the sign of a division that works; one that collapses towards 0
    or 1 means the losses stopped being bimodal.

    Create it with :meth:`from_estimator`; all parameters are stored as
    attributes.

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        Epoch numbers (1-based).
    losses : dict of ndarray
        Training loss per epoch, keyed by ``'net1'`` and ``'net2'``. During
        warm-up it is the cross-entropy, afterwards the MixMatch loss.
    labeled_fractions : dict of ndarray
        Labeled fraction per epoch, same keys.
    warmup_epochs : int
        Number of warm-up epochs run (``warmup_epochs_`` of the estimator),
        marked on both plots.
    final_clean_fraction : float or None, default=None
        Share of samples in ``clean_mask_`` after the last epoch.

    Attributes
    ----------
    lines_ : dict of matplotlib Line2D
        Keyed by ``('loss', 'net1')``, ``('labeled', 'net2')``, ...
    ax_ : ndarray of 2 matplotlib Axes
        Loss axes and labeled-fraction axes.
    figure_ : matplotlib Figure
        Figure containing the plots.

    See Also
    --------
    LossDivisionDisplay : One net's loss histogram and mixture.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dividemix import DivideMixClassifier, TrainingCurvesDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DivideMixClassifier(max_epochs=3, warmup_epochs=2, random_state=0)
    >>> display = TrainingCurvesDisplay.from_estimator(clf.fit(X / 16, y))
    >>> display.epochs.tolist()
    [1, 2, 3]
    """

    def __init__(
        self,
        *,
        epochs,
        losses,
        labeled_fractions,
        warmup_epochs,
        final_clean_fraction=None,
    ):
        self.epochs = epochs
        self.losses = losses
        self.labeled_fractions = labeled_fractions
        self.warmup_epochs = warmup_epochs
        self.final_clean_fraction = final_clean_fraction

    def plot(self, ax=None):
        """Draw the losses and the labeled fractions.

        Parameters
        ----------
        ax : array-like of 2 matplotlib Axes, default=None
            Axes for the losses and for the labeled fractions; ``None``
            creates a figure with two plots side by side.

        Returns
        -------
        display : TrainingCurvesDisplay
            Object that stores the artists.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        ax = np.asarray(ax, dtype=object).ravel()
        if len(ax) != 2:
            raise ValueError(f"ax must hold 2 Axes; got {len(ax)}.")
        self.lines_ = {}
        panels = (
            ("loss", self.losses, "training loss"),
            ("labeled", self.labeled_fractions, "labeled fraction"),
        )
        for axis, (kind, values, label) in zip(ax, panels, strict=True):
            for name, series in values.items():
                (self.lines_[kind, name],) = axis.plot(
                    self.epochs, series, marker=".", label=name
                )
            if 0 < self.warmup_epochs < len(self.epochs):
                axis.axvline(
                    self.warmup_epochs + 0.5,
                    color="grey",
                    linestyle=":",
                    label="end of warm-up",
                )
            axis.set(xlabel="epoch", ylabel=label)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if self.final_clean_fraction is not None:
            ax[1].axhline(
                self.final_clean_fraction,
                color="black",
                linestyle="--",
                label="clean_mask_ after fit",
            )
        ax[1].set_ylim(0, 1.02)
        for axis in ax:
            axis.legend(loc="best", fontsize="small")
        self.ax_, self.figure_ = ax, ax[0].figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the training curves from a fitted estimator's ``history_``.

        Parameters
        ----------
        estimator : DivideMixClassifier or Pipeline
            Fitted estimator, or a fitted Pipeline ending with one.
        ax : array-like of 2 matplotlib Axes, default=None
            Axes for the losses and for the labeled fractions.

        Returns
        -------
        display : TrainingCurvesDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        clf = _fitted_dividemix(estimator)
        rows = completed(clf.history_)
        n_samples = len(clf.clean_proba_)
        display = cls(
            epochs=np.array([row[EPOCH] for row in rows]),
            losses={
                f"net{k}": np.array([row[loss_key(k)] for row in rows]) for k in _NETS
            },
            labeled_fractions={
                f"net{k}": np.array([row[labeled_key(k)] for row in rows]) / n_samples
                for k in _NETS
            },
            # warm-up may have been extended past warmup_epochs
            warmup_epochs=sum(row.get(PHASE) == WARMUP for row in rows),
            final_clean_fraction=float(np.mean(clf.clean_mask_)),
        )
        return display.plot(ax=ax)
