"""The optional API key and the request-body limit: refusals that happen before any work.

The key is compared in constant time (`hmac.compare_digest`) so response timing says
nothing about how much of a guess was right, and it is kept as a `SecretStr` so that
no repr or log line can print it.
"""

import asyncio
import hmac
import inspect
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute

from irisops.serving.errors import ApiError

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
OPEN = "irisops_open_access"
KEY_HINT = "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`"


def presented_key(request: Request) -> str | None:
    if (header := request.headers.get("x-api-key")) is not None:
        return header
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_api_key(request: Request) -> None:
    """Refuse the request unless it carries the configured key (always open without one)."""
    expected: bytes | None = request.app.state.api_key
    if expected is None:
        return
    presented = presented_key(request)
    if presented is None:
        raise ApiError(401, f"an API key is required: {KEY_HINT}", authenticate=True)
    if not hmac.compare_digest(presented.encode(), expected):
        raise ApiError(401, f"invalid API key: {KEY_HINT}", authenticate=True)


def open_access(endpoint: Endpoint) -> Endpoint:
    """Mark a route open without the key: probes, scrapes and discovery, never predictions."""
    setattr(endpoint, OPEN, True)
    return endpoint


def is_open(route: APIRoute) -> bool:
    return getattr(route.endpoint, OPEN, False) is True


class KeyedRoute(APIRoute):
    """A route that checks the API key before its handler runs, unless marked open.

    Every router of the API uses it, so a new route is protected unless it says
    otherwise. The check is a wrapper, not a FastAPI dependency: a dependency costs a
    pass through the dependency solver on every request (see deps.py).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = self.direct_handler() or super().get_route_handler()
        if is_open(self):
            return handler

        async def keyed(request: Request) -> Response:
            check_api_key(request)
            return await handler(request)

        return keyed

    def direct_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
        """The endpoint itself, when it takes only the request and returns a Response.

        FastAPI's handler would still solve (empty) dependencies, open exit stacks and
        look for a body to validate on every request: about a tenth of a single-row
        /predict. Such an endpoint (the prediction routes) needs none of it; errors
        still reach the exception handlers, and OpenAPI is built from the route, not
        from the handler.
        """
        dependant, name = self.dependant, self.dependant.request_param_name
        declared: list[list[Any]] = [dependant.dependencies, dependant.body_params]
        declared += [dependant.path_params, dependant.query_params, dependant.header_params]
        declared.append(dependant.cookie_params)
        returns = get_type_hints(self.endpoint).get("return")
        if name is None or any(declared) or not inspect.iscoroutinefunction(self.endpoint):
            return None
        if not (isinstance(returns, type) and issubclass(returns, Response)):
            return None
        endpoint = self.endpoint

        async def direct(request: Request) -> Response:
            answer: Response = await endpoint(**{name: request})
            return answer

        return direct


SCHEMES = {
    "Bearer": {"type": "http", "scheme": "bearer"},
    "APIKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document_api_key(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Show the key in OpenAPI (and Swagger UI's Authorize button) when one is required."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = SCHEMES
        for route in (route for router in routers for route in router.routes):
            if not isinstance(route, KeyedRoute) or is_open(route):
                continue
            for method in route.methods or ():
                operation = schema["paths"][route.path_format][method.lower()]
                operation["security"] = [{"Bearer": []}, {"APIKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed the size limit.

    A declared Content-Length is checked before a byte is read; a chunked body is
    counted as it arrives, so an oversized one is never held in memory whole. A body
    that has not arrived whole within the body timeout is a 408, and its connection
    is closed: a client that declares a body and never sends it cannot hold one open.
    """
    settings = request.app.state.settings
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    try:
        with Deadline(settings.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, too_large(size, limit))
                chunks.append(chunk)
    except TimeoutError:
        detail = f"the request body did not arrive within {settings.body_timeout:g} s"
        raise ApiError(408, detail, headers={"Connection": "close"}) from None
    return b"".join(chunks)


class Deadline:
    """Cancels the task that enters it after `seconds`, then raises TimeoutError, as
    `asyncio.timeout` does, for a fifth of its cost.

    Under uvloop, `asyncio.timeout` cost every request about 7 µs (5% of a /predict)
    for a deadline that fires only for a client that stalls; one timer armed and
    cancelled costs about 1.5 µs (docs/benchmark.md). Unlike `asyncio.timeout`, it
    cannot be rescheduled or nested inside another deadline of its own task.
    """

    __slots__ = ("expired", "seconds", "task", "timer")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a Deadline must be entered from inside a task")
        self.task = task
        self.timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self.task.cancel()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.timer.cancel()
        if self.expired:
            self.task.uncancel()
            if kind is asyncio.CancelledError:
                raise TimeoutError


def too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size:,}+ bytes exceeds the limit of {limit:,} bytes "
        "(IRISOPS_MAX_BODY_BYTES); send fewer rows per request"
    )
