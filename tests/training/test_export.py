"""Export: the node arrays and the ONNX model predict like scikit-learn, or they are refused."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from irisops import forest
from irisops.bundle import ModelFiles
from irisops.runtime import ForestClassifier, OnnxClassifier
from irisops.training import data, export, fit


def test_both_exports_match_scikit_learn_on_10000_random_points(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    report = export.check_parity(model, export.export_files(model, 4), dataset, seed=0)
    assert report.rows == 150 + export.RANDOM_POINTS
    assert report.class_mismatches == 0
    assert report.max_probability_diff <= 1e-5
    assert set(report.by_backend) == {"forest", "onnx"}
    assert max(report.by_backend.values()) == report.max_probability_diff


def test_an_onnx_export_of_another_model_is_refused(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    other = fit.fit(data.split(dataset, 0.2, 1), fit.TrainParams(n_estimators=3, seed=1))
    files = ModelFiles(onnx=export.export(other, 4), forest=export.export_forest(model, 4))
    with pytest.raises(export.ParityError, match="onnx export disagrees"):
        export.check_parity(model, files, dataset, seed=0)


def test_a_forest_export_of_another_model_is_refused(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    other = fit.fit(data.split(dataset, 0.2, 1), fit.TrainParams(n_estimators=3, seed=1))
    files = ModelFiles(onnx=export.export(model, 4), forest=export.export_forest(other, 4))
    with pytest.raises(export.ParityError, match="forest export disagrees"):
        export.check_parity(model, files, dataset, seed=0)


def test_the_runtime_returns_one_probability_row_per_input(model: RandomForestClassifier) -> None:
    files = export.export_files(model, 4)
    assert files.forest is not None
    for classifier in (OnnxClassifier(files.onnx), ForestClassifier(files.forest)):
        probabilities = classifier.predict_proba(np.zeros((5, 4), dtype=np.float32))
        assert probabilities.shape == (5, 3)
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_the_node_arrays_are_the_fitted_trees_end_to_end(model: RandomForestClassifier) -> None:
    arrays = export.forest_arrays(model, 4)
    sizes = [estimator.tree_.node_count for estimator in model.estimators_]
    assert len(arrays["feature"]) == sum(sizes)
    assert arrays["roots"].tolist() == np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    forest.check(arrays)  # the reader's every structural rule holds
    first = model.estimators_[0].tree_
    n = first.node_count
    assert arrays["threshold"][:n][first.children_left != -1].tolist() == (
        first.threshold[first.children_left != -1].tolist()
    )
    leaves = arrays["value"][:n][first.children_left == -1]
    assert np.allclose(leaves.sum(axis=1), 1.0)
