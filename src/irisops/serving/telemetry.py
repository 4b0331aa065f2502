"""What the API records about each request: its id, its metrics and its access-log line.

One pure ASGI middleware does all three, timing the request once and wrapping `send`
once. Starlette's `BaseHTTPMiddleware` would be simpler to write, but it runs the
rest of the app in a separate task and streams the answer through a memory channel,
which costs far more than everything recorded here.

The route is the matched route's template (`/v2/models/{name}/infer`, not the path a
client typed), so metrics and logs group requests the way the API is built and a
client cannot create new time series by inventing paths; a request no route matches
is recorded as `unmatched`. FastAPI leaves the matched `APIRoute` in the scope; the
few plain Starlette routes (/openapi.json, the docs' static files) are matched again
here, after the answer, since FastAPI does not record them.
"""

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, repeat

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from irisops.serving.logs import log_access, request_id
from irisops.serving.metrics import RequestStats

REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is kept if it is short printable text (a UUID, a trace id, ...);
# anything else is replaced, so the id is always safe to put in a header and a log line.
CLIENT_REQUEST_ID = re.compile(rb"[\w.:/+=@-]{1,128}")
UNMATCHED = "unmatched"
# The scope key where a route that used a model leaves its version (see deps.py).
MODEL_VERSION = "irisops.model_version"


Header = tuple[bytes, bytes]
Stamp = tuple[str, Header]  # a request id, and the header that answers it


def fresh_stamps(count: int) -> list[Stamp]:
    """`count` random 128-bit ids in hex, from one read of the OS, each with its header."""
    block = os.urandom(16 * count).hex()
    ids = [block[start : start + 32] for start in range(0, len(block), 32)]
    return [(rid, (REQUEST_ID_HEADER, rid.encode("ascii"))) for rid in ids]


def fresh_request_ids(per_read: int = 256) -> Iterator[Stamp]:
    """Fresh ids with their headers, read from the OS `per_read` at a time.

    One `os.urandom` call per request took about 2.7% of a /predict's server time
    under wrk (docs/benchmark.md, step 19). The ids and their headers are made a batch
    at a time and handed out by C iterators: taking one runs no Python function (see
    lane.py for why that matters). An iterator can only be advanced by one thread at a
    time: each recorder has its own.
    """
    return chain.from_iterable(map(fresh_stamps, repeat(per_read)))


def client_stamp(presented: bytes) -> Stamp | None:
    """The client's own id, if it is usable, with its header."""
    if not CLIENT_REQUEST_ID.fullmatch(presented):
        return None
    return presented.decode("ascii"), (REQUEST_ID_HEADER, presented)


class RequestRecorder:
    """Records each request: its id, its count and latency, its access-log line.

    The middleware below uses it for every request FastAPI answers, and the short
    way (lane.py) for the predictions it answers itself.
    """

    def __init__(
        self,
        requests: RequestStats,
        served_version: Callable[[], str | None],
        access_log: bool,
    ) -> None:
        self.record = requests.record
        self.served_version = served_version
        self.access_log = access_log
        self.fresh = fresh_request_ids()

    def stamp(self, presented: bytes | None) -> Stamp:
        """The request's id (the client's, if usable) and the header that answers it."""
        stamp = None if presented is None else client_stamp(presented)
        return next(self.fresh) if stamp is None else stamp

    def begin(self, presented: bytes | None) -> Stamp:
        """`stamp`, with the id set for everything logged while the request is answered."""
        stamp = self.stamp(presented)
        request_id.set(stamp[0])
        return stamp

    def end(self, scope: Scope, route: str, status: int, started: float, rid: str) -> None:
        seconds = time.perf_counter() - started
        self.record(scope["method"], route, status, seconds)
        if self.access_log:
            self.log(scope, route, status, seconds, rid)

    def log(self, scope: Scope, route: str, status: int, seconds: float, rid: str) -> None:
        client = scope.get("client")
        log_access(
            client="-" if client is None else f"{client[0]}:{client[1]}",
            method=scope["method"],
            path=scope["path"],
            http_version=scope["http_version"],
            route=route,
            status=status,
            seconds=seconds,
            model_version=scope.get(MODEL_VERSION) or self.served_version(),
            request=rid,
        )


class RequestTelemetry:
    def __init__(
        self, app: ASGIApp, recorder: RequestRecorder, routes: Sequence[BaseRoute]
    ) -> None:
        self.app = app
        self.recorder = recorder
        # Built on the first request, when every route has been added.
        self.plain_routes = [
            route
            for route in routes
            if isinstance(route, Route | Mount) and not isinstance(route, APIRoute)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        presented = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        rid, echo = self.recorder.begin(presented)
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            matched = scope.get("route")
            route = self.template(scope) if matched is None else matched.path
            self.recorder.end(scope, route, status, started, rid)

    def template(self, scope: Scope) -> str:
        """The template of a request FastAPI did not route: a plain Starlette route, or none."""
        # A fresh scope: a Mount has rewritten root_path in the one the request went through.
        probe = {"type": "http", "path": scope["path"], "method": scope["method"]}
        for candidate in self.plain_routes:
            if candidate.matches(probe)[0] is not Match.NONE:
                return candidate.path
        return UNMATCHED
