"""The data set and one forest fitted on its default split, shared by the stage tests."""

import pytest
from sklearn.ensemble import RandomForestClassifier

from irisops.training import data, fit


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    return data.load()


@pytest.fixture(scope="module")
def model(dataset: data.Dataset) -> RandomForestClassifier:
    return fit.fit(data.split(dataset, 0.2, 42), fit.TrainParams())
