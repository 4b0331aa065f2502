"""The inference log read back: filtered, and flattened to one row per predicted row.

JSON lines come out as they were written; CSV and Parquet get one row per input row,
with a column per feature and per class probability, so a spreadsheet or a data
frame reads them without unpacking anything.
"""

import csv
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from irisops import inference_log

KINDS = ("prediction", "shadow", "feedback")


def selected(
    directory: Path,
    kind: str | None = None,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    for record in inference_log.read(directory):
        at = datetime.fromisoformat(record["time"])
        if (kind and record.get("kind") != kind) or (
            version and record.get("model_version") != version
        ):
            continue
        if (since and at < since) or (until and at >= until):
            continue
        yield record


def flat(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One dict per predicted row (feedback records are one row already)."""
    for record in records:
        if record.get("kind") == "feedback":
            answers = record.get("answers", {})
            yield {
                **{k: record[k] for k in ("time", "request_id", "row", "true_class")},
                **{f"{role}_version": a[0] for role, a in answers.items()},
                **{f"{role}_prediction": a[1] for role, a in answers.items()},
            }
            continue
        classes = record.get("classes") or []
        names = record.get("feature_names") or []
        for row, probabilities in enumerate(record["probabilities"]):
            class_id = record["class_ids"][row]
            out = {
                k: record.get(k) for k in ("time", "kind", "request_id", "route", "model_version")
            }
            out["row"] = row
            if record.get("features") is not None:
                out |= dict(zip(names, record["features"][row], strict=True))
            out |= {f"p_{name}": p for name, p in zip(classes, probabilities, strict=True)}
            out["prediction"] = classes[class_id] if classes else class_id
            out["latency_ms"] = record.get("latency_ms")
            yield out


def write(records: Iterable[dict[str, Any]], form: str, output: Path | None) -> int:
    """Write in `form` (jsonl, csv, parquet) to `output` or stdout; returns rows written."""
    if form == "jsonl":
        return _jsonl(records, output)
    rows = list(flat(records))
    if form == "csv":
        _csv(rows, output)
    else:
        _parquet(rows, output)
    return len(rows)


def _jsonl(records: Iterable[dict[str, Any]], output: Path | None) -> int:
    count = 0
    with output.open("wb") if output else open(sys.stdout.fileno(), "wb", closefd=False) as out:
        for record in records:
            out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count


def _csv(rows: list[dict[str, Any]], output: Path | None) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with (
        output.open("w", newline="")
        if output
        else open(sys.stdout.fileno(), "w", closefd=False) as out
    ):
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _parquet(rows: list[dict[str, Any]], output: Path | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if output is None:
        raise ValueError("Parquet is binary: give --output FILE")
    pq.write_table(pa.Table.from_pylist(rows), output)
