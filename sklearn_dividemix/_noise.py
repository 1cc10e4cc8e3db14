"""Synthetic label noise: corrupt clean labels the way noisy-label papers do.

"50 % symmetric noise" means two different things in the literature: the
DivideMix paper redraws the label of half the samples from *all* classes, so
only 45 % of the labels end up wrong on ten classes, while elsewhere it means
that 50 % of the labels are wrong. Both are offered here under separate names,
next to class-dependent (asymmetric) noise and an arbitrary transition matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["CIFAR10_ASYMMETRIC_MAP", "make_noisy_labels", "noise_transition_matrix"]

# Read-only so that no caller can silently change the benchmark for everyone.
CIFAR10_ASYMMETRIC_MAP = MappingProxyType({9: 1, 2: 0, 3: 5, 5: 3, 4: 7})
"""The paper's class-dependent noise on CIFAR-10: truck -> automobile,
bird -> airplane, cat <-> dog, deer -> horse (a read-only mapping)."""

# Rows of a hand-written transition matrix rarely sum to 1 exactly; within this
# tolerance they are renormalised, beyond it they are probably a typo.
_ROW_SUM_ATOL = 1e-6
_PREVIEW_LENGTH = 10


def _preview(labels) -> str:
    """Labels for an error message, cut short when there are many."""
    labels = list(labels)
    shown = ", ".join(repr(label) for label in labels[:_PREVIEW_LENGTH])
    more = len(labels) - _PREVIEW_LENGTH
    return f"[{shown}, ... ({more} more)]" if more > 0 else f"[{shown}]"


def _encode_labels(y, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``y`` as an array, the sorted classes, and ``y`` as class indices."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got an array of shape {y.shape}.")
    present, inverse = np.unique(y, return_inverse=True)
    inverse = inverse.reshape(-1)
    if classes is None:
        classes, y_idx = present, inverse
    else:
        classes = np.asarray(classes)
        if classes.ndim != 1:
            raise ValueError(f"classes must be 1-D, got shape {classes.shape}.")
        classes = np.unique(classes)
        # A dict rather than searchsorted: it compares labels of any dtype
        # (object, str of another width, int against float) without casting.
        position = {label: i for i, label in enumerate(classes.tolist())}
        missing = [label for label in present.tolist() if label not in position]
        if missing:
            raise ValueError(f"y contains labels not in classes: {_preview(missing)}.")
        lookup = [position[label] for label in present.tolist()]
        y_idx = np.asarray(lookup, dtype=np.intp)[inverse]
    if len(classes) < 2:
        raise ValueError(
            f"At least 2 classes are needed to flip labels, got {len(classes)}: "
            f"{_preview(classes.tolist())}. Pass `classes` if y lacks some."
        )
    return y, classes, y_idx


def _labels_as(classes: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``classes`` cast to y's dtype, unless a label would not survive the cast."""
    try:
        cast = classes.astype(dtype)
    except (TypeError, ValueError):
        return classes
    # A longer string would be truncated, a fractional float rounded.
    return cast if cast.tolist() == classes.tolist() else classes


def _check_kind_arguments(kind: str, noise_rate, transition, class_map) -> None:
    """Reject arguments that the chosen kind would silently ignore."""
    if kind == "transition" and transition is None:
        raise ValueError("kind='transition' needs a `transition` matrix.")
    if kind != "transition" and noise_rate is None:
        raise ValueError(f"noise_rate is required for kind={kind!r}.")
    if kind != "transition" and transition is not None:
        raise ValueError(
            f"transition is only used with kind='transition', got kind={kind!r}."
        )
    if class_map is not None and kind != "asymmetric":
        raise ValueError(
            f"class_map is only used with kind='asymmetric', got kind={kind!r}."
        )


def _resolve_class_map(class_map: Mapping | None, classes: np.ndarray) -> dict:
    """Translate a {source label: target label} map into class indices."""
    n_classes = len(classes)
    if class_map is None:
        return {k: (k + 1) % n_classes for k in range(n_classes)}
    position = {label: i for i, label in enumerate(classes.tolist())}
    index_map = {}
    for source, target in class_map.items():
        for role, label in (("key", source), ("value", target)):
            if label not in position:
                raise ValueError(
                    f"class_map {role} {label!r} is not one of the classes "
                    f"{_preview(classes.tolist())}."
                )
        if position[source] == position[target]:
            raise ValueError(f"class_map maps {source!r} to itself.")
        index_map[position[source]] = position[target]
    return index_map


