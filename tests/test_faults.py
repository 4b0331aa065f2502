"""Faults around the tracking server: nothing is lost, nothing half-done is served.

Each test runs a tracking server of its own, because it kills it.
"""

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient

from irisops import bundle
from tests.processes import (
    Service,
    environment,
    free_port,
    irisops,
    running,
    spawn,
    wait_for,
)

MODEL = "iris-classifier"
HALF_A_STORE = 300_000


class Server:
    """A tracking server bound to one home and port, which a test can kill and restart."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.model_dir = home / "model_data"

    def env(self, **overrides: str) -> dict[str, str]:
        return environment(
            self.home,
            IRISOPS_TRACKING_PORT=str(self.port),
            MLFLOW_TRACKING_URI=self.uri,
            IRISOPS_MODEL_DIR=str(self.model_dir),
            **overrides,
        )

    @contextmanager
    def running(self) -> Iterator[Service]:
        log = self.home / "mlflow.log"
        with running("tracking", env=self.env(), url=self.uri, log=log) as service:
            yield service

    def train(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return irisops("train", *args, env=self.env(**env))


def test_the_trainer_waits_then_gives_up_on_a_server_that_is_down(tmp_path: Path) -> None:
    server = Server(tmp_path)
    with server.running():
        assert server.train().returncode == 0
    served = bundle.current_target(server.model_dir)
    result = server.train(IRISOPS_TRACKING_RETRIES="2", IRISOPS_TRACKING_BACKOFF="0.2")
    assert result.returncode == 1
    assert f"{server.uri} is unreachable after 3 attempts:" in result.stderr
    assert bundle.current_target(server.model_dir) == served


def test_a_server_killed_mid_run_leaves_no_success_and_publishes_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path)
    with server.running() as service:
        assert server.train().returncode == 0
        served = bundle.current_target(server.model_dir)
        client = MlflowClient(server.uri)
        experiment = client.get_experiment_by_name("iris")
        assert experiment is not None
        trainer = subprocess.Popen(
            [sys.executable, "-m", "irisops", "train", "--force-promote"],
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(
            lambda: len(client.search_runs([experiment.experiment_id])) == 2,
            timeout=60,
            interval=0.05,
        )
        service.stop(signal.SIGKILL)
        output, _ = trainer.communicate(timeout=240)
    assert trainer.returncode != 0, output
    assert "Traceback" not in output
    assert bundle.current_target(server.model_dir) == served, "nothing was published"

    with server.running():
        runs = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])
        assert runs[0].info.status != "FINISHED", "the interrupted run must not look successful"
        assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
        recovered = server.train()
        assert recovered.returncode == 0, recovered.stderr
        assert bundle.current_target(server.model_dir) != served


def test_a_restarted_server_keeps_runs_versions_aliases_and_artifacts(tmp_path: Path) -> None:
    server = Server(tmp_path)
    with server.running():
        assert server.train().returncode == 0
        assert server.train("--no-promote").returncode == 0
        client = MlflowClient(server.uri)
        before = {
            "runs": {r.info.run_id for r in client.search_runs(["1"])},
            "aliases": client.get_registered_model(MODEL).aliases,
            "artifacts": [
                a.path for a in client.list_artifacts(client.search_runs(["1"])[0].info.run_id)
            ],
        }
    with server.running():
        client = MlflowClient(server.uri)
        assert {r.info.run_id for r in client.search_runs(["1"])} == before["runs"]
        assert client.get_registered_model(MODEL).aliases == before["aliases"]
        assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2
        run_id = client.search_runs(["1"])[0].info.run_id
        assert [a.path for a in client.list_artifacts(run_id)] == before["artifacts"]
        downloaded = client.download_artifacts(run_id, "plots", str(tmp_path / "dl"))
        assert any(Path(downloaded).glob("*.png"))


def test_a_server_killed_while_creating_its_store_starts_cleanly_next_time(tmp_path: Path) -> None:
    """The first start creates the SQLite tables; a kill then must not leave half of them."""
    server = Server(tmp_path)
    database = tmp_path / "mlflow_data" / "mlflow.db"
    files = [database, database.with_name("mlflow.db.partial")]

    def half_created() -> bool:  # the complete store holds about 950 KB of empty tables
        return any(path.exists() and path.stat().st_size > HALF_A_STORE for path in files)

    process = spawn(
        [sys.executable, "-m", "irisops", "tracking"], server.env(), tmp_path / "killed.log"
    )
    try:
        wait_for(half_created, timeout=60, interval=0.005)
    finally:
        process.kill()
        process.wait()
    assert not database.exists(), "the store appears whole or not at all"
    with server.running():
        assert server.train("--n-estimators", "5").returncode == 0
