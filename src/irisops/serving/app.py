"""The FastAPI application: routes, error handlers, offline docs and the model watcher."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from opentelemetry import _logs, trace
from opentelemetry import metrics as otel_metrics

from irisops import __version__
from irisops.config import Settings
from irisops.serving import handlers, security
from irisops.serving.call import Serving
from irisops.serving.lane import ShortLane
from irisops.serving.metrics import Metrics
from irisops.serving.monitor import Monitor
from irisops.serving.routes import health, metrics, model, monitoring, predict, v2
from irisops.serving.sources import DirectorySource, ModelSource, RegistrySource
from irisops.serving.store import ModelStore
from irisops.serving.telemetry import RequestRecorder, RequestTelemetry

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


# OpenTelemetry's stand-ins until a real provider is set (what FastAPI itself looks for).
UNSET_PROVIDERS = {"ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider"}


def fastapi_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry hooks: on when there is a provider to report to, else off.

    Left on without one, FastAPI asks OpenTelemetry on every request whether a provider
    has been set since: 4.5 µs, 3% of a /predict (docs/benchmark.md). Providers are set
    before the app is made (`opentelemetry-instrument`, an SDK configured at import) or
    by FastAPI as it starts (FASTAPI_OTEL_AUTO_CONFIGURE), so the question is asked once.
    """
    if os.getenv("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return {}
    providers = (
        trace.get_tracer_provider(),
        otel_metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    )
    if any(type(provider).__name__ not in UNSET_PROVIDERS for provider in providers):
        return {}
    return {"tracing": False, "metrics": False, "logs": False}


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
        telemetry=fastapi_telemetry(),
    )
    key = None if settings.api_key is None else settings.api_key.get_secret_value().encode()
    app.state.serving = Serving(settings, store, recorder, monitor, key)
    telemetry = (
        RequestRecorder(
            recorder.requests,
            served_version=lambda: None if (served := store.model) is None else served.version,
            access_log=settings.access_log_enabled,
        )
        if settings.telemetry
        else None
    )
    if key is not None:
        security.document_api_key(app, ROUTERS)
    handlers.install(app)
    for router in ROUTERS:
        app.include_router(router)
    origins = settings.cors_origin_list
    if origins:
        # Closed unless configured: browsers on other origins get no CORS headers at all.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    if telemetry is not None:
        # Added last, so it is the outermost middleware: it times and counts CORS answers too.
        app.add_middleware(RequestTelemetry, recorder=telemetry, routes=app.routes)
    # Built now, with the predictions' short way (lane.py) in front of all of it.
    stack = app.build_middleware_stack()
    app.middleware_stack = ShortLane(stack, app.state.serving, telemetry, bool(origins))
    return app
