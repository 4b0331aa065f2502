"""The Open Inference Protocol (KServe V2) as its clients see it, against a real `irisops serve`.

First through `tritonclient.http`, a client nobody here wrote, used as its own
documentation shows (binary tensors by default): if it works unchanged, KServe and
Triton users can point their code at irisops. Then over raw HTTP, for the JSON shapes
and for every refusal, which the protocol wants as `{"error": "..."}`.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import tritonclient.http as triton  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import Service, free_port, running

MODEL = "iris-classifier"
CLASS_NAMES = ["setosa", "versicolor", "virginica"]
SEED_ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA_ROW = [6.7, 3.0, 5.2, 2.3]
INFER = f"/v2/models/{MODEL}/infer"
API_KEY = "v2-test-key"


@pytest.fixture(scope="module")
def triton_client(api: Service) -> Iterator[Any]:
    client = triton.InferenceServerClient(url=api.url.removeprefix("http://"))
    yield client
    client.close()


def rows(count: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Flowers in the Iris feature box, measured to 0.1 cm."""
    generator = np.random.default_rng(seed)
    low, high = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    return np.round(generator.uniform(low, high, (count, 4)), 1).astype(np.float32)


def tensor(data: Any, shape: list[int], datatype: str = "FP32", **extra: Any) -> dict[str, Any]:
    return {"name": "input", "shape": shape, "datatype": datatype, "data": data, **extra}


SEED_REQUEST = {"inputs": [tensor(SEED_ROW, [1, 4])]}


def batch_answers(client: httpx.Client, features: npt.NDArray[np.float32]) -> list[Any]:
    response = client.post("/predict/batch", json={"instances": features.tolist()})
    assert response.status_code == 200, response.text
    predictions: list[Any] = response.json()["predictions"]
    return predictions


# --- tritonclient ----------------------------------------------------------------------------


class TestTritonClient:
    def test_server_is_live_and_ready(self, triton_client: Any) -> None:
        assert triton_client.is_server_live()
        assert triton_client.is_server_ready()

    def test_server_metadata(self, triton_client: Any) -> None:
        metadata = triton_client.get_server_metadata()
        assert metadata["name"] == "irisops"
        assert metadata["version"]
        assert metadata["extensions"] == ["binary_tensor_data"]

    def test_model_is_ready_by_name_and_by_version(self, triton_client: Any) -> None:
        assert triton_client.is_model_ready(MODEL)
        assert triton_client.is_model_ready(MODEL, "1")
        assert not triton_client.is_model_ready(MODEL, "2")
        assert not triton_client.is_model_ready("another-model")

    def test_model_metadata(self, triton_client: Any) -> None:
        metadata = triton_client.get_model_metadata(MODEL)
        assert metadata == triton_client.get_model_metadata(MODEL, "1")
        assert metadata["name"] == MODEL
        assert metadata["versions"] == ["1"]
        assert metadata["platform"] == "onnxruntime_onnx"
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert metadata["outputs"] == [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ]
        assert metadata["parameters"]["class_names"] == CLASS_NAMES

    def test_infer_as_documented_binary_by_default(
        self, triton_client: Any, client: httpx.Client
    ) -> None:
        features = rows(150)
        request = triton.InferInput("input", list(features.shape), "FP32")
        request.set_data_from_numpy(features)
        result = triton_client.infer(MODEL, [request])

        labels = result.as_numpy("label")
        probabilities = result.as_numpy("probabilities")
        assert labels.shape == (150,)
        assert probabilities.shape == (150, 3)
        assert probabilities.dtype == np.float32
        response = result.get_response()
        assert response["model_name"] == MODEL
        assert response["model_version"] == "1"
        # The same answers as /predict/batch, to the last bit of float32.
        expected = batch_answers(client, features)
        assert [label.decode() for label in labels] == [e["prediction"] for e in expected]
        assert probabilities.tolist() == [
            [np.float32(e["probabilities"][name]) for name in CLASS_NAMES] for e in expected
        ]

    def test_infer_json_with_requested_outputs_and_an_id(self, triton_client: Any) -> None:
        features = np.array([SEED_ROW, VIRGINICA_ROW], dtype=np.float32)
        request = triton.InferInput("input", [2, 4], "FP32")
        request.set_data_from_numpy(features, binary_data=False)
        wanted = [triton.InferRequestedOutput("label", binary_data=False)]
        result = triton_client.infer(MODEL, [request], outputs=wanted, request_id="req-7")
        response = result.get_response()
        assert response["id"] == "req-7"
        assert [output["name"] for output in response["outputs"]] == ["label"]
        assert result.as_numpy("label").tolist() == ["setosa", "virginica"]
        assert result.as_numpy("probabilities") is None

    def test_infer_fp64_by_version(self, triton_client: Any) -> None:
        request = triton.InferInput("input", [1, 4], "FP64")
        request.set_data_from_numpy(np.array([VIRGINICA_ROW], dtype=np.float64))
        result = triton_client.infer(MODEL, [request], model_version="1")
        assert result.as_numpy("label").tolist() == [b"virginica"]

    def test_refusals_reach_the_client_with_status_and_message(self, triton_client: Any) -> None:
        request = triton.InferInput("input", [1, 4], "FP32")
        request.set_data_from_numpy(np.array([SEED_ROW], dtype=np.float32))
        with pytest.raises(InferenceServerException) as refused:
            triton_client.infer(MODEL, [request], model_version="7")
        assert refused.value.status() == "404"
        assert "version '7' is not served" in refused.value.message()
        wrong = triton.InferInput("features", [1, 4], "FP32")
        wrong.set_data_from_numpy(np.array([SEED_ROW], dtype=np.float32))
        with pytest.raises(InferenceServerException) as refused:
            triton_client.infer(MODEL, [wrong])
        assert refused.value.status() == "400"
        assert "unknown input 'features'" in refused.value.message()


