"""Types of the compiled rows' JSON code (src/irisops/serving/_rows.c)."""

from typing import Any

import numpy.typing as npt

def parse(raw: bytes, features: int, max_rows: int, /) -> bytes | None:
    """The float32 rows of a body {"instances": [[n, ...], ...]} of 1 to max_rows rows of
    `features` numbers, or None for any other body (pydantic then decides)."""

def parse_one(raw: bytes, features: int, /) -> list[float] | None:
    """The row of a body {"features": [n, ...]} of `features` numbers, as the floats pydantic
    gives, or None for any other body (pydantic then decides)."""

def render(
    class_ids: npt.NDArray[Any],
    matrix: bytes,
    heads: tuple[bytes, ...],
    keys: tuple[bytes, ...],
    tail: bytes,
    extras: tuple[bytes, ...] | None,
    /,
) -> bytes:
    """The rows' JSON objects joined by commas: heads[class id], then keys[j] and the row's
    j-th number of `matrix` (orjson's text of an n x k array), then tail, extras[i] and "}"."""

def log_line(
    parts: tuple[bytes, ...],
    now: float,
    request_id: str | None,
    numbers: bytes,
    class_id: int,
    /,
) -> bytes | None:
    """parts[0], the time `now` as utc_stamp writes it, parts[1], the request id (quoted, or
    null), parts[2], the row, parts[3], the probabilities, parts[4], the class id, parts[5]
    and the latency, then "}\n": the row, probabilities and latency taken from `numbers`,
    orjson's text of [row, probabilities, latency]. None for a request id that is not plain
    printable ASCII, or `numbers` of another shape."""
