"""The inference log's line for a one-row prediction, copied together in C.

A /predict's record used to be a dict of eleven keys that the log's writer thread
serialised later: 3.2 µs a record in a timeit loop, against 1.5 µs for the line made
here (docs/benchmark.md, step 20). The parts of the line that stay the same (the
route, the model version, the class and feature names) are written by orjson once
per model and route; per request, orjson writes the row, the probabilities and the
latency in one call, and `_rows.log_line` copies those, the time and the request id
in between. The line is byte for byte the one the writer makes of the record's dict
(tests/serving/test_log_lines.py), which stays the way for everything else: batches,
the shadow's records, feedback, and a request id with characters JSON must escape.
"""

import numpy as np
import numpy.typing as npt
import orjson

from irisops.runtime import LoadedModel
from irisops.serving import _rows

NUMPY = orjson.OPT_SERIALIZE_NUMPY
Fragments = tuple[bytes, bytes, bytes, bytes, bytes, bytes]


def fragments(route: str, model: LoadedModel) -> Fragments:
    """What goes between the per-request values of `model`'s lines for `route`."""
    metadata = model.metadata
    served = orjson.dumps({"route": route, "model_version": model.version})[1:-1]
    names = orjson.dumps(
        {"classes": metadata.class_names, "feature_names": metadata.feature_names}
    )[1:-1]
    return (
        b'{"kind":"prediction","time":"',
        b'","request_id":',
        b"," + served + b',"features":[',
        b'],"probabilities":',
        b',"class_ids":[',
        b"]," + names + b',"latency_ms":',
    )


def prediction_line(
    parts: Fragments,
    now: float,
    request_id: str | None,
    row: list[float],
    probabilities: npt.NDArray[np.float32],
    class_id: int,
    latency_ms: float,
) -> bytes | None:
    """The line of a record {features: [row], probabilities, class_ids: [class_id], ...},
    or None if its request id needs escaping (the dict's way then writes it)."""
    numbers = orjson.dumps((row, probabilities, latency_ms), option=NUMPY)
    return _rows.log_line(parts, now, request_id, numbers, class_id)
