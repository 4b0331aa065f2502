"""The inference log: records land in rotated JSON-lines files, and nothing blocks a request."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from irisops import inference_log
from irisops.inference_log import InferenceLog


def entry(n: int) -> dict[str, Any]:
    return {
        "kind": "prediction",
        "time": time.time(),
        "request_id": f"r{n}",
        "features": np.asarray([[5.1, 3.5, 1.4, 0.2]], np.float32),
        "probabilities": np.asarray([[1.0, 0.0, 0.0]], np.float32),
        "class_ids": [0],
    }


def written(log: InferenceLog, n: int) -> list[dict[str, object]]:
    for i in range(n):
        log.record(entry(i))
    log.stop()
    return list(inference_log.read(log.directory))


def test_records_read_back_in_order_with_their_arrays(tmp_path: Path) -> None:
    log = InferenceLog(tmp_path)
    log.start()
    records = written(log, 50)
    assert [r["request_id"] for r in records] == [f"r{i}" for i in range(50)]
    assert records[0]["features"] == [[5.1, 3.5, 1.4, 0.2]]  # float32, written shortest
    assert str(records[0]["time"]).endswith("+00:00")
    assert log.counts.written == 50


def test_times_are_utc_to_the_microsecond_as_datetime_writes_them() -> None:
    for seconds in (0.0, 1_764_614_400.0, 1_764_614_400.5, 1_764_614_459.999_999):
        for offset in (0.0, 0.000_25, 0.123_456):
            at = datetime.fromtimestamp(seconds + offset, UTC)
            stamp = inference_log.utc_stamp(seconds + offset)
            assert abs(datetime.fromisoformat(stamp) - at) <= timedelta(microseconds=1), stamp
            assert stamp[:19] == at.isoformat()[:19] and stamp.endswith("+00:00")


def test_files_rotate_by_size_and_the_oldest_are_deleted(tmp_path: Path) -> None:
    log = InferenceLog(tmp_path, max_bytes=1024, keep=3)
    for i in range(40):
        log.record(entry(i))
        log.write_queued()  # one pass per record, as a busy writer would
    log.stop()
    files = inference_log.files(tmp_path)
    assert len(files) == 3
    assert log.counts.files > 3
    assert all(path.stat().st_size < 1024 + 400 for path in files)


def test_files_rotate_by_age(tmp_path: Path) -> None:
    log = InferenceLog(tmp_path, max_age=0.01)
    log.record(entry(0))
    log.write_queued()
    time.sleep(0.02)
    log.record(entry(1))
    log.stop()
    assert len(inference_log.files(tmp_path)) == 2


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    log = InferenceLog(tmp_path, queue_size=10)  # not started: nothing drains the queue
    started = time.perf_counter()
    for i in range(1000):
        log.record(entry(i))
    assert time.perf_counter() - started < 1.0
    assert log.counts.dropped_full_queue == 990
    assert len(written(log, 0)) == 10


def test_a_failed_write_is_counted_and_writing_resumes_by_itself(tmp_path: Path) -> None:
    blocked = tmp_path / "log"
    blocked.write_text("a file where the directory should be")
    log = InferenceLog(blocked)
    log.record(entry(0))
    log.write_queued()
    assert log.counts.dropped_write_error == 1
    blocked.unlink()
    log.record(entry(1))
    log.write_queued()
    assert [r["request_id"] for r in written(log, 0)] == ["r1"]


def test_the_log_survives_a_restart_and_a_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    written(InferenceLog(tmp_path), 3)
    with inference_log.files(tmp_path)[-1].open("ab") as cut:
        cut.write(b'{"kind": "predic')
    time.sleep(0.01)  # the next file's name is a later time
    records = written(InferenceLog(tmp_path), 2)
    assert [r["request_id"] for r in records] == ["r0", "r1", "r2", "r0", "r1"]


def each_alone(records: list[dict[str, Any]]) -> bytes:
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    stamped = ({**r, "time": inference_log.utc_stamp(r["time"])} for r in records)
    return b"".join(orjson.dumps(r, option=options) for r in stamped)


def test_a_pass_of_records_is_written_line_for_line_as_each_alone() -> None:
    """One orjson call writes a whole pass; its bytes are those each record gives alone."""
    odd = {"kind": "feedback", "time": 1.5, "note": '},{"kind": in a string', "answers": {}}
    nested = {"kind": "x", "time": 2.5, "inner": [{"kind": 1}, {"kind": 2}]}  # the boundary
    for records in ([entry(1), odd, entry(2)], [entry(3), nested, entry(4)], [entry(5)]):
        expected = each_alone(records)
        assert inference_log.json_lines([dict(r) for r in records]) == expected
        assert len(expected.splitlines()) == len(records)


def test_lines_made_already_and_records_are_written_in_the_order_queued(tmp_path: Path) -> None:
    log = InferenceLog(tmp_path)
    for i in range(7):
        made = orjson.dumps({"kind": "prediction", "request_id": f"r{i}"}) + b"\n"
        log.record(made if i % 3 else entry(i))
    log.stop()
    assert [r["request_id"] for r in inference_log.read(tmp_path)] == [f"r{i}" for i in range(7)]
