"""Who gets in: the optional API key, CORS closed by default, and the body-size limit."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from irisops.config import Settings
from irisops.serving.app import create_app
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import Service, free_port, running

KEY = "k3y-for-tests-0123456789"
SEED = {"features": [5.1, 3.5, 1.4, 0.2]}


# Open without the key, by design: probes, the Prometheus scrape, discovery and the docs.
OPEN = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{name}/ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready"),
}
DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[TestClient]:
    """The API in this process, with a key and no model: the key is checked before the model."""
    settings = Settings(home=tmp_path, model_dir=tmp_path / "empty", api_key=SecretStr(KEY))
    with TestClient(create_app(settings)) as client:
        yield client


def operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


def concrete(path: str) -> str:
    return path.replace("{name}", "iris-classifier").replace("{version}", "1")


def test_every_route_needs_the_key_unless_it_is_declared_open(in_process: TestClient) -> None:
    documented = operations(in_process.get("/openapi.json").json())
    assert OPEN.issubset(documented)
    for method, path in documented:
        status = in_process.request(method, concrete(path)).status_code
        assert (status != 401) == ((method, path) in OPEN), (method, path, status)
        keyed = in_process.request(method, concrete(path), headers={"X-API-Key": KEY})
        assert keyed.status_code != 401, (method, path)


def test_openapi_marks_exactly_the_keyed_routes(in_process: TestClient) -> None:
    schema = in_process.get("/openapi.json").json()
    for method, path in operations(schema):
        secured = "security" in schema["paths"][path][method.lower()]
        assert secured == ((method, path) not in OPEN), (method, path)


@pytest.mark.parametrize("path", DOCS)
def test_the_docs_stay_open(in_process: TestClient, path: str) -> None:
    assert in_process.get(path).status_code == 200


@pytest.fixture(scope="module")
def locked(
    tracking: Tracking, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    port = free_port()
    env = {
        **tracking.env(champion.model_dir),
        "IRISOPS_API_PORT": str(port),
        "IRISOPS_API_KEY": KEY,
    }
    log = tmp_path_factory.mktemp("locked") / "api.log"
    with running(
        "serve", env=env, url=f"http://127.0.0.1:{port}", log=log, ready_path="/ready"
    ) as api:
        yield api


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/predict", SEED),
        ("POST", "/predict/batch", {"instances": [SEED["features"]]}),
        ("GET", "/model", None),
    ],
)
def test_protected_routes_need_the_key(
    locked: Service, method: str, path: str, body: object
) -> None:
    url = locked.url + path
    missing = httpx.request(method, url, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "API key is required" in missing.json()["detail"]
    wrong = httpx.request(method, url, json=body, headers={"X-API-Key": KEY[:-1] + "X"})
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.json()["detail"]
    assert (
        httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {KEY}"}
        ).status_code
        == 200
    )
    assert httpx.request(method, url, json=body, headers={"X-API-Key": KEY}).status_code == 200


def test_probes_stay_open(locked: Service) -> None:
    assert httpx.get(locked.url + "/health").status_code == 200
    assert httpx.get(locked.url + "/ready").status_code == 200


def test_the_key_never_reaches_the_logs(locked: Service) -> None:
    httpx.post(locked.url + "/predict", json=SEED, headers={"Authorization": f"Bearer {KEY}"})
    httpx.post(locked.url + "/predict", json=SEED, headers={"X-API-Key": "wrong"})
    assert KEY not in locked.output()


def test_openapi_offers_both_ways_to_send_the_key(locked: Service) -> None:
    schema = httpx.get(locked.url + "/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"Bearer", "APIKey"}
    assert schema["paths"]["/predict"]["post"]["security"]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_cors_is_closed_by_default(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    api = api_factory.start(tracking.env(champion.model_dir))
    preflight = httpx.options(
        api.url + "/predict",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    answer = httpx.post(
        api.url + "/predict", json=SEED, headers={"Origin": "https://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in answer.headers


def test_cors_allows_only_the_configured_origins(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    env = {**tracking.env(champion.model_dir), "IRISOPS_CORS_ORIGINS": "https://app.example"}
    api = api_factory.start(env)
    allowed = httpx.options(
        api.url + "/predict",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.post(
        api.url + "/predict", json=SEED, headers={"Origin": "https://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in other.headers


def test_oversized_bodies_are_refused_before_parsing(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    env = {**tracking.env(champion.model_dir), "IRISOPS_MAX_BODY_BYTES": "2048"}
    api = api_factory.start(env, ready_path="/ready")
    big = b'{"instances":[' + b",".join([b"[5.1,3.5,1.4,0.2]"] * 200) + b"]}"
    declared = httpx.post(api.url + "/predict/batch", content=big)
    assert declared.status_code == 413
    assert "IRISOPS_MAX_BODY_BYTES" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    streamed = httpx.post(api.url + "/predict/batch", content=chunks())  # chunked: no length
    assert streamed.status_code == 413
    small = httpx.post(api.url + "/predict", json=SEED)
    assert small.status_code == 200
