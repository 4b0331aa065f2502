"""The training data's reference profile, and the drift statistics computed from bins."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from irisops.profile import ReferenceProfile, ks, psi, reference_profile

IRIS = load_iris()
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]


def profile() -> ReferenceProfile:
    return reference_profile(IRIS.data, IRIS.target, NAMES, CLASSES)


def test_each_feature_has_bins_covering_every_training_row() -> None:
    for feature, column in zip(profile().features, IRIS.data.T, strict=True):
        assert len(feature.shares) == len(feature.edges) + 1
        assert sum(feature.shares) == pytest.approx(1.0)
        assert feature.edges == sorted(set(feature.edges))
        assert (feature.minimum, feature.maximum) == (column.min(), column.max())
        counts = np.bincount(np.searchsorted(feature.edges, column, side="right"))
        assert np.allclose(counts / len(column), feature.shares)


def test_class_priors_are_the_label_shares() -> None:
    assert profile().class_priors == pytest.approx(dict.fromkeys(CLASSES, 1 / 3))


def test_the_same_distribution_has_no_drift() -> None:
    shares = np.asarray(profile().features[2].shares)
    assert psi(shares, shares) == pytest.approx(0.0)
    assert ks(shares, shares) == pytest.approx(0.0)


def test_a_shifted_distribution_has_drift() -> None:
    feature = profile().features[2]
    shifted = np.bincount(
        np.searchsorted(feature.edges, IRIS.data[:, 2] + 2.0, side="right"),
        minlength=len(feature.shares),
    ) / len(IRIS.data)
    assert psi(shifted, np.asarray(feature.shares)) > 0.2
    assert ks(shifted, np.asarray(feature.shares)) > 0.2


def test_outside_names_the_features_beyond_the_training_range() -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 99.0, -1.0]]
    assert profile().outside(rows) == [[], ["petal_length", "petal_width"]]
