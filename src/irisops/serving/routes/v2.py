"""The Open Inference Protocol (KServe V2) routes, so KServe and Triton clients work as-is.

The protocol's conventions, followed here: every error is `{"error": "..."}`; a
malformed request is 400; a model name (or version) this server does not serve is
404; readiness is the status code, 200 or not (503 here, like /ready, so probes and
balancers read it the same way). irisops serves one model, the registered model
(`IRISOPS_REGISTERED_MODEL`), in one version, the one loaded now: asking for
another version is a 404 naming the served one. Bodies over
`IRISOPS_MAX_BODY_BYTES` and batches over `IRISOPS_MAX_BATCH_ROWS` get 413.

With `IRISOPS_API_KEY` set, inference and model metadata need the key; the health
endpoints and the server metadata stay open, like /health and /ready.
"""

import asyncio
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from irisops.runtime import LoadedModel
from irisops.serving import open_inference as oip
from irisops.serving.call import Call
from irisops.serving.deps import serving_model, settings_of, store_of
from irisops.serving.errors import ApiError
from irisops.serving.metrics import Metrics, metrics_of
from irisops.serving.monitor import monitor_of
from irisops.serving.routes.predict import OFFLOAD_BYTES
from irisops.serving.schemas import request_body
from irisops.serving.security import KeyedRoute, open_access, read_body


