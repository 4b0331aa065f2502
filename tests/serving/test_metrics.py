"""`GET /metrics`: what a Prometheus scraping a real `irisops serve` sees.

Counts are read as differences between two scrapes around the requests a test sends,
so the tests hold in any order on the module's shared API. The exposition is parsed
with prometheus_client's own parser, as a strict stand-in for Prometheus.
"""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from irisops import bundle
from irisops.bundle import read_current
from irisops.config import Settings
from irisops.serving.app import create_app
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import serving_version, wait_for
from tests.serving.publishing import (
    RELOAD_TIMEOUT,
    as_version,
    champion_bundle,
    publish,
    truncated_onnx,
)

SEED_ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA_ROW = [6.7, 3.0, 5.2, 2.3]
MODEL = "iris-classifier"
Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def scrape(url: str, **headers: str) -> Samples:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_counted(samples: Samples, route: str, status: int, method: str = "POST") -> float:
    return value(
        samples, "irisops_http_requests_total", method=method, route=route, status=str(status)
    )


# --- The endpoint --------------------------------------------------------------------------


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "irisops_http_requests",
        "irisops_http_request_duration_seconds",
        "irisops_predictions",
        "irisops_batch_rows",
        "irisops_model_reloads",
        "irisops_model_reload_failures",
        "irisops_model_info",
        "irisops_model_loaded",
        "process_resident_memory_bytes",
    } <= families


def test_openmetrics_when_the_scraper_asks_for_it(client: httpx.Client) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


# --- Requests --------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_and_status(client: httpx.Client) -> None:
    before = scrape(str(client.base_url))
    for _ in range(3):
        assert client.post("/predict", json={"features": SEED_ROW}).status_code == 200
    assert client.post("/predict", json={"features": [1, 2]}).status_code == 422
    assert client.get("/v2/models/nope/ready").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(str(client.base_url))

    def counted(route: str, status: int, method: str = "POST") -> float:
        return requests_counted(after, route, status, method) - requests_counted(
            before, route, status, method
        )

    assert counted("/predict", 200) == 3
    assert counted("/predict", 422) == 1
    # The template, not the path: a client cannot mint new time series.
    assert counted("/v2/models/{name}/ready", 404, "GET") == 1
    assert counted("unmatched", 404, "GET") == 1
    assert not any("nope" in str(labels) for _, labels in after)


def test_unusual_methods_share_one_label(client: httpx.Client) -> None:
    before = scrape(str(client.base_url))
    assert client.request("PROPFIND", "/health").status_code == 405
    after = scrape(str(client.base_url))
    assert requests_counted(after, "/health", 405, "OTHER") == (
        requests_counted(before, "/health", 405, "OTHER") + 1
    )


def test_latency_is_a_histogram_per_route(client: httpx.Client) -> None:
    before = scrape(str(client.base_url))
    for _ in range(5):
        client.post("/predict", json={"features": SEED_ROW})
    after = scrape(str(client.base_url))
    labels = {"method": "POST", "route": "/predict"}
    name = "irisops_http_request_duration_seconds"
    count = value(after, f"{name}_count", **labels) - value(before, f"{name}_count", **labels)
    assert count == 5
    took = value(after, f"{name}_sum", **labels) - value(before, f"{name}_sum", **labels)
    assert 0 < took < 5
    # Buckets fine enough for a sub-millisecond route, and cumulative up to +Inf.
    buckets = sorted(
        (float(dict(labels_)["le"]), count_)
        for (sample, labels_), count_ in after.items()
        if sample == f"{name}_bucket" and ("route", "/predict") in labels_
    )
    assert buckets[0][0] <= 0.001
    assert [c for _, c in buckets] == sorted(c for _, c in buckets)
    assert buckets[-1] == (float("inf"), value(after, f"{name}_count", **labels))


# --- Predictions and batches ---------------------------------------------------------------


def test_predictions_are_counted_by_class_on_every_prediction_route(
    client: httpx.Client,
) -> None:
    before = scrape(str(client.base_url))
    client.post("/predict", json={"features": SEED_ROW})
    client.post("/predict/batch", json={"instances": [SEED_ROW, VIRGINICA_ROW, VIRGINICA_ROW]})
    client.post(
        f"/v2/models/{MODEL}/infer",
        json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": SEED_ROW}]},
    )
    after = scrape(str(client.base_url))

    def predicted(name: str) -> float:
        sample = "irisops_predictions_total"
        return value(after, sample, **{"class": name}) - value(before, sample, **{"class": name})

    assert predicted("setosa") == 3
    assert predicted("virginica") == 2
    assert predicted("versicolor") == 0
    # Every class is exported from the start, so rate() has a series to work on.
    assert ("irisops_predictions_total", frozenset({("class", "versicolor")})) in after


def test_batch_sizes_are_a_histogram_of_rows_per_request(client: httpx.Client) -> None:
    before = scrape(str(client.base_url))
    client.post("/predict/batch", json={"instances": [SEED_ROW] * 3})
    client.post("/predict/batch", json={"instances": [SEED_ROW] * 40})
    infer = {
        "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": [SEED_ROW] * 2}]
    }
    client.post(f"/v2/models/{MODEL}/infer", json=infer)
    after = scrape(str(client.base_url))

    def grew(sample: str, route: str, **labels: str) -> float:
        name = f"irisops_batch_rows_{sample}"
        return value(after, name, route=route, **labels) - value(
            before, name, route=route, **labels
        )

    assert grew("count", "/predict/batch") == 2
    assert grew("sum", "/predict/batch") == 43
    assert grew("bucket", "/predict/batch", le="5.0") == 1
    assert grew("bucket", "/predict/batch", le="50.0") == 2
    assert grew("count", "/v2/models/{name}/infer") == 1
    assert grew("sum", "/v2/models/{name}/infer") == 2


