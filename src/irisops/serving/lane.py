"""The prediction routes' short way through the app, past FastAPI's router.

Of a single-row /predict in process, most of the time went to the layers every
request crosses: FastAPI's exception middleware and exit stack, the router trying
each route in turn, and the route's request wrapper. Routes that declare nothing but
the request and answer with their own Response (`KeyedRoute.direct_handler`) need
none of these, so they are called here, from inside the middleware stack: request
telemetry, CORS and the server-error handler still wrap them, the API key is still
checked, and an ApiError gets the answer it gets everywhere else. Every other request,
and any method these routes do not take, goes through FastAPI as before; so does every
request while FastAPI's own OpenTelemetry hooks are on (see app.py), since they name a
span after the route FastAPI's router chose.
"""

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from irisops.serving.errors import ApiError
from irisops.serving.handlers import api_error_response
from irisops.serving.security import KeyedRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
FASTAPI_SPAN = "fastapi.telemetry"  # where FastAPI keeps a request's OpenTelemetry state


def short_routes(routes: Iterable[Any]) -> dict[tuple[str, str], tuple[APIRoute, Handler]]:
    """(method, path) of each route that can take the short way, with its route and handler."""
    found: dict[tuple[str, str], tuple[APIRoute, Handler]] = {}
    for route in routes:
        if isinstance(route, KeyedRoute) and route.direct_handler() is not None:
            handler = route.get_route_handler()
            for method in route.methods or ():
                found[(method, route.path)] = (route, handler)
    return found


class ShortLane:
    def __init__(self, app: ASGIApp, routes: Iterable[Any]) -> None:
        self.app = app
        self.routes = short_routes(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        short = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if short is None or scope.get(FASTAPI_SPAN) is not None:
            await self.app(scope, receive, send)
            return
        route, handler = short
        scope["route"] = route  # what FastAPI leaves there: the telemetry reads its template
        try:
            response = await handler(Request(scope, receive, send))
        except ApiError as exc:
            response = api_error_response(exc)
        await response(scope, receive, send)
