"""Tests of the synthetic label-noise tools."""

import doctest
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import sklearn_dividemix
from sklearn_dividemix import _noise
from sklearn_dividemix._noise import (
    CIFAR10_ASYMMETRIC_MAP,
    make_noisy_labels,
    noise_transition_matrix,
)

N_SAMPLES = 20_000
N_CLASSES = 10
# Flip rates of n=20000 samples have a standard deviation near 0.0035 at most;
# entries of a per-class (2000-sample) transition matrix near 0.012.
RATE_TOL = 0.015
MATRIX_TOL = 0.05
RATE_KINDS = ["symmetric", "symmetric_exclusive", "asymmetric"]
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "noise.md"


@pytest.fixture(scope="module")
def y_large():
    """20000 balanced labels over 10 classes, shuffled."""
    rng = np.random.RandomState(0)
    return rng.permutation(np.repeat(np.arange(N_CLASSES), N_SAMPLES // N_CLASSES))


def empirical_transition(y, y_noisy, n_classes):
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (y, y_noisy), 1)
    return counts / counts.sum(axis=1, keepdims=True)


# Realised rates and transition matrices


@pytest.mark.parametrize("noise_rate", [0.2, 0.5, 0.8])
def test_symmetric_flips_k_minus_one_over_k_of_rate(y_large, noise_rate):
    y_noisy, is_flipped = make_noisy_labels(
        y_large, noise_rate=noise_rate, random_state=0
    )
    expected = (N_CLASSES - 1) / N_CLASSES * noise_rate
    assert abs(is_flipped.mean() - expected) < RATE_TOL
    np.testing.assert_allclose(
        empirical_transition(y_large, y_noisy, N_CLASSES),
        noise_transition_matrix("symmetric", N_CLASSES, noise_rate),
        atol=MATRIX_TOL,
    )


@pytest.mark.parametrize("noise_rate", [0.2, 0.5, 0.9])
def test_symmetric_exclusive_flips_exactly_the_rate(y_large, noise_rate):
    y_noisy, is_flipped = make_noisy_labels(
        y_large, noise_rate=noise_rate, kind="symmetric_exclusive", random_state=0
    )
    assert is_flipped.sum() == round(noise_rate * N_SAMPLES)
    np.testing.assert_allclose(
        empirical_transition(y_large, y_noisy, N_CLASSES),
        noise_transition_matrix("symmetric_exclusive", N_CLASSES, noise_rate),
        atol=MATRIX_TOL,
    )


def test_asymmetric_cifar10_map_flips_mapped_classes_only(y_large):
    y_noisy, is_flipped = make_noisy_labels(
        y_large,
        noise_rate=0.4,
        kind="asymmetric",
        class_map=CIFAR10_ASYMMETRIC_MAP,
        random_state=0,
    )
    per_class = N_SAMPLES // N_CLASSES
    for label in range(N_CLASSES):
        flipped = is_flipped[y_large == label]
        if label in CIFAR10_ASYMMETRIC_MAP:
            assert flipped.sum() == round(0.4 * per_class)
            target = CIFAR10_ASYMMETRIC_MAP[label]
            assert np.all(y_noisy[(y_large == label) & is_flipped] == target)
        else:
            assert not flipped.any()
    assert is_flipped.mean() == pytest.approx(0.4 * len(CIFAR10_ASYMMETRIC_MAP) / 10)


def test_asymmetric_cat_dog_swap_does_not_chain(y_large):
    # Selection reads the true labels: a cat turned dog is not turned back.
    y_noisy, _ = make_noisy_labels(
        y_large, noise_rate=1.0, kind="asymmetric", class_map={3: 5, 5: 3}
    )
    assert np.all(y_noisy[y_large == 3] == 5)
    assert np.all(y_noisy[y_large == 5] == 3)


def test_asymmetric_default_is_pair_flip(y_large):
    y_noisy, is_flipped = make_noisy_labels(
        y_large, noise_rate=0.3, kind="asymmetric", random_state=0
    )
    assert is_flipped.sum() == round(0.3 * N_SAMPLES)
    np.testing.assert_array_equal(
        y_noisy[is_flipped], (y_large[is_flipped] + 1) % N_CLASSES
    )
    np.testing.assert_allclose(
        empirical_transition(y_large, y_noisy, N_CLASSES),
        noise_transition_matrix("asymmetric", N_CLASSES, 0.3),
    )


def test_asymmetric_rounds_per_class_on_imbalanced_data():
    y = np.array([0] * 7 + [1] * 3)
    _, is_flipped = make_noisy_labels(
        y, noise_rate=0.5, kind="asymmetric", class_map={0: 1, 1: 0}, random_state=0
    )
    assert is_flipped[y == 0].sum() == round(3.5)
    assert is_flipped[y == 1].sum() == round(1.5)


def test_transition_matches_given_matrix(y_large):
    rng = np.random.RandomState(1)
    transition = rng.dirichlet(np.ones(N_CLASSES), size=N_CLASSES)
    transition[:, 0] = 0.0  # never drawn, whatever the tolerance
    transition /= transition.sum(axis=1, keepdims=True)
    y_noisy, is_flipped = make_noisy_labels(
        y_large,
        noise_rate=None,
        kind="transition",
        transition=transition,
        random_state=0,
    )
    empirical = empirical_transition(y_large, y_noisy, N_CLASSES)
    np.testing.assert_allclose(empirical, transition, atol=MATRIX_TOL)
    assert not np.any(y_noisy == 0)
    np.testing.assert_array_equal(is_flipped, y_noisy != y_large)


def test_transition_ignores_noise_rate_and_accepts_tiny_row_error(y_large):
    transition = np.full((N_CLASSES, N_CLASSES), 1 / N_CLASSES)
    transition[0, 0] += 1e-8
    kwargs = dict(kind="transition", transition=transition, random_state=3)
    with_rate, _ = make_noisy_labels(y_large, noise_rate=0.7, **kwargs)
    without, _ = make_noisy_labels(y_large, noise_rate=None, **kwargs)
    np.testing.assert_array_equal(with_rate, without)


def test_identity_transition_flips_nothing():
    y = np.arange(6) % 3
    y_noisy, is_flipped = make_noisy_labels(
        y, noise_rate=None, kind="transition", transition=np.eye(3), random_state=0
    )
    np.testing.assert_array_equal(y_noisy, y)
    assert not is_flipped.any()


# Labels, dtypes, inputs


@pytest.mark.parametrize("kind", RATE_KINDS)
def test_string_labels(kind):
    y = np.array(["cat", "dog", "bird"] * 200)
    y_noisy, is_flipped = make_noisy_labels(
        y, noise_rate=0.5, kind=kind, random_state=0
    )
    assert y_noisy.dtype == y.dtype
    assert set(y_noisy) <= {"cat", "dog", "bird"}
    np.testing.assert_array_equal(is_flipped, y_noisy != y)
    assert 0.2 < is_flipped.mean() < 0.6


def test_string_class_map():
    y = np.array(["cat", "dog", "truck", "automobile"] * 50)
    y_noisy, is_flipped = make_noisy_labels(
        y,
        noise_rate=1.0,
        kind="asymmetric",
        class_map={"truck": "automobile"},
        random_state=0,
    )
    np.testing.assert_array_equal(y_noisy[y == "truck"], "automobile")
    np.testing.assert_array_equal(is_flipped, y == "truck")


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.float32, object])
def test_dtype_preserved(dtype):
    y = (np.arange(300) % 3).astype(dtype)
    y_noisy, is_flipped = make_noisy_labels(y, noise_rate=0.5, random_state=0)
    assert y_noisy.dtype == y.dtype
    assert is_flipped.dtype == bool and is_flipped.shape == y.shape