# --- The model -------------------------------------------------------------------------------


def test_the_served_model_is_an_info_metric(client: httpx.Client, champion: Champion) -> None:
    _, metadata, _ = read_current(champion.model_dir)
    samples = scrape(str(client.base_url))
    info = {
        dict(labels)["version"]: dict(labels)
        for (name, labels), found in samples.items()
        if name == "irisops_model_info" and found == 1
    }
    assert info == {
        "1": {
            "name": MODEL,
            "version": "1",
            "run_id": metadata.run_id,
            "sha256": metadata.sha256,
            "backend": "forest",
        }
    }
    assert value(samples, "irisops_model_loaded") == 1
    assert value(samples, "irisops_model_reloads_total") == 1
    assert value(samples, "irisops_model_reload_failures_total") == 0


def test_reloads_and_failures_are_counted(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model_data"
    model_dir.mkdir()
    service = api_factory.start(tracking.env(model_dir))
    samples = scrape(service.url)
    assert value(samples, "irisops_model_loaded") == 0
    assert not any(name == "irisops_model_info" for name, _ in samples)

    files, metadata = champion_bundle(champion)
    publish(model_dir, files, metadata)
    wait_for(serving_version(service, "1"), timeout=RELOAD_TIMEOUT)

    broken = model_dir / "versions" / "v2-broken"
    broken.mkdir()
    truncated_onnx(broken, as_version(metadata, "2"), files)
    bundle.activate(model_dir, broken)
    # Every failed attempt counts (one per poll), though the log says it once.
    wait_for(
        lambda: value(scrape(service.url), "irisops_model_reload_failures_total") >= 2,
        timeout=RELOAD_TIMEOUT,
    )
    publish(model_dir, files, as_version(metadata, "3"))
    wait_for(serving_version(service, "3"), timeout=RELOAD_TIMEOUT)

    samples = scrape(service.url)
    assert value(samples, "irisops_model_reloads_total") == 2
    assert value(samples, "irisops_model_loaded") == 1
    versions = [dict(labels)["version"] for name, labels in samples if name == "irisops_model_info"]
    assert versions == ["3"], "the info metric follows the swap"


# --- Telemetry off ----------------------------------------------------------------------------


def test_without_telemetry_requests_are_not_recorded_but_the_model_is(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    """IRISOPS_TELEMETRY=false: no request metrics and no X-Request-ID; model metrics stay."""
    service = api_factory.start(
        tracking.env(champion.model_dir, IRISOPS_TELEMETRY="false", IRISOPS_LOG_FORMAT="json"),
        ready_path="/ready",
    )
    response = httpx.post(f"{service.url}/predict", json={"features": SEED_ROW}, timeout=10)
    assert response.status_code == 200
    assert "x-request-id" not in response.headers
    samples = scrape(service.url)
    assert not any(name.startswith("irisops_http_") for name, _ in samples)
    assert value(samples, "irisops_predictions_total", **{"class": "setosa"}) == 1
    assert value(samples, "irisops_model_loaded") == 1
    assert "irisops.access" not in service.output(), "no access log without the middleware"


# --- Open, and one registry per app ----------------------------------------------------------


def test_metrics_stay_open_when_an_api_key_is_set(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion
) -> None:
    service = api_factory.start(
        tracking.env(champion.model_dir, IRISOPS_API_KEY="metrics-test-key"), ready_path="/ready"
    )
    assert httpx.get(f"{service.url}/model").status_code == 401
    samples = scrape(service.url)
    assert requests_counted(samples, "/model", 401, "GET") == 1


def test_each_app_has_a_registry_of_its_own(champion: Champion) -> None:
    """Two apps in one process: no duplicate-metric error, and separate counts."""
    first = create_app(Settings(model_dir=champion.model_dir))
    second = create_app(Settings(model_dir=champion.model_dir))
    first.state.serving.metrics.requests.record("GET", "/health", 200, 0.001)
    health = {"method": "GET", "route": "/health", "status": "200"}
    assert value(registry_samples(first), "irisops_http_requests_total", **health) == 1
    assert value(registry_samples(second), "irisops_http_requests_total", **health) == 0


def registry_samples(app: FastAPI) -> Samples:
    return parse(generate_latest(app.state.serving.metrics.registry).decode())


def test_latency_is_summed_over_statuses_and_methods_are_bounded(champion: Champion) -> None:
    """Requests are kept per (method, route, status); the histogram is per (method, route)."""
    app = create_app(Settings(model_dir=champion.model_dir))
    record = app.state.serving.metrics.requests.record
    record("POST", "/predict", 200, 0.0003)
    record("POST", "/predict", 422, 0.002)
    record("PROPFIND", "/health", 405, 0.0001)
    record("MKCOL", "/health", 405, 0.0001)
    samples = registry_samples(app)
    latency = "irisops_http_request_duration_seconds"
    predict = {"method": "POST", "route": "/predict"}
    assert value(samples, f"{latency}_count", **predict) == 2
    assert value(samples, f"{latency}_sum", **predict) == pytest.approx(0.0023)
    assert value(samples, f"{latency}_bucket", le="0.0005", **predict) == 1
    assert value(samples, f"{latency}_bucket", le="0.0025", **predict) == 2
    assert value(samples, f"{latency}_bucket", le="+Inf", **predict) == 2
    other = {"method": "OTHER", "route": "/health"}
    assert value(samples, "irisops_http_requests_total", status="405", **other) == 2
    assert value(samples, f"{latency}_count", **other) == 2
