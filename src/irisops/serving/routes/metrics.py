"""`GET /metrics`: the Prometheus scrape endpoint.

Open like /health and /ready, even when an API key is set: Prometheus scrapes it
from inside the deployment, and it holds counts and the served model's version, no
prediction and no input. It is counted in the request metrics like any other route.
"""

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from irisops.serving.metrics import metrics_of
from irisops.serving.security import KeyedRoute, open_access

router = APIRouter(tags=["monitoring"], route_class=KeyedRoute)

EXPOSITION = {"schema": {"type": "string"}}


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, latency, predictions, batches, model reloads",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format, or OpenMetrics if the Accept header asks",
            "content": {"text/plain": EXPOSITION, "application/openmetrics-text": EXPOSITION},
        }
    },
)
@open_access
async def metrics(request: Request) -> Response:
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics_of(request).registry), media_type=content_type)
