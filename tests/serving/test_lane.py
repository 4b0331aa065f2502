"""The short way: prediction routes answered past FastAPI's router, with nothing lost."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRouter
from starlette.testclient import TestClient

from irisops.serving.app import ROUTERS
from irisops.serving.lane import short_routes
from tests.processes import SEED_BODY
from tests.serving.publishing import in_process_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with in_process_app(tmp_path_factory.mktemp("lane")) as app:
        yield app


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached FastAPI's router."""
    paths: list[str] = []
    route = APIRouter.__call__

    async def spy(self: APIRouter, scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await route(self, scope, receive, send)

    monkeypatch.setattr(APIRouter, "__call__", spy)
    return paths


def test_only_routes_that_take_the_bare_request_and_answer_a_response_qualify() -> None:
    routes = short_routes(route for router in ROUTERS for route in router.routes)
    assert {("POST", "/predict"), ("POST", "/predict/batch")} <= set(routes)
    assert ("GET", "/health") not in routes  # it answers a response model FastAPI renders
    assert not any(path.startswith("/v2/models/{") for _, path in routes)  # path parameters


def test_predictions_never_reach_the_router(client: TestClient, routed: list[str]) -> None:
    assert client.post("/predict", content=SEED_BODY).status_code == 200
    assert (
        client.post("/predict/batch", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200
    )
    assert client.get("/health").status_code == 200
    assert routed == ["/health"]


def test_the_short_way_keeps_the_request_id_metrics_and_refusals(client: TestClient) -> None:
    answer = client.post("/predict", content=SEED_BODY, headers={"X-Request-ID": "lane-1"})
    assert answer.headers["x-request-id"] == "lane-1"
    refused = client.post("/predict", content=b'{"features":[1,2,3]}')
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("features")
    assert client.get("/predict").status_code == 405  # other methods go the usual way
    metrics = client.get("/metrics").text
    assert 'method="POST",route="/predict",status="422"' in metrics