# --- The JSON shapes -------------------------------------------------------------------------


def infer(client: httpx.Client, body: dict[str, Any], path: str = INFER) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    return answer


def test_inference_response_shape(client: httpx.Client) -> None:
    body = {"id": "42", "inputs": [tensor(SEED_ROW + VIRGINICA_ROW, [2, 4])]}
    answer = infer(client, body)
    assert list(answer) == ["model_name", "model_version", "id", "outputs"]
    assert answer["model_name"] == MODEL
    assert answer["model_version"] == "1"
    assert answer["id"] == "42"
    label, probabilities = answer["outputs"]
    assert label == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["setosa", "virginica"],
    }
    assert probabilities["name"] == "probabilities"
    assert probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [2, 3]
    assert len(probabilities["data"]) == 6
    assert sum(probabilities["data"][:3]) == pytest.approx(1.0, abs=1e-4)


def test_nested_and_flat_data_are_the_same_tensor(client: httpx.Client) -> None:
    flat = infer(client, {"inputs": [tensor(SEED_ROW + VIRGINICA_ROW, [2, 4])]})
    nested = infer(client, {"inputs": [tensor([SEED_ROW, VIRGINICA_ROW], [2, 4])]})
    fp64 = infer(client, {"inputs": [tensor([SEED_ROW, VIRGINICA_ROW], [2, 4], "FP64")]})
    assert flat == nested == fp64
    assert "id" not in flat, "no id asked, none given"


def test_parameters_are_tolerated(client: httpx.Client) -> None:
    body = {
        "parameters": {"priority": 1, "custom": {"any": ["json"]}},
        "inputs": [tensor(SEED_ROW, [1, 4], parameters={"content_type": "np"})],
        "outputs": [{"name": "label", "parameters": {"anything": True}}],
    }
    assert infer(client, body)["outputs"][0]["data"] == ["setosa"]


def test_requested_outputs_in_the_order_asked(client: httpx.Client) -> None:
    outputs = [{"name": "probabilities"}, {"name": "label"}]
    answer = infer(client, {"inputs": [tensor(SEED_ROW, [1, 4])], "outputs": outputs})
    assert [output["name"] for output in answer["outputs"]] == ["probabilities", "label"]


def test_version_path_and_integer_values(client: httpx.Client) -> None:
    answer = infer(
        client, {"inputs": [tensor([5, 3, 1, 0], [1, 4])]}, f"/v2/models/{MODEL}/versions/1/infer"
    )
    assert answer["model_version"] == "1"


