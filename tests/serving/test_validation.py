"""The validation tables, in process: the same bodies and answers as over HTTP, in seconds.

The app runs in this process (Starlette's TestClient) on a small forest trained and
published here, no tracking server needed, so a change to validation is checked at
once; tests/serving/test_predict.py sends the same tables to a real `irisops serve`.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.processes import SEED_BODY
from tests.serving.bad_input import BAD_BATCH_BODIES, BAD_PREDICT_BODIES, assert_refusal
from tests.serving.publishing import in_process_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with in_process_app(tmp_path_factory.mktemp("in-process")) as app:
        yield app


def test_the_documented_request_is_answered(client: TestClient) -> None:
    answer = client.post("/predict", content=SEED_BODY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction"] == "setosa"


@pytest.mark.parametrize(("body", "status", "fragments"), BAD_PREDICT_BODIES)
def test_bad_predict_input(
    client: TestClient, body: str, status: int, fragments: list[str]
) -> None:
    assert_refusal(client.post("/predict", content=body.encode()), status, fragments)


@pytest.mark.parametrize(("payload", "fragments"), BAD_BATCH_BODIES)
def test_bad_batch_input(client: TestClient, payload: Any, fragments: list[str]) -> None:
    assert_refusal(client.post("/predict/batch", json=payload), 422, fragments)
