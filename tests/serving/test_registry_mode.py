"""Registry mode: the API serves `IRISOPS_MODEL_URI` straight from the MLflow registry.

This is the only module that moves the registry's `champion` alias (by training with
--force-promote and by `irisops promote`). Expected versions are read from the registry
when a test runs, never assumed, and the champion is put back where it was at the end,
so other modules may keep assuming the session champion is version 1.
Every command that publishes does so into a model directory of its own: the session
champion's directory is never written to.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from irisops.bundle import current_target
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, Service, irisops, serving_version, wait_for

MODEL = "iris-classifier"
SWITCH_TIMEOUT = 60.0


def alias_version(tracking: Tracking, alias: str = "champion") -> str | None:
    """The version an alias points at, asked of the tracking server's REST API."""
    response = httpx.get(
        f"{tracking.uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": alias},
        timeout=30,
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    version: str = response.json()["model_version"]["version"]
    return version


def ready(service: Service) -> tuple[int, dict[str, Any]]:
    response = httpx.get(service.url + "/ready", timeout=10)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def predicted_version(service: Service) -> str:
    response = httpx.post(service.url + "/predict", content=SEED_BODY, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == "setosa"
    version: str = response.json()["model_version"]
    return version


def promote(tracking: Tracking, version: str, model_dir: Path) -> None:
    result = irisops("promote", version, env=tracking.env(model_dir))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module", autouse=True)
def restore_champion(
    tracking: Tracking, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Whatever happens in this module, the champion alias ends where it started."""
    original = alias_version(tracking)
    assert original is not None
    shared_pointer = current_target(champion.model_dir)
    yield original
    if alias_version(tracking) != original:
        promote(tracking, original, tmp_path_factory.mktemp("restore_model_data"))
    assert alias_version(tracking) == original
    assert current_target(champion.model_dir) == shared_pointer, "shared champion dir untouched"


def registry_env(tracking: Tracking, tmp_path: Path, model_uri: str) -> dict[str, str]:
    # IRISOPS_MODEL_DIR points at an empty directory: registry mode must not need it.
    return tracking.env(tmp_path / "unused_model_data", IRISOPS_MODEL_URI=model_uri)


def test_follows_the_champion_alias_and_rolls_back(
    api_factory: ApiFactory, tracking: Tracking, restore_champion: str, tmp_path: Path
) -> None:
    original = restore_champion
    service = api_factory.start(
        registry_env(tracking, tmp_path, f"models:/{MODEL}@champion"), ready_path="/ready"
    )
    assert ready(service) == (200, {"status": "ready", "model_version": original, "reason": None})
    assert predicted_version(service) == original
    info = httpx.get(service.url + "/model", timeout=10).json()
    assert info["source"] == f"registry models:/{MODEL}@champion at {tracking.uri}"
    assert info["metadata"]["version"] == original

    # A new version is trained and made champion; the API follows by itself.
    trained = irisops(
        "train", "--force-promote", "--n-estimators", "20", env=tracking.env(tmp_path / "trained")
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    new = alias_version(tracking)
    assert new is not None
    assert new != original
    wait_for(serving_version(service, new), timeout=SWITCH_TIMEOUT, interval=0.5)
    assert predicted_version(service) == new
    info = httpx.get(service.url + "/model", timeout=10).json()
    assert info["version"] == new
    assert info["last_error"] is None

    # Rolling back with `irisops promote` moves the alias back; so does the API.
    promote(tracking, original, tmp_path / "rolled_back")
    assert alias_version(tracking) == original
    wait_for(serving_version(service, original), timeout=SWITCH_TIMEOUT, interval=0.5)
    assert predicted_version(service) == original
    assert service.process.poll() is None, "followed the alias without a restart"
    assert "Traceback" not in service.output()


def test_fixed_version(api_factory: ApiFactory, tracking: Tracking, tmp_path: Path) -> None:
    service = api_factory.start(
        registry_env(tracking, tmp_path, f"models:/{MODEL}/1"), ready_path="/ready"
    )
    status, body = ready(service)
    assert status == 200
    assert body["model_version"] == "1"
    assert predicted_version(service) == "1"
    info = httpx.get(service.url + "/model", timeout=10).json()
    assert info["source"].startswith(f"registry models:/{MODEL}/1 ")
    assert info["metadata"]["version"] == "1"
    assert info["metadata"]["class_names"] == ["setosa", "versicolor", "virginica"]


def test_unknown_alias_is_not_ready(
    api_factory: ApiFactory, tracking: Tracking, tmp_path: Path
) -> None:
    service = api_factory.start(registry_env(tracking, tmp_path, f"models:/{MODEL}@nosuch"))
    status, body = ready(service)
    assert status == 503
    assert f"models:/{MODEL}@nosuch" in body["reason"]
    refused = httpx.post(service.url + "/predict", content=SEED_BODY, timeout=10)
    assert refused.status_code == 503
    assert f"models:/{MODEL}@nosuch" in refused.json()["detail"]


def test_unknown_version_is_not_ready_with_the_reason(
    api_factory: ApiFactory, tracking: Tracking, tmp_path: Path
) -> None:
    service = api_factory.start(registry_env(tracking, tmp_path, f"models:/{MODEL}/999"))

    def failed() -> bool:
        status, body = ready(service)
        return status == 503 and "cannot fetch" in (body["reason"] or "")

    wait_for(failed, timeout=SWITCH_TIMEOUT, interval=0.5)
    _, body = ready(service)
    assert f"{MODEL} v999" in body["reason"]
    assert service.process.poll() is None


INVALID_URIS = [
    pytest.param("s3://nope", id="s3"),
    pytest.param("models:/iris-classifier", id="no-alias-or-version"),
    pytest.param("models:/iris-classifier/latest", id="non-numeric-version"),
]


@pytest.mark.parametrize("model_uri", INVALID_URIS)
def test_invalid_model_uri_exits_with_an_error(
    tracking: Tracking, tmp_path: Path, model_uri: str
) -> None:
    result = irisops("serve", env=registry_env(tracking, tmp_path, model_uri), timeout=60)
    assert result.returncode != 0
    error = " ".join(result.stderr.split())
    assert error.startswith("error: IRISOPS_MODEL_URI=")
    assert repr(model_uri) in error
    assert "models:/<name>@<alias>" in error
    assert "Traceback" not in result.stderr


def test_invalid_model_uri_error_is_one_line(tracking: Tracking, tmp_path: Path) -> None:
    env = registry_env(tracking, tmp_path, "s3://nope")
    env.pop("COLUMNS", None)
    result = irisops("serve", env=env, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "IRISOPS_MODEL_URI" in lines[0]
