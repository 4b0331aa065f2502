"""The tracking server with MLflow's basic-auth app: no default password, clients log in."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import Service, environment, free_port, irisops, running

PASSWORD = "s3cret-for-tests-only"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="module")
def server_env(home: Path) -> dict[str, str]:
    port = free_port()
    return environment(
        home,
        IRISOPS_TRACKING_PORT=str(port),
        IRISOPS_TRACKING_AUTH="true",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}",
    )


@pytest.fixture(scope="module")
def server(server_env: dict[str, str], home: Path) -> Iterator[Service]:
    env = {**server_env, "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD}
    url = server_env["MLFLOW_TRACKING_URI"]
    with running("tracking", env=env, url=url, log=home / "mlflow.log") as service:
        yield service


def client_env(server_env: dict[str, str], **credentials: str) -> dict[str, str]:
    env = {k: v for k, v in server_env.items() if k != "IRISOPS_TRACKING_AUTH"}
    return {**env, **credentials}


def test_there_is_no_default_admin_password(tmp_path: Path) -> None:
    env = environment(
        tmp_path, IRISOPS_TRACKING_AUTH="true", IRISOPS_TRACKING_PORT=str(free_port())
    )
    result = irisops("tracking", env=env, timeout=60)
    assert result.returncode == 1
    assert "MLFLOW_AUTH_ADMIN_PASSWORD is not set" in result.stderr


def test_the_api_and_ui_need_credentials(server: Service) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200, "probes stay open"
    assert (
        httpx.get(f"{server.url}/api/2.0/mlflow/experiments/search?max_results=1").status_code
        == 401
    )
    logged_in = httpx.get(
        f"{server.url}/api/2.0/mlflow/experiments/search?max_results=1", auth=("admin", PASSWORD)
    )
    assert logged_in.status_code == 200


def test_a_trainer_without_credentials_is_told_what_to_set(
    server: Service, server_env: dict[str, str]
) -> None:
    result = irisops("train", env=client_env(server_env))
    assert result.returncode == 1
    assert "MLFLOW_TRACKING_USERNAME" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_trainer_with_credentials_trains_and_publishes(
    server: Service, server_env: dict[str, str], home: Path
) -> None:
    env = client_env(
        server_env, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=PASSWORD
    )
    result = irisops("train", "--n-estimators", "20", env=env)
    assert result.returncode == 0, result.stderr
    assert (home / "model_data" / "current" / "model.onnx").is_file()
    assert (home / "mlflow_data" / "basic_auth.db").is_file(), "users persist in mlflow_data"
