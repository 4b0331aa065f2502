"""The API's logs and request ids, read from what a real `irisops serve` writes.

With IRISOPS_LOG_FORMAT=json every line is one JSON object: uvicorn's lines, model
swaps and reload failures, and one access line per request carrying its id, route,
status, latency and model version. The id is the client's `X-Request-ID` or a new
one, and comes back in the answer's `X-Request-ID`. No secret ever reaches the log.
"""

import asyncio
import io
import itertools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from irisops import bundle
from irisops.config import Settings
from irisops.serving.app import create_app
from irisops.serving.logs import JsonFormatter
from irisops.serving.telemetry import fresh_request_ids
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, Service, free_port, running, serving_version, wait_for
from tests.serving.publishing import (
    RELOAD_TIMEOUT,
    as_version,
    champion_bundle,
    publish,
    truncated_onnx,
)

API_KEY = "log-test-secret-key"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def entries(service: Service) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be a JSON object."""
    lines = service.output().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def access_entries(service: Service, request_id: str) -> list[dict[str, Any]]:
    def logged() -> bool:
        return any(e.get("request_id") == request_id for e in entries(service))

    wait_for(logged, timeout=10)  # the line is written just after the answer is sent
    return [
        e
        for e in entries(service)
        if e["logger"] == "irisops.access" and e["request_id"] == request_id
    ]


@pytest.fixture(scope="module")
def api(
    tracking: Tracking, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """JSON logs (access log on by default with them), and an API key to keep out of them."""
    port = free_port()
    env = tracking.env(
        champion.model_dir,
        IRISOPS_API_PORT=str(port),
        IRISOPS_LOG_FORMAT="json",
        IRISOPS_API_KEY=API_KEY,
    )
    log = tmp_path_factory.mktemp("logs-api") / "api.log"
    url = f"http://127.0.0.1:{port}"
    with running("serve", env=env, url=url, log=log, ready_path="/ready") as service:
        yield service


INFER_PATH = "/v2/models/iris-classifier/infer"
INFER_BODY = (
    b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
)


def infer(api: Service, request_id: str, body: bytes = INFER_BODY) -> httpx.Response:
    """A V2 inference with the API key, as a Bearer token."""
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Request-ID": request_id}
    return httpx.post(api.url + INFER_PATH, content=body, headers=headers)


# --- JSON lines ------------------------------------------------------------------------------


def test_every_line_is_a_json_object_with_time_level_logger_message(api: Service) -> None:
    found = entries(api)
    assert found
    for entry in found:
        assert {"time", "level", "logger", "message"} <= set(entry)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert any(e["logger"] == "uvicorn.error" and "Uvicorn running" in e["message"] for e in found)


def test_the_model_swap_is_a_structured_line(api: Service) -> None:
    (loaded,) = [e for e in entries(api) if e.get("event") == "model_loaded"]
    assert loaded["logger"] == "irisops.serving"
    assert loaded["model_version"] == "1"
    assert "now serving model version 1" in loaded["message"]


def test_each_request_gets_one_access_line(api: Service) -> None:
    response = infer(api, "client-chosen-id-1")
    assert response.status_code == 200, response.text
    (line,) = access_entries(api, "client-chosen-id-1")
    assert line["level"] == "INFO"
    assert line["method"] == "POST"
    assert line["path"] == INFER_PATH
    assert line["route"] == "/v2/models/{name}/infer"
    assert line["status"] == 200
    assert 0 < line["duration_ms"] < 5_000
    assert line["model_version"] == "1"
    assert line["client"].startswith("127.0.0.1:")


def test_refusals_are_logged_with_their_status(api: Service) -> None:
    response = httpx.get(f"{api.url}/model", headers={"X-Request-ID": "refused-1"})
    assert response.status_code == 401
    (line,) = access_entries(api, "refused-1")
    assert (line["route"], line["status"]) == ("/model", 401)


# --- Request ids -----------------------------------------------------------------------------


def test_the_clients_request_id_is_echoed(api: Service) -> None:
    response = httpx.get(f"{api.url}/health", headers={"X-Request-ID": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"


def test_a_request_id_is_generated_when_none_is_sent(api: Service) -> None:
    first = httpx.get(f"{api.url}/health").headers["x-request-id"]
    second = httpx.get(f"{api.url}/health").headers["x-request-id"]
    assert GENERATED_ID.fullmatch(first) and GENERATED_ID.fullmatch(second)
    assert first != second
    assert access_entries(api, first)[0]["route"] == "/health"


def test_generated_ids_stay_fresh_across_reads_from_the_os() -> None:
    stamps = list(itertools.islice(fresh_request_ids(per_read=3), 10))  # four reads
    ids = [rid for rid, _ in stamps]
    assert all(GENERATED_ID.fullmatch(one) for one in ids)
    assert len(set(ids)) == len(ids)
    assert [header for _, header in stamps] == [(b"x-request-id", rid.encode()) for rid in ids]


@pytest.mark.parametrize("unusable", ["x" * 129, "has space", 'quote"d', "naïve"])
def test_an_unusable_request_id_is_replaced(api: Service, unusable: str) -> None:
    response = httpx.get(f"{api.url}/health", headers={b"X-Request-ID": unusable.encode()})
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


def test_errors_carry_the_request_id_too(api: Service) -> None:
    response = infer(api, "bad-1", b"{")
    assert response.status_code == 400
    assert response.headers["x-request-id"] == "bad-1"
    assert access_entries(api, "bad-1")[0]["status"] == 400


# --- Secrets -----------------------------------------------------------------------------------


def test_the_api_key_never_reaches_the_log(api: Service) -> None:
    infer(api, "with-bearer")
    httpx.get(f"{api.url}/model", headers={"X-API-Key": API_KEY, "X-Request-ID": "with-x-api-key"})
    httpx.get(f"{api.url}/model?api_key={API_KEY}", headers={"X-Request-ID": "in-query"})
    for request_id in ("with-bearer", "with-x-api-key", "in-query"):
        assert access_entries(api, request_id)
    assert API_KEY not in api.output()


# --- Reload failures, in JSON --------------------------------------------------------------


def test_reload_failures_and_swaps_are_json(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model_data"
    files, metadata = champion_bundle(champion)
    publish(model_dir, files, metadata)
    service = api_factory.start(
        tracking.env(model_dir, IRISOPS_LOG_FORMAT="json"), ready_path="/ready"
    )
    broken = model_dir / bundle.VERSIONS / "v2-broken"
    broken.mkdir()
    truncated_onnx(broken, as_version(metadata, "2"), files)
    bundle.activate(model_dir, broken)
    wait_for(lambda: any(e.get("event") == "model_reload_failed" for e in entries(service)))
    publish(model_dir, files, as_version(metadata, "3"))
    wait_for(serving_version(service, "3"), timeout=RELOAD_TIMEOUT)

    def swaps() -> list[str]:
        return [e["model_version"] for e in entries(service) if e.get("event") == "model_loaded"]

    wait_for(lambda: len(swaps()) > 1)  # the line follows the swap, it may trail the answer
    assert swaps() == ["1", "3"]
    (failed,) = [e for e in entries(service) if e.get("event") == "model_reload_failed"]
    assert failed["level"] == "ERROR"
    assert "sha256" in failed["reason"]
    assert "still serving version 1" in failed["message"]


# --- Text, the default -----------------------------------------------------------------------


def test_text_logs_have_no_access_lines_unless_asked(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    quiet = api_factory.start(tracking.env(champion.model_dir), ready_path="/ready")
    httpx.post(f"{quiet.url}/predict", content=SEED_BODY)
    talkative = api_factory.start(
        tracking.env(champion.model_dir, IRISOPS_ACCESS_LOG="true"), ready_path="/ready"
    )
    httpx.post(f"{talkative.url}/predict", content=SEED_BODY, headers={"X-Request-ID": "t-1"})

    assert "now serving model version 1" in quiet.output()
    assert "POST /predict" not in quiet.output()
    wait_for(lambda: "id=t-1" in talkative.output(), timeout=10)
    (line,) = [line for line in talkative.output().splitlines() if "id=t-1" in line]
    assert re.fullmatch(
        r'INFO: +127\.0\.0\.1:\d+ - "POST /predict HTTP/1\.1" 200 \d+\.\d\d ms model=1 id=t-1',
        line,
    ), line


# --- A 500, in process ---------------------------------------------------------------------


def test_an_unexpected_error_is_logged_with_the_id_the_client_got(champion: Champion) -> None:
    """The traceback stays in the log; the client's X-Request-ID leads to it."""
    app = create_app(Settings(model_dir=champion.model_dir))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the fault injected by this test")

    async def get_boom() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://irisops") as client:
            return await client.get("/boom", headers={"X-Request-ID": "boom-1"})

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("irisops")
    logger.addHandler(handler)
    try:
        response = asyncio.run(get_boom())
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error", "errors": []}
    assert response.headers["x-request-id"] == "boom-1"
    (logged,) = [json.loads(line) for line in stream.getvalue().splitlines() if "boom" in line]
    assert logged["request_id"] == "boom-1"
    assert logged["level"] == "ERROR"
    assert "RuntimeError: the fault injected by this test" in logged["exception"]