def test_no_content_type_as_curl_sends_it(client: httpx.Client) -> None:
    body = b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
    request = client.build_request("POST", INFER, content=body)
    assert "content-type" not in request.headers
    assert client.send(request).json()["outputs"][0]["data"] == ["setosa"]


def test_zero_rows_is_an_empty_answer(client: httpx.Client) -> None:
    label, probabilities = infer(client, {"inputs": [tensor([], [0, 4])]})["outputs"]
    assert (label["shape"], label["data"]) == ([0], [])
    assert (probabilities["shape"], probabilities["data"]) == ([0, 3], [])


def test_binary_output_when_asked_in_json(client: httpx.Client) -> None:
    body = {
        "inputs": [tensor(SEED_ROW, [1, 4])],
        "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
    }
    response = client.post(INFER, json=body)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    header = httpx.Response(200, content=response.content[:length]).json()
    assert header["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 10}}
    ]
    assert response.content[length:] == (6).to_bytes(4, "little") + b"setosa"


# --- Refusals --------------------------------------------------------------------------------


def assert_protocol_error(response: httpx.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"], body
    for fragment in fragments:
        assert fragment in body["error"], f"{fragment!r} not in {body['error']!r}"
    error: str = body["error"]
    return error


def input_with(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**tensor(SEED_ROW, [1, 4]), **changes}]}


BAD_REQUESTS = [
    pytest.param({}, ["inputs is required"], id="no-inputs"),
    pytest.param({"inputs": []}, ["inputs", "at least 1"], id="empty-inputs"),
    pytest.param(
        {"inputs": [tensor(SEED_ROW, [1, 4]), tensor(SEED_ROW, [1, 4])]},
        ["one input", "has 2"],
        id="two-inputs",
    ),
    pytest.param(input_with(name="x"), ["unknown input 'x'", "'input'"], id="unknown-input"),
    pytest.param(input_with(shape=[1, 3]), ["shape [1, 3]", "[n, 4]"], id="three-features"),
    pytest.param(input_with(shape=[4]), ["shape [4]", "[n, 4]"], id="rank-one"),
    pytest.param(input_with(shape=[2, 4]), ["has 4 values", "needs 8"], id="short-flat-data"),
    pytest.param(
        input_with(shape=[2, 4], data=[SEED_ROW]), ["1 rows of data", "says 2"], id="short-rows"
    ),
    pytest.param(
        input_with(shape=[2, 4], data=[SEED_ROW, [1.0, 2.0, 3.0]]),
        ["data[1] has 3 values"],
        id="short-row",
    ),
    pytest.param(input_with(datatype="INT64"), ["datatype", "'FP32' or 'FP64'"], id="int64"),
    pytest.param(input_with(datatype="BYTES"), ["datatype", "'FP32' or 'FP64'"], id="bytes"),
    pytest.param(input_with(data=[5.1, 3.5, "1.4", 0.2]), ["data[2]", "number"], id="string"),
    pytest.param(input_with(data=[5.1, True, 1.4, 0.2]), ["data[1]", "number"], id="boolean"),
    pytest.param(input_with(data=[5.1, None, 1.4, 0.2]), ["data[1]", "number"], id="null"),
    pytest.param(
        input_with(data=[[5.1, 3.5, 1.4, "x"]]), ["data[0][3]", "number"], id="nested-string"
    ),
    pytest.param(
        input_with(datatype="FP64", data=[5.1, 3.5, 1e300, 0.2]),
        ["row 0, feature 2", "not a finite FP32 number"],
        id="beyond-fp32",
    ),
    pytest.param(input_with(shape=[-1, 4]), ["shape[0] must be 0 or more, got -1"], id="-1"),
    pytest.param(
        input_with(shape=[1.5, 4]), ["shape[0] must be a whole number, got 1.5"], id="float-shape"
    ),
    pytest.param(input_with(data=None), ["no data"], id="no-data"),
    pytest.param(
        input_with(data="5.1,3.5,1.4,0.2"), ["data must be a list, got the string"], id="csv-data"
    ),
    pytest.param(
        {**input_with(), "outputs": [{"name": "scores"}]},
        ["unknown output 'scores'", "label", "probabilities"],
        id="unknown-output",
    ),
    pytest.param(
        {**input_with(), "parameters": {"binary_data_output": "yes"}},
        ["binary_data_output", "true or false"],
        id="non-boolean-flag",
    ),
    pytest.param({**input_with(), "id": 42}, ["id must be a string, got 42"], id="numeric-id"),
]


