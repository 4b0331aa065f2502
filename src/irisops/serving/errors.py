"""Turning validation failures into answers a person can act on."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from irisops.serving.logs import request_id

TOO_MANY_ROWS = "too_many_rows"
log = logging.getLogger("irisops.serving")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[dict[str, str]] = (),
        *,
        authenticate: bool = False,
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        # RFC 9110: a 401 names the scheme the client should use.
        self.headers = {"WWW-Authenticate": "Bearer"} if authenticate else None


def field_name(loc: Sequence[int | str]) -> str:
    """('instances', 2, 3) -> 'instances[2][3]': the way a person points at a JSON value."""
    name = ""
    for part in loc:
        if part == "body":
            continue
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def from_validation(errors: Sequence[Any]) -> ApiError:
    """400 for JSON that does not parse, 422 for JSON whose values are wrong."""
    if any(error["type"] == "json_invalid" for error in errors):
        message = next(e["msg"] for e in errors if e["type"] == "json_invalid")
        return ApiError(400, f"malformed JSON body: {message.removeprefix('Invalid JSON: ')}")
    if too_many := next((e for e in errors if e["type"] == TOO_MANY_ROWS), None):
        return ApiError(413, too_many["msg"])
    listed = [{"field": field_name(e["loc"]), "message": e["msg"]} for e in errors]
    return ApiError(422, "; ".join(f"{e['field']}: {e['message']}" for e in listed), listed)


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(
            {"detail": exc.detail, "errors": exc.errors},
            status_code=exc.status,
            headers=exc.headers,
        )

    async def request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return await api_error(_, from_validation(exc.errors()))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log, never to the client; the request id, in both,
        # leads from the client's answer to the traceback.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        rid = request_id.get()
        return JSONResponse(
            {"detail": "internal server error", "errors": []},
            status_code=500,
            headers=None if rid is None else {"X-Request-ID": rid},
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(ValidationError, request_validation)
