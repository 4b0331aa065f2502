"""The forest file and its compiled evaluator: scikit-learn's answers, from data that cannot run.

A real forest is fitted and exported as the trainer does; corrupt files are made by
changing one array of a good one, so each test names the one rule it breaks.
"""

import dataclasses
import io
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from irisops import _forest, forest
from irisops.bundle import BundleError
from irisops.runtime import CHUNKS, PARALLEL_ROWS, ForestClassifier
from irisops.training import data, export, fit

RANDOM_POINTS = 10_000


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    return data.load()


@pytest.fixture(scope="module", params=["grown", "shallow", "bushy"])
def model(dataset: data.Dataset, request: pytest.FixtureRequest) -> RandomForestClassifier:
    split = data.split(dataset, 0.2, 42)
    if request.param == "shallow":
        # Impure leaves: fractional probabilities, where the order and width of the sums show.
        return fit.fit(split, fit.TrainParams(n_estimators=30, max_depth=2))
    if request.param == "bushy":
        # A third of the labels shuffled: trees grow dozens of leaves, some past the 32 a
        # tree may have to be evaluated by bit masks, so batches walk those instead.
        labels, rng = np.asarray(split.y_train).copy(), np.random.default_rng(3)
        mixed = rng.choice(len(labels), len(labels) // 3, replace=False)
        labels[mixed] = rng.permutation(labels[mixed])
        model = fit.fit(dataclasses.replace(split, y_train=labels), fit.TrainParams())
        leaves = [tree.tree_.n_leaves for tree in model.estimators_]
        assert min(leaves) <= 32 < max(leaves), leaves
        return model
    return fit.fit(split, fit.TrainParams())


@pytest.fixture(scope="module")
def arrays(model: RandomForestClassifier) -> forest.Arrays:
    return export.forest_arrays(model, 4)


@pytest.fixture(scope="module")
def classifier(arrays: forest.Arrays) -> ForestClassifier:
    return ForestClassifier(forest.encode(arrays))


@pytest.fixture(scope="module")
def rows(dataset: data.Dataset) -> np.ndarray:
    """The data set and RANDOM_POINTS uniform points in its feature box, as float32."""
    low, high = data.feature_box(dataset.X)
    points = np.random.default_rng(7).uniform(low, high, size=(RANDOM_POINTS, len(low)))
    return np.vstack([dataset.X, points]).astype(np.float32)


# --- Answers ---------------------------------------------------------------------------------


def test_the_evaluator_answers_as_scikit_learn_does(
    classifier: ForestClassifier,
    model: RandomForestClassifier,
    dataset: data.Dataset,
    rows: np.ndarray,
) -> None:
    expected = model.predict_proba(dataset.features(rows))
    got = classifier.predict_proba(rows)
    assert np.abs(got - expected).max() <= 1e-5
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    # The same additions in the same order: scikit-learn's float64 answer, rounded once.
    assert np.array_equal(got, expected.astype(np.float32))


def test_rows_one_float32_step_from_each_threshold_go_the_way_scikit_learn_sends_them(
    classifier: ForestClassifier,
    model: RandomForestClassifier,
    dataset: data.Dataset,
    arrays: forest.Arrays,
) -> None:
    """float32 features against float64 thresholds: the boundary cases decide the leaf."""
    inner = arrays["left"] != -1
    base = np.median(dataset.X, axis=0).astype(np.float32)
    rows = []
    for feature, threshold in zip(
        arrays["feature"][inner], arrays["threshold"][inner], strict=True
    ):
        nearest = np.float32(threshold)
        for x in (
            np.nextafter(nearest, np.float32(-np.inf)),
            nearest,
            np.nextafter(nearest, np.float32(np.inf)),
        ):
            row = base.copy()
            row[feature] = x
            rows.append(row)
    X = np.asarray(rows, dtype=np.float32)
    expected = model.predict_proba(dataset.features(X)).astype(np.float32)
    assert np.array_equal(classifier.predict_proba(X), expected)


def test_a_single_row_gets_the_bits_it_gets_in_any_batch(
    classifier: ForestClassifier, rows: np.ndarray
) -> None:
    """Rows of a full block walk lockstep, the rest one by one: the same bits either way."""
    batch = classifier.predict_proba(rows[:1000])
    one_by_one = np.stack([classifier.predict_one(row.tolist()) for row in rows[:1000]])
    each_alone = np.concatenate([classifier.predict_proba(rows[i : i + 1]) for i in range(1000)])
    shifted = classifier.predict_proba(rows[3:1000])  # other rows share a block now
    assert np.array_equal(one_by_one, batch)
    assert np.array_equal(each_alone, batch)
    assert np.array_equal(shifted, batch[3:])


def test_a_chunked_parallel_batch_equals_one_call(
    classifier: ForestClassifier, rows: np.ndarray
) -> None:
    if CHUNKS == 1:
        pytest.skip("one usable CPU: large batches are never chunked here")
    assert len(rows) >= PARALLEL_ROWS
    assert np.array_equal(classifier.predict_proba(rows), classifier.predict_proba_serial(rows))


def test_features_are_rounded_to_float32_first(classifier: ForestClassifier) -> None:
    """As scikit-learn (and the ONNX path) cast X: a double just past a split goes with it."""
    row = [5.1, 3.5, 1.4, 0.2]
    as_float32 = np.asarray(row, dtype=np.float32)
    assert np.array_equal(classifier.predict_one(row), classifier.predict_one(as_float32.tolist()))


def test_an_empty_batch_gets_no_rows(classifier: ForestClassifier) -> None:
    assert classifier.predict_proba(np.zeros((0, 4), dtype=np.float32)).shape == (0, 3)


def test_rows_of_the_wrong_width_are_refused(classifier: ForestClassifier) -> None:
    with pytest.raises(ValueError, match="4 columns"):
        classifier.predict_proba(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="expected 4 features, got 5"):
        classifier.predict_one([1.0, 2.0, 3.0, 4.0, 5.0])


# --- Corrupt files ---------------------------------------------------------------------------


def changed(arrays: forest.Arrays, name: str, change: Callable[[np.ndarray], np.ndarray]) -> bytes:
    copy = {key: value.copy() for key, value in arrays.items()}
    copy[name] = change(copy[name])
    return forest.encode(copy)


def set_at(index: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array[index] = value
        return array

    return change


def first_inner(arrays: forest.Arrays) -> int:
    return int(np.flatnonzero(arrays["left"] != -1)[0])


def test_a_child_past_the_arrays_is_refused(arrays: forest.Arrays) -> None:
    data_ = changed(arrays, "left", set_at(first_inner(arrays), len(arrays["left"]) + 5))
    with pytest.raises(BundleError, match=r"left child .* is not a later node of its own tree"):
        forest.load(data_)


def test_a_child_in_another_tree_is_refused(arrays: forest.Arrays) -> None:
    second_tree = int(arrays["roots"][1])
    with pytest.raises(BundleError, match=r"right child .* is not a later node of its own tree"):
        forest.load(changed(arrays, "right", set_at(first_inner(arrays), second_tree)))


def test_a_cycle_is_refused(arrays: forest.Arrays) -> None:
    """A child pointing back at its parent (or before it) would walk forever."""
    node = first_inner(arrays)
    with pytest.raises(BundleError, match="is not a later node"):
        forest.load(changed(arrays, "left", set_at(node, node)))


def test_a_node_with_two_parents_is_refused(arrays: forest.Arrays) -> None:
    """Trees, not graphs: a shared child would let the evaluator's layout outgrow a tree."""
    first, second = np.flatnonzero(arrays["left"][: int(arrays["roots"][1])] != -1)[:2]
    shared = changed(arrays, "left", set_at(int(second), int(arrays["left"][first])))
    if int(arrays["left"][first]) <= second:  # keep the child after its new parent
        shared = changed(arrays, "left", set_at(int(first), int(arrays["right"][second])))
    with pytest.raises(BundleError, match="more than one parent"):
        forest.load(shared)


def test_a_feature_the_rows_do_not_have_is_refused(arrays: forest.Arrays) -> None:
    with pytest.raises(BundleError, match="tests feature 4 of 4"):
        forest.load(changed(arrays, "feature", set_at(first_inner(arrays), 4)))


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        ("threshold", lambda a: a.astype(np.float32), "threshold is float32 .* expected float64"),
        ("left", lambda a: a.astype(np.int64), "left is int64 .* expected int32"),
        ("value", lambda a: a.ravel(), "value is float64 with 1 dimensions, expected .* 2"),
        ("right", lambda a: a[:-1], "differ in length"),
        ("roots", lambda a: a[::-1].copy(), "roots must rise"),
        ("value", lambda a: a * 2, "not probabilities"),
        ("format", lambda a: a + 1, "has format 2"),
    ],
    ids=[
        "float32-thresholds",
        "int64-children",
        "flat-values",
        "short-array",
        "roots",
        "values",
        "format",
    ],
)
def test_arrays_of_the_wrong_type_or_shape_are_refused(
    arrays: forest.Arrays, name: str, change: Callable[[np.ndarray], np.ndarray], reason: str
) -> None:
    with pytest.raises(BundleError, match=reason):
        forest.load(changed(arrays, name, change))


