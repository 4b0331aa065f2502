"""The training data's reference profile, and live inputs measured against it.

Training records, per feature, quantile bins of the training rows (the share of rows
in each), the range seen, and the class priors. The profile travels in the bundle
metadata, so the API that serves a model also knows what its inputs looked like.

Drift is computed from bin counts only: the population stability index (PSI) and
the Kolmogorov-Smirnov statistic over the bins (the largest gap between the two
cumulative shares at a bin edge: a lower bound of the exact two-sample statistic,
exact when every live value falls on an edge). Nothing here needs scipy.

This module must stay importable without scikit-learn, pandas or MLflow.
"""

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

BINS = 10
# Empty bins are smoothed to this share, so PSI stays finite (the usual convention).
EPSILON = 1e-4


class FeatureProfile(BaseModel):
    name: str
    edges: list[float] = Field(description="Inner bin edges, ascending: len(shares) - 1 of them.")
    shares: list[float] = Field(description="Share of training rows in each bin.")
    minimum: float
    maximum: float


class ReferenceProfile(BaseModel):
    rows: int
    features: list[FeatureProfile]
    class_priors: dict[str, float]

    def outside(self, rows: npt.ArrayLike) -> list[list[str]]:
        """Per row, the features whose value lies outside the range training saw."""
        # float32, as the model and the drift window see the values.
        values = np.asarray(rows, dtype=np.float32).reshape(-1, len(self.features))
        low = np.asarray([f.minimum for f in self.features], dtype=np.float32)
        high = np.asarray([f.maximum for f in self.features], dtype=np.float32)
        names = [f.name for f in self.features]
        return [
            [name for name, out in zip(names, flags, strict=True) if out]
            for flags in ((values < low) | (values > high)).tolist()
        ]


def reference_profile(
    X: npt.NDArray[np.floating],
    y: npt.NDArray[np.integer],
    feature_names: list[str],
    class_names: list[str],
    bins: int = BINS,
) -> ReferenceProfile:
    """The profile of training rows `X` with labels `y` (class ids)."""
    X = np.asarray(X, dtype=np.float64)
    features = []
    for column, name in zip(X.T, feature_names, strict=True):
        # Quantile edges, deduplicated: Iris has many ties, so some bins merge.
        edges = np.unique(np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, column, side="right"), minlength=len(edges) + 1)
        features.append(
            FeatureProfile(
                name=name,
                edges=edges.tolist(),
                shares=(counts / len(column)).tolist(),
                minimum=float(column.min()),
                maximum=float(column.max()),
            )
        )
    priors = np.bincount(np.asarray(y, dtype=np.intp), minlength=len(class_names)) / len(y)
    return ReferenceProfile(
        rows=len(X),
        features=features,
        class_priors=dict(zip(class_names, priors.tolist(), strict=True)),
    )


def psi(live: npt.NDArray[np.floating], reference: npt.NDArray[np.floating]) -> float:
    """Population stability index of live bin shares against the reference's."""
    p, q = np.maximum(live, EPSILON), np.maximum(reference, EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


def ks(live: npt.NDArray[np.floating], reference: npt.NDArray[np.floating]) -> float:
    """Kolmogorov-Smirnov statistic over the bins: the largest gap of cumulative shares."""
    return float(np.max(np.abs(np.cumsum(live) - np.cumsum(reference))))
