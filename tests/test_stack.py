"""`irisops up` end to end: the documented curl commands, persistence, clean stop, busy ports."""

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from tests.processes import SEED_BODY, curl, environment, free_port, wait_for


class Up:
    """One `irisops up` supervisor, with its output captured to a file."""

    def __init__(self, home: Path, api_port: int, tracking_port: int) -> None:
        self.api = f"http://localhost:{api_port}"
        self.log = home / f"up-{len(list(home.glob('up-*.log')))}.log"
        env = environment(
            home, IRISOPS_API_PORT=str(api_port), IRISOPS_TRACKING_PORT=str(tracking_port)
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "irisops", "up"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, self.output()
            return "irisops is up" in self.output()

        wait_for(ready, timeout=180, interval=0.5)

    def descendants(self) -> list[psutil.Process]:
        children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        return children

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def close(self, children: list[psutil.Process]) -> None:
        """After a failed test too: never leave a tracking server behind."""
        if self.process.poll() is None:
            self.stop()
        for child in children:
            with suppress(psutil.NoSuchProcess):
                child.kill()


@pytest.fixture(scope="module")
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("up_home")


@pytest.fixture(scope="module")
def first_up(home: Path, ports: tuple[int, int]) -> Iterator[tuple[Up, list[psutil.Process]]]:
    up = Up(home, *ports)
    children: list[psutil.Process] = []
    try:
        up.wait_ready()
        children = up.descendants()
        yield up, children
    finally:
        up.close(children)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented commands need curl")
def test_the_seeds_curl_commands_work_verbatim(first_up: tuple[Up, list[psutil.Process]]) -> None:
    up, _ = first_up
    assert '"status":"ok"' in curl(f"{up.api}/health")
    answer = curl(
        "-X", "POST", f"{up.api}/predict", "-H", "Content-Type: application/json", "-d", SEED_BODY
    )
    assert '"prediction":"setosa"' in answer
    assert '"prediction":"setosa"' in curl("-X", "POST", f"{up.api}/predict", "-d", SEED_BODY)


def test_up_trains_once_and_prints_urls_and_commands(
    first_up: tuple[Up, list[psutil.Process]],
) -> None:
    up, _ = first_up
    output = up.output()
    assert "No champion model yet: training one." in output
    assert up.api in output
    assert "curl -X POST" in output
    assert "/docs" in output


def test_all_state_lives_in_three_directories(
    first_up: tuple[Up, list[psutil.Process]], home: Path
) -> None:
    assert (home / "mlflow_data" / "mlflow.db").is_file()
    assert any((home / "mlflow_artifacts").rglob("model.onnx"))
    assert (home / "model_data" / "current" / "model.onnx").is_file()


def test_a_busy_port_is_named_with_the_variable_that_moves_it(
    first_up: tuple[Up, list[psutil.Process]], tmp_path: Path, ports: tuple[int, int]
) -> None:
    env = environment(
        tmp_path, IRISOPS_API_PORT=str(ports[0]), IRISOPS_TRACKING_PORT=str(free_port())
    )
    result = subprocess.run(
        [sys.executable, "-m", "irisops", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"port {ports[0]} is busy" in result.stderr
    assert "IRISOPS_API_PORT" in result.stderr


def test_sigterm_stops_every_child_process(first_up: tuple[Up, list[psutil.Process]]) -> None:
    up, children = first_up
    assert any("mlflow" in " ".join(c.cmdline()) for c in children)
    assert up.stop() == 0
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], [p.cmdline() for p in alive]


def test_a_restart_keeps_the_champion_without_retraining(
    first_up: tuple[Up, list[psutil.Process]], home: Path, ports: tuple[int, int]
) -> None:
    first, _ = first_up
    assert first.process.poll() is not None, "runs after the SIGTERM test"
    up = Up(home, *ports)
    children: list[psutil.Process] = []
    try:
        up.wait_ready()
        assert httpx.get(f"{up.api}/ready").json()["model_version"] == "1"
        assert "training one" not in up.output()
        children = up.descendants()
        up.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.process.wait(60) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == []
    finally:
        up.close(children)
