"""Who gets in: the optional API key, CORS closed by default, and the body-size limit."""

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import Service, free_port, running

KEY = "k3y-for-tests-0123456789"
SEED = {"features": [5.1, 3.5, 1.4, 0.2]}


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