def test_classes_adds_labels_absent_from_y():
    y = np.array([0, 1] * 500, dtype=np.int32)
    y_noisy, _ = make_noisy_labels(
        y,
        noise_rate=1.0,
        kind="symmetric_exclusive",
        classes=[0, 1, 2],
        random_state=0,
    )
    assert y_noisy.dtype == np.int32
    assert set(np.unique(y_noisy)) == {0, 1, 2}


def test_classes_with_longer_strings_widen_the_dtype():
    y = np.array(["a", "b"] * 50)
    y_noisy, _ = make_noisy_labels(
        y,
        noise_rate=1.0,
        kind="symmetric_exclusive",
        classes=["a", "b", "ccc"],
        random_state=0,
    )
    assert "ccc" in set(y_noisy)


@pytest.mark.parametrize("kind", RATE_KINDS)
def test_input_not_modified(y_large, kind):
    y = y_large.copy()
    make_noisy_labels(y, noise_rate=0.5, kind=kind, random_state=0)
    np.testing.assert_array_equal(y, y_large)


def test_list_input_returns_arrays():
    y_noisy, is_flipped = make_noisy_labels([0, 1, 2, 0], noise_rate=0.5)
    assert isinstance(y_noisy, np.ndarray) and isinstance(is_flipped, np.ndarray)


