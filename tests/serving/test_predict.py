"""The prediction API as a client sees it: a real `irisops serve` answering over loopback HTTP.

The API serves the session's champion (registered version 1) from its model directory.
Good requests get a prediction; bad ones get a 4xx whose `detail` names the field and
the problem, never a 5xx.
"""

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest

from irisops.bundle import read_current, sha256_of
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, Service
from tests.serving.bad_input import (
    BAD_BATCH_BODIES,
    BAD_PREDICT_BODIES,
    SEED_ROW,
    assert_client_error,
    assert_refusal,
)

VIRGINICA_ROW = [6.7, 3.0, 5.2, 2.3]
CLASS_NAMES = ["setosa", "versicolor", "virginica"]
DEFAULT_MAX_ROWS = 10_000


@pytest.fixture(autouse=True)
def answered_without_a_traceback(api: Service) -> Iterator[None]:
    """Checked after every test: a bad request may be refused, never crash a handler, and
    a handler's crash shows only in the server's log."""
    mark = api.mark()
    yield
    assert "Traceback" not in api.output(since=mark)


def assert_seed_prediction(body: dict[str, Any], version: str = "1") -> None:
    """The documented row is a setosa, and the answer says which model gave it."""
    assert body["prediction"] == "setosa"
    assert body["class_id"] == 0
    probabilities = body["probabilities"]
    assert list(probabilities) == CLASS_NAMES
    assert all(0.0 <= p <= 1.0 for p in probabilities.values())
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert probabilities["setosa"] == max(probabilities.values())
    assert body["model_version"] == version


# --- The documented request -------------------------------------------------------------


