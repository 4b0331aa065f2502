"""Every exception a request can raise, mapped to its answer in one place."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from irisops.serving.errors import ApiError
from irisops.serving.logs import request_id
from irisops.serving.validation import refusal

log = logging.getLogger("irisops.serving")


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.detail, "errors": exc.errors}, status_code=exc.status, headers=exc.headers
    )


# nginx's "client closed request": recorded in metrics and the access log, never sent,
# since no answer can reach a client that has gone (or that the server dropped, guard.py).
CLIENT_GONE = 499


def client_gone() -> Response:
    return Response(status_code=CLIENT_GONE)


def unexpected_error(method: str, path: str) -> JSONResponse:
    """The answer to an exception no handler expected; called while it is being handled.

    The traceback goes to the log, never to the client; the request id, in both, leads
    from the client's answer to the traceback.
    """
    log.exception("unexpected error on %s %s", method, path)
    rid = request_id.get()
    return JSONResponse(
        {"detail": "internal server error", "errors": []},
        status_code=500,
        headers=None if rid is None else {"X-Request-ID": rid},
    )


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return api_error_response(exc)

    async def request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return await api_error(_, refusal(exc.errors()))

    async def gone(_: Request, __: Exception) -> Response:
        return client_gone()

    async def unexpected(request: Request, _: Exception) -> JSONResponse:
        return unexpected_error(request.method, request.url.path)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ClientDisconnect, gone)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(ValidationError, request_validation)
