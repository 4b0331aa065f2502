"""Registry mode and the `monitoring` profile, in one deployment on a real engine.

With IRISOPS_MODEL_URI=models:/iris-classifier@champion the API follows the alias in the
registry instead of model_data; Prometheus (profile monitoring) scrapes its /metrics.
"""

from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.conftest import PORTS, started
from tests.deploy.engine import Deployment
from tests.deploy.registry import MODEL, get, registry, served_version
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(900)
CHAMPION_URI = f"models:/{MODEL}@champion"
POINTER = "import pathlib; print(pathlib.Path('/data/model_data/current').readlink())"


@pytest.fixture(scope="module")
def deployment(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with started(
        tmp_path_factory,
        "registry",
        (*PORTS, "PROMETHEUS_PORT"),
        profiles=("monitoring",),
        IRISOPS_MODEL_URI=CHAMPION_URI,
    ) as deployment:
        yield deployment


def prometheus(deployment: Deployment) -> str:
    return f"http://127.0.0.1:{deployment.ports['PROMETHEUS_PORT']}"


def test_the_api_serves_the_champion_from_the_registry(deployment: Deployment) -> None:
    info = get(f"{deployment.api}/model")
    assert info["source"].startswith(f"registry {CHAMPION_URI}")


def test_the_api_follows_an_alias_move_that_leaves_model_data_alone(
    deployment: Deployment,
) -> None:
    deployment.compose("run", "--rm", "trainer", "train", "--no-promote")
    latest = registry(deployment.mlflow)["versions"][-1]
    published = deployment.python("api", POINTER)
    assert served_version(deployment.api) != latest

    moved = httpx.post(
        f"{deployment.mlflow}/api/2.0/mlflow/registered-models/alias",
        json={"name": MODEL, "alias": "champion", "version": latest},
        timeout=30,
    )
    assert moved.status_code == 200, moved.text
    wait_for(lambda: served_version(deployment.api) == latest, timeout=30, interval=0.5)
    assert deployment.python("api", POINTER) == published, "the registry alone moved"


def test_prometheus_is_healthy_and_scrapes_the_api(deployment: Deployment) -> None:
    deployment.wait_healthy("prometheus", timeout=120)

    def api_target_up() -> bool:
        targets = get(f"{prometheus(deployment)}/api/v1/targets")["data"]["activeTargets"]
        api = [t for t in targets if t["labels"]["job"] == "irisops-api"]
        return len(api) == 1 and api[0]["health"] == "up"

    wait_for(api_target_up, timeout=60, interval=1)
    query = get(f"{prometheus(deployment)}/api/v1/query", query="irisops_model_loaded")
    (sample,) = query["data"]["result"]
    assert sample["metric"]["instance"] == "api:8000"