def _check_transition(transition, n_classes: int) -> np.ndarray:
    """Validate a row-stochastic matrix and renormalise its rows exactly."""
    try:
        matrix = np.asarray(transition, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("transition must be a numeric (K, K) array.") from exc
    expected = (n_classes, n_classes)
    if matrix.shape != expected:
        raise ValueError(
            f"transition must have shape {expected}, one row and one column per "
            f"class, got shape {matrix.shape}."
        )
    if not np.isfinite(matrix).all():
        raise ValueError("transition must contain only finite values.")
    if (matrix < 0).any():
        rows = np.flatnonzero((matrix < 0).any(axis=1)).tolist()
        raise ValueError(f"transition must be non-negative; rows {rows} are not.")
    row_sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(row_sums - 1.0) > _ROW_SUM_ATOL)
    if bad.size:
        raise ValueError(
            "Each row of transition must sum to 1, since T[i, j] = "
            f"P(noisy=j | true=i); rows {bad.tolist()} sum to "
            f"{np.round(row_sums[bad], 6).tolist()}."
        )
    return matrix / row_sums[:, None]


def _n_selected(noise_rate: float, n: int) -> int:
    # A fixed count, as the reference code does, rather than a coin per sample:
    # the selected fraction is then exact instead of merely expected.
    return round(noise_rate * n)


