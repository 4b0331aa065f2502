from fastapi import APIRouter

from irisops.serving.deps import StoreDep
from irisops.serving.schemas import ErrorResponse, ModelInfo
from irisops.serving.security import KeyedRoute

router = APIRouter(tags=["model"], route_class=KeyedRoute)


@router.get(
    "/model",
    response_model=ModelInfo,
    summary="The served model's metadata",
    responses={401: {"model": ErrorResponse, "description": "No valid API key (if one is set)"}},
)
async def model_info(store: StoreDep) -> ModelInfo:
    model = store.model
    return ModelInfo(
        source=store.source.description,
        version=None if model is None else model.version,
        backend=None if model is None else model.backend,
        last_error=store.last_error,
        reloads=store.reloads,
        metadata=None if model is None else model.metadata.model_dump(mode="json"),
    )
