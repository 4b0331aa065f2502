"""The prediction routes.

They read the raw body and validate it with one pydantic-core call instead of
declaring a body parameter, for two reasons: the seed's `curl -d` sends no JSON
content type, which FastAPI would refuse to parse as JSON; and parsing plus
validation in Rust is the fastest path there is. The OpenAPI schema is declared by
hand (`request_body`), so /docs still shows and validates the body.
"""

from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError

from irisops.runtime import LoadedModel
from irisops.serving.deps import ModelDep, SettingsDep
from irisops.serving.errors import from_validation
from irisops.serving.schemas import (
    ERRORS,
    BatchPrediction,
    BatchRequest,
    ErrorResponse,
    Prediction,
    PredictRequest,
    request_body,
)

router = APIRouter(tags=["predict"])
Body = TypeVar("Body", bound=BaseModel)


class JSONBytes(Response):
    """orjson renders numpy float32 as its shortest decimal: 0.97, not 0.9700000286102295."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


async def parse(request: Request, model: type[Body], **context: Any) -> Body:
    try:
        return model.model_validate_json(await request.body(), context=context)
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


def predict_rows(model: LoadedModel, rows: list[list[float]]) -> list[dict[str, Any]]:
    probabilities = model.classifier.predict_proba(np.asarray(rows, dtype=np.float32))
    names = model.metadata.class_names
    version = model.version
    return [
        {
            "prediction": names[class_id],
            "class_id": class_id,
            "probabilities": dict(zip(names, row, strict=True)),
            "model_version": version,
        }
        for class_id, row in zip(probabilities.argmax(axis=1).tolist(), probabilities, strict=True)
    ]


@router.post(
    "/predict",
    response_model=Prediction,
    responses=ERRORS,
    openapi_extra=request_body(PredictRequest),
    summary="Predict the species of one flower",
)
async def predict(request: Request, model: ModelDep) -> JSONBytes:
    body = await parse(request, PredictRequest)
    return JSONBytes(predict_rows(model, [body.features])[0])


@router.post(
    "/predict/batch",
    response_model=BatchPrediction,
    responses={
        **ERRORS,
        413: {"model": ErrorResponse, "description": "More rows than IRISOPS_MAX_BATCH_ROWS"},
    },
    openapi_extra=request_body(BatchRequest),
    summary="Predict many flowers in one request",
)
async def predict_batch(request: Request, model: ModelDep, settings: SettingsDep) -> JSONBytes:
    body = await parse(request, BatchRequest, max_rows=settings.max_batch_rows)
    rows = predict_rows(model, body.instances) if body.instances else []
    return JSONBytes({"predictions": rows, "model_version": model.version})
