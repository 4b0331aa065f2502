"""A single-row prediction's log line, made in C, is byte for byte the one the writer
makes of the same record's dict, or steps aside for the dict."""

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pytest

from irisops import inference_log
from irisops.config import Settings
from irisops.runtime import LoadedModel
from irisops.serving import _rows
from irisops.serving.log_lines import fragments, prediction_line
from irisops.serving.monitor import Monitor
from tests.serving.stand_ins import IRIS, as_loaded

EDGE_NUMBERS = [0.0, -0.0, 1.0, -7.0, 5e-324, 1e-7, 1.5e-5, 1e16, 1.7976931348623157e308, 0.1]
EDGE_TIMES = [0.0, 0.999_999_9, 951_782_400.5, 1_764_614_459.999_999, 4_102_444_800.25]


def written(record: dict[str, Any]) -> bytes:
    """The record's line as the log's writer makes it of the dict."""
    return inference_log.json_lines([dict(record)])


def record(
    model: LoadedModel,
    route: str,
    now: float,
    rid: str | None,
    row: list[float],
    probabilities: npt.NDArray[np.float32],
    latency_ms: float,
) -> dict[str, Any]:
    """The dict Monitor.answered queues for one row (serving/monitor.py)."""
    return {
        "kind": "prediction",
        "time": now,
        "request_id": rid,
        "route": route,
        "model_version": model.version,
        "features": [row],
        "probabilities": probabilities,
        "class_ids": [int(probabilities.argmax())],
        "classes": model.metadata.class_names,
        "feature_names": model.metadata.feature_names,
        "latency_ms": latency_ms,
    }


def both(model: LoadedModel, route: str, **values: Any) -> tuple[bytes | None, bytes]:
    entry = record(model, route, **values)
    line = prediction_line(
        fragments(route, model),
        values["now"],
        values["rid"],
        values["row"],
        values["probabilities"],
        entry["class_ids"][0],
        values["latency_ms"],
    )
    return line, written(entry)


def test_generated_predictions_give_the_writers_bytes() -> None:
    rng = np.random.default_rng(7)
    pick = random.Random(7)
    for n in range(3_000):
        classes = IRIS if n % 3 else [f"class {i}" for i in range(1 + n % 13)]
        model = as_loaded(classes, pick.choice(["1", "12", "unregistered", 'a "quoted" one']))
        probabilities = rng.dirichlet(np.ones(len(classes)), 1).astype(np.float32)
        if n % 7 == 0:
            probabilities = np.eye(len(classes), dtype=np.float32)[[n % len(classes)]]
        row = [
            pick.choice(EDGE_NUMBERS) if n % 5 == 0 else float(x)
            for x in rng.normal(3, 10, 4).round(pick.randint(0, 17))
        ]
        values = {
            "now": pick.choice(EDGE_TIMES) if n % 11 == 0 else time.time() + pick.random() * 1e8,
            "rid": pick.choice([None, os.urandom(16).hex(), "client:id/7+=@-._"]),
            "row": row,
            "probabilities": probabilities,
            "latency_ms": pick.choice([0.0, 1e-9, 0.123_456_789, 12_345.678]),
        }
        line, expected = both(model, pick.choice(["/predict", "/v2/models/{name}/infer"]), **values)
        assert line == expected, values


@pytest.mark.parametrize(
    "rid", ['say "hi"', "back\\slash", "caf\u00e9", "tab\there", "new\nline", "\x7f"]
)
def test_a_request_id_json_must_escape_is_left_to_the_dict(rid: str) -> None:
    values = {
        "now": time.time(),
        "rid": rid,
        "row": [5.1, 3.5, 1.4, 0.2],
        "probabilities": np.asarray([[1.0, 0.0, 0.0]], np.float32),
        "latency_ms": 0.5,
    }
    line, expected = both(as_loaded(IRIS), "/predict", **values)
    assert line is None
    assert orjson.loads(expected)["request_id"] == rid


@pytest.mark.parametrize("now", [-1.0, float("nan"), float("inf"), 253_402_300_800.0])
def test_a_time_utc_stamp_cannot_write_the_same_way_is_left_to_the_dict(now: float) -> None:
    parts = fragments("/predict", as_loaded(IRIS))
    numbers = orjson.dumps(([5.1, 3.5, 1.4, 0.2], [[1.0, 0.0, 0.0]], 0.5))
    assert _rows.log_line(parts, now, None, numbers, 0) is None


@pytest.mark.parametrize(
    "numbers",
    [
        b"",
        b"[]",
        b"[[5.1],[[1.0]]]",  # no latency
        b"[[5.1],[[1.0]],0.5,1]",  # one too many
        b'[[5.1],[["x"]],0.5]',  # a string
        b"[[5.1],[[1.0]],0.5",  # cut short
        b"[[5.1],[[1.0]],0.5]]",
        b"[[5.1],[[1.0]],]",
        b"{[5.1],[[1.0]],0.5]",  # not an array
    ],
)
def test_numbers_of_another_shape_are_left_to_the_dict(numbers: bytes) -> None:
    parts = fragments("/predict", as_loaded(IRIS))
    assert _rows.log_line(parts, time.time(), None, numbers, 0) is None


def test_fragments_of_another_shape_are_a_programming_error() -> None:
    numbers = orjson.dumps(([5.1], [[1.0]], 0.5))
    with pytest.raises(ValueError, match="6 bytes"):
        _rows.log_line((b"",) * 5, time.time(), None, numbers, 0)
    with pytest.raises(TypeError, match="6 bytes"):
        _rows.log_line((b"",) * 5 + ("",), time.time(), None, numbers, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        _rows.log_line((b"",) * 6, time.time(), None, numbers, -1)


def test_a_single_row_is_queued_as_its_line_and_a_batch_as_its_record(tmp_path: Path) -> None:
    monitor = Monitor(Settings(inference_log_dir=tmp_path), challenger=None)
    model, started = as_loaded(IRIS), time.perf_counter()
    one = np.asarray([[0.9, 0.1, 0.0]], np.float32)
    monitor.answered("/predict", model, [[5.1, 3.5, 1.4, 0.2]], one, [0], started, "r-1")
    batch = np.asarray([[5.1, 3.5, 1.4, 0.2]] * 2, np.float32)
    two = np.repeat(one, 2, axis=0)
    monitor.answered("/predict/batch", model, batch, two, [0, 0], started, "r-2")
    assert monitor.log is not None
    line, entry = monitor.log.queued.queue
    assert isinstance(line, bytes) and orjson.loads(line)["route"] == "/predict"
    assert isinstance(entry, dict) and entry["route"] == "/predict/batch"
