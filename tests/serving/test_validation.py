"""The validation tables, in process: the same bodies and answers as over HTTP, in seconds.

The app runs in this process (Starlette's TestClient) on a small forest trained and
published here, no tracking server needed, so a change to validation is checked at
once; tests/serving/test_predict.py sends the same tables to a real `irisops serve`.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from irisops import bundle
from irisops.config import Settings
from irisops.serving.app import create_app
from irisops.training import data, export, fit
from irisops.training.pipeline import bundle_metadata, training_reference
from tests.processes import SEED_BODY
from tests.serving.bad_input import BAD_BATCH_BODIES, BAD_PREDICT_BODIES, assert_refusal


def publish_small_forest(model_dir: Path) -> None:
    dataset = data.load()
    split = data.split(dataset, 0.2, 0)
    model = fit.fit(split, fit.TrainParams(n_estimators=10))
    files = export.export_files(model, len(dataset.feature_names))
    reference = training_reference(dataset, split)
    metadata = bundle_metadata(
        model, files, dataset, {}, "in-process", Settings(), reference
    ).model_copy(update={"version": "1"})
    bundle.activate(model_dir, bundle.stage(model_dir, files, metadata))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("in-process")
    publish_small_forest(home / "model_data")
    with TestClient(create_app(Settings(home=home, inference_log=False))) as app:
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
