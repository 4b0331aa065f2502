"""The Iris data set from scikit-learn's bundled copy (never downloaded), and its split."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
TARGET = "target"

Matrix = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Dataset:
    X: Matrix
    y: Labels
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def features(self, rows: npt.NDArray[np.floating] | None = None) -> pd.DataFrame:
        return pd.DataFrame(self.X if rows is None else rows, columns=list(self.feature_names))

    def class_names_of(self, labels: Labels) -> npt.NDArray[np.str_]:
        return np.asarray(self.class_names)[labels]


@dataclass(frozen=True)
class Split:
    """Features as named columns: the model learns the names, and MLflow's signature shows them."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: Labels
    y_test: Labels


def load() -> Dataset:
    bunch = load_iris()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        y=np.asarray(bunch.target, dtype=np.int64),
        class_names=tuple(str(name) for name in bunch.target_names),
    )


def split(dataset: Dataset, test_size: float, seed: int) -> Split:
    """Stratified, so every class is in the test set in its true proportion."""
    X_train, X_test, y_train, y_test = train_test_split(
        dataset.features(), dataset.y, test_size=test_size, random_state=seed, stratify=dataset.y
    )
    return Split(X_train, X_test, y_train, y_test)


def feature_box(X: Matrix) -> tuple[Matrix, Matrix]:
    """The per-feature [min, max] box of the data: where parity is checked at random."""
    return X.min(axis=0), X.max(axis=0)
