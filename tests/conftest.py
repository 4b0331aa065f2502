"""Shared fixtures: one real MLflow tracking server and one trained champion per session.

Nothing of our own stack is mocked: the server is `irisops tracking` (a real
`mlflow server`), training is the real `irisops train`, the API is `irisops serve`
under uvicorn, all spoken to over loopback HTTP.
"""

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import Service, environment, free_port, irisops, running

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, object]]:
    """Counts the reliability tests report (requests sent, cases generated, faults injected).

    Written to test-artifacts/figures/<name>.json, one file per figure, so that test
    workers running in parallel never write the same file.
    """
    found: dict[str, object] = {}
    yield found
    directory = ARTIFACTS / "figures"
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in found.items():
        (directory / f"{name}.json").write_text(json.dumps(value, indent=2, sort_keys=True))


@dataclass
class Tracking:
    """A running tracking server and the state directory it writes to."""

    service: Service
    home: Path
    port: int

    @property
    def uri(self) -> str:
        return self.service.url

    def env(self, model_dir: Path | None = None, **overrides: str) -> dict[str, str]:
        extra = {"MLFLOW_TRACKING_URI": self.uri, "IRISOPS_TRACKING_PORT": str(self.port)}
        if model_dir is not None:
            extra["IRISOPS_MODEL_DIR"] = str(model_dir)
        return environment(self.home, **{**extra, **overrides})


@pytest.fixture(scope="session")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    home = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = environment(home, IRISOPS_TRACKING_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    with running("tracking", env=env, url=url, log=home / "mlflow.log") as service:
        yield Tracking(service, home, port)


@dataclass
class Champion:
    version: str
    model_dir: Path


@pytest.fixture(scope="session")
def champion(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> Champion:
    """A first trained, registered and published model: version 1 of a fresh registry."""
    model_dir = tmp_path_factory.mktemp("model_data")
    result = irisops("train", env=tracking.env(model_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return Champion(version="1", model_dir=model_dir)


@pytest.fixture(scope="module")
def api(
    tracking: Tracking, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One API per test module, serving the session champion's directory (read only)."""
    port = free_port()
    env = tracking.env(champion.model_dir, IRISOPS_API_PORT=str(port), IRISOPS_POLL_INTERVAL="0.2")
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running(
        "serve", env=env, url=f"http://127.0.0.1:{port}", log=log, ready_path="/ready"
    ) as service:
        yield service


@pytest.fixture(scope="module")
def client(api: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http


@pytest.fixture
def api_factory(tmp_path: Path) -> Iterator["ApiFactory"]:
    factory = ApiFactory(tmp_path)
    yield factory
    factory.close()


class ApiFactory:
    """Starts `irisops serve` processes on free ports; all are stopped after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._services = ExitStack()

    def start(self, env: dict[str, str], ready_path: str = "/health") -> Service:
        port = free_port()
        env = {**env, "IRISOPS_API_PORT": str(port), "IRISOPS_POLL_INTERVAL": "0.2"}
        url = f"http://127.0.0.1:{port}"
        log = self.tmp_path / f"api-{port}.log"
        return self._services.enter_context(
            running("serve", env=env, url=url, log=log, ready_path=ready_path)
        )

    def close(self) -> None:
        self._services.close()