class ProtocolRoute(KeyedRoute):
    """A route whose refusals, the API key's included, take the protocol's shape.

    That is {"error": "..."}, with the same status.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def protocol_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return JSONResponse({"error": exc.detail}, exc.status, headers=exc.headers)

        return protocol_errors


router = APIRouter(prefix="/v2", tags=["open inference protocol (V2)"], route_class=ProtocolRoute)


Responses = dict[int | str, dict[str, Any]]


def error(description: str) -> dict[str, Any]:
    return {"model": oip.ProtocolError, "description": description}


UNKNOWN: Responses = {404: error("No such model, or not the version being served")}
NO_MODEL: Responses = {503: error("No model loaded yet")}
KEY: Responses = {401: error("No valid API key (if one is set)")}


def served(request: Request, name: str, version: str | None = None) -> LoadedModel:
    """The loaded model, if `name` (and `version`, if given) is what this server serves."""
    registered = settings_of(request).registered_model
    if name != registered:
        raise ApiError(404, f"unknown model {name!r}: this server serves {registered!r}")
    model = serving_model(request)
    if version is not None and version != model.version:
        raise ApiError(
            404, f"{name} version {version!r} is not served; the served version is {model.version}"
        )
    return model


# --- server ------------------------------------------------------------------------------


@router.get("", response_model=oip.ServerMetadata, summary="Server metadata")
@open_access
async def server_metadata() -> oip.ServerMetadata:
    return oip.server_metadata()


@router.get("/health/live", response_model=oip.ServerLive, summary="Liveness")
@open_access
async def live() -> oip.ServerLive:
    return oip.ServerLive(live=True)


@router.get(
    "/health/ready",
    response_model=oip.ServerReady,
    summary="Readiness: 200 once the model is loaded",
    responses={503: {"model": oip.ServerReady, "description": "No model loaded, or stopping"}},
)
@open_access
async def ready(request: Request) -> oip.ServerReady | JSONResponse:
    store = store_of(request)
    if store.model is None or store.draining:
        return JSONResponse(oip.ServerReady(ready=False).model_dump(), status_code=503)
    return oip.ServerReady(ready=True)


# --- the model ---------------------------------------------------------------------------

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
VERSION_PARAMETER = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The served version; any other is a 404 naming it.",
}


def model_route(
    path: str, summary: str, method: str = "GET", **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """One handler at `/models/{name}<path>` and at its one-version form, as KServe does.

    The handler reads the version from the path parameters (absent on the first
    route): a `version` argument would become a query parameter of the first.
    """

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            f"/models/{{name}}{path}", endpoint, methods=[method], summary=summary, **options
        )
        extra = options.pop("openapi_extra", {})
        router.add_api_route(
            f"/models/{{name}}/versions/{{version}}{path}",
            endpoint,
            methods=[method],
            summary=f"{summary}, of one version",
            openapi_extra={**extra, "parameters": [VERSION_PARAMETER]},
            **options,
        )
        return endpoint

    return register


def path_version(request: Request) -> str | None:
    version: str | None = request.path_params.get("version")
    return version


@model_route(
    "/ready",
    "Model readiness",
    response_model=oip.ModelReady,
    responses={**UNKNOWN, 503: {"model": oip.ModelReady, "description": "No model loaded yet"}},
)
@open_access
async def model_ready(request: Request, name: str) -> oip.ModelReady | JSONResponse:
    try:
        served(request, name, path_version(request))
    except ApiError as exc:
        if exc.status != 503:
            raise
        return JSONResponse(oip.ModelReady(name=name, ready=False).model_dump(), status_code=503)
    return oip.ModelReady(name=name, ready=True)


@model_route(
    "",
    "Model metadata: inputs, outputs, versions",
    response_model=oip.ModelMetadata,
    responses={**KEY, **UNKNOWN, **NO_MODEL},
)
async def model_metadata(request: Request, name: str) -> oip.ModelMetadata:
    return oip.model_metadata(served(request, name, path_version(request)), name)


# --- inference ---------------------------------------------------------------------------


INFER_RESPONSES: Responses = {
    200: {
        "description": (
            "The outputs as JSON; or, if any output was asked for binary, a JSON header of "
            "Inference-Header-Content-Length bytes followed by the binary tensors"
        ),
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    },
    400: error("Malformed request: the message names the field and the problem"),
    **KEY,
    **UNKNOWN,
    413: error("Body over IRISOPS_MAX_BODY_BYTES, or rows over IRISOPS_MAX_BATCH_ROWS"),
    **NO_MODEL,
}
INFER: dict[str, Any] = {
    "response_model": oip.InferenceResponse,
    "response_class": JSONResponse,  # for the documentation: the route returns its own
    "responses": INFER_RESPONSES,
    "openapi_extra": request_body(oip.InferenceRequest),
}


@model_route("/infer", "Inference", method="POST", **INFER)
async def infer(request: Request, name: str) -> Response:
    started = time.perf_counter()
    model = served(request, name, path_version(request))
    settings = settings_of(request)
    call = Call.of(request)
    raw = await read_body(call)
    answer = partial(
        _answer,
        model,
        name,
        raw,
        request.headers.get(oip.HEADER_LENGTH),
        settings.max_batch_rows,
        metrics_of(request),
        request.scope["route"].path,
        partial(monitor_of(request).answered, started=started, rid=call.request_id),
    )
    # Like /predict/batch: a large body is answered in a worker thread, so the event
    # loop keeps answering other requests meanwhile.
    return answer() if len(raw) <= OFFLOAD_BYTES else await asyncio.to_thread(answer)


def _answer(
    model: LoadedModel,
    name: str,
    raw: bytes,
    header_length: str | None,
    max_rows: int,
    metrics: Metrics,
    route: str,
    answered: Callable[..., None],
) -> Response:
    header, binary = oip.split_body(raw, header_length)
    request = oip.parse(header)
    outputs = oip.requested_outputs(request)
    features = oip.features(request, binary, max_rows)
    classes = model.metadata.class_names
    if len(features):
        probabilities = model.classifier.predict_proba(features)
    else:  # onnxruntime refuses an empty batch; the answer to no rows is no rows
        probabilities = np.empty((0, len(classes)), np.float32)
    class_ids = probabilities.argmax(axis=1)
    metrics.predicted(classes, class_ids)
    metrics.batch(route, len(features))
    answered(route, model, features, probabilities, class_ids)
    body, json_length = oip.answer(model, name, request.id, outputs, probabilities, class_ids)
    if json_length is None:
        return Response(body, media_type="application/json")
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(json_length)},
    )
