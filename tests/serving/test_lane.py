"""The short way: predictions answered in front of FastAPI's whole stack, with nothing lost."""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.testclient import TestClient

from irisops.runtime import LoadedModel
from irisops.serving.logs import JsonFormatter
from tests.processes import SEED_BODY
from tests.serving.publishing import in_process_app

ORIGIN = "https://app.example"
BATCH = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with in_process_app(tmp_path_factory.mktemp("lane")) as app:
        yield app


@pytest.fixture
def stacked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached FastAPI's middleware stack."""
    paths: list[str] = []
    outermost = ServerErrorMiddleware.__call__

    async def spy(self: ServerErrorMiddleware, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await outermost(self, scope, receive, send)

    monkeypatch.setattr(ServerErrorMiddleware, "__call__", spy)
    return paths


def test_predictions_never_reach_the_middleware_stack(
    client: TestClient, stacked: list[str]
) -> None:
    assert client.post("/predict", content=SEED_BODY).status_code == 200
    assert client.post("/predict/batch", json=BATCH).status_code == 200
    assert client.post("/predict/batch?format=columnar", json=BATCH).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/predict").status_code == 405  # other methods go the usual way
    assert stacked == ["/health", "/predict"]


def test_the_short_way_keeps_the_request_id_metrics_and_refusals(client: TestClient) -> None:
    answer = client.post("/predict", content=SEED_BODY, headers={"X-Request-ID": "lane-1"})
    assert answer.headers["x-request-id"] == "lane-1"
    assert answer.headers["content-type"] == "application/json"
    refused = client.post(
        "/predict", content=b'{"features":[1,2,3]}', headers={"X-Request-ID": "r-1"}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("features")
    assert refused.headers.get_list("x-request-id") == ["r-1"]
    for odd in ("wide", ""):
        refused = client.post(f"/predict/batch?format={odd}", json=BATCH)
        assert refused.status_code == 422
        assert "format must be" in refused.json()["detail"]
    metrics = client.get("/metrics").text
    assert 'method="POST",route="/predict",status="422"' in metrics
    assert 'method="POST",route="/predict/batch",status="200"' in metrics


def test_an_unexpected_error_is_a_logged_500_with_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    model: LoadedModel = client.app.state.serving.store.model  # type: ignore[attr-defined]

    def broken(_: Any) -> Any:
        raise RuntimeError("the fault injected by this test")

    monkeypatch.setattr(model.classifier, "predict_one", broken)
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())  # formats as it is logged: the request's id then
    logger = logging.getLogger("irisops.serving")
    logger.addHandler(handler)
    try:
        answer = client.post("/predict", content=SEED_BODY, headers={"X-Request-ID": "boom-2"})
    finally:
        logger.removeHandler(handler)
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal server error", "errors": []}
    assert answer.headers.get_list("x-request-id") == ["boom-2"]
    (logged,) = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert "RuntimeError: the fault injected by this test" in logged["exception"]
    assert logged["request_id"] == "boom-2"
    assert 'route="/predict",status="500"' in client.get("/metrics").text


def test_the_api_key_is_checked_on_the_short_way(tmp_path: Path, stacked: list[str]) -> None:
    with in_process_app(tmp_path, api_key="lane-secret") as client:
        refused = client.post("/predict", content=SEED_BODY)
        wrong = client.post("/predict/batch", json=BATCH, headers={"X-API-Key": "guess"})
        bearer = {"Authorization": "Bearer lane-secret"}
        assert client.post("/predict", content=SEED_BODY, headers=bearer).status_code == 200
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "an API key is required" in refused.json()["detail"]
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.json()["detail"]
    assert "/predict" not in stacked


def test_a_cors_request_goes_through_fastapi(tmp_path: Path, stacked: list[str]) -> None:
    with in_process_app(tmp_path, cors_origins=ORIGIN) as client:
        browser = client.post("/predict", content=SEED_BODY, headers={"Origin": ORIGIN})
        script = client.post("/predict", content=SEED_BODY)
    assert browser.status_code == script.status_code == 200
    assert browser.headers["access-control-allow-origin"] == ORIGIN
    assert browser.json() == script.json()
    assert stacked == ["/predict"]  # the browser's request only


def test_without_telemetry_the_short_way_answers_without_an_id(tmp_path: Path) -> None:
    with in_process_app(tmp_path, telemetry=False) as client:
        answer = client.post("/predict", content=SEED_BODY)
        refused = client.post("/predict", content=b"{")
    assert answer.status_code == 200
    assert "x-request-id" not in answer.headers
    assert refused.status_code == 400
    assert "x-request-id" not in refused.headers
