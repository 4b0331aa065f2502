"""Bounds on what a client can hold: time to send its request, and connections.

uvicorn hands a request to the app once its headers are complete, and waits for
them, and then for the body, without a deadline: a client that sends half a request
line, or declares a body and never sends it, holds a file descriptor until it
leaves. Here every request gets `header_timeout` seconds from its first byte (or
from the connection, for one that sends nothing) to complete its headers, then
`body_timeout` seconds to complete its body, or its connection is answered 408 and
closed (only closed, if the app has already begun answering).

The next request on a kept-alive connection gets the same deadlines, and a
connection left idle for uvicorn's `timeout_keep_alive` after its last answer is
closed (uvicorn does that with a timer of its own, which its next request only
cancelled: a stalled second request was never answered 408).

The deadlines are kept by one sweep over the open connections a few times a
second, not by timers: arming and cancelling a uvloop timer costs 2.4-3.0 µs, and
each request armed three (docs/benchmark.md, step 17). The price is precision: a
stalled client is dropped up to a quarter of the shorter timeout (at most a second)
late, and an idle connection up to a second late.

Past `max_connections` open connections, a request that is not a probe is answered
503 with `Retry-After` at once, without reaching the app; probes (`PROBES`) still
get through, so an orchestrator can tell "busy" from "dead".
"""

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROBES = frozenset({"/health", "/ready", "/v2/health/live", "/v2/health/ready", "/metrics"})
LATE_BODY = b'{"detail":"the request did not arrive in time","errors":[]}'
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(LATE_BODY)}\r\n\r\n".encode()
    + LATE_BODY
)
RETRY_AFTER_SECONDS = 1
MAX_SWEEP_SECONDS = 1.0
BUSY_BODY = b'{"detail":"too many connections; retry shortly","errors":[]}'


def guarded(
    header_timeout: float, body_timeout: float, max_connections: int
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the bounds above, as a class for `Config(http=)`."""
    every = min(MAX_SWEEP_SECONDS, header_timeout / 4, body_timeout / 4)
    sweeping = False

    def sweep(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        """Drop every connection past its deadline; go on while any is open."""
        nonlocal sweeping
        now = loop.time()
        for connection in [c for c in connections if c.waiting and now > c.deadline]:
            connection.timed_out()
        sweeping = bool(connections)
        if sweeping:
            loop.call_later(every, sweep, loop, connections)

    class GuardedProtocol(HttpToolsProtocol):
        # Until `deadline`: for the rest of a request's headers or body (`late` is the 408),
        # or idle between requests (`late` is nothing: the connection is only closed).
        waiting = False
        deadline = 0.0
        late = TIMED_OUT

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            nonlocal sweeping
            super().connection_made(transport)
            self.wait(header_timeout)
            if not sweeping:
                sweeping = True
                self.loop.call_later(every, sweep, self.loop, self.connections)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.wait(header_timeout)

        def on_headers_complete(self) -> None:
            self.wait(body_timeout)
            if len(self.connections) <= max_connections or self._is_probe():
                super().on_headers_complete()
                return
            app = self.app
            self.app = busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app

        def on_message_complete(self) -> None:
            answered = self.cycle is not None and self.cycle.response_complete
            if answered:  # before the body was all in: idle from now on
                self.idle()
            else:
                self.waiting = False
            super().on_message_complete()

        def on_response_complete(self) -> None:
            """uvicorn's own, with the idle deadline left to the sweep instead of a timer."""
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            elif not self.waiting:  # not already into the next request, or this one's body
                self.idle()

        def connection_lost(self, exc: Exception | None) -> None:
            self.waiting = False
            super().connection_lost(exc)

        def wait(self, seconds: float, late: bytes = TIMED_OUT) -> None:
            self.waiting = True
            self.late = late
            self.deadline = self.loop.time() + seconds

        def idle(self) -> None:
            self.wait(self.timeout_keep_alive, late=b"")

        def timed_out(self) -> None:
            """Send `late` unless an answer is under way, then close."""
            self.waiting = False
            if self.transport.is_closing():
                return
            cycle = self.cycle  # the last request's, until a new one's headers are complete
            if self.late and (
                cycle is None or not cycle.response_started or cycle.response_complete
            ):
                self.transport.write(self.late)
            self.transport.close()

        def _is_probe(self) -> bool:
            return httptools.parse_url(self.url).path.decode("latin-1") in PROBES

    return GuardedProtocol


async def busy(scope: Any, receive: Any, send: Any) -> None:
    """The answer past the connection cap: 503 at once, and the connection closed."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BUSY_BODY})