def test_a_missing_or_extra_array_is_refused(arrays: forest.Arrays) -> None:
    without = {key: value for key, value in arrays.items() if key != "roots"}
    with pytest.raises(BundleError, match="expected"):
        forest.load(forest.encode(without))
    with pytest.raises(BundleError, match="expected"):
        forest.load(forest.encode({**arrays, "extra": np.zeros(1)}))


def test_an_object_array_is_never_unpickled(arrays: forest.Arrays) -> None:
    """np.load with allow_pickle=False: a pickled array (code, potentially) is refused."""
    payload = {**arrays, "feature": np.array([print] * len(arrays["feature"]), dtype=object)}
    buffer = io.BytesIO()
    np.savez(buffer, **payload)  # type: ignore[arg-type]  # np.savez pickles object arrays
    with pytest.raises(BundleError, match="allow_pickle=False"):
        forest.load(buffer.getvalue())


def test_bytes_that_are_no_archive_are_refused() -> None:
    with pytest.raises(BundleError, match=r"not an \.npz archive"):
        forest.load(b"\x00" * 100)


def test_the_evaluator_checks_for_itself_without_the_python_checks(
    arrays: forest.Arrays,
) -> None:
    """Memory safety does not rest on forest.check: the C type refuses bad arrays too."""

    def build(**changes: np.ndarray) -> _forest.Forest:
        parts = {key: arrays[key] for key in ("feature", "threshold", "left", "right", "value")}
        parts |= {"roots": arrays["roots"], **changes}
        return _forest.Forest(
            parts["feature"],
            parts["threshold"],
            parts["left"],
            parts["right"],
            parts["value"],
            parts["roots"],
            n_features=4,
            n_classes=3,
        )

    node, n = first_inner(arrays), len(arrays["left"])
    assert build().n_nodes == n
    for left in (n, node, -7):  # past the end, a cycle, negative
        bad = arrays["left"].copy()
        bad[node] = left
        with pytest.raises(ValueError, match="each must be a later node of its tree"):
            build(left=bad)
    feature = arrays["feature"].copy()
    feature[node] = 99
    with pytest.raises(ValueError, match="tests feature 99 of 4"):
        build(feature=feature)
    with pytest.raises(ValueError, match="must be int32"):
        build(left=arrays["left"].astype(np.int64))
    with pytest.raises(ValueError, match="value must hold"):
        build(value=arrays["value"][:-1])
    with pytest.raises(ValueError, match="roots must rise"):
        build(roots=np.array([0, n + 3], dtype=np.int32))
    # The root's other child becomes a grandchild it already has through an inner child.
    rights = arrays["right"]
    inner = "right" if arrays["left"][rights[0]] != -1 else "left"
    other = {"left": "right", "right": "left"}[inner]
    shared = arrays[other].copy()
    shared[0] = rights[arrays[inner][0]]
    with pytest.raises(ValueError, match="a child that another node has too"):
        build(**{other: shared})