class TestSeedRequest:
    def test_without_content_type(self, client: httpx.Client) -> None:
        # httpx sends `content=` bytes with no Content-Type header at all.
        request = client.build_request("POST", "/predict", content=SEED_BODY.encode())
        assert "content-type" not in request.headers
        response = client.send(request)
        assert response.status_code == 200, response.text
        assert_seed_prediction(response.json())

    def test_with_json_content_type(self, client: httpx.Client) -> None:
        response = client.post(
            "/predict", content=SEED_BODY, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert_seed_prediction(response.json())

    def test_with_form_content_type_as_curl_d_sends_it(self, client: httpx.Client) -> None:
        response = client.post(
            "/predict",
            content=SEED_BODY,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
        assert_seed_prediction(response.json())

    def test_json_keyword(self, client: httpx.Client) -> None:
        response = client.post("/predict", json={"features": SEED_ROW})
        assert response.status_code == 200, response.text
        assert_seed_prediction(response.json())

    def test_integers_are_numbers(self, client: httpx.Client) -> None:
        response = client.post("/predict", json={"features": [5, 3, 1, 0]})
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "1"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
class TestSeedCurl:
    """The original project description's exact command lines, run by the real curl binary."""

    def curl(self, command: str) -> dict[str, Any]:
        result = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def test_predict(self, api: Service) -> None:
        body = self.curl(f"curl -X POST {api.url}/predict -d '{SEED_BODY}'")
        assert_seed_prediction(body)

    def test_health(self, api: Service) -> None:
        assert self.curl(f"curl {api.url}/health") == {"status": "ok"}


# --- Batches -----------------------------------------------------------------------------


class TestBatch:
    def test_two_rows(self, client: httpx.Client) -> None:
        response = client.post("/predict/batch", json={"instances": [SEED_ROW, VIRGINICA_ROW]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == "1"
        first, second = body["predictions"]
        assert_seed_prediction(first)
        assert second["prediction"] == "virginica"
        assert second["class_id"] == 2
        assert second["model_version"] == "1"

    def test_batch_agrees_with_single_predictions(self, client: httpx.Client) -> None:
        rows = [SEED_ROW, VIRGINICA_ROW, [5.9, 3.0, 4.2, 1.5]]
        batch = client.post("/predict/batch", json={"instances": rows}).json()["predictions"]
        singles = [client.post("/predict", json={"features": row}).json() for row in rows]
        assert batch == singles

    def test_empty_batch(self, client: httpx.Client) -> None:
        response = client.post("/predict/batch", json={"instances": []})
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [], "model_version": "1"}

    def test_default_limit_is_accepted(self, client: httpx.Client) -> None:
        response = client.post("/predict/batch", json={"instances": [SEED_ROW] * DEFAULT_MAX_ROWS})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == DEFAULT_MAX_ROWS
        assert {p["prediction"] for p in predictions} == {"setosa"}

    def test_one_row_over_the_default_limit(self, client: httpx.Client) -> None:
        rows = [SEED_ROW] * (DEFAULT_MAX_ROWS + 1)
        response = client.post("/predict/batch", json={"instances": rows})
        assert_client_error(response, 413, "10001", "10000", "IRISOPS_MAX_BATCH_ROWS")

    def test_configured_limit(
        self, api_factory: ApiFactory, tracking: Tracking, champion: Champion
    ) -> None:
        service = api_factory.start(
            tracking.env(champion.model_dir, IRISOPS_MAX_BATCH_ROWS="3"), ready_path="/ready"
        )
        three = httpx.post(f"{service.url}/predict/batch", json={"instances": [SEED_ROW] * 3})
        assert three.status_code == 200, three.text
        four = httpx.post(f"{service.url}/predict/batch", json={"instances": [SEED_ROW] * 4})
        assert_client_error(four, 413, "limit of 3", "IRISOPS_MAX_BATCH_ROWS")


class TestColumnarBatch:
    """`?format=columnar`: the same answers as the default form, one array per field."""

    ROWS: ClassVar = [SEED_ROW, VIRGINICA_ROW, [5.9, 3.0, 4.2, 1.5]]

    def test_holds_the_same_answers_as_the_rows_form(self, client: httpx.Client) -> None:
        body = {"instances": self.ROWS}
        rows = client.post("/predict/batch", json=body).json()
        columnar = client.post("/predict/batch?format=columnar", json=body)
        assert columnar.status_code == 200, columnar.text
        answer = columnar.json()
        assert answer["classes"] == ["setosa", "versicolor", "virginica"]
        assert answer["model_version"] == rows["model_version"] == "1"
        for i, row in enumerate(rows["predictions"]):
            assert answer["classes"][answer["class_ids"][i]] == row["prediction"]
            assert answer["class_ids"][i] == row["class_id"]
            named = zip(answer["classes"], answer["probabilities"][i], strict=True)
            assert dict(named) == row["probabilities"]

    def test_format_rows_is_the_default_form(self, client: httpx.Client) -> None:
        body = {"instances": self.ROWS}
        explicit = client.post("/predict/batch?format=rows", json=body).json()
        assert explicit == client.post("/predict/batch", json=body).json()

    def test_empty_batch(self, client: httpx.Client) -> None:
        response = client.post("/predict/batch?format=columnar", json={"instances": []})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["class_ids"], answer["probabilities"]) == ([], [])

    def test_marks_rows_outside_the_training_range(self, client: httpx.Client) -> None:
        body = {"instances": [SEED_ROW, [5.1, 3.5, 1.4, 9.9]]}
        answer = client.post("/predict/batch?format=columnar&out_of_range=true", json=body).json()
        assert answer["out_of_range"] == [[], ["petal_width"]]

    def test_an_unknown_format_is_refused_by_name(self, client: httpx.Client) -> None:
        response = client.post("/predict/batch?format=csv", json={"instances": [SEED_ROW]})
        assert_client_error(response, 422, "format must be 'rows' or 'columnar'", "'csv'")


# --- Bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status", "fragments"), BAD_PREDICT_BODIES)
def test_bad_predict_input(
    client: httpx.Client, body: str, status: int, fragments: list[str]
) -> None:
    assert_refusal(client.post("/predict", content=body.encode()), status, fragments)


def test_invalid_utf8_is_malformed_json(client: httpx.Client) -> None:
    response = client.post("/predict", content=b"\xff\xfe\x00")
    assert_client_error(response, 400, "malformed JSON")


@pytest.mark.parametrize(("payload", "fragments"), BAD_BATCH_BODIES)
def test_bad_batch_input(client: httpx.Client, payload: Any, fragments: list[str]) -> None:
    assert_refusal(client.post("/predict/batch", json=payload), 422, fragments)


def test_batch_with_non_finite_value(client: httpx.Client) -> None:
    body = '{"instances":[[5.1,3.5,1.4,0.2],[5.1,3.5,1.4,NaN]]}'
    response = client.post("/predict/batch", content=body.encode())
    assert_client_error(response, 422, "instances[1][3] must be a finite number, got NaN")


def test_get_on_predict_is_not_allowed(client: httpx.Client) -> None:
    assert client.get("/predict").status_code == 405
    assert client.get("/predict/batch").status_code == 405


# --- Health, readiness and the model's metadata -------------------------------------------


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready(client: httpx.Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["model_version"] == "1"
    assert body["reason"] is None


def test_model_metadata(client: httpx.Client, champion: Champion) -> None:
    _, metadata, files = read_current(champion.model_dir)
    response = client.get("/model")
    assert response.status_code == 200
    info = response.json()
    assert info["version"] == "1"
    assert info["backend"] == "forest"
    assert info["last_error"] is None
    assert info["reloads"] >= 1
    assert str(champion.model_dir.resolve()) in info["source"]
    served = info["metadata"]
    assert served["version"] == "1"
    assert served["registered_model"] == "iris-classifier"
    assert served["class_names"] == CLASS_NAMES
    assert served["feature_names"] == metadata.feature_names
    assert len(served["feature_names"]) == 4
    assert 0.8 <= served["metrics"]["test_accuracy"] <= 1.0
    assert served["sha256"] == sha256_of(files.onnx)
    assert files.forest is not None
    assert served["forest_sha256"] == sha256_of(files.forest)
    assert re.fullmatch(r"[0-9a-f]{64}", served["sha256"])
    assert served["run_id"] == metadata.run_id
    assert served["run_id"]


# --- Documentation, offline ------------------------------------------------------------------


def test_docs_work_without_internet(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://", html), "the docs page must not load anything remote"
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any(a.endswith(".js") for a in assets), assets
    assert any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert fetched.content, asset


def test_openapi_documents_predict(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    post = spec["paths"]["/predict"]["post"]
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["required"] == ["features"]
    assert body_schema["properties"]["features"]["minItems"] == 4
    assert body_schema["properties"]["features"]["maxItems"] == 4
    assert {"features": SEED_ROW} in body_schema["examples"]
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Prediction"}
    for status in ("400", "422", "503"):
        assert status in post["responses"]
    prediction = spec["components"]["schemas"]["Prediction"]
    assert set(prediction["required"]) == {
        "prediction",
        "class_id",
        "probabilities",
        "model_version",
    }
    batch = spec["paths"]["/predict/batch"]["post"]
    assert "413" in batch["responses"]
    (form,) = (p for p in batch["parameters"] if p["name"] == "format")
    assert form["schema"]["enum"] == ["rows", "columnar"]
    answers = batch["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert {a["$ref"].rsplit("/", 1)[1] for a in answers} == {
        "BatchPrediction",
        "ColumnarBatchPrediction",
    }
    assert (
        "instances" in batch["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
