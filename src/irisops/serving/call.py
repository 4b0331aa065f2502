"""One prediction request as the prediction routes read it, whichever way it came in.

A prediction reaches its route either the short way (lane.py: straight from the
server, past the whole of FastAPI) or through FastAPI's router (when a CORS request
or FastAPI's OpenTelemetry hooks need it). Both hand the route a `Call`: the ASGI
scope and `receive`, its headers in a dict, and what the app serves with, gathered
once in `Serving`. Starlette's `Request` would do, but making one, and reading
`request.app.state` and `request.headers` through it, cost a single-row /predict
more than its model does (docs/benchmark.md).
"""

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Receive, Scope

from irisops.config import Settings
from irisops.runtime import LoadedModel
from irisops.serving import logs
from irisops.serving.errors import ApiError
from irisops.serving.metrics import Metrics
from irisops.serving.monitor import Monitor
from irisops.serving.store import ModelStore
from irisops.serving.telemetry import MODEL_VERSION


@dataclass(frozen=True, slots=True)
class Serving:
    """What the app serves with: made once by `create_app`, kept in `app.state.serving`."""

    settings: Settings
    store: ModelStore
    metrics: Metrics
    monitor: Monitor
    api_key: bytes | None

    def model_for(self, scope: Scope) -> LoadedModel:
        """The model for this whole request: read once, so a hot swap cannot split a response."""
        model = self.store.model
        if model is None:
            raise ApiError(503, self.store.not_ready_reason)
        scope[MODEL_VERSION] = model.version  # for the access log: the model that answered
        return model


class Call:
    __slots__ = ("headers", "receive", "request_id", "scope", "serving")

    def __init__(
        self, scope: Scope, receive: Receive, serving: Serving, request_id: str | None = None
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.serving = serving
        self.request_id = request_id  # None while the request telemetry is off
        # Header names arrive lower-cased; of a repeated header, the last one counts.
        self.headers: dict[bytes, bytes] = dict(scope["headers"])

    @classmethod
    def of(cls, request: Request) -> "Call":
        """A call FastAPI routed, with the id the request telemetry gave it (telemetry.py)."""
        serving: Serving = request.app.state.serving
        return cls(request.scope, request.receive, serving, logs.request_id.get())

    def query(self, name: str) -> str | None:
        """A query parameter (the last, if repeated), or None."""
        raw: bytes = self.scope["query_string"]
        if not raw:
            return None
        return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)).get(name)

    def model(self) -> LoadedModel:
        return self.serving.model_for(self.scope)
