"""The live drift window: in-distribution traffic stays quiet, a shifted feature does not."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from irisops.profile import reference_profile
from irisops.serving.drift import FOLD_EVERY, DriftWindow

IRIS = load_iris()
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
REFERENCE = reference_profile(IRIS.data, IRIS.target, NAMES, ["a", "b", "c"])
WINDOW = 1000
THRESHOLD = 0.2


def traffic(rows: int, seed: int, shift: dict[int, float] | None = None) -> np.ndarray:
    """Rows drawn from the training data, with some features shifted (cm)."""
    drawn = IRIS.data[np.random.default_rng(seed).integers(0, len(IRIS.data), rows)].copy()
    for feature, by in (shift or {}).items():
        drawn[:, feature] += by
    return np.asarray(drawn, dtype=np.float32)


def window_after(*batches: np.ndarray, one_by_one: bool = False) -> DriftWindow:
    window = DriftWindow(REFERENCE, WINDOW)
    for batch in batches:
        if one_by_one:
            for row in batch.tolist():
                window.observe([row])
        else:
            window.observe(batch)
    return window


@pytest.mark.parametrize("seed", range(5))
def test_traffic_from_the_training_distribution_stays_under_every_threshold(seed: int) -> None:
    report = window_after(traffic(WINDOW, seed)).report()
    assert report.window_rows == WINDOW
    for name, drift in report.features.items():
        assert drift.psi < THRESHOLD and drift.ks < THRESHOLD, (name, drift)
    assert report.out_of_range_share == 0.0


def test_a_shifted_feature_crosses_its_thresholds_and_only_it() -> None:
    report = window_after(traffic(WINDOW, 0, shift={2: 1.5})).report()
    shifted = report.features["petal_length"]
    assert shifted.psi > THRESHOLD and shifted.ks > THRESHOLD
    for name in ("sepal_length", "sepal_width", "petal_width"):
        assert report.features[name].psi < THRESHOLD and report.features[name].ks < THRESHOLD


def test_rows_outside_the_training_range_are_counted() -> None:
    outside = traffic(10, 1, shift={3: 10.0})
    window = window_after(traffic(90, 2), outside)
    report = window.report()
    assert window.out_of_range_rows == 10
    assert report.out_of_range_share == pytest.approx(0.1)
    assert report.features["petal_width"].out_of_range_share == pytest.approx(0.1)
    assert report.features["sepal_width"].out_of_range_share == 0.0


def test_the_window_forgets_what_slid_out_of_it() -> None:
    window = window_after(traffic(WINDOW, 3, shift={0: 3.0}), traffic(WINDOW, 4))
    assert window.report().features["sepal_length"].psi < THRESHOLD
    assert window.out_of_range_rows > 0, "counted since start, not only in the window"


@pytest.mark.parametrize("one_by_one", [False, True], ids=["batches", "single-rows"])
def test_bin_counts_always_equal_a_recount_of_the_last_rows(one_by_one: bool) -> None:
    sizes = [1, 7, FOLD_EVERY, 999, 1, 2500, 3]
    batches = [traffic(n, seed, shift={1: seed / 10}) for seed, n in enumerate(sizes)]
    window = window_after(*batches, one_by_one=one_by_one)
    window.fold()
    last = np.vstack(batches)[-WINDOW:]
    for i, feature in enumerate(REFERENCE.features):
        start = window.offsets[i]
        counted = window.counts[start : start + len(feature.shares)]
        recount = np.bincount(
            np.searchsorted(np.asarray(feature.edges, np.float32), last[:, i], side="right"),
            minlength=len(feature.shares),
        )
        assert counted.tolist() == recount.tolist(), feature.name
