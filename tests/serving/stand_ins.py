"""A LoadedModel stand-in for the code that only reads a model's names and version."""

from typing import Any

from irisops.runtime import LoadedModel

IRIS = ["setosa", "versicolor", "virginica"]
NAMES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


class Model:
    """What the answer renderer, the log lines and Monitor.answered read of a LoadedModel."""

    def __init__(self, class_names: list[str], version: str) -> None:
        metadata = {"class_names": class_names, "feature_names": NAMES, "reference": None}
        self.metadata = type("Metadata", (), metadata)()
        self.version = version
        self.key = f"model {version}"


def as_loaded(class_names: list[str], version: str = "3") -> LoadedModel:
    model: Any = Model(class_names, version)
    return model  # type: ignore[no-any-return]
