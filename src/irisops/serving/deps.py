"""What the routes read from the application: the model store and the settings.

The prediction routes call `serving_model` and `settings_of` directly instead of
declaring FastAPI dependencies. Resolving even an inline (`async def`) dependency
walks FastAPI's dependency solver on every request, which costs about 15% of a
single-row /predict; a sync (`def`) dependency is worse still, because FastAPI
runs each one in the threadpool: a thread hop per request, which halved
throughput (docs/benchmark.md has the numbers). The cold routes keep `StoreDep`.
"""

from typing import Annotated

from fastapi import Depends, Request

from irisops.config import Settings
from irisops.runtime import LoadedModel
from irisops.serving.errors import ApiError
from irisops.serving.store import ModelStore
from irisops.serving.telemetry import MODEL_VERSION


def store_of(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.store
    return store


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def serving_model(request: Request) -> LoadedModel:
    """The model for this whole request: read once, so a hot swap cannot split a response."""
    store = store_of(request)
    model = store.model
    if model is None:
        raise ApiError(503, store.not_ready_reason)
    request.scope[MODEL_VERSION] = model.version  # for the access log: the model that answered
    return model


async def get_store(request: Request) -> ModelStore:
    # async def: FastAPI calls it inline; a plain def would run in the threadpool.
    return store_of(request)


StoreDep = Annotated[ModelStore, Depends(get_store)]