def test_empty_y_with_classes():
    y_noisy, is_flipped = make_noisy_labels(
        np.array([], dtype=int), noise_rate=0.5, classes=[0, 1]
    )
    assert y_noisy.shape == is_flipped.shape == (0,)


# Randomness


@pytest.mark.parametrize("kind", RATE_KINDS)
def test_random_state_reproducible(y_large, kind):
    first = make_noisy_labels(y_large, noise_rate=0.4, kind=kind, random_state=7)
    again = make_noisy_labels(
        y_large, noise_rate=0.4, kind=kind, random_state=np.random.RandomState(7)
    )
    other = make_noisy_labels(y_large, noise_rate=0.4, kind=kind, random_state=8)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert np.any(first[0] != other[0])


def test_global_numpy_state_untouched(y_large):
    before = np.random.get_state()  # noqa: NPY002
    make_noisy_labels(y_large, noise_rate=0.4, random_state=1)
    after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]


@pytest.mark.parametrize("kind", RATE_KINDS)
def test_zero_rate_flips_nothing(y_large, kind):
    y_noisy, is_flipped = make_noisy_labels(
        y_large, noise_rate=0.0, kind=kind, random_state=0
    )
    np.testing.assert_array_equal(y_noisy, y_large)
    assert not is_flipped.any()


def test_full_exclusive_rate_flips_everything(y_large):
    _, is_flipped = make_noisy_labels(
        y_large, noise_rate=1.0, kind="symmetric_exclusive", random_state=0
    )
    assert is_flipped.all()


# noise_transition_matrix


def test_transition_matrix_hand_computed():
    np.testing.assert_allclose(
        noise_transition_matrix("symmetric_exclusive", 3, 0.6),
        [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]],
    )
    np.testing.assert_allclose(
        noise_transition_matrix("asymmetric", 3, 0.2),
        [[0.8, 0.2, 0.0], [0.0, 0.8, 0.2], [0.2, 0.0, 0.8]],
    )
    cifar = noise_transition_matrix("asymmetric", 10, 0.4, CIFAR10_ASYMMETRIC_MAP)
    assert cifar[9, 1] == cifar[3, 5] == cifar[5, 3] == pytest.approx(0.4)
    assert cifar[9, 9] == pytest.approx(0.6)
    assert cifar[1, 1] == cifar[0, 0] == 1.0


@pytest.mark.parametrize("kind", RATE_KINDS)
@pytest.mark.parametrize("n_classes", [2, 10, 100])
def test_transition_matrix_row_stochastic(kind, n_classes):
    matrix = noise_transition_matrix(kind, n_classes, 0.45)
    assert matrix.shape == (n_classes, n_classes)
    assert (matrix >= 0).all()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


@pytest.mark.parametrize("n_classes", [2, 10, 100])
def test_symmetric_expected_flip_rate_formula(n_classes):
    matrix = noise_transition_matrix("symmetric", n_classes, 0.5)
    expected = (n_classes - 1) / n_classes * 0.5
    assert 1 - np.diag(matrix).mean() == pytest.approx(expected)


def test_cifar10_map_is_the_papers_and_read_only():
    assert dict(CIFAR10_ASYMMETRIC_MAP) == {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}
    with pytest.raises(TypeError):
        CIFAR10_ASYMMETRIC_MAP[0] = 1


# Validation

