"""The inference log: every answered prediction, one JSON line per request.

A request hands its record to a bounded in-memory queue and goes on; a writer
thread serialises the records and appends them to the current file, flushing after
every pass. (A single-row prediction's record arrives as its line already made,
serving/log_lines.py, which the writer only copies.) So a crash loses at most the
records still queued (the queue's bound) plus what the operating system had not yet
written. A full queue, or a write that fails (a full disk), drops records and counts
them; it never blocks or fails a request, and writing resumes by itself on the next
pass.

Files are `inference-<UTC start time>.jsonl` in one directory, rotated by size and
age; the oldest beyond `keep` are deleted. A batch is one record with its rows
inside, which costs a request one queue append whatever its size.

Records have a `kind`: `prediction` (the served answer), `shadow` (the challenger's
answer to the same request, scored later) and `feedback` (the true class, sent
later). `read` yields them back, oldest first.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from irisops.drain import Drain

PREFIX, SUFFIX = "inference-", ".jsonl"
log = logging.getLogger("irisops.serving")
# A queued record: a dict for the writer to serialise, or its JSON line already.
Queued = dict[str, Any] | bytes


@dataclass
class LogCounts:
    written: int = 0
    dropped_full_queue: int = 0
    dropped_write_error: int = 0
    files: int = 0


class InferenceLog:
    def __init__(
        self,
        directory: Path,
        queue_size: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_age: float = 3600.0,
        keep: int = 48,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.keep = keep
        self.queued: Drain[Queued] = Drain("inference-log", self._write, queue_size)
        self._counts = LogCounts()
        self._file: BinaryIO | None = None
        self._opened = 0.0

    @property
    def counts(self) -> LogCounts:
        return LogCounts(**{**vars(self._counts), "dropped_full_queue": self.queued.dropped})

    def start(self) -> None:
        self.queued.start()

    def stop(self) -> None:
        """Write what is queued, then close: a clean stop loses nothing."""
        self.queued.stop()
        if self._file is not None:
            self._file.close()

    def record(self, entry: Queued) -> None:
        """Queue one record, or its line, or count it dropped if the queue is full.

        Never blocks.
        """
        self.queued.put(entry)

    def write_queued(self) -> None:
        """One writer pass now (the thread makes one every 50 ms)."""
        self.queued.drain()

    def _write(self, entries: list[Queued]) -> None:
        try:
            lines = json_lines(entries)
            out = self._current()
            out.write(lines)
            out.flush()
        except (OSError, TypeError) as exc:  # TypeError: a value orjson cannot write
            self._counts.dropped_write_error += len(entries)
            log.warning("inference log: dropped %d records: %s", len(entries), exc)
            self._close()
            return
        self._counts.written += len(entries)

    def _current(self) -> BinaryIO:
        if self._file is not None and (
            self._file.tell() >= self.max_bytes or time.monotonic() - self._opened >= self.max_age
        ):
            self._close()
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            path = self.directory / f"{PREFIX}{stamp}{SUFFIX}"
            self._file = path.open("ab")
            self._opened = time.monotonic()
            self._counts.files += 1
            self._prune()
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # a full disk can fail the final flush too
                self._file.close()
            self._file = None

    def _prune(self) -> None:
        for old in files(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)


NUMPY = orjson.OPT_SERIALIZE_NUMPY
# Where one record ends and the next begins in a JSON array of records: every record
# starts with its kind.
BOUNDARY = b'},{"kind":'


def json_lines(entries: list[Queued]) -> bytes:
    """The queued records as JSON lines, in order: the lines made already as they are,
    and each run of dicts by `serialised`."""
    return b"".join(
        b"".join(run) if kind is bytes else serialised(list(run))  # type: ignore[arg-type]
        for kind, run in groupby(entries, key=type)
    )


def serialised(entries: list[dict[str, Any]]) -> bytes:
    """The entries as JSON lines, written by one orjson call for all of them.

    One call for a pass's records cost the writer about half of one call per record
    (docs/benchmark.md), and the writer holds the GIL the requests need while it
    works. The array is cut into lines at its record boundaries, which is only sound
    if no record holds the boundary itself (as a list of objects whose first key is
    "kind" would): then the boundaries are counted one too many, and each record is
    written on its own. Inside a JSON string the quotes are escaped, so no string
    can hold it.
    """
    for entry in entries:
        entry["time"] = utc_stamp(entry["time"])
    joined = orjson.dumps(entries, option=NUMPY)[1:-1]
    if joined.count(BOUNDARY) != len(entries) - 1:
        return b"".join(orjson.dumps(e, option=NUMPY | orjson.OPT_APPEND_NEWLINE) for e in entries)
    return joined.replace(BOUNDARY, b'}\n{"kind":') + b"\n"


def utc_stamp(seconds: float) -> str:
    """ISO 8601 in UTC, to the microsecond: `2026-12-01T19:30:05.123456+00:00`.

    The date and time of day are formatted once a second: datetime's own formatting
    of every record cost the writer more than serialising the rest of it. (`%06d`
    truncates the float, as `int` would, for half the cost of an f-string.)
    """
    whole = int(seconds)
    return "%s.%06d+00:00" % (_second(whole), (seconds - whole) * 1_000_000)  # noqa: UP031


@lru_cache(maxsize=2)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def files(directory: Path) -> list[Path]:
    """The log's files, oldest first (their names sort by start time)."""
    return sorted(directory.glob(f"{PREFIX}*{SUFFIX}"))


def read(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record, oldest first; a line cut short by a crash is skipped."""
    for path in files(directory):
        with path.open("rb") as lines:
            for line in lines:
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
