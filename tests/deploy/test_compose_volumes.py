"""State lives in the named volumes: `down` keeps it, `down -v` removes it."""

import httpx
import pytest

from tests.deploy.conftest import deployed
from tests.deploy.engine import build_lock
from tests.deploy.registry import registry, served_version
from tests.processes import SEED_BODY

pytestmark = pytest.mark.timeout(900)
VOLUMES = {"model_data", "mlflow_data", "mlflow_artifacts", "inference_log"}


def test_down_keeps_runs_versions_aliases_and_the_served_model_and_down_v_removes_them(
    engine: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with deployed(tmp_path_factory, "volumes") as deployment:
        with build_lock():
            deployment.compose("up", "-d")
        assert deployment.wait_exited("trainer") == 0
        deployment.wait_healthy("api")
        before = registry(deployment.mlflow)
        assert before["versions"] == ["1"]
        answer = httpx.post(f"{deployment.api}/predict", content=SEED_BODY, timeout=10)
        assert answer.status_code == 200
        logged = answer.headers["X-Request-ID"]

        deployment.compose("down")
        assert deployment.volumes() == {f"{deployment.name}_{v}" for v in VOLUMES}
        deployment.compose("up", "-d", "api")  # the tracking server and the API, no training
        deployment.wait_healthy("api")
        assert registry(deployment.mlflow) == before
        assert served_version(deployment.api) == "1"
        assert logged in deployment.exec("api", "irisops", "log").stdout, "the inference log"
        assert deployment.compose("ps", "--all", "--quiet", "trainer").stdout == ""

        deployment.compose("down", "--volumes")
        assert deployment.volumes() == set()
