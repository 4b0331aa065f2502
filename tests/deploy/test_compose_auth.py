"""Option `auth`: MLflow's basic-auth app; the trainer and a registry-mode API log in."""

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.conftest import started
from tests.deploy.engine import Deployment
from tests.deploy.registry import MODEL, get, registry, served_version

pytestmark = pytest.mark.timeout(900)
PASSWORD = secrets.token_hex(16)
ADMIN = ("admin", PASSWORD)


@pytest.fixture(scope="module")
def deployment(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with started(
        tmp_path_factory,
        "auth",
        options=("auth",),
        MLFLOW_ADMIN_PASSWORD=PASSWORD,
        IRISOPS_MODEL_URI=f"models:/{MODEL}@champion",
    ) as deployment:
        yield deployment


def test_mlflow_refuses_anonymous_and_wrong_credentials(deployment: Deployment) -> None:
    search = f"{deployment.mlflow}/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(search, timeout=10).status_code == 401
    assert httpx.get(search, auth=("admin", "wrong"), timeout=10).status_code == 401
    assert httpx.get(search, auth=ADMIN, timeout=10).status_code == 200


def test_the_trainer_logged_in_and_registered_a_champion(deployment: Deployment) -> None:
    assert registry(deployment.mlflow, ADMIN)["aliases"]["champion"] == "1"


def test_the_registry_mode_api_serves_the_champion_with_the_credentials(
    deployment: Deployment,
) -> None:
    assert get(f"{deployment.api}/model")["source"].startswith(f"registry models:/{MODEL}")
    assert served_version(deployment.api) == "1"
