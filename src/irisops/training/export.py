"""The fast-inference exports and the proof that each predicts like scikit-learn.

Two files for the API, both data: `forest.npz`, the forest's node arrays for the
compiled walker (`irisops.forest`), and `model.onnx` for onnxruntime (the fallback).
Each backend is checked against scikit-learn on the same rows before either is served.
"""

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from irisops import forest
from irisops.bundle import ModelFiles
from irisops.runtime import (
    PROBABILITY_TOLERANCE,
    Classifier,
    ForestClassifier,
    OnnxClassifier,
)
from irisops.training.data import Dataset, feature_box

RANDOM_POINTS = 10_000
# Top-two probabilities closer than this are a tie: either class is a correct answer.
TIE = 1e-6


class ParityError(Exception):
    """The export does not predict like the model it was made from: it must not be served."""


@dataclass(frozen=True)
class ParityReport:
    """The worst over the backends checked; `by_backend` is each one's max |Δp|."""

    rows: int
    max_probability_diff: float
    class_mismatches: int
    ties: int
    by_backend: dict[str, float] = field(default_factory=dict)


def export(model: RandomForestClassifier, n_features: int) -> bytes:
    sample = np.zeros((1, n_features), dtype=np.float32)
    # ZipMap off: probabilities come back as one float32 tensor, not a list of dicts.
    onnx_model = to_onnx(model, sample, options={id(model): {"zipmap": False}})
    return bytes(onnx_model.SerializeToString())


def forest_arrays(model: RandomForestClassifier, n_features: int) -> forest.Arrays:
    """The fitted trees laid end to end, children re-based onto the joined arrays.

    Each leaf's value is its row of `tree_.value` normalised to probabilities, as
    DecisionTreeClassifier.predict_proba normalises it, so that the sum over trees is
    scikit-learn's, addend for addend.
    """
    if model.n_outputs_ != 1:
        raise ParityError("only single-output forests can be exported")
    names = ("feature", "threshold", "left", "right", "value")
    parts: dict[str, list[npt.NDArray[np.generic]]] = {name: [] for name in names}
    roots, offset = [], 0
    for estimator in model.estimators_:
        tree = estimator.tree_
        leaf = tree.children_left == -1
        roots.append(offset)
        parts["feature"].append(np.where(leaf, -1, tree.feature))
        parts["threshold"].append(np.where(leaf, 0.0, tree.threshold))
        parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
        parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
        value = tree.value[:, 0, :].astype(np.float64)
        totals = value.sum(axis=1, keepdims=True)
        totals[totals == 0] = 1.0
        parts["value"].append(value / totals)
        offset += tree.node_count
    ints = {
        name: np.concatenate(parts[name]).astype(np.int32) for name in ("feature", "left", "right")
    }
    return {
        "format": np.array(forest.FORMAT, dtype=np.int64),
        "n_features": np.array(n_features, dtype=np.int64),
        **ints,
        "threshold": np.concatenate(parts["threshold"]).astype(np.float64),
        "value": np.ascontiguousarray(np.concatenate(parts["value"]), dtype=np.float64),
        "roots": np.array(roots, dtype=np.int32),
    }


def export_forest(model: RandomForestClassifier, n_features: int) -> bytes:
    return forest.encode(forest_arrays(model, n_features))


def export_files(model: RandomForestClassifier, n_features: int) -> ModelFiles:
    return ModelFiles(onnx=export(model, n_features), forest=export_forest(model, n_features))


def check_parity(
    model: RandomForestClassifier, files: ModelFiles, dataset: Dataset, seed: int
) -> ParityReport:
    """Compare every backend on the data set plus RANDOM_POINTS uniform points in its box."""
    low, high = feature_box(dataset.X)
    random_points = np.random.default_rng(seed).uniform(low, high, size=(RANDOM_POINTS, len(low)))
    # scikit-learn's trees compare float32 features, so float32 rows are the faithful input.
    rows = np.vstack([dataset.X, random_points]).astype(np.float32)
    expected = model.predict_proba(dataset.features(rows))
    top_two = np.sort(expected, axis=1)[:, -2:]
    tied = (top_two[:, 1] - top_two[:, 0]) <= TIE
    backends: dict[str, Classifier] = {"onnx": OnnxClassifier(files.onnx)}
    if files.forest is not None:
        backends["forest"] = ForestClassifier(files.forest)
    diffs: dict[str, float] = {}
    mismatches = 0
    for name, backend in backends.items():
        got = backend.predict_proba(rows)
        diffs[name] = float(np.abs(expected - got).max())
        mismatched = int(((expected.argmax(axis=1) != got.argmax(axis=1)) & ~tied).sum())
        mismatches = max(mismatches, mismatched)
        if mismatched or diffs[name] > PROBABILITY_TOLERANCE:
            raise ParityError(
                f"{name} export disagrees with scikit-learn on {len(rows)} rows: "
                f"max |Δp| {diffs[name]:.2e}, {mismatched} class mismatches"
            )
    return ParityReport(
        rows=len(rows),
        max_probability_diff=max(diffs.values()),
        class_mismatches=mismatches,
        ties=int(tied.sum()),
        by_backend=diffs,
    )
