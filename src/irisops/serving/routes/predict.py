"""The prediction routes.

They read the raw body and validate it with one pydantic-core call instead of
declaring a body parameter, for two reasons: the original `curl -d` sends no JSON
content type, which FastAPI would refuse to parse as JSON; and parsing plus
validation in Rust is the fastest path there is. The OpenAPI schema is declared by
hand (`request_body`), so /docs still shows and validates the body.

The model comes from `serving_model(request)`, not from a FastAPI dependency: see
deps.py for what a dependency costs per request. docs/benchmark.md has the numbers
behind every choice made here.
"""

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError

from irisops.runtime import LoadedModel
from irisops.serving.deps import serving_model, settings_of
from irisops.serving.errors import ApiError
from irisops.serving.metrics import Metrics, metrics_of
from irisops.serving.monitor import Monitor, monitor_of
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


class JSONBytes(Response):
    """orjson renders numpy float32 as its shortest decimal: 0.97, not 0.9700000286102295."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def parse(raw: bytes, model: type[Body], route: str, **context: Any) -> Body:
    try:
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        raise refusal(exc.errors(), wrong_route(route, raw)) from None


def answers(
    model: LoadedModel, class_ids: list[int], probabilities: Iterable[Iterable[np.float32]]
) -> list[dict[str, Any]]:
    """What /predict answers for its row, and /predict/batch for each of its rows."""
    names, version = model.metadata.class_names, model.version
    # map(dict, map(zip, ...)) builds the probability dicts in C, not in a Python loop.
    per_row = map(dict, map(zip, repeat(names), probabilities))
    return [
        {"prediction": names[c], "class_id": c, "probabilities": p, "model_version": version}
        for c, p in zip(class_ids, per_row, strict=True)
    ]


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


def features_of(rows: list[list[float]]) -> npt.NDArray[np.float32]:
    # Validated rows have exactly FEATURES numbers: filling the array from one flat
    # iterator takes half the time of np.asarray on a list of lists.
    flat = chain.from_iterable(rows)
    return np.fromiter(flat, np.float32, len(rows) * FEATURES).reshape(-1, FEATURES)


def answer_batch(batch: Batch, raw: bytes) -> JSONBytes:
    model = batch.model
    body = parse(raw, BatchRequest, BATCH, max_rows=batch.max_rows)
    batch.metrics.batch(BATCH, len(body.instances))
    features = features_of(body.instances)
    if not body.instances and not batch.columnar:
        return JSONBytes(rows_of(model))
    probabilities = model.classifier.predict_proba(features)
    class_ids = probabilities.argmax(axis=1)
    batch.metrics.predicted(model.metadata.class_names, class_ids)
    batch.monitor.answered(BATCH, model, features, probabilities, class_ids, batch.started)
    if batch.columnar:
        return JSONBytes(columns(model, class_ids, probabilities, features if batch.mark else None))
    # zip(*columns) yields each row's float32 scalars as a tuple: about two thirds of
    # the time of iterating the rows as numpy arrays, for the same scalars and JSON.
    rows = answers(model, class_ids.tolist(), zip(*probabilities.T, strict=True))
    if batch.mark:
        mark_out_of_range(model, rows, features)
    return JSONBytes(rows_of(model, rows))


def rows_of(model: LoadedModel, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"predictions": rows or [], "model_version": model.version}


def columns(
    model: LoadedModel,
    class_ids: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float32],
    marked: npt.NDArray[np.float32] | None,
) -> dict[str, Any]:
    """The columnar answer: numpy arrays that orjson writes without a Python object per row."""
    answer: dict[str, Any] = {
        "classes": model.metadata.class_names,
        "class_ids": class_ids,
        "probabilities": probabilities,
        "model_version": model.version,
    }
    if marked is not None and (reference := model.metadata.reference) is not None:
        answer["out_of_range"] = reference.outside(marked)
    return answer


def answer_format(request: Request) -> bool:
    """Whether ?format=columnar was asked for; any value but the two is refused."""
    if not request.scope["query_string"]:
        return False
    form = request.query_params.get("format", ROWS)
    if form not in (ROWS, COLUMNAR):
        raise ApiError(
            422,
            f"format must be {ROWS!r} or {COLUMNAR!r}, got {form!r}",
            [{"field": "format", "message": f"must be {ROWS!r} or {COLUMNAR!r}"}],
        )
    return form == COLUMNAR


def marking(request: Request) -> bool:
    """Whether answers list out-of-range features: the setting, or ?out_of_range=true."""
    if settings_of(request).mark_out_of_range:
        return True
    return bool(request.scope["query_string"]) and (
        request.query_params.get("out_of_range") == "true"
    )


def mark_out_of_range(model: LoadedModel, rows: list[dict[str, Any]], features: Any) -> None:
    reference = model.metadata.reference
    if reference is not None:
        for row, outside in zip(rows, reference.outside(features), strict=True):
            row["out_of_range"] = outside


@router.post(
    PREDICT,
    response_model=Prediction,
    responses=ERRORS,
    openapi_extra=request_body(PredictRequest),
    summary="Predict the species of one flower",
)
async def predict(request: Request) -> JSONBytes:
    started = time.perf_counter()
    model = serving_model(request)
    raw = await read_body(request)
    body = parse(raw, PredictRequest, PREDICT)
    probabilities = model.classifier.predict_one(body.features)
    class_id = int(probabilities.argmax())
    metrics_of(request).predicted_one(model.metadata.class_names[class_id])
    answer = answers(model, [class_id], [probabilities])
    rows = [body.features]
    if marking(request):
        mark_out_of_range(model, answer, rows)
    monitor_of(request).answered(PREDICT, model, rows, probabilities[None], [class_id], started)
    return JSONBytes(answer[0])


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
async def predict_batch(request: Request) -> JSONBytes:
    started = time.perf_counter()
    model = serving_model(request)
    settings = settings_of(request)
    raw = await read_body(request)
    batch = Batch(
        model,
        metrics_of(request),
        monitor_of(request),
        settings.max_batch_rows,
        marking(request),
        answer_format(request),
        started,
    )
    if len(raw) <= OFFLOAD_BYTES:
        return answer_batch(batch, raw)
    return await asyncio.to_thread(answer_batch, batch, raw)
