"""Test-set metrics, cross-validation and the plots a reviewer looks at in the MLflow UI."""

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_score

from irisops.training.data import Dataset, Split
from irisops.training.fit import TrainParams, build


def test_metrics(model: RandomForestClassifier, split: Split) -> dict[str, float]:
    return scores(split.y_test, model.predict_proba(split.X_test))


def scores(
    labels: npt.NDArray[np.int64], probabilities: npt.NDArray[np.floating]
) -> dict[str, float]:
    """The test metrics of any model's class probabilities (columns in class-id order)."""
    # float32 probabilities from onnxruntime can sum to 1 + 1e-7; log loss wants exact ones.
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    predicted = np.argmax(probabilities, axis=1)
    classes = np.arange(probabilities.shape[1])
    return {
        "test_accuracy": float(accuracy_score(labels, predicted)),
        "test_f1_macro": float(f1_score(labels, predicted, average="macro")),
        "test_precision_macro": float(
            precision_score(labels, predicted, average="macro", zero_division=0)
        ),
        "test_recall_macro": float(recall_score(labels, predicted, average="macro")),
        "test_log_loss": float(log_loss(labels, probabilities, labels=classes)),
    }


def cross_validation(split: Split, params: TrainParams) -> dict[str, float]:
    """Accuracy of fresh models over folds of the training set only: the test set stays unseen."""
    folds = StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=params.seed)
    scores = cross_val_score(build(params), split.X_train, split.y_train, cv=folds)
    return {"cv_accuracy_mean": float(np.mean(scores)), "cv_accuracy_std": float(np.std(scores))}


def feature_importance_figure(model: RandomForestClassifier, dataset: Dataset) -> Figure:
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.subplots()
    order = np.argsort(model.feature_importances_)
    axes.barh(np.array(dataset.feature_names)[order], model.feature_importances_[order])
    axes.set_xlabel("mean decrease in impurity")
    axes.set_title("Feature importances")
    return figure


def per_class_figure(model: RandomForestClassifier, split: Split, dataset: Dataset) -> Figure:
    precision, recall, f1, _ = precision_recall_fscore_support(
        split.y_test, model.predict(split.X_test), labels=model.classes_, zero_division=0
    )
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(dataset.class_names))
    for offset, (name, values) in enumerate(
        (("precision", precision), ("recall", recall), ("f1", f1))
    ):
        axes.bar(positions + (offset - 1) * 0.27, values, width=0.27, label=name)
    axes.set_xticks(positions, dataset.class_names)
    axes.set_ylim(0, 1.05)
    axes.set_title("Per-class metrics (test set)")
    axes.legend(loc="lower right")
    return figure
