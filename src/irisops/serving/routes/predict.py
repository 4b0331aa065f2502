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
from collections.abc import Iterable
from itertools import chain, repeat
from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError

from irisops.runtime import LoadedModel
from irisops.serving.deps import serving_model, settings_of
from irisops.serving.metrics import Metrics, metrics_of
from irisops.serving.schemas import (
    ERRORS,
    FEATURES,
    BatchPrediction,
    BatchRequest,
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


def predict_rows(
    model: LoadedModel, rows: list[list[float]], metrics: Metrics
) -> list[dict[str, Any]]:
    # Validated rows have exactly FEATURES numbers: filling the array from one flat
    # iterator takes half the time of np.asarray on a list of lists.
    flat = chain.from_iterable(rows)
    features = np.fromiter(flat, np.float32, len(rows) * FEATURES).reshape(-1, FEATURES)
    probabilities = model.classifier.predict_proba(features)
    # zip(*columns) yields each row's float32 scalars as a tuple: about two thirds of
    # the time of iterating the rows as numpy arrays, for the same scalars and JSON.
    per_row = zip(*probabilities.T, strict=True)
    class_ids = probabilities.argmax(axis=1)
    metrics.predicted(model.metadata.class_names, class_ids)
    return answers(model, class_ids.tolist(), per_row)


def answer_batch(model: LoadedModel, raw: bytes, max_rows: int, metrics: Metrics) -> JSONBytes:
    body = parse(raw, BatchRequest, BATCH, max_rows=max_rows)
    metrics.batch(BATCH, len(body.instances))
    rows = predict_rows(model, body.instances, metrics) if body.instances else []
    return JSONBytes({"predictions": rows, "model_version": model.version})


@router.post(
    PREDICT,
    response_model=Prediction,
    responses=ERRORS,
    openapi_extra=request_body(PredictRequest),
    summary="Predict the species of one flower",
)
async def predict(request: Request) -> JSONBytes:
    model = serving_model(request)
    raw = await read_body(request, settings_of(request).max_body_bytes)
    body = parse(raw, PredictRequest, PREDICT)
    probabilities = model.classifier.predict_one(body.features)
    class_id = int(probabilities.argmax())
    metrics_of(request).predicted_one(model.metadata.class_names[class_id])
    return JSONBytes(answers(model, [class_id], [probabilities])[0])


@router.post(
    BATCH,
    response_model=BatchPrediction,
    responses={
        **ERRORS,
        413: {
            "model": ErrorResponse,
            "description": "More rows than IRISOPS_MAX_BATCH_ROWS, or a body over "
            "IRISOPS_MAX_BODY_BYTES",
        },
    },
    openapi_extra=request_body(BatchRequest),
    summary="Predict many flowers in one request",
)
async def predict_batch(request: Request) -> JSONBytes:
    model = serving_model(request)
    settings = settings_of(request)
    raw = await read_body(request, settings.max_body_bytes)
    max_rows, metrics = settings.max_batch_rows, metrics_of(request)
    if len(raw) <= OFFLOAD_BYTES:
        return answer_batch(model, raw, max_rows, metrics)
    return await asyncio.to_thread(answer_batch, model, raw, max_rows, metrics)
