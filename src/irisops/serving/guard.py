"""Bounds on what a client can hold: time to send its headers, and connections.

uvicorn hands a request to the app once its headers are complete, and waits for
them without a deadline: a client that sends half a request line holds a file
descriptor until it leaves. Here every request gets `header_timeout` seconds from
its first byte (or from the connection, for one that sends nothing) to complete its
headers, or its connection is answered 408 and closed. The body's own deadline is
kept by `security.read_body`, which answers 408 the same way.

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
BUSY_BODY = b'{"detail":"too many connections; retry shortly","errors":[]}'


def guarded(header_timeout: float, max_connections: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the bounds above, as a class for `Config(http=)`."""

    class GuardedProtocol(HttpToolsProtocol):
        header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            if len(self.connections) <= max_connections or self._is_probe():
                super().on_headers_complete()
                return
            app = self.app
            self.app = busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self.header_timer = self.loop.call_later(header_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _timed_out(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(TIMED_OUT)
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
