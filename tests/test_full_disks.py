"""Full disks: each state directory on a small tmpfs, filled, and nothing is lost.

Mounting needs root (CAP_SYS_ADMIN); elsewhere these tests skip, and under CI=true
they fail. Every case checks what the person sees (one clear line, or a request
still answered) and what stays intact (the served model, the registry).
"""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from mlflow import MlflowClient

from irisops import bundle
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import (
    SEED_BODY,
    environment,
    free_port,
    irisops,
    running,
    unavailable,
    wait_for,
)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs ({mounted.stderr.decode().strip()})", "skipped")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, leave_bytes: int = 0) -> None:
    """Fill the filesystem of `directory`, leaving about `leave_bytes` free."""
    with (directory / ".filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:  # ENOSPC: full
            pass
    if leave_bytes:
        size = (directory / ".filler").stat().st_size
        with (directory / ".filler").open("r+b") as filler:
            filler.truncate(max(size - leave_bytes, 0))


@contextmanager
def tracking_server(home: Path) -> Iterator[Tracking]:
    """A tracking server of the test's own, its state laid out under `home` as by default."""
    port = free_port()
    env = environment(home, IRISOPS_TRACKING_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    with running("tracking", env=env, url=url, log=home / "mlflow.log") as service:
        yield Tracking(service, home, port)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def monitoring(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(url + "/monitoring", timeout=10).json()
    return body


def test_a_full_inference_log_disk_drops_and_counts_and_resumes_when_space_is_back(
    api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "log", "256k") as log:
        env = tracking.env(champion.model_dir, IRISOPS_INFERENCE_LOG_DIR=str(log))
        api = api_factory.start(env, ready_path="/ready")
        fill(log)
        for _ in range(100):
            assert httpx.post(api.url + "/predict", content=SEED_BODY).status_code == 200
        wait_for(lambda: monitoring(api.url)["inference_log"]["dropped_write_error"] > 0)
        (log / ".filler").unlink()  # space is back
        written = monitoring(api.url)["inference_log"]["written"]
        for _ in range(10):
            assert httpx.post(api.url + "/predict", content=SEED_BODY).status_code == 200
        wait_for(lambda: monitoring(api.url)["inference_log"]["written"] >= written + 10)


def test_a_full_model_directory_fails_the_trainer_in_one_line_and_serving_goes_on(
    api_factory: ApiFactory, tracking: Tracking, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "model_data", "4m") as model_dir:
        env = tracking.env(model_dir, IRISOPS_REGISTERED_MODEL="full-disk-model-data")
        first = irisops("train", "--n-estimators", "10", env=env)
        assert first.returncode == 0, first.stderr
        api = api_factory.start(env, ready_path="/ready")
        served = bundle.current_target(model_dir)
        entries = sorted(p.name for p in (model_dir / "versions").iterdir())
        fill(model_dir, leave_bytes=8192)
        line = one_line(irisops("train", "--n-estimators", "30", "--force-promote", env=env))
        assert "no space left on device" in line.lower() and str(model_dir) in line, line
        assert bundle.current_target(model_dir) == served
        assert sorted(p.name for p in (model_dir / "versions").iterdir()) == entries
        answer = httpx.post(api.url + "/predict", content=SEED_BODY)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        champion = httpx.get(
            f"{tracking.uri}/api/2.0/mlflow/registered-models/alias",
            params={"name": "full-disk-model-data", "alias": "champion"},
        ).json()["model_version"]["version"]
        assert champion == "1", "the alias moves only once the bundle is written"


def test_a_full_artifact_store_fails_the_run_in_one_line_and_registers_nothing(
    api_factory: ApiFactory, tmp_path: Path
) -> None:
    home = tmp_path / "stack"
    with tmpfs(home / "mlflow_artifacts", "2m") as artifacts, tracking_server(home) as tracking:
        env = tracking.env(tmp_path / "model_data")
        first = irisops("train", "--n-estimators", "10", env=env)
        assert first.returncode == 0, first.stderr
        api = api_factory.start(env, ready_path="/ready")
        served = bundle.current_target(tmp_path / "model_data")
        # Room for the run's plots and tables (about 80 kB), not for the model (200 kB).
        fill(artifacts, leave_bytes=160 * 1024)
        line = one_line(irisops("train", "--n-estimators", "10", "--force-promote", env=env))
        assert f"the tracking server at {tracking.uri} could not store the run's artifact" in line
        assert "artifact model.skops" in line and "free space in its artifact store" in line, line
        client = MlflowClient(tracking.uri)
        experiment = client.get_experiment_by_name("iris")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])
        assert [run.info.status for run in runs] == ["FAILED", "FINISHED"]
        versions = client.search_model_versions("name = 'iris-classifier'")
        assert [v.version for v in versions] == ["1"], "registration comes after the upload"
        assert client.get_model_version_by_alias("iris-classifier", "champion").version == "1"
        assert bundle.current_target(tmp_path / "model_data") == served
        answer = httpx.post(api.url + "/predict", content=SEED_BODY)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"


def test_a_full_backend_store_fails_the_trainer_in_one_line_and_loses_nothing(
    api_factory: ApiFactory, tmp_path: Path
) -> None:
    home = tmp_path / "stack"
    with tmpfs(home / "mlflow_data", "4m") as data, tracking_server(home) as tracking:
        env = tracking.env(tmp_path / "model_data")
        first = irisops("train", "--n-estimators", "10", env=env)
        assert first.returncode == 0, first.stderr
        api = api_factory.start(env, ready_path="/ready")
        served = bundle.current_target(tmp_path / "model_data")
        fill(data)
        line = one_line(irisops("train", "--n-estimators", "10", "--force-promote", env=env))
        assert f"the tracking server at {tracking.uri} could not write to its database" in line
        assert "database or disk is full" in line and "free space" in line, line
        assert bundle.current_target(tmp_path / "model_data") == served
        answer = httpx.post(api.url + "/predict", content=SEED_BODY)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"

        (data / ".filler").unlink()  # space is back
        again = irisops("train", "--n-estimators", "10", env=env)
        assert again.returncode == 0, again.stderr
        client = MlflowClient(tracking.uri)
        experiment = client.get_experiment_by_name("iris")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])
        assert [run.info.status for run in runs] == ["FINISHED", "FINISHED"]
        versions = client.search_model_versions("name = 'iris-classifier'")
        assert sorted(v.version for v in versions) == ["1", "2"]
