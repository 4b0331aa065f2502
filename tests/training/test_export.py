"""Export: the ONNX model predicts like scikit-learn, or it is refused."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from irisops.runtime import OnnxClassifier
from irisops.training import data, export, fit


def test_the_onnx_export_matches_scikit_learn_on_10000_random_points(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    report = export.check_parity(model, export.export(model, 4), dataset, seed=0)
    assert report.rows == 150 + export.RANDOM_POINTS
    assert report.class_mismatches == 0
    assert report.max_probability_diff <= 1e-5


def test_an_export_of_another_model_is_refused(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    other = fit.fit(data.split(dataset, 0.2, 1), fit.TrainParams(n_estimators=3, seed=1))
    with pytest.raises(export.ParityError, match="disagrees"):
        export.check_parity(model, export.export(other, 4), dataset, seed=0)


def test_the_runtime_returns_one_probability_row_per_input(model: RandomForestClassifier) -> None:
    classifier = OnnxClassifier(export.export(model, 4))
    probabilities = classifier.predict_proba(np.zeros((5, 4), dtype=np.float32))
    assert probabilities.shape == (5, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
