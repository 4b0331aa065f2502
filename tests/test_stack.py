"""`irisops up` end to end: the documented curl commands, persistence, clean stop, busy ports."""

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
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


@dataclass
class Started:
    """A ready `irisops up`, where it keeps its state, and the children it started."""

    up: Up
    home: Path
    ports: tuple[int, int]
    children: list[psutil.Process]


@contextmanager
def started(home: Path, ports: tuple[int, int]) -> Iterator[Started]:
    up = Up(home, *ports)
    children: list[psutil.Process] = []
    try:
        up.wait_ready()
        children = up.descendants()
        yield Started(up, home, ports, children)
    finally:
        up.close(children)


@pytest.fixture(scope="module")
def first_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """A first `irisops up` in an empty home, left running for the tests that only look at it."""
    with started(tmp_path_factory.mktemp("up_home"), (free_port(), free_port())) as stack:
        yield stack


@dataclass
class Terminated:
    """A first `irisops up` in a home of its own, stopped with SIGTERM once it was ready."""

    stack: Started
    commands: list[str]
    exit_code: int


@pytest.fixture(scope="module")
def terminated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminated]:
    """The stop the SIGTERM test judges, and the state the restart test starts from.

    A stack of its own: stopping `first_up` would take it from the tests that look at it.
    """
    ports = free_port(), free_port()
    with started(tmp_path_factory.mktemp("terminated_home"), ports) as stack:
        # Read while they run: a process that has exited has no command line to read.
        commands = [" ".join(child.cmdline()) for child in stack.children]
        yield Terminated(stack, commands, stack.up.stop())


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented commands need curl")
def test_the_seeds_curl_commands_work_verbatim(first_up: Started) -> None:
    api = first_up.up.api
    assert '"status":"ok"' in curl(f"{api}/health")
    answer = curl(
        "-X", "POST", f"{api}/predict", "-H", "Content-Type: application/json", "-d", SEED_BODY
    )
    assert '"prediction":"setosa"' in answer
    assert '"prediction":"setosa"' in curl("-X", "POST", f"{api}/predict", "-d", SEED_BODY)


def test_up_trains_once_and_prints_urls_and_commands(first_up: Started) -> None:
    output = first_up.up.output()
    assert "No champion model yet: training one." in output
    assert first_up.up.api in output
    assert "curl -X POST" in output
    assert "/docs" in output


def test_all_state_lives_in_three_directories(first_up: Started) -> None:
    home = first_up.home
    assert (home / "mlflow_data" / "mlflow.db").is_file()
    assert any((home / "mlflow_artifacts").rglob("model.onnx"))
    assert (home / "model_data" / "current" / "model.onnx").is_file()


def test_a_busy_port_is_named_with_the_variable_that_moves_it(
    first_up: Started, tmp_path: Path
) -> None:
    busy = first_up.ports[0]
    env = environment(tmp_path, IRISOPS_API_PORT=str(busy), IRISOPS_TRACKING_PORT=str(free_port()))
    result = subprocess.run(
        [sys.executable, "-m", "irisops", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"port {busy} is busy" in result.stderr
    assert "IRISOPS_API_PORT" in result.stderr


def test_sigterm_stops_every_child_process(terminated: Terminated) -> None:
    assert any("mlflow" in command for command in terminated.commands), terminated.commands
    assert terminated.exit_code == 0
    _, alive = psutil.wait_procs(terminated.stack.children, timeout=15)
    assert alive == [], [p.cmdline() for p in alive]


def test_a_restart_keeps_the_champion_without_retraining(terminated: Terminated) -> None:
    stopped = terminated.stack
    with started(stopped.home, stopped.ports) as restarted:
        up = restarted.up
        assert httpx.get(f"{up.api}/ready").json()["model_version"] == "1"
        assert "training one" not in up.output()
        up.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.process.wait(60) == 0
        _, alive = psutil.wait_procs(restarted.children, timeout=15)
        assert alive == []
