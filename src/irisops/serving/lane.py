"""The predictions' short way: answered straight from the server, past the whole of FastAPI.

A single-row /predict spends a microsecond or two in its model; through FastAPI it
cost about 80 µs in process (docs/benchmark.md, step 15), almost all of it in what
every request crosses: six or seven middleware layers, the router, Starlette's
`Request` and `Response` objects, and the app state and headers read through them.
This lane sits in front of all of it. For `POST /predict` and `POST /predict/batch`
it does what those layers would have done for them, and nothing else:

- the request telemetry (`RequestRecorder`: the request id, metrics, the access log),
  when it is on, with as few calls of Python functions of ours as it takes. Under
  load, each one cost the server several times what it costs in a loop: with the
  request id carried on the `Call` instead of set in the log context, the ids taken
  from an iterator, and the metrics recorded without `RequestRecorder.end`, a
  /predict took about 2% less of the server's CPU (docs/benchmark.md, step 22). The
  id is set in the log context only for the one line a request answered here can
  log: an unexpected error's traceback;
- the API key check;
- the route's own work, the same function FastAPI's route calls (routes/predict.py);
- a refusal (`ApiError`) or a client gone (`ClientDisconnect`) answered as everywhere
  else (handlers.py), and any other exception logged and answered 500 with the
  request id, as the server-error handler does.

Two kinds of prediction still go through FastAPI: a request carrying an `Origin`
header while CORS is configured (CORSMiddleware decides what it gets back), and every
request while FastAPI's own OpenTelemetry hooks are on (see app.py), since they name
a span after the route FastAPI's router chose.
"""

import time

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from irisops.serving.call import Call, Serving
from irisops.serving.errors import ApiError
from irisops.serving.handlers import api_error_response, client_gone, unexpected_error
from irisops.serving.logs import request_id
from irisops.serving.routes.predict import ANSWERS, Answer
from irisops.serving.security import check_api_key
from irisops.serving.telemetry import REQUEST_ID_HEADER, Header, RequestRecorder

FASTAPI_SPAN = "fastapi.telemetry"  # where FastAPI keeps a request's OpenTelemetry state
JSON = (b"content-type", b"application/json")


class ShortLane:
    def __init__(
        self, app: ASGIApp, serving: Serving, recorder: RequestRecorder | None, cors: bool
    ) -> None:
        self.app = app
        self.serving = serving
        self.recorder = recorder
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = (
            ANSWERS.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if answer is None or FASTAPI_SPAN in scope:
            await self.app(scope, receive, send)
            return
        call = Call(scope, receive, self.serving)
        if self.cors and b"origin" in call.headers:
            await self.app(scope, receive, send)
            return
        recorder = self.recorder
        if recorder is None:
            await self.answer(call, answer, send, ())
            return
        started = time.perf_counter()
        presented = call.headers.get(REQUEST_ID_HEADER)
        stamp = next(recorder.fresh) if presented is None else recorder.stamp(presented)
        call.request_id, echo = stamp
        status = 500  # what the client gets if answering raises
        try:
            status = await self.answer(call, answer, send, (echo,))
        finally:  # recorder.end, without its call
            seconds = time.perf_counter() - started
            recorder.record(scope["method"], scope["path"], status, seconds)
            if recorder.access_log:
                recorder.log(scope, scope["path"], status, seconds, stamp[0])

    async def answer(self, call: Call, answer: Answer, send: Send, echo: tuple[Header, ...]) -> int:
        """Answer the call; the status sent."""
        response: Response
        try:
            check_api_key(self.serving.api_key, call.headers)
            body = await answer(call)
        except ApiError as exc:
            response = api_error_response(exc)
            response.raw_headers.extend(echo)
        except ClientDisconnect:
            response = client_gone()
        except Exception:
            if call.request_id is not None:
                request_id.set(call.request_id)  # for the traceback's line and the answer
            response = unexpected_error(call.scope["method"], call.scope["path"])
        else:
            length = (b"content-length", b"%d" % len(body))
            await send(
                {"type": "http.response.start", "status": 200, "headers": [JSON, length, *echo]}
            )
            await send({"type": "http.response.body", "body": body})
            return 200
        await response(call.scope, call.receive, send)
        return response.status_code