def _members_by_class(y_idx: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Indices of the samples of each class, in one sort instead of K scans."""
    order = np.argsort(y_idx, kind="stable")
    bounds = np.cumsum(np.bincount(y_idx, minlength=n_classes))[:-1]
    return np.split(order, bounds)


def _flip_symmetric(
    y_idx: np.ndarray,
    n_classes: int,
    noise_rate: float,
    rng: np.random.RandomState,
    *,
    exclusive: bool,
) -> np.ndarray:
    noisy = y_idx.copy()
    selected = rng.permutation(len(y_idx))[: _n_selected(noise_rate, len(y_idx))]
    if exclusive:
        # A shift by 1..K-1 lands on each of the other classes equally often.
        shift = rng.randint(1, n_classes, size=selected.size)
        noisy[selected] = (y_idx[selected] + shift) % n_classes
    else:
        noisy[selected] = rng.randint(n_classes, size=selected.size)
    return noisy


def _flip_asymmetric(
    y_idx: np.ndarray,
    n_classes: int,
    index_map: dict,
    noise_rate: float,
    rng: np.random.RandomState,
) -> np.ndarray:
    noisy = y_idx.copy()
    members = _members_by_class(y_idx, n_classes)
    # Sorted so that the draws do not depend on the order of the user's dict;
    # selection reads the true labels, so cat -> dog -> cat never chains.
    for source in sorted(index_map):
        chosen = rng.permutation(members[source])
        noisy[chosen[: _n_selected(noise_rate, chosen.size)]] = index_map[source]
    return noisy


def _draw_from_transition(
    y_idx: np.ndarray, matrix: np.ndarray, rng: np.random.RandomState
) -> np.ndarray:
    noisy = np.empty_like(y_idx)
    n_classes = len(matrix)
    for source, members in enumerate(_members_by_class(y_idx, n_classes)):
        noisy[members] = rng.choice(n_classes, size=members.size, p=matrix[source])
    return noisy


@validate_params(
    {
        "y": ["array-like"],
        "noise_rate": [Interval(Real, 0, 1, closed="both"), None],
        "kind": [
            StrOptions({"symmetric", "symmetric_exclusive", "asymmetric", "transition"})
        ],
        "transition": ["array-like", None],
        "class_map": [Mapping, None],
        "classes": ["array-like", None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_noisy_labels(
    y,
    *,
    noise_rate,
    kind="symmetric",
    transition=None,
    class_map=None,
    classes=None,
    random_state=None,
):
    """Corrupt clean labels with synthetic label noise.

    Four kinds of noise are offered; they differ in which samples are
    relabelled and what the new label is drawn from (see Notes). The input is
    never modified.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Clean labels: integers, strings or any sortable labels.

    noise_rate : float in [0, 1] or None
        Fraction of samples selected for relabelling (of all samples for the
        symmetric kinds, of each mapped class for ``"asymmetric"``). Ignored,
        and may be None, for ``kind="transition"``.

    kind : {"symmetric", "symmetric_exclusive", "asymmetric", "transition"}, \
default="symmetric"
        - ``"symmetric"`` (the DivideMix paper's): exactly
          ``round(noise_rate * n_samples)`` random samples get a label drawn
          uniformly from *all* classes, their true one included.
        - ``"symmetric_exclusive"``: as ``"symmetric"``, but drawn from the
          *other* classes, so exactly that fraction of labels is wrong.
        - ``"asymmetric"``: in each class that ``class_map`` maps, exactly
          ``round(noise_rate * n_class_samples)`` samples get the mapped label.
        - ``"transition"``: a sample of true class ``i`` gets label ``j`` with
          probability ``transition[i, j]``.

    transition : array-like of shape (n_classes, n_classes), default=None
        Row-stochastic matrix, ``T[i, j] = P(noisy = j | true = i)``, rows and
        columns in the order of the sorted classes. Rows must be non-negative
        and sum to 1 within 1e-6. Required for, and only used by,
        ``kind="transition"``.

    class_map : dict, default=None
        ``{source_label: target_label}`` for ``kind="asymmetric"``; classes
        not in it keep their labels. None means pair flipping: the k-th sorted
        class goes to the (k+1)-th, the last to the first. See
        :data:`CIFAR10_ASYMMETRIC_MAP` for the paper's CIFAR-10 map.

    classes : array-like of shape (n_classes,), default=None
        All possible labels, when ``y`` may lack some (a subsample). Defaults
        to ``np.unique(y)``. Sorted before use.

    random_state : int, RandomState instance or None, default=None
        Determines which samples are relabelled and their new labels. Pass an
        int for reproducible output across multiple function calls. See
        :term:`Glossary <random_state>`.

    Returns
    -------
    y_noisy : ndarray of shape (n_samples,)
        Noisy labels, of the same dtype as ``y`` (wider if ``classes`` holds
        labels that ``y``'s dtype cannot represent, such as longer strings).

    is_flipped : ndarray of shape (n_samples,), dtype=bool
        True where ``y_noisy != y``. ``is_flipped.mean()`` is the realised
        noise rate; a sample selected by ``"symmetric"`` noise that drew its
        own label back is not flipped.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, has labels outside ``classes`` or fewer than 2
        classes; ``class_map`` names non-classes or maps a class to itself;
        ``transition`` is not a (K, K) non-negative matrix with rows summing to
        1; ``noise_rate`` is missing; or an argument the kind ignores is given.

    See Also
    --------
    noise_transition_matrix : Expected transition matrix of these kinds.
    sklearn.datasets.make_classification : Its ``flip_y`` follows the
        ``"symmetric"`` convention.

    Notes
    -----
    With K classes, n samples, m = round(r * n) of them selected at noise rate
    r (m_c = round(r * n_c) of the n_c samples of a mapped class c) and
    classes of frequency p_i, the realised flip rate ``is_flipped.mean()`` is

    ======================= ============================== ===================
    kind                    new label drawn from           realised flip rate
    ======================= ============================== ===================
    ``symmetric``           all K classes                  about (K-1)/K * m/n
    ``symmetric_exclusive`` the K-1 other classes          exactly m/n
    ``asymmetric``          ``class_map[true label]``      m_c/n_c in class c
    ``transition``          row ``transition[true label]`` sum_i p_i (1-T_ii)
    ======================= ============================== ===================

    so "50 % symmetric noise" on ten classes in the paper's sense wrongs about
    45 % of the labels: (K-1)/K * noise_rate. The paper's asymmetric CIFAR-10
    results use :data:`CIFAR10_ASYMMETRIC_MAP` with noise_rate 0.4; pair
    flipping, the default map, comes from Co-teaching [2]_.

    References
    ----------
    .. [1] J. Li, R. Socher and S. C. H. Hoi, "DivideMix: Learning with Noisy
       Labels as Semi-supervised Learning", ICLR 2020. arXiv:2002.07394.
    .. [2] B. Han et al., "Co-teaching: Robust Training of Deep Neural
       Networks with Extremely Noisy Labels", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_dividemix import make_noisy_labels, CIFAR10_ASYMMETRIC_MAP
    >>> y = np.repeat(np.arange(10), 1000)
    >>> y_noisy, is_flipped = make_noisy_labels(y, noise_rate=0.5, random_state=0)
    >>> print(round(is_flipped.mean(), 2))  # about 0.9 * 0.5
    0.45
    >>> _, is_flipped = make_noisy_labels(
    ...     y, noise_rate=0.5, kind="symmetric_exclusive", random_state=0
    ... )
    >>> print(is_flipped.mean())
    0.5
    >>> y_noisy, is_flipped = make_noisy_labels(
    ...     y, noise_rate=0.4, kind="asymmetric",
    ...     class_map=CIFAR10_ASYMMETRIC_MAP, random_state=0,
    ... )
    >>> print(is_flipped.mean())  # 40 % of 5 of the 10 classes
    0.2
    >>> np.unique(y_noisy[y == 9], return_counts=True)  # trucks
    (array([1, 9]), array([400, 600]))
    >>> y_noisy, is_flipped = make_noisy_labels(
    ...     ["cat", "dog", "cat", "bird"], noise_rate=0.5,
    ...     kind="symmetric_exclusive", random_state=0,
    ... )
    >>> y_noisy
    array(['cat', 'dog', 'bird', 'dog'], dtype='<U4')
    >>> is_flipped
    array([False, False,  True,  True])
    """
    rng = check_random_state(random_state)
    _check_kind_arguments(kind, noise_rate, transition, class_map)
    y, classes, y_idx = _encode_labels(y, classes)
    n_classes = len(classes)
    if kind == "transition":
        matrix = _check_transition(transition, n_classes)
        noisy_idx = _draw_from_transition(y_idx, matrix, rng)
    elif kind == "asymmetric":
        index_map = _resolve_class_map(class_map, classes)
        noisy_idx = _flip_asymmetric(y_idx, n_classes, index_map, noise_rate, rng)
    else:
        exclusive = kind == "symmetric_exclusive"
        noisy_idx = _flip_symmetric(
            y_idx, n_classes, noise_rate, rng, exclusive=exclusive
        )
    y_noisy = _labels_as(classes, y.dtype)[noisy_idx]
    return y_noisy, noisy_idx != y_idx


@validate_params(
    {
        "kind": [StrOptions({"symmetric", "symmetric_exclusive", "asymmetric"})],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "noise_rate": [Interval(Real, 0, 1, closed="both")],
        "class_map": [Mapping, None],
    },
    prefer_skip_nested_validation=True,
)
def noise_transition_matrix(kind, n_classes, noise_rate, class_map=None):
    """Expected transition matrix of symmetric or asymmetric label noise.

    ``T[i, j]`` is the probability that a sample of true class ``i`` gets the
    noisy label ``j`` under :func:`make_noisy_labels` with the same arguments.

    Parameters
    ----------
    kind : {"symmetric", "symmetric_exclusive", "asymmetric"}
        The kind of noise, as in :func:`make_noisy_labels`.

    n_classes : int
        Number of classes K, at least 2; classes are the integers 0..K-1.

    noise_rate : float in [0, 1]
        Fraction of samples selected for relabelling.

    class_map : dict, default=None
        ``{source_class: target_class}`` over 0..K-1, for ``"asymmetric"``
        only; None means pair flipping, k -> k+1 mod K.

    Returns
    -------
    transition : ndarray of shape (n_classes, n_classes)
        Row-stochastic matrix, ``T[i, j] = P(noisy = j | true = i)``.

    Raises
    ------
    ValueError
        If ``class_map`` names classes outside 0..K-1, maps a class to itself,
        or is passed with a symmetric kind.

    See Also
    --------
    make_noisy_labels : Draw noisy labels.

    Notes
    -----
    :func:`make_noisy_labels` selects ``round(noise_rate * n)`` samples, so
    its matrix is this one at the rounded rate. For ``"symmetric"`` the
    diagonal is ``1 - noise_rate + noise_rate / K``: the expected flip rate is
    ``(K - 1) / K * noise_rate``.

    Examples
    --------
    >>> from sklearn_dividemix import noise_transition_matrix
    >>> noise_transition_matrix("symmetric", 4, 0.4)
    array([[0.7, 0.1, 0.1, 0.1],
           [0.1, 0.7, 0.1, 0.1],
           [0.1, 0.1, 0.7, 0.1],
           [0.1, 0.1, 0.1, 0.7]])
    >>> noise_transition_matrix("asymmetric", 3, 0.4, class_map={0: 2})
    array([[0.6, 0. , 0.4],
           [0. , 1. , 0. ],
           [0. , 0. , 1. ]])
    """
    if class_map is not None and kind != "asymmetric":
        raise ValueError(
            f"class_map is only used with kind='asymmetric', got kind={kind!r}."
        )
    eye = np.eye(n_classes)
    if kind == "symmetric":
        return (1.0 - noise_rate) * eye + noise_rate / n_classes
    if kind == "symmetric_exclusive":
        return (1.0 - noise_rate) * eye + noise_rate / (n_classes - 1) * (1.0 - eye)
    index_map = _resolve_class_map(class_map, np.arange(n_classes))
    sources = np.fromiter(index_map, dtype=np.intp)
    targets = np.fromiter(index_map.values(), dtype=np.intp)
    matrix = eye
    matrix[sources, sources] = 1.0 - noise_rate
    matrix[sources, targets] = noise_rate
    return matrix
