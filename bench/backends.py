"""The serving backends side by side, in process: the forest evaluator, onnxruntime, scikit-learn.

One forest is trained here (the default hyperparameters, seed 42: the model `irisops
train` makes) and exported as the trainer exports it. Then, in interleaved rounds (one
round of each backend after another, so that a noisy neighbour slows all of them alike),
each backend is timed on:

  - one row, the call a /predict request makes (`predict_one`; scikit-learn:
    predict_proba of a 1-row array), in µs;
  - 10,000 random rows on one thread (`predict_proba_serial`; scikit-learn with its
    default n_jobs=None), in rows per second;
  - the same 10,000 rows as the API runs them (`predict_proba`: one chunk per CPU).

The figures are the medians over the rounds. `python -m bench.backends` prints them with
the ratios and writes bench/results/backends/<UTC time>.json; `make bench` runs it too and
scores its target.
"""

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from irisops.runtime import CHUNKS, Classifier, ForestClassifier, OnnxClassifier
from irisops.training import data, export, fit

RESULTS = Path(__file__).resolve().parent / "results" / "backends"
ROUNDS = 15
ONE_ROW_CALLS = 20_000
BATCH_ROWS = 10_000
BATCH_CALLS = 10
TARGET_ONE_ROW_US = 4.0
TARGET_ROWS_PER_S = 1_500_000


def mean_call_s(call: Callable[[], object], calls: int) -> float:
    begin = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - begin) / calls


def measure() -> dict[str, Any]:
    dataset = data.load()
    model = fit.fit(data.split(dataset, 0.2, 42), fit.TrainParams(seed=42))
    files = export.export_files(model, len(dataset.feature_names))
    backends: dict[str, Classifier] = {
        "forest": ForestClassifier(files.forest or b""),
        "onnx": OnnxClassifier(files.onnx),
    }
    low, high = data.feature_box(dataset.X)
    rows = np.random.default_rng(0).uniform(low, high, (BATCH_ROWS, len(low))).astype(np.float32)
    row = rows[0].tolist()
    one_row = np.asarray([row], dtype=np.float32)
    frame = dataset.features(rows)
    calls: dict[str, dict[str, tuple[Callable[[], object], int]]] = {
        name: {
            "one_row": (partial(backend.predict_one, row), ONE_ROW_CALLS),
            "batch_one_thread": (partial(backend.predict_proba_serial, rows), BATCH_CALLS),
            "batch_all_cpus": (partial(backend.predict_proba, rows), BATCH_CALLS),
        }
        for name, backend in backends.items()
    }
    sample = dataset.features(one_row)
    calls["sklearn"] = {
        # Milliseconds a call (joblib's dispatch over the trees): fewer calls tell as much.
        "one_row": (lambda: model.predict_proba(sample), 20),
        "batch_one_thread": (lambda: model.predict_proba(frame), 1),
    }
    for paths in calls.values():  # warm every path (and the chunk pool's threads) once
        for call, _ in paths.values():
            call()
    samples: dict[str, dict[str, list[float]]] = {
        name: {kind: [] for kind in kinds} for name, kinds in calls.items()
    }
    for _ in range(ROUNDS):
        for name, paths in calls.items():
            for kind, (call, n) in paths.items():
                samples[name][kind].append(mean_call_s(call, n))
    figures: dict[str, dict[str, float]] = {}
    for name, measured in samples.items():
        medians = {kind: statistics.median(times) for kind, times in measured.items()}
        figures[name] = {"one_row_us": medians["one_row"] * 1e6}
        for kind in ("batch_one_thread", "batch_all_cpus"):
            if kind in medians:
                figures[name][f"{kind}_rows_per_s"] = BATCH_ROWS / medians[kind]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "model": f"RandomForest of {len(model.estimators_)} trees, "
        f"{sum(e.tree_.node_count for e in model.estimators_):,} nodes",
        "settings": {
            "rounds": ROUNDS,
            "one_row_calls": ONE_ROW_CALLS,
            "batch_rows": BATCH_ROWS,
            "batch_calls": BATCH_CALLS,
            "chunks": CHUNKS,
        },
        "figures": figures,
        "targets": {
            "forest_one_row_us": TARGET_ONE_ROW_US,
            "forest_batch_one_thread_rows_per_s": TARGET_ROWS_PER_S,
        },
    }


def summary(result: dict[str, Any]) -> str:
    f = result["figures"]
    forest, onnx, sklearn = f["forest"], f["onnx"], f["sklearn"]
    one, batch = "one_row_us", "batch_one_thread_rows_per_s"
    one_met = "met" if forest[one] <= TARGET_ONE_ROW_US else "MISSED"
    batch_met = "met" if forest[batch] >= TARGET_ROWS_PER_S else "MISSED"
    lines = [
        f"{result['model']}, {result['settings']['rounds']} interleaved rounds, medians",
        "",
        f"{'':28}{'forest':>12}{'onnx':>12}{'sklearn':>12}",
        f"{'one row (µs)':28}{forest[one]:12.2f}{onnx[one]:12.2f}{sklearn[one]:12.1f}",
        f"{'10,000 rows, 1 thread (/s)':28}{forest[batch]:12,.0f}{onnx[batch]:12,.0f}"
        f"{sklearn[batch]:12,.0f}",
        f"{'10,000 rows, all CPUs (/s)':28}{forest['batch_all_cpus_rows_per_s']:12,.0f}"
        f"{onnx['batch_all_cpus_rows_per_s']:12,.0f}",
        "",
        f"one row: forest is {report.times(onnx[one] / forest[one])} faster than onnx, "
        f"{report.times(sklearn[one] / forest[one])} faster than scikit-learn "
        f"(target <= {TARGET_ONE_ROW_US} µs: {one_met})",
        f"10,000 rows: forest is {report.times(forest[batch] / onnx[batch])} onnx's rate, "
        f"{report.times(forest[batch] / sklearn[batch])} scikit-learn's "
        f"(target >= {TARGET_ROWS_PER_S:,}/s: {batch_met})",
    ]
    return "\n".join(lines)


def main() -> None:
    result = measure()
    print(summary(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
