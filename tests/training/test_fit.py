"""Fitting: what a trained forest must get right about flowers."""

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from irisops.training import data


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
