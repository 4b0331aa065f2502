"""Fitting the RandomForest: pure functions, no tracking."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from irisops.training.data import Split


@dataclass(frozen=True)
class TrainParams:
    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_split: int = 2
    min_samples_leaf: int = 1
    max_features: Literal["sqrt", "log2"] | None = "sqrt"
    criterion: Literal["gini", "entropy", "log_loss"] = "gini"
    seed: int = 42
    test_size: float = 0.2
    cv_folds: int = 5

    def as_params(self) -> dict[str, Any]:
        """Every hyperparameter and split parameter, as logged to MLflow."""
        return asdict(self)


class InvalidParams(ValueError):
    """Options that cannot work with this data; the message names the valid range."""


def check(params: TrainParams, split: Split) -> None:
    """Refuse, before any run exists, what scikit-learn would refuse half-way through a run."""
    smallest = int(np.bincount(np.asarray(split.y_train)).min())
    if params.cv_folds > smallest:
        raise InvalidParams(
            f"--cv-folds {params.cv_folds} is more than the {smallest} training samples of the "
            f"smallest class (with --test-size {params.test_size}); use 2 to {smallest}"
        )


def build(params: TrainParams) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        min_samples_split=params.min_samples_split,
        min_samples_leaf=params.min_samples_leaf,
        max_features=params.max_features,
        criterion=params.criterion,
        random_state=params.seed,
        n_jobs=1,
    )


def fit(split: Split, params: TrainParams) -> RandomForestClassifier:
    return build(params).fit(split.X_train, split.y_train)
