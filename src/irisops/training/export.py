"""The fast-inference export (ONNX) and the proof that it predicts like scikit-learn."""

from dataclasses import dataclass

import numpy as np
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from irisops.runtime import PROBABILITY_TOLERANCE, OnnxClassifier
from irisops.training.data import Dataset, feature_box

RANDOM_POINTS = 10_000
# Top-two probabilities closer than this are a tie: either class is a correct answer.
TIE = 1e-6


class ParityError(Exception):
    """The export does not predict like the model it was made from: it must not be served."""


@dataclass(frozen=True)
class ParityReport:
    rows: int
    max_probability_diff: float
    class_mismatches: int
    ties: int


def export(model: RandomForestClassifier, n_features: int) -> bytes:
    sample = np.zeros((1, n_features), dtype=np.float32)
    # ZipMap off: probabilities come back as one float32 tensor, not a list of dicts.
    onnx_model = to_onnx(model, sample, options={id(model): {"zipmap": False}})
    return bytes(onnx_model.SerializeToString())


def check_parity(
    model: RandomForestClassifier, onnx_bytes: bytes, dataset: Dataset, seed: int
) -> ParityReport:
    """Compare on the data set plus RANDOM_POINTS uniform points in its feature box."""
    low, high = feature_box(dataset.X)
    random_points = np.random.default_rng(seed).uniform(low, high, size=(RANDOM_POINTS, len(low)))
    # scikit-learn's trees compare float32 features, so float32 rows are the faithful input.
    rows = np.vstack([dataset.X, random_points]).astype(np.float32)
    expected = model.predict_proba(dataset.features(rows))
    got = OnnxClassifier(onnx_bytes).predict_proba(rows)
    top_two = np.sort(expected, axis=1)[:, -2:]
    tied = (top_two[:, 1] - top_two[:, 0]) <= TIE
    mismatched = (expected.argmax(axis=1) != got.argmax(axis=1)) & ~tied
    report = ParityReport(
        rows=len(rows),
        max_probability_diff=float(np.abs(expected - got).max()),
        class_mismatches=int(mismatched.sum()),
        ties=int(tied.sum()),
    )
    if report.class_mismatches or report.max_probability_diff > PROBABILITY_TOLERANCE:
        raise ParityError(f"ONNX export disagrees with scikit-learn: {report}")
    return report
