"""The FastAPI application: routes, error handlers, offline docs and the model watcher."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from irisops import __version__
from irisops.config import Settings
from irisops.serving import handlers, security
from irisops.serving.lane import ShortLane
from irisops.serving.metrics import Metrics
from irisops.serving.monitor import Monitor
from irisops.serving.routes import health, metrics, model, monitoring, predict, v2
from irisops.serving.sources import DirectorySource, ModelSource, RegistrySource
from irisops.serving.store import ModelStore
from irisops.serving.telemetry import RequestTelemetry

DESCRIPTION = """
Predicts the Iris species from four measurements (cm) with the champion model from
the MLflow registry. Bad input gets a 4xx that names the field and the problem.
"""

ROUTERS = (
    predict.router,
    health.router,
    model.router,
    metrics.router,
    monitoring.router,
    v2.router,
)


def model_source(settings: Settings) -> ModelSource:
    if settings.model_uri:
        return RegistrySource(settings.model_uri, settings.tracking_uri, backend=settings.backend)
    return DirectorySource(settings.served_model_dir, settings.backend)


def challenger_store(settings: Settings) -> ModelStore | None:
    """The shadow's model: the challenger alias, from the registry whatever the mode."""
    if not settings.shadow:
        return None
    uri = f"models:/{settings.registered_model}@{settings.shadow_alias}"
    return ModelStore(RegistrySource(uri, settings.tracking_uri, backend=settings.backend))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    recorder = Metrics()
    store = ModelStore(model_source(settings), observer=recorder)
    challenger = challenger_store(settings)
    monitor = Monitor(settings, challenger)
    recorder.registry.register(monitor)
    stores = [store] if challenger is None else [store, challenger]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for each in stores:
            await asyncio.to_thread(each.refresh)
        watchers = [asyncio.create_task(s.watch(settings.poll_interval)) for s in stores]
        monitor.start()
        yield
        for watcher in watchers:
            watcher.cancel()
        monitor.stop()

    # FastAPIOffline serves Swagger UI's assets from its own package: /docs works offline.
    app = FastAPIOffline(
        title="irisops",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = recorder
    app.state.monitor = monitor
    key = settings.api_key
    app.state.api_key = None if key is None else key.get_secret_value().encode()
    if key is not None:
        security.document_api_key(app, ROUTERS)
    handlers.install(app)
    for router in ROUTERS:
        app.include_router(router)
    # Added first, so it sits innermost: telemetry and CORS still wrap the short way.
    app.add_middleware(ShortLane, routes=[route for router in ROUTERS for route in router.routes])
    if origins := settings.cors_origin_list:
        # Closed unless configured: browsers on other origins get no CORS headers at all.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    if settings.telemetry:
        # Added last, so it is the outermost middleware: it times and counts CORS answers too.
        app.add_middleware(
            RequestTelemetry,
            requests=recorder.requests,
            routes=app.routes,
            served_version=lambda: None if (served := store.model) is None else served.version,
            access_log=settings.access_log_enabled,
        )
    return app
