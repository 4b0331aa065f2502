"""Model behaviour: what a trained forest must get right, and its export must reproduce."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from irisops.runtime import OnnxClassifier
from irisops.training import data, evaluate, export, fit


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    return data.load()


@pytest.fixture(scope="module")
def model(dataset: data.Dataset) -> RandomForestClassifier:
    return fit.fit(data.split(dataset, 0.2, 42), fit.TrainParams())


def test_canonical_flowers_are_classified(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    flowers = dataset.features(
        np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 4.2, 1.3], [6.7, 3.0, 5.8, 2.3]])
    )
    assert model.predict(flowers).tolist() == [0, 1, 2]


def test_longer_petals_move_a_flower_away_from_setosa(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    short = model.predict_proba(dataset.features(np.array([[5.0, 3.4, 1.5, 0.2]])))[0, 0]
    long = model.predict_proba(dataset.features(np.array([[5.0, 3.4, 5.0, 1.8]])))[0, 0]
    assert long < short


def test_test_metrics_are_high_and_complete(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    metrics = evaluate.test_metrics(model, data.split(dataset, 0.2, 42))
    assert set(metrics) == {
        "test_accuracy",
        "test_f1_macro",
        "test_precision_macro",
        "test_recall_macro",
        "test_log_loss",
    }
    assert metrics["test_accuracy"] >= 0.85


def test_cross_validation_uses_the_training_set_only(dataset: data.Dataset) -> None:
    """The folds are the training split's, recomputed here; the test rows change nothing."""
    params = fit.TrainParams(n_estimators=10, cv_folds=3)
    split = data.split(dataset, 0.2, 42)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=params.seed)
    expected = cross_val_score(fit.build(params), split.X_train, split.y_train, cv=folds)
    scores = evaluate.cross_validation(split, params)
    assert scores["cv_accuracy_mean"] == pytest.approx(float(np.mean(expected)))
    assert scores["cv_accuracy_std"] == pytest.approx(float(np.std(expected)))
    # Test rows that would make every fold fail if they were used: labels all wrong.
    poisoned = replace(split, y_test=(split.y_test + 1) % 3)
    assert evaluate.cross_validation(poisoned, params) == scores


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
