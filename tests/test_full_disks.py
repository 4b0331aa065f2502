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

from irisops import bundle
from tests.conftest import ApiFactory, Champion, Tracking
from tests.processes import SEED_BODY, irisops, unavailable, wait_for


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
        failed = irisops("train", "--n-estimators", "30", "--force-promote", env=env)
        assert failed.returncode == 1
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1, failed.stderr
        [line] = lines
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
