"""The optional API key and the request-body limit: refusals that happen before any work.

The key is compared in constant time (`hmac.compare_digest`) so response timing says
nothing about how much of a guess was right, and it is kept as a `SecretStr` so that
no repr or log line can print it.
"""

import hmac
from typing import Any

from fastapi import FastAPI, Request

from irisops.serving.errors import ApiError

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


async def require_api_key(request: Request) -> None:
    """The same check as a FastAPI dependency, for routes off the hot path."""
    check_api_key(request)


PROTECTED = (
    "/predict",
    "/predict/batch",
    "/model",
    "/v2/models/{name}",
    "/v2/models/{name}/versions/{version}",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)
SCHEMES = {
    "Bearer": {"type": "http", "scheme": "bearer"},
    "APIKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document_api_key(app: FastAPI) -> None:
    """Show the key in OpenAPI (and Swagger UI's Authorize button) when one is required."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = SCHEMES
        for path in PROTECTED:
            for operation in schema["paths"].get(path, {}).values():
                operation["security"] = [{"Bearer": []}, {"APIKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes.

    A declared Content-Length is checked before a byte is read; a chunked body is
    counted as it arrives, so an oversized one is never held in memory whole.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size:,}+ bytes exceeds the limit of {limit:,} bytes "
        "(IRISOPS_MAX_BODY_BYTES); send fewer rows per request"
    )
