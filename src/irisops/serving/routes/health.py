from fastapi import APIRouter
from fastapi.responses import JSONResponse

from irisops.serving.deps import StoreDep
from irisops.serving.schemas import Health, Readiness
from irisops.serving.security import KeyedRoute, open_access

router = APIRouter(tags=["health"], route_class=KeyedRoute)


@router.get("/health", response_model=Health, summary="Liveness: 200 while the process runs")
@open_access
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: 200 once a model is loaded",
    responses={503: {"model": Readiness, "description": "No model loaded"}},
)
@open_access
async def ready(store: StoreDep) -> Readiness | JSONResponse:
    model = store.model
    if model is None or store.draining:
        reason = "shutting down" if store.draining else store.not_ready_reason
        body = Readiness(status="not ready", reason=reason)
        return JSONResponse(body.model_dump(), status_code=503)
    return Readiness(status="ready", model_version=model.version, reason=store.last_error)
