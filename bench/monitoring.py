"""What watching live traffic costs one request, in microseconds, in process.

`Monitor.answered` is the one call every prediction route makes: it queues the
inference-log record, appends the rows to the drift window (binning them in bulk
every few hundred calls), and remembers the answer for feedback. Timed here over
many calls, so the occasional bulk binning is included at its average cost, for a
single row and for a 100-row batch. `python -m bench.monitoring` prints the figures;
`make bench` records them with the rest.
"""

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_iris

from irisops.bundle import read_current
from irisops.config import Settings
from irisops.runtime import LoadedModel, load_model
from irisops.serving.drift import DriftWindow
from irisops.serving.monitor import Monitor

CALLS = 20_000
ROUNDS = 7


def per_call_us(call: Any, calls: int = CALLS) -> float:
    """The median over ROUNDS of the mean time of CALLS calls."""
    times = []
    for _ in range(ROUNDS):
        begin = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - begin) / calls * 1e6)
    return statistics.median(times)


def measure(model: LoadedModel) -> dict[str, float]:
    rows = load_iris().data.astype(np.float32)
    one, batch = rows[:1].tolist(), rows[:100]
    probabilities, ids = np.asarray([[1.0, 0.0, 0.0]], np.float32), [0]
    reference = model.metadata.reference
    if reference is None:
        raise SystemExit("the model has no training reference: retrain it")
    window = DriftWindow(reference, 1000)
    with tempfile.TemporaryDirectory() as logs:
        monitor = Monitor(Settings(inference_log_dir=Path(logs)), challenger=None)
        monitor.start()
        try:
            figures = {
                "drift_one_row_us": per_call_us(lambda: window.observe(one)),
                "drift_100_rows_us": per_call_us(lambda: window.observe(batch), CALLS // 10),
                "answered_one_row_us": per_call_us(
                    lambda: monitor.answered(
                        "/predict", model, one, probabilities, ids, 0.0, "bench"
                    )
                ),
            }
        finally:
            monitor.stop()
    return figures


def main() -> None:
    import sys

    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Settings().served_model_dir
    key, metadata, files = read_current(model_dir)
    for name, value in measure(load_model(key, metadata, files)).items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
