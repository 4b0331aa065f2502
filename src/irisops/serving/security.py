"""The optional API key and the request-body limit: refusals that happen before any work.

The key is compared in constant time (`hmac.compare_digest`) so response timing says
nothing about how much of a guess was right, and it is kept as a `SecretStr` so that
no repr or log line can print it.
"""

import hmac
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from irisops.serving.call import Call
from irisops.serving.errors import ApiError

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
OPEN = "irisops_open_access"
KEY_HINT = "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`"


def presented_key(headers: Mapping[bytes, bytes]) -> bytes | None:
    if (header := headers.get(b"x-api-key")) is not None:
        return header
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" and token.strip() else None


def check_api_key(expected: bytes | None, headers: Mapping[bytes, bytes]) -> None:
    """Refuse the request unless it carries the configured key (always open without one)."""
    if expected is None:
        return
    presented = presented_key(headers)
    if presented is None:
        raise ApiError(401, f"an API key is required: {KEY_HINT}", authenticate=True)
    if not hmac.compare_digest(presented, expected):
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
        handler = super().get_route_handler()
        if is_open(self):
            return handler

        async def keyed(request: Request) -> Response:
            check_api_key(request.app.state.serving.api_key, dict(request.scope["headers"]))
            return await handler(request)

        return keyed


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


async def read_body(call: Call) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed the size limit.

    A declared Content-Length is checked before a byte is read; a chunked body is
    counted as it arrives, so an oversized one is never held in memory whole. A body
    that never arrives is the server's to bound (guard.py): it answers 408 and
    closes the connection, and the wait here ends in `ClientDisconnect`.
    """
    limit = call.serving.settings.max_body_bytes
    declared = call.headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await call.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, too_large(size, limit))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size:,}+ bytes exceeds the limit of {limit:,} bytes "
        "(IRISOPS_MAX_BODY_BYTES); send fewer rows per request"
    )