@pytest.mark.parametrize(("body", "fragments"), BAD_REQUESTS)
def test_bad_requests_are_400_naming_the_problem(
    client: httpx.Client, body: dict[str, Any], fragments: list[str]
) -> None:
    assert_protocol_error(client.post(INFER, json=body), 400, *fragments)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param(b'{"inputs":[', ["malformed JSON"], id="truncated"),
        pytest.param(
            b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,NaN,1,1]}]}',
            ["data[1]", "finite"],
            id="nan",
        ),
    ],
)
def test_malformed_json_is_400(client: httpx.Client, body: bytes, fragments: list[str]) -> None:
    assert_protocol_error(client.post(INFER, content=body), 400, *fragments)


def binary_request(declared: int, payload: bytes, header_length: int | None = None) -> Any:
    header = (
        b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":' + str(declared).encode() + b"}}]}"
    )
    length = len(header) if header_length is None else header_length
    return header + payload, {"Inference-Header-Content-Length": str(length)}


@pytest.mark.parametrize(
    ("declared", "payload", "header_length", "fragments"),
    [
        pytest.param(16, b"\0" * 12, None, ["needs 16 bytes", "the body has 12"], id="short"),
        pytest.param(12, b"\0" * 12, None, ["needs 16 bytes", "declares 12"], id="wrong-size"),
        pytest.param(16, b"\0" * 16, 10_000, ["Inference-Header-Content-Length"], id="header"),
    ],
)
def test_bad_binary_tensors_are_400(
    client: httpx.Client,
    declared: int,
    payload: bytes,
    header_length: int | None,
    fragments: list[str],
) -> None:
    content, headers = binary_request(declared, payload, header_length)
    assert_protocol_error(client.post(INFER, content=content, headers=headers), 400, *fragments)


def test_non_finite_binary_values_are_400(client: httpx.Client) -> None:
    values = np.array([[5.1, np.nan, 1.4, 0.2]], dtype="<f4").tobytes()
    content, headers = binary_request(16, values)
    response = client.post(INFER, content=content, headers=headers)
    assert_protocol_error(response, 400, "row 0, feature 1", "not a finite FP32 number")


def test_binary_data_after_a_json_only_request_is_400(client: httpx.Client) -> None:
    header = (
        b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
    )
    headers = {"Inference-Header-Content-Length": str(len(header))}
    response = client.post(INFER, content=header + b"\0" * 16, headers=headers)
    assert_protocol_error(response, 400, "16 bytes of binary data", "no input has any")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/another-model/infer",
        "/v2/models/another-model",
        "/v2/models/another-model/ready",
    ],
)
def test_unknown_model_is_404(client: httpx.Client, path: str) -> None:
    method = "POST" if path.endswith("/infer") else "GET"
    response = client.request(method, path, json=SEED_REQUEST)
    assert_protocol_error(response, 404, "unknown model 'another-model'", f"serves '{MODEL}'")


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/models/{MODEL}/versions/2/infer",
        f"/v2/models/{MODEL}/versions/2",
        f"/v2/models/{MODEL}/versions/2/ready",
    ],
)
def test_another_version_is_404_naming_the_served_one(client: httpx.Client, path: str) -> None:
    method = "POST" if path.endswith("/infer") else "GET"
    response = client.request(method, path, json=SEED_REQUEST)
    assert_protocol_error(response, 404, "version '2' is not served", "served version is 1")


def test_too_many_rows_is_413(client: httpx.Client) -> None:
    response = client.post(INFER, json={"inputs": [tensor([], [10_001, 4])]})
    assert_protocol_error(response, 413, "10001 rows", "IRISOPS_MAX_BATCH_ROWS")


def test_oversized_body_is_413(client: httpx.Client) -> None:
    response = client.post(INFER, content=b" " * (8 * 1024 * 1024 + 1))
    assert_protocol_error(response, 413, "IRISOPS_MAX_BODY_BYTES")


