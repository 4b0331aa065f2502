"""The model in production, over real HTTP: the inference log, drift, feedback, the shadow.

Each test starts its own `irisops serve` with its own inference log directory. The
shadow tests use a registered model of their own (a champion and a distinct
challenger), so the session's registry keeps its aliases.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris

from irisops import inference_log
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, Service, irisops, wait_for

IRIS = load_iris()
THRESHOLD = 0.2
SHADOWED = "shadowed-classifier"


def start(api_factory: ApiFactory, env: dict[str, str], tmp_path: Path, **settings: str) -> Service:
    return api_factory.start(
        {**env, "IRISOPS_INFERENCE_LOG_DIR": str(tmp_path / "log"), **settings},
        ready_path="/ready",
    )


@pytest.fixture
def api(api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path) -> Service:
    return start(
        api_factory, tracking.env(champion.model_dir), tmp_path, IRISOPS_DRIFT_WINDOW="300"
    )


def logged(
    api: Service, tmp_path: Path, count: int, kind: str = "prediction"
) -> list[dict[str, Any]]:
    """The records of `kind` once `count` of them are written (the writer is asynchronous)."""

    def records() -> list[dict[str, Any]]:
        return [r for r in inference_log.read(tmp_path / "log") if r["kind"] == kind]

    wait_for(lambda: len(records()) >= count, timeout=10)
    return records()


def traffic(rows: int, seed: int, shift: dict[int, float] | None = None) -> list[list[float]]:
    drawn = IRIS.data[np.random.default_rng(seed).integers(0, len(IRIS.data), rows)].copy()
    for feature, by in (shift or {}).items():
        drawn[:, feature] += by
    drawn_rows: list[list[float]] = drawn.round(1).tolist()
    return drawn_rows


def monitoring(api: Service) -> dict[str, Any]:
    response = httpx.get(api.url + "/monitoring", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the inference log ----------------------------------------------------------------------


def test_every_answer_is_logged_with_its_request_id(api: Service, tmp_path: Path) -> None:
    one = httpx.post(api.url + "/predict", content=SEED_BODY, headers={"X-Request-ID": "one"})
    rows = traffic(3, 0)
    batch = httpx.post(api.url + "/predict/batch", json={"instances": rows})
    v2 = httpx.post(
        api.url + "/v2/models/iris-classifier/infer",
        json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": rows[0]}]},
    )
    assert one.status_code == batch.status_code == v2.status_code == 200
    records = {r["request_id"]: r for r in logged(api, tmp_path, 3)}
    single = records["one"]
    assert single["route"] == "/predict" and single["model_version"] == "1"
    assert single["features"] == [[5.1, 3.5, 1.4, 0.2]]
    assert single["probabilities"][0] == list(one.json()["probabilities"].values())
    assert single["classes"][single["class_ids"][0]] == one.json()["prediction"]
    assert single["latency_ms"] > 0
    batched = records[batch.headers["X-Request-ID"]]
    assert batched["features"] == rows
    assert [single["classes"][c] for c in batched["class_ids"]] == [
        p["prediction"] for p in batch.json()["predictions"]
    ]
    assert records[v2.headers["X-Request-ID"]]["route"] == "/v2/models/{name}/infer"


def test_the_log_survives_a_restart(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    env = tracking.env(champion.model_dir)
    first = start(api_factory, env, tmp_path)
    httpx.post(first.url + "/predict", content=SEED_BODY, headers={"X-Request-ID": "before"})
    logged(first, tmp_path, 1)
    first.stop()
    second = start(api_factory, env, tmp_path)
    httpx.post(second.url + "/predict", content=SEED_BODY, headers={"X-Request-ID": "after"})
    assert [r["request_id"] for r in logged(second, tmp_path, 2)] == ["before", "after"]


def test_a_failing_log_drops_and_counts_records_and_no_request_fails(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    (tmp_path / "log").write_text("a file where the log directory should be")
    api = start(api_factory, tracking.env(champion.model_dir), tmp_path)
    for _ in range(50):
        assert httpx.post(api.url + "/predict", content=SEED_BODY).status_code == 200
    wait_for(lambda: monitoring(api)["inference_log"]["dropped_write_error"] == 50, timeout=10)
    metrics = httpx.get(api.url + "/metrics").text
    assert 'irisops_inference_log_records_total{outcome="dropped_write_error"} 50.0' in metrics


def test_a_full_queue_drops_and_counts_records_and_no_request_fails(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    api = start(
        api_factory, tracking.env(champion.model_dir), tmp_path, IRISOPS_INFERENCE_LOG_QUEUE="1"
    )
    with httpx.Client(base_url=api.url) as client:
        for _ in range(20):  # batches of 200 answered back to back outpace a 50 ms writer
            answer = client.post("/predict/batch", json={"instances": traffic(200, 1)})
            assert answer.status_code == 200
    counts = monitoring(api)["inference_log"]
    assert counts["dropped_full_queue"] > 0
    assert counts["dropped_full_queue"] + counts["written"] <= 20


# --- drift and out-of-range rows -------------------------------------------------------------


def drift_after(api: Service, rows: list[list[float]]) -> dict[str, Any]:
    for start_at in range(0, len(rows), 100):
        chunk = rows[start_at : start_at + 100]
        assert httpx.post(api.url + "/predict/batch", json={"instances": chunk}).status_code == 200
    drift: dict[str, Any] = monitoring(api)["drift"]
    return drift


def test_traffic_like_the_training_data_keeps_every_drift_gauge_quiet(api: Service) -> None:
    drift = drift_after(api, traffic(300, 2))
    assert drift["window_rows"] == 300
    for name, feature in drift["features"].items():
        assert feature["psi"] < THRESHOLD and feature["ks"] < THRESHOLD, (name, feature)
        assert not feature["drifting"]


def test_a_shifted_feature_raises_its_drift_and_no_other(api: Service) -> None:
    drift = drift_after(api, traffic(300, 3, shift={2: 1.5}))
    assert drift["features"]["petal_length"]["drifting"]
    quiet = {n: f for n, f in drift["features"].items() if n != "petal_length"}
    assert not any(f["drifting"] for f in quiet.values()), quiet
    metrics = httpx.get(api.url + "/metrics").text
    psi = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('irisops_drift_psi{feature="petal_length"}')
    )
    assert psi == pytest.approx(drift["features"]["petal_length"]["psi"])


def test_out_of_range_rows_are_counted_and_marked_when_asked(api: Service) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 1.4, 9.0], [0.1, 3.5, 1.4, 0.2]]
    plain = httpx.post(api.url + "/predict/batch", json={"instances": rows}).json()
    assert "out_of_range" not in plain["predictions"][0]
    marked = httpx.post(api.url + "/predict/batch?out_of_range=true", json={"instances": rows})
    assert [p["out_of_range"] for p in marked.json()["predictions"]] == [
        [],
        ["petal_width"],
        ["sepal_length"],
    ]
    one = httpx.post(
        api.url + "/predict?out_of_range=true", json={"features": [5.1, 3.5, 1.4, 9.0]}
    )
    assert one.json()["out_of_range"] == ["petal_width"]
    assert monitoring(api)["drift"]["out_of_range_rows_total"] == 5


# --- feedback ---------------------------------------------------------------------------------


def test_feedback_gives_the_exact_live_accuracy(api: Service) -> None:
    rows = traffic(20, 4)
    answer = httpx.post(api.url + "/predict/batch", json={"instances": rows})
    rid = answer.headers["X-Request-ID"]
    predicted = [p["prediction"] for p in answer.json()["predictions"]]
    names = list(IRIS.target_names)
    # The truth agrees with the first 15 answers and contradicts the last 5.
    truth = predicted[:15] + [next(n for n in names if n != p) for p in predicted[15:]]
    items = [{"request_id": rid, "row": i, "true_class": t} for i, t in enumerate(truth)]
    sent = httpx.post(api.url + "/feedback", json=items)
    assert sent.status_code == 200, sent.text
    assert sent.json()["accepted"] == 20
    [accuracy] = monitoring(api)["feedback"]
    assert accuracy == {"role": "champion", "model_version": "1", "accuracy": 0.75, "rows": 20}
    assert (
        'irisops_live_accuracy{model_version="1",role="champion"} 0.75'
        in httpx.get(api.url + "/metrics").text
    )


@pytest.mark.parametrize(
    ("item", "status", "fragment"),
    [
        ({"request_id": "nobody", "true_class": "setosa"}, 404, "no answer with request id"),
        ({"request_id": "seen", "true_class": "rose"}, 422, "setosa, versicolor, virginica"),
        ({"request_id": "seen", "row": 3, "true_class": "setosa"}, 422, "row must be 0 to 0"),
        ({"request_id": "seen"}, 422, "true_class is required"),
    ],
    ids=["unknown-id", "bad-class", "bad-row", "no-class"],
)
def test_bad_feedback_is_a_clear_4xx(
    api: Service, item: dict[str, Any], status: int, fragment: str
) -> None:
    httpx.post(api.url + "/predict", content=SEED_BODY, headers={"X-Request-ID": "seen"})
    response = httpx.post(api.url + "/feedback", content=json.dumps(item))
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_feedback_twice_for_one_row_is_409(api: Service) -> None:
    httpx.post(api.url + "/predict", content=SEED_BODY, headers={"X-Request-ID": "twice"})
    item = {"request_id": "twice", "true_class": "setosa"}
    assert httpx.post(api.url + "/feedback", json=item).status_code == 200
    again = httpx.post(api.url + "/feedback", json=item)
    assert again.status_code == 409 and "already has feedback" in again.json()["detail"]


# --- the shadow challenger --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shadowed(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registered model of its own: v1 champion, and a different v2 as the challenger."""
    model_dir = tmp_path_factory.mktemp("shadowed")
    env = tracking.env(model_dir, IRISOPS_REGISTERED_MODEL=SHADOWED)
    for args in (
        ("--n-estimators", "20"),
        ("--n-estimators", "3", "--max-depth", "1", "--no-promote"),
    ):
        result = irisops("train", *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    yield model_dir


def shadow_api(
    api_factory: ApiFactory, tracking: Tracking, shadowed: Path, tmp_path: Path
) -> Service:
    """An API serving the module's champion with its challenger (v2) in shadow."""
    env = tracking.env(shadowed, IRISOPS_REGISTERED_MODEL=SHADOWED)
    api = start(api_factory, env, tmp_path, IRISOPS_SHADOW="true")
    wait_for(lambda: monitoring(api)["shadow"]["challenger_version"] == "2", timeout=30)
    return api


def test_shadow_scoring_never_changes_the_champions_answer(
    api_factory: ApiFactory, tracking: Tracking, shadowed: Path, tmp_path: Path
) -> None:
    env = tracking.env(shadowed, IRISOPS_REGISTERED_MODEL=SHADOWED)
    plain = start(api_factory, env, tmp_path / "plain")
    shadow = shadow_api(api_factory, tracking, shadowed, tmp_path / "shadow")
    rows = traffic(100, 5)
    for row in rows:
        body = json.dumps({"features": row}).encode()
        assert (
            httpx.post(plain.url + "/predict", content=body).content
            == httpx.post(shadow.url + "/predict", content=body).content
        )
    batch = json.dumps({"instances": rows}).encode()
    assert (
        httpx.post(plain.url + "/predict/batch", content=batch).content
        == httpx.post(shadow.url + "/predict/batch", content=batch).content
    )
    wait_for(lambda: monitoring(shadow)["shadow"]["versions"].get("2", {}).get("rows") == 200)
    stats = monitoring(shadow)["shadow"]["versions"]["2"]
    assert 0.0 < stats["agreement"] < 1.0, "a depth-1 stump disagrees on some rows, not all"
    assert stats["mean_probability_gap"] > 0
    assert monitoring(plain)["shadow"] is None


def test_the_challengers_answers_are_logged_and_judged_by_feedback(
    api_factory: ApiFactory, tracking: Tracking, shadowed: Path, tmp_path: Path
) -> None:
    api = shadow_api(api_factory, tracking, shadowed, tmp_path)
    answer = httpx.post(api.url + "/predict/batch", json={"instances": traffic(30, 6)})
    rid = answer.headers["X-Request-ID"]
    [shadowing] = logged(api, tmp_path, 1, kind="shadow")
    assert shadowing["request_id"] == rid and shadowing["champion_version"] == "1"
    truth = [IRIS.target_names[c] for c in shadowing["class_ids"]]  # the challenger is right
    items = [{"request_id": rid, "row": i, "true_class": t} for i, t in enumerate(truth)]
    assert httpx.post(api.url + "/feedback", json=items).status_code == 200
    accuracy = {(f["role"], f["model_version"]): f["accuracy"] for f in monitoring(api)["feedback"]}
    assert accuracy[("challenger", "2")] == 1.0
    assert accuracy[("champion", "1")] < 1.0


def test_promote_with_evidence_shows_and_records_the_challengers_live_record(
    api_factory: ApiFactory, tracking: Tracking, shadowed: Path, tmp_path: Path
) -> None:
    env = tracking.env(shadowed, IRISOPS_REGISTERED_MODEL=SHADOWED)
    api = shadow_api(api_factory, tracking, shadowed, tmp_path)
    cli = {**env, "IRISOPS_API_PORT": api.url.rsplit(":", 1)[1]}
    refused = irisops("promote", "2", "--evidence", env=cli)
    assert refused.returncode == 1
    assert "no live evidence, nothing promoted" in refused.stderr
    assert "scored no live rows with v2" in refused.stderr
    httpx.post(api.url + "/predict/batch", json={"instances": traffic(50, 7)})
    wait_for(lambda: monitoring(api)["shadow"]["versions"].get("2", {}).get("rows") == 50)
    # With --gate, which refuses the worse stump: the evidence is shown and kept, and the
    # module's champion stays where the other tests expect it.
    shown = irisops("promote", "2", "--evidence", "--gate", env=cli)
    assert f"{SHADOWED} v2: not promoted" in shown.stdout, shown.stdout
    assert "v2 in shadow: 50 live rows scored" in shown.stdout, shown.stdout + shown.stderr
    assert "agreement with the champion" in shown.stdout
    tags = httpx.get(
        f"{tracking.uri}/api/2.0/mlflow/model-versions/get",
        params={"name": SHADOWED, "version": "2"},
    ).json()["model_version"]["tags"]
    recorded = {t["key"]: t["value"] for t in tags}
    assert recorded["irisops.evidence.shadow_rows"] == "50"
    assert 0.0 < float(recorded["irisops.evidence.agreement"]) < 1.0


# --- reading the log back -----------------------------------------------------------------


def test_irisops_log_filters_and_exports_csv_and_parquet(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    env = tracking.env(champion.model_dir, IRISOPS_INFERENCE_LOG_DIR=str(tmp_path / "log"))
    api = api_factory.start(env, ready_path="/ready")
    httpx.post(api.url + "/predict/batch", json={"instances": traffic(5, 8)})
    httpx.post(api.url + "/predict", content=SEED_BODY)
    wait_for(lambda: len(list(inference_log.read(tmp_path / "log"))) == 2)
    lines = irisops("log", env=env).stdout.splitlines()
    assert [json.loads(line)["route"] for line in lines] == ["/predict/batch", "/predict"]
    assert irisops("log", "--version", "9", env=env).stdout == ""
    assert irisops("log", "--since", "2999-01-01T00:00Z", env=env).stdout == ""
    csv_rows = irisops("log", "--format", "csv", env=env).stdout.splitlines()
    header = csv_rows[0].split(",")
    assert len(csv_rows) == 1 + 6, "one row per predicted row"
    for column in ("request_id", "row", "petal_length", "p_setosa", "prediction", "latency_ms"):
        assert column in header, header
    parquet = tmp_path / "live.parquet"
    written = irisops("log", "--format", "parquet", "--output", str(parquet), env=env)
    assert "6 rows written" in written.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).num_rows == 6
    refused = irisops("log", "--since", "yesterday", env=env)
    assert refused.returncode == 2 and "ISO 8601" in refused.stderr
