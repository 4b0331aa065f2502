"""What the routes read from the application: the model store and the settings.

The routes that read their own request (the V2 protocol's, feedback) call
`serving_model` and `settings_of` directly instead of declaring FastAPI
dependencies, and the prediction routes read a `Call` (call.py). Resolving even an
inline (`async def`) dependency walks FastAPI's dependency solver on every request,
which cost about 15% of a single-row /predict; a sync (`def`) dependency is worse
still, because FastAPI runs each one in the threadpool: a thread hop per request,
which halved throughput (docs/benchmark.md has the numbers). The cold routes keep `StoreDep`.
"""

from typing import Annotated

from fastapi import Depends, Request

from irisops.config import Settings
from irisops.runtime import LoadedModel
from irisops.serving.call import Serving
from irisops.serving.store import ModelStore


def store_of(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.serving.store
    return store


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.serving.settings
    return settings


def serving_model(request: Request) -> LoadedModel:
    serving: Serving = request.app.state.serving
    return serving.model_for(request.scope)


async def get_store(request: Request) -> ModelStore:
    # async def: FastAPI calls it inline; a plain def would run in the threadpool.
    return store_of(request)


StoreDep = Annotated[ModelStore, Depends(get_store)]
