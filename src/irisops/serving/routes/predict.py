"""The prediction routes.

They read the raw body and validate it with one pydantic-core call instead of
declaring a body parameter, for two reasons: the original `curl -d` sends no JSON
content type, which FastAPI would refuse to parse as JSON; and parsing plus
validation in Rust is the fastest path there is. The OpenAPI schema is declared by
hand (`request_body`), so /docs still shows and validates the body.

Each route's work is a function of a `Call` (call.py), not of a FastAPI request:
the short way (lane.py) calls it straight from the server, and the FastAPI routes
below, which OpenAPI documents and which answer whatever the short way passes on,
call the same function. docs/benchmark.md has the numbers behind every choice made
here.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError

from irisops.runtime import LoadedModel
from irisops.serving import _rows
from irisops.serving.call import Call
from irisops.serving.errors import ApiError
from irisops.serving.metrics import Metrics
from irisops.serving.monitor import Monitor
from irisops.serving.rows import NUMPY, batch_answer, rendered
from irisops.serving.schemas import (
    ERRORS,
    FEATURES,
    BatchPrediction,
    BatchRequest,
    ColumnarBatchPrediction,
    ErrorResponse,
    Prediction,
    PredictRequest,
    request_body,
)
from irisops.serving.security import KeyedRoute, read_body
from irisops.serving.validation import BATCH, PREDICT, refusal, wrong_route

router = APIRouter(tags=["predict"], route_class=KeyedRoute)
Body = TypeVar("Body", bound=BaseModel)

# A batch body larger than this (about 900 rows) is answered in a worker thread, so
# the event loop keeps answering other requests meanwhile; a 10,000-row batch would
# otherwise block it for tens of milliseconds. Smaller bodies are not worth the hop.
OFFLOAD_BYTES = 16 * 1024
# /predict/batch?format=...: one object per row (the default), or one array per field.
ROWS, COLUMNAR = "rows", "columnar"
FORMAT_PARAMETER = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "`rows` (default): one answer object per instance. `columnar`: the "
    "class names once, then `class_ids` and a `probabilities` matrix (a row per "
    "instance, a column per class); a fraction of the bytes, and cheaper to build.",
    "schema": {"type": "string", "enum": [ROWS, COLUMNAR], "default": ROWS},
}


class JSONAnswer(Response):
    """An answer already written as JSON (serving/rows.py)."""

    media_type = "application/json"


def parse(raw: bytes, model: type[Body], route: str, **context: Any) -> Body:
    try:
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        raise refusal(exc.errors(), wrong_route(route, raw)) from None


@dataclass(frozen=True, slots=True)
class Batch:
    """What answering one batch needs, whether on the event loop or in a worker thread."""

    model: LoadedModel
    metrics: Metrics
    monitor: Monitor
    max_rows: int
    mark: bool
    columnar: bool
    started: float
    request_id: str | None


def features_of(rows: list[list[float]]) -> npt.NDArray[np.float32]:
    # Validated rows have exactly FEATURES numbers: filling the array from one flat
    # iterator takes half the time of np.asarray on a list of lists.
    flat = chain.from_iterable(rows)
    return np.fromiter(flat, np.float32, len(rows) * FEATURES).reshape(-1, FEATURES)


def plain_rows(raw: bytes, max_rows: int) -> npt.NDArray[np.float32] | None:
    """The rows of a batch body of the plain form, read in C, or None.

    The plain form is {"instances": [[4 numbers], ...]} with 1 to `max_rows` rows and
    nothing else: `_rows.parse` gives it the float32 rows pydantic's validation and
    `features_of` give, without a Python object per number. Any other body (another
    shape, a non-number, a key too many, too many rows, an empty batch) is None, and
    pydantic decides and words the refusal as before; tests/serving/test_plain_rows.py
    holds the two paths to the same rows.
    """
    parsed = _rows.parse(raw, FEATURES, max_rows)
    return None if parsed is None else np.frombuffer(parsed, np.float32).reshape(-1, FEATURES)


def single_row(raw: bytes) -> list[float]:
    """The row of a /predict body: read in C if it is of the plain form, else by pydantic.

    The plain form is {"features": [4 numbers]} and nothing else; `_rows.parse_one`
    gives the floats pydantic's validation gives, in a fifth of its time. Any other
    body goes to pydantic, which decides and words the refusal (tests/serving/
    test_plain_rows.py holds the two paths to the same floats).
    """
    row = _rows.parse_one(raw, FEATURES)
    return parse(raw, PredictRequest, PREDICT).features if row is None else row


def batch_features(raw: bytes, max_rows: int) -> npt.NDArray[np.float32]:
    features = plain_rows(raw, max_rows)
    if features is None:
        body = parse(raw, BatchRequest, BATCH, max_rows=max_rows)
        features = features_of(body.instances)
    return features


def answer_batch(batch: Batch, raw: bytes) -> bytes:
    model = batch.model
    features = batch_features(raw, batch.max_rows)
    batch.metrics.batch(BATCH, len(features))
    if not len(features) and not batch.columnar:
        return orjson.dumps(rows_of(model))
    probabilities = model.classifier.predict_proba(features)
    class_ids = probabilities.argmax(axis=1)
    batch.metrics.predicted(model.metadata.class_names, class_ids)
    batch.monitor.answered(
        BATCH, model, features, probabilities, class_ids, batch.started, batch.request_id
    )
    outside = out_of_range(model, features) if batch.mark else None
    if batch.columnar:
        # orjson writes numpy float32 as its shortest decimal: 0.97, not 0.9700000286102295.
        return orjson.dumps(columns(model, class_ids, probabilities, outside), option=NUMPY)
    return batch_answer(model, class_ids, probabilities, outside)


def rows_of(model: LoadedModel) -> dict[str, Any]:
    """The answer to an empty batch."""
    return {"predictions": [], "model_version": model.version}


def columns(
    model: LoadedModel,
    class_ids: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float32],
    outside: list[list[str]] | None,
) -> dict[str, Any]:
    """The columnar answer: numpy arrays that orjson writes without a Python object per row."""
    answer: dict[str, Any] = {
        "classes": model.metadata.class_names,
        "class_ids": class_ids,
        "probabilities": probabilities,
        "model_version": model.version,
    }
    if outside is not None:
        answer["out_of_range"] = outside
    return answer


def answer_format(call: Call) -> bool:
    """Whether ?format=columnar was asked for; any value but the two is refused."""
    form = call.query("format")
    if form is None:
        return False
    if form not in (ROWS, COLUMNAR):
        raise ApiError(
            422,
            f"format must be {ROWS!r} or {COLUMNAR!r}, got {form!r}",
            [{"field": "format", "message": f"must be {ROWS!r} or {COLUMNAR!r}"}],
        )
    return form == COLUMNAR


def marking(call: Call) -> bool:
    """Whether answers list out-of-range features: the setting, or ?out_of_range=true."""
    return call.serving.settings.mark_out_of_range or call.query("out_of_range") == "true"


def out_of_range(model: LoadedModel, features: Any) -> list[list[str]] | None:
    """Per row, its features outside the training range (None for a model without a profile)."""
    reference = model.metadata.reference
    return None if reference is None else reference.outside(features)


async def predict_one(call: Call) -> bytes:
    started = time.perf_counter()
    model = call.model()
    row = single_row(await read_body(call))
    probabilities = model.classifier.predict_one(row)[None]
    class_ids = probabilities.argmax(axis=1)
    class_id = int(class_ids[0])
    serving = call.serving
    serving.metrics.predicted_one(model.metadata.class_names[class_id])
    rows = [row]
    outside = out_of_range(model, rows) if marking(call) else None
    serving.monitor.answered(
        PREDICT, model, rows, probabilities, [class_id], started, call.request_id
    )
    return rendered(model, class_ids, probabilities, outside)


async def predict_many(call: Call) -> bytes:
    started = time.perf_counter()
    model = call.model()
    serving = call.serving
    raw = await read_body(call)
    batch = Batch(
        model,
        serving.metrics,
        serving.monitor,
        serving.settings.max_batch_rows,
        marking(call),
        answer_format(call),
        started,
        call.request_id,
    )
    if len(raw) <= OFFLOAD_BYTES:
        return answer_batch(batch, raw)
    return await asyncio.to_thread(answer_batch, batch, raw)


Answer = Callable[[Call], Awaitable[bytes]]
# What the short way (lane.py) answers itself, by path: all of them POST, all JSON.
ANSWERS: dict[str, Answer] = {PREDICT: predict_one, BATCH: predict_many}


@router.post(
    PREDICT,
    response_model=Prediction,
    responses=ERRORS,
    openapi_extra=request_body(PredictRequest),
    summary="Predict the species of one flower",
)
async def predict(request: Request) -> JSONAnswer:
    return JSONAnswer(await predict_one(Call.of(request)))


@router.post(
    BATCH,
    response_model=BatchPrediction | ColumnarBatchPrediction,
    responses={
        **ERRORS,
        413: {
            "model": ErrorResponse,
            "description": "More rows than IRISOPS_MAX_BATCH_ROWS, or a body over "
            "IRISOPS_MAX_BODY_BYTES",
        },
    },
    openapi_extra={**request_body(BatchRequest), "parameters": [FORMAT_PARAMETER]},
    summary="Predict many flowers in one request",
)
async def predict_batch(request: Request) -> JSONAnswer:
    return JSONAnswer(await predict_many(Call.of(request)))
