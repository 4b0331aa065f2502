"""Data: Iris from scikit-learn's bundled copy, split the same way every time."""

import numpy as np

from irisops.training import data


def test_iris_is_loaded_locally_with_named_features_and_classes() -> None:
    dataset = data.load()
    assert dataset.X.shape == (150, 4)
    assert dataset.class_names == ("setosa", "versicolor", "virginica")
    assert dataset.feature_names == data.FEATURE_NAMES
    assert np.isfinite(dataset.X).all()


def test_split_is_stratified_and_reproducible() -> None:
    dataset = data.load()
    first = data.split(dataset, test_size=0.2, seed=7)
    again = data.split(dataset, test_size=0.2, seed=7)
    other = data.split(dataset, test_size=0.2, seed=8)
    assert len(first.X_test) == 30
    assert np.bincount(first.y_test).tolist() == [10, 10, 10]
    assert first.X_test.equals(again.X_test)
    assert not first.X_test.equals(other.X_test)
    assert list(first.X_train.columns) == list(data.FEATURE_NAMES)


def test_train_and_test_sets_do_not_overlap() -> None:
    split = data.split(data.load(), test_size=0.2, seed=42)
    assert set(split.X_train.index).isdisjoint(split.X_test.index)
