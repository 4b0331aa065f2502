"""The JSON of the row-per-object answers, written without a Python dict per row.

Building a dict per row and serialising them took most of a 10,000-row
/predict/batch (docs/benchmark.md). Here orjson writes the probability matrix once,
as its shortest float32 numbers, and the C renderer (`_rows.c`) copies each row's
object together from that text and JSON fragments made once per model: the bytes
orjson would have written for the dicts (tests/serving/test_rows.py holds it to that).
/predict answers its one row the same way.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import orjson

from irisops.runtime import LoadedModel
from irisops.serving import _rows

NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class Fragments:
    """What every row of one model's answers shares, as JSON."""

    heads: tuple[bytes, ...]  # per class: {"prediction":"setosa","class_id":0,"probabilities":{
    keys: tuple[bytes, ...]  # per class: "setosa":
    tail: bytes  # },"model_version":"3"


@lru_cache(maxsize=8)
def fragments(class_names: tuple[str, ...], version: str) -> Fragments:
    def head(class_id: int, name: str) -> bytes:
        return b'{"prediction":%b,"class_id":%d,"probabilities":{' % (orjson.dumps(name), class_id)

    return Fragments(
        heads=tuple(head(i, name) for i, name in enumerate(class_names)),
        keys=tuple(orjson.dumps(name) + b":" for name in class_names),
        tail=b'},"model_version":' + orjson.dumps(version),
    )


def rendered(
    model: LoadedModel,
    class_ids: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float32],
    out_of_range: Sequence[list[str]] | None = None,
) -> bytes:
    """The rows' answer objects, joined by commas; each lists its out-of-range features if given."""
    parts = fragments(tuple(model.metadata.class_names), model.version)
    extras = (
        None
        if out_of_range is None
        else tuple(b',"out_of_range":' + orjson.dumps(names) for names in out_of_range)
    )
    matrix = orjson.dumps(probabilities, option=NUMPY)
    return _rows.render(class_ids, matrix, parts.heads, parts.keys, parts.tail, extras)


def batch_answer(
    model: LoadedModel,
    class_ids: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float32],
    out_of_range: Sequence[list[str]] | None = None,
) -> bytes:
    """/predict/batch's default answer: {"predictions": [...], "model_version": ...}."""
    rows = rendered(model, class_ids, probabilities, out_of_range)
    return b'{"predictions":[%b],"model_version":%b}' % (rows, orjson.dumps(model.version))
