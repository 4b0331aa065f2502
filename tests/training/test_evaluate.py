"""Evaluation: complete test metrics, and cross-validation that never sees the test rows."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from irisops.training import data, evaluate, fit


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