Y = np.arange(30) % 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=Y.reshape(10, 3)), "y must be 1-D"),
        (dict(y=np.zeros(10)), "At least 2 classes"),
        (dict(y=Y, classes=[0, 1]), r"y contains labels not in classes: \[2\]"),
        (dict(y=Y, classes=[[0, 1, 2]]), "classes must be 1-D"),
        (dict(y=Y, noise_rate=None), "noise_rate is required"),
        (dict(y=Y, class_map={0: 1}), "class_map is only used with kind='asymm"),
        (dict(y=Y, transition=np.eye(3)), "transition is only used with kind='tr"),
        (dict(y=Y, kind="transition"), "needs a `transition` matrix"),
        (
            dict(y=Y, kind="asymmetric", class_map={7: 1}),
            r"class_map key 7 is not one of the classes \[0, 1, 2\]",
        ),
        (
            dict(y=Y, kind="asymmetric", class_map={0: "x"}),
            "class_map value 'x' is not one of the classes",
        ),
        (dict(y=Y, kind="asymmetric", class_map={1: 1}), "maps 1 to itself"),
        (
            dict(y=np.arange(50), kind="asymmetric", class_map={0: 99}),
            r"classes \[0, 1, .*, 9, \.\.\. \(40 more\)\]",
        ),
    ],
)
def test_make_noisy_labels_value_errors(kwargs, match):
    kwargs = {"noise_rate": 0.3, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_noisy_labels(**kwargs)


@pytest.mark.parametrize(
    "transition, match",
    [
        (np.eye(2), r"must have shape \(3, 3\).*got shape \(2, 2\)"),
        (np.ones(3) / 3, r"got shape \(3,\)"),
        (np.eye(3) * 2 - np.eye(3)[::-1], r"non-negative; rows \[0, 2\]"),
        (np.full((3, 3), 0.3), r"must sum to 1.*rows \[0, 1, 2\] sum to \[0.9"),
        (np.eye(3) + np.nan, "finite"),
        ([["a", "b", "c"]] * 3, "numeric"),
        ([[1, 0], [0, 1, 0], [0, 0, 1]], "numeric"),
    ],
)
def test_bad_transition_matrices(transition, match):
    with pytest.raises(ValueError, match=match):
        make_noisy_labels(Y, noise_rate=None, kind="transition", transition=transition)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(noise_rate=1.5), "noise_rate"),
        (dict(noise_rate=-0.1), "noise_rate"),
        (dict(noise_rate="0.2"), "noise_rate"),
        (dict(kind="pairflip"), "kind"),
        (dict(random_state="seed"), "random_state"),
        (dict(class_map=[(0, 1)], kind="asymmetric"), "class_map"),
    ],
)
def test_make_noisy_labels_param_validation(kwargs, name):
    kwargs = {"noise_rate": 0.3, **kwargs}
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        make_noisy_labels(Y, **kwargs)


@pytest.mark.parametrize(
    "args, error, match",
    [
        (("symmetric", 1, 0.2), InvalidParameterError, "'n_classes' parameter"),
        (("transition", 3, 0.2), InvalidParameterError, "'kind' parameter"),
        (("symmetric", 3, 2.0), InvalidParameterError, "'noise_rate' parameter"),
        (("asymmetric", 3, 0.2, {0: 3}), ValueError, "class_map value 3"),
        (("asymmetric", 3, 0.2, {2: 2}), ValueError, "maps 2 to itself"),
        (("symmetric", 3, 0.2, {0: 1}), ValueError, "only used with kind='asymm"),
    ],
)
def test_noise_transition_matrix_errors(args, error, match):
    with pytest.raises(error, match=match):
        noise_transition_matrix(*args)


# Public API and documentation


def test_all_lists_existing_names():
    for name in _noise.__all__:
        assert hasattr(_noise, name)


@pytest.fixture
def public_api():
    # The examples import from the package, as users will.
    missing = [n for n in _noise.__all__ if not hasattr(sklearn_dividemix, n)]
    if missing:
        pytest.skip(f"sklearn_dividemix does not re-export {missing} yet")


def test_docstring_examples(public_api):
    result = doctest.testmod(_noise, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_user_guide_examples(public_api):
    page = DOCS_PAGE.read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if ">>>" in b]
    assert blocks
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(blocks):
        test = doctest.DocTestParser().get_doctest(block, {}, f"noise.md[{i}]", "", 0)
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
