"""Types of the compiled forest evaluator (src/irisops/_forest.c)."""

from collections.abc import Sequence
from typing import Any, SupportsFloat

import numpy.typing as npt
from typing_extensions import Buffer as _Buffer

# numpy's stubs declare the buffer protocol on arrays for Python 3.12+ only.
Buffer = npt.NDArray[Any] | _Buffer

class Forest:
    """A random forest over flattened node arrays, checked once and copied."""

    n_nodes: int
    n_trees: int
    n_features: int
    n_classes: int

    def __new__(
        cls,
        feature: Buffer,
        threshold: Buffer,
        left: Buffer,
        right: Buffer,
        value: Buffer,
        roots: Buffer,
        n_features: int,
        n_classes: int,
    ) -> Forest: ...
    def predict(self, X: Buffer, out: Buffer, /) -> None:
        """Write the probabilities of the float32 rows X into the float32 matrix out."""

    def predict_one(self, features: Sequence[SupportsFloat], out: Buffer, /) -> None:
        """Write the probabilities of one row (rounded to float32) into the vector out."""
