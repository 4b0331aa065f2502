"""`docker compose up -d` from compose.yaml, each service a local process (no engine here).

Each class is one deployment: the default stack, then the postgres and the s3 profile with
the settings .env.example gives them. Within a class the tests follow one another like
the commands a person types: up, wait for the training job, curl the API, retrain, roll
back, down and up again. runner.py says what is taken from compose.yaml as written and
what is translated for running without containers.
"""

import shutil
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import psutil
import psycopg2  # type: ignore[import-untyped]
import pytest

from tests.deploy.conftest import Deployment
from tests.processes import SEED_BODY, curl, wait_for

MODEL = "iris-classifier"
TRAINING_TIMEOUT = 240.0
SWITCH_TIMEOUT = 60.0


def get(url: str, **params: str) -> Any:
    response = httpx.get(url, params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def registry(mlflow: str) -> dict[str, Any]:
    """Runs, registered versions and aliases, as the tracking server's REST API reports them."""
    api = f"{mlflow}/api/2.0/mlflow"
    experiment = get(f"{api}/experiments/get-by-name", experiment_name="iris")["experiment"]
    runs = httpx.post(
        f"{api}/runs/search",
        json={"experiment_ids": [experiment["experiment_id"]], "max_results": 1000},
        timeout=30,
    ).json()["runs"]
    versions = get(f"{api}/model-versions/search", filter=f"name='{MODEL}'")["model_versions"]
    model = get(f"{api}/registered-models/get", name=MODEL)["registered_model"]
    return {
        "runs": sorted(run["info"]["run_id"] for run in runs),
        "versions": sorted(version["version"] for version in versions),
        "aliases": {alias["alias"]: alias["version"] for alias in model.get("aliases", [])},
    }


def served_version(api: str) -> str | None:
    response = httpx.get(f"{api}/ready", timeout=10)
    return str(response.json()["model_version"]) if response.status_code == 200 else None


def serving(api: str, version: str) -> Callable[[], bool]:
    return lambda: served_version(api) == version


def happened_before(
    events: list[tuple[str, str]], first: tuple[str, str], then: tuple[str, str]
) -> bool:
    return first in events and then in events and events.index(first) < events.index(then)


class Scenario:
    """What `docker compose up -d` and the commands after it must do, whatever the profile."""

    profile: ClassVar[str | None] = None
    # What must have happened before the tracking server starts, in this profile.
    before_mlflow: ClassVar[tuple[tuple[str, str], ...]] = ()

    def test_services_start_in_compose_dependency_order(self, deployment: Deployment) -> None:
        events = deployment.compose.events
        for event in self.before_mlflow:
            assert happened_before(events, event, ("mlflow", "started")), events
        assert happened_before(events, ("mlflow", "healthy"), ("api", "started")), events
        assert happened_before(events, ("api", "started"), ("trainer", "started")), events

    def test_mlflow_is_healthy_by_its_own_healthcheck(self, deployment: Deployment) -> None:
        healthcheck = deployment.compose.project.services["mlflow"].healthcheck
        assert healthcheck is not None
        assert healthcheck[0] == "python", "the image has no curl"
        assert deployment.compose.healthy("mlflow")

    def test_the_trainer_job_exits_0(self, deployment: Deployment) -> None:
        compose = deployment.compose
        assert compose.wait_exit("trainer", TRAINING_TIMEOUT) == 0, compose.output("trainer")

    def test_the_api_becomes_ready_by_itself(self, deployment: Deployment) -> None:
        deployment.compose.wait_healthy("api", SWITCH_TIMEOUT)  # its healthcheck asks /ready
        assert served_version(deployment.api) == "1"

    @pytest.mark.skipif(shutil.which("curl") is None, reason="the seed's commands need curl")
    def test_the_api_answers_the_seeds_curl_commands(self, deployment: Deployment) -> None:
        assert '"status":"ok"' in curl(f"{deployment.api}/health")
        answer = curl(
            "-X",
            "POST",
            f"{deployment.api}/predict",
            "-H",
            "Content-Type: application/json",
            "-d",
            SEED_BODY,
        )
        assert '"prediction":"setosa"' in answer

    def test_mlflow_proxies_artifacts_without_jobs_or_telemetry(
        self, deployment: Deployment
    ) -> None:
        server = psutil.Process(deployment.compose.pid("mlflow"))  # exec'd by `irisops tracking`
        assert {"--serve-artifacts", "--artifacts-destination"} <= set(server.cmdline())
        environment = server.environ()
        assert environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
        assert environment["MLFLOW_DISABLE_TELEMETRY"] == "true"

    def test_mlflow_ui_answers_allowed_hosts_only(self, deployment: Deployment) -> None:
        port = deployment.compose.port("mlflow", 5000)
        ui = httpx.get(f"{deployment.mlflow}/", headers={"Host": f"localhost:{port}"}, timeout=10)
        assert ui.status_code == 200
        assert "<title>MLflow" in ui.text
        rebound = httpx.get(
            f"{deployment.mlflow}/api/2.0/mlflow/experiments/search",
            params={"max_results": "1"},
            headers={"Host": "attacker.example"},
            timeout=10,
        )
        assert rebound.status_code == 403

    def test_a_retrain_is_picked_up_by_the_running_api(self, deployment: Deployment) -> None:
        compose = deployment.compose
        api_pid = compose.pid("api")
        result = compose.run("trainer")  # docker compose run --rm trainer
        assert result.returncode == 0, result.stdout + result.stderr
        # Same data, same seed, same score: the gate (>= champion) promotes it.
        assert registry(deployment.mlflow)["aliases"]["champion"] == "2"
        wait_for(serving(deployment.api, "2"), timeout=SWITCH_TIMEOUT, interval=0.5)
        assert compose.pid("api") == api_pid, "no restart"

    def test_promote_rolls_the_api_back(self, deployment: Deployment) -> None:
        result = deployment.compose.run("trainer", "promote", "1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert registry(deployment.mlflow)["aliases"]["champion"] == "1"
        wait_for(serving(deployment.api, "1"), timeout=SWITCH_TIMEOUT, interval=0.5)

    def test_down_then_up_keeps_runs_versions_aliases_and_the_served_model(
        self, deployment: Deployment
    ) -> None:
        compose = deployment.compose
        before = registry(deployment.mlflow)
        assert len(before["runs"]) == 2
        assert before["versions"] == ["1", "2"]
        assert before["aliases"] == {"champion": "1", "challenger": "2"}

        compose.down()
        assert not any(compose.running(name) for name in compose.project.services)
        compose.up("api")  # docker compose up -d api: the tracking server and the API, no training
        compose.wait_healthy("api", SWITCH_TIMEOUT)

        assert registry(deployment.mlflow) == before
        assert served_version(deployment.api) == "1"
        assert "trainer" not in compose.started


class TestDefaultStack(Scenario):
    def test_state_lives_in_the_three_named_volumes(self, deployment: Deployment) -> None:
        compose = deployment.compose
        assert (compose.volume("mlflow_data") / "mlflow.db").is_file()
        assert any(compose.volume("mlflow_artifacts").rglob("model.onnx"))
        assert (compose.volume("model_data") / "current" / "model.onnx").is_file()


class TestPostgresProfile(Scenario):
    profile = "postgres"
    before_mlflow = (("postgres", "healthy"),)

    def test_the_registry_lives_in_postgresql(self, deployment: Deployment) -> None:
        compose = deployment.compose
        settings = compose.project.services["postgres"].environment
        connection = psycopg2.connect(
            host="127.0.0.1",
            port=compose.port("postgres", 5432),
            user=settings["POSTGRES_USER"],
            password=settings["POSTGRES_PASSWORD"],
            dbname=settings["POSTGRES_DB"],
        )
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT version FROM model_versions WHERE name = %s", (MODEL,))
            versions = sorted(str(row[0]) for row in cursor.fetchall())
            cursor.execute("SELECT alias, version FROM registered_model_aliases")
            aliases = {alias: str(version) for alias, version in cursor.fetchall()}
        connection.close()
        assert versions == ["1", "2"]
        assert aliases == {"champion": "1", "challenger": "2"}
        assert not (compose.volume("mlflow_data") / "mlflow.db").exists()

    def test_the_backend_uri_names_its_driver(self, deployment: Deployment) -> None:
        uri = deployment.compose.project.services["mlflow"].environment["IRISOPS_BACKEND_STORE_URI"]
        assert uri.startswith("postgresql+psycopg2://")


class TestS3Profile(Scenario):
    profile = "s3"
    before_mlflow = (("minio", "healthy"), ("minio-init", "exited 0"))

    def test_artifacts_land_in_the_bucket_not_the_volume(self, deployment: Deployment) -> None:
        assert deployment.s3 is not None
        bucket = deployment.compose.project.variables["MINIO_BUCKET"]
        listing = deployment.s3.client().list_objects_v2(Bucket=bucket)
        keys = [item["Key"] for item in listing.get("Contents", [])]
        assert sum(key.endswith("/model.onnx") for key in keys) >= 2, keys
        assert not any(
            p.is_file() for p in deployment.compose.volume("mlflow_artifacts").rglob("*")
        )

    def test_the_bucket_job_is_idempotent(self, deployment: Deployment) -> None:
        # Like Compose, every `up` and `run` that needs mlflow runs the finished job again.
        assert deployment.bucket_job is not None
        first, *again = deployment.bucket_job.outcomes
        assert first == "created"
        assert again and set(again) == {"exists"}, "every run after the first exits 0 too"

    def test_only_the_tracking_server_holds_s3_credentials(self, deployment: Deployment) -> None:
        compose = deployment.compose
        variables = compose.project.variables
        mlflow = compose.environment("mlflow")
        assert mlflow["AWS_ACCESS_KEY_ID"] == variables["MINIO_ROOT_USER"]
        assert mlflow["AWS_SECRET_ACCESS_KEY"] == variables["MINIO_ROOT_PASSWORD"]
        assert not any(key.startswith("AWS_") for key in compose.process_environment("trainer"))
        api_process = psutil.Process(compose.pid("api")).environ()
        assert not any(key.startswith("AWS_") for key in api_process)

    def test_the_api_serves_the_champion_from_the_registry(self, deployment: Deployment) -> None:
        info = get(f"{deployment.api}/model")
        assert info["source"].startswith(f"registry models:/{MODEL}@champion")
        assert info["version"] == "1"