def test_get_on_infer_is_not_allowed(client: httpx.Client) -> None:
    assert client.get(INFER).status_code == 405


# --- No model yet ------------------------------------------------------------------------------


def test_without_a_model_ready_is_false_and_inference_is_503(
    api_factory: ApiFactory, tracking: Tracking, tmp_path_factory: pytest.TempPathFactory
) -> None:
    empty = tmp_path_factory.mktemp("no-model")
    service = api_factory.start(tracking.env(empty))
    with httpx.Client(base_url=service.url, timeout=10) as http:
        assert http.get("/v2/health/live").json() == {"live": True}
        ready = http.get("/v2/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"ready": False})
        model_ready = http.get(f"/v2/models/{MODEL}/ready")
        assert (model_ready.status_code, model_ready.json()) == (
            503,
            {"name": MODEL, "ready": False},
        )
        refused = http.post(INFER, json=SEED_REQUEST)
        assert_protocol_error(refused, 503, "no model published yet")
        assert_protocol_error(http.get(f"/v2/models/{MODEL}"), 503, "no model published yet")
    client = triton.InferenceServerClient(url=service.url.removeprefix("http://"))
    assert client.is_server_live()
    assert not client.is_server_ready()
    assert not client.is_model_ready(MODEL)
    client.close()


# --- The API key -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_api(
    tracking: Tracking, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    port = free_port()
    env = tracking.env(champion.model_dir, IRISOPS_API_PORT=str(port), IRISOPS_API_KEY=API_KEY)
    log = tmp_path_factory.mktemp("v2-keyed-api") / "api.log"
    url = f"http://127.0.0.1:{port}"
    with running("serve", env=env, url=url, log=log, ready_path="/ready") as service:
        yield service


class TestApiKey:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", INFER),
            ("POST", f"/v2/models/{MODEL}/versions/1/infer"),
            ("GET", f"/v2/models/{MODEL}"),
        ],
    )
    def test_inference_and_metadata_need_the_key(
        self, keyed_api: Service, method: str, path: str
    ) -> None:
        url = keyed_api.url + path
        missing = httpx.request(method, url, json=SEED_REQUEST)
        assert_protocol_error(missing, 401, "API key is required")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.request(method, url, json=SEED_REQUEST, headers={"X-API-Key": "guess"})
        assert_protocol_error(wrong, 401, "invalid API key")
        for header in ({"X-API-Key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}):
            assert httpx.request(method, url, json=SEED_REQUEST, headers=header).status_code == 200

    @pytest.mark.parametrize(
        "path", ["/v2", "/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready"]
    )
    def test_health_and_server_metadata_stay_open(self, keyed_api: Service, path: str) -> None:
        assert httpx.get(keyed_api.url + path).status_code == 200

    def test_tritonclient_sends_the_key_as_a_header(self, keyed_api: Service) -> None:
        client = triton.InferenceServerClient(url=keyed_api.url.removeprefix("http://"))
        request = triton.InferInput("input", [1, 4], "FP32")
        request.set_data_from_numpy(np.array([SEED_ROW], dtype=np.float32))
        with pytest.raises(InferenceServerException):
            client.infer(MODEL, [request])
        result = client.infer(MODEL, [request], headers={"Authorization": f"Bearer {API_KEY}"})
        assert result.as_numpy("label").tolist() == [b"setosa"]
        client.close()

    def test_openapi_marks_what_needs_the_key(self, keyed_api: Service) -> None:
        paths = httpx.get(keyed_api.url + "/openapi.json").json()["paths"]
        assert "security" in paths[INFER.replace(MODEL, "{name}")]["post"]
        assert "security" in paths["/v2/models/{name}"]["get"]
        assert "security" not in paths["/v2/health/ready"]["get"]
        assert "security" not in paths["/v2/models/{name}/ready"]["get"]


# --- Documentation ---------------------------------------------------------------------------


def test_openapi_documents_the_protocol(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    infer_operation = paths["/v2/models/{name}/infer"]["post"]
    body = infer_operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["inputs"]
    assert "$ref" not in str(body), "the body schema stands on its own"
    for status in ("400", "401", "404", "413", "503"):
        schema = infer_operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ProtocolError"}, status
    assert set(infer_operation["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    assert {
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    } <= set(paths)
