"""`GET /monitoring` (drift, shadow agreement, live accuracy, the log) and `POST /feedback`.

Both need the API key when one is set: the figures say how the model does on
live traffic, and feedback changes them.
"""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, TypeAdapter, ValidationError

from irisops.serving.call import Call
from irisops.serving.deps import serving_model, store_of
from irisops.serving.monitor import monitor_of
from irisops.serving.schemas import ERRORS, Strict, request_body
from irisops.serving.security import KeyedRoute, read_body
from irisops.serving.validation import refusal

router = APIRouter(tags=["monitoring"], route_class=KeyedRoute)


class FeedbackItem(Strict):
    request_id: str = Field(description="The X-Request-ID header of the prediction's answer.")
    row: int = Field(0, ge=0, description="The row of a batch request; 0 for /predict.")
    true_class: str = Field(examples=["setosa"])


ONE, MANY = TypeAdapter(FeedbackItem), TypeAdapter(list[FeedbackItem])


def feedback_items(raw: bytes) -> list[FeedbackItem]:
    """One item, or a list of them; each validated with errors that name its field."""
    try:
        if raw.lstrip().startswith(b"["):
            return MANY.validate_json(raw)
        return [ONE.validate_json(raw)]
    except ValidationError as exc:
        raise refusal(exc.errors()) from None


@router.get("/monitoring", summary="Drift, shadow agreement, live accuracy and the log's counts")
async def monitoring(request: Request) -> dict[str, Any]:
    model = store_of(request).model
    return {
        "model_version": None if model is None else model.version,
        **monitor_of(request).report(),
    }


@router.post(
    "/feedback",
    summary="The true class of answered rows, joined to their answers by request id",
    responses={
        **ERRORS,
        404: ERRORS[422] | {"description": "No answer with that request id"},
        409: ERRORS[422] | {"description": "That row already has feedback"},
    },
    openapi_extra=request_body(FeedbackItem | list[FeedbackItem]),
)
async def feedback(request: Request) -> dict[str, Any]:
    model = serving_model(request)
    raw = await read_body(Call.of(request))
    items = feedback_items(raw)
    monitor = monitor_of(request)
    classes = model.metadata.class_names
    judged = monitor.feedback.label([(i.request_id, i.row, i.true_class) for i in items], classes)
    monitor.judged(judged)
    return {
        "accepted": len(judged),
        "results": [
            {
                "request_id": j.request_id,
                "row": j.row,
                "true_class": j.true_class,
                "answers": {
                    role: {"model_version": v, "prediction": p, "correct": p == j.true_class}
                    for role, (v, p) in j.answers.items()
                },
            }
            for j in judged
        ],
    }
