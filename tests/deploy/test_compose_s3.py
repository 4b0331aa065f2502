"""Profile `s3`: artifacts in an S3 bucket, with MinIO played by moto's S3 server.

MinIO's images cannot be pulled here and it has no Debian package, so minio-standin/
replaces the `minio` and `minio-init` images (and nothing else of compose.yaml). Proven:
the wiring of the profile (endpoint, bucket job, credentials, proxied artifacts, registry
mode) on the real engine. Not proven: MinIO itself, which checks credentials; moto does not.
"""

import json
import secrets
import shutil
from collections.abc import Iterator

import pytest

from tests.deploy.conftest import PORTS, started
from tests.deploy.engine import Deployment
from tests.deploy.registry import MODEL, get

pytestmark = pytest.mark.timeout(900)
STANDIN = "tests/deploy/minio-standin"
KEYS = """
import json, os, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                  aws_access_key_id=os.environ["MINIO_ROOT_USER"],
                  aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"])
listing = s3.list_objects_v2(Bucket="mlflow-artifacts")
print(json.dumps([item["Key"] for item in listing.get("Contents", [])]))
"""
FILES = "import os; print(sum(len(files) for *_, files in os.walk('/data/mlflow_artifacts')))"


@pytest.fixture(scope="module")
def deployment(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with started(
        tmp_path_factory,
        "s3",
        (*PORTS, "MINIO_CONSOLE_PORT"),
        profiles=("s3",),
        overrides=(f"{STANDIN}/compose.yaml",),
        MINIO_ROOT_PASSWORD=secrets.token_hex(16),
        IRISOPS_MODEL_URI=f"models:/{MODEL}@champion",
        before_up=lambda d: shutil.copy(d.directory / "constraints.txt", d.directory / STANDIN),
    ) as deployment:
        yield deployment


def test_artifacts_land_in_the_bucket_not_in_the_volume(deployment: Deployment) -> None:
    keys = json.loads(deployment.python("minio", KEYS))
    assert any(key.endswith("/model.onnx") for key in keys), keys
    assert deployment.python("mlflow", FILES).strip() == "0"


def test_the_bucket_job_runs_again_on_up_and_keeps_the_bucket(deployment: Deployment) -> None:
    last_run = deployment.inspect("minio-init")["State"]["StartedAt"]
    deployment.compose("up", "-d", "mlflow")
    assert deployment.wait_exited("minio-init", not_started_at=last_run) == 0
    logs = deployment.logs("minio-init")
    assert "created successfully" in logs and "already exists" in logs, logs


def test_only_the_tracking_server_holds_storage_credentials(deployment: Deployment) -> None:
    def variables(service: str) -> set[str]:
        return {e.split("=", 1)[0] for e in deployment.inspect(service)["Config"]["Env"]}

    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= variables("mlflow")
    for service in ("trainer", "api"):
        assert not {v for v in variables(service) if v.startswith("AWS_")}, service


def test_the_api_serves_the_champion_from_the_registry(deployment: Deployment) -> None:
    info = get(f"{deployment.api}/model")
    assert info["source"].startswith(f"registry models:/{MODEL}@champion")
    assert info["version"] == "1"
