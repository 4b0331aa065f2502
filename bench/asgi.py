"""Requests straight into the ASGI app, no server and no socket: what the app itself costs."""

from typing import Any

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


class Caller:
    """POSTs one body to one path of APP again and again; keeps the statuses and the last body."""

    def __init__(self, app: Any, path: str, body: bytes, query: bytes = b"") -> None:
        self.app = app
        self.scope = SCOPE | {"path": path, "raw_path": path.encode(), "query_string": query}
        self.message = {"type": "http.request", "body": body, "more_body": False}
        self.statuses: set[int] = set()
        self.answer = b""

    async def __call__(self) -> None:
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return self.message

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses.add(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app({**self.scope, "app": self.app, "state": {}}, receive, send)
        self.answer = b"".join(chunks)
