"""Real processes for the tests: the `irisops` CLI, on free loopback ports, cleaned up always."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

START_TIMEOUT = 90.0
# The prediction request body of the original project description.
SEED_BODY = '{"features":[5.1,3.5,1.4,0.2]}'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(home: Path, **overrides: str) -> dict[str, str]:
    """A clean irisops environment rooted at `home`: no setting leaks in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRISOPS_", "MLFLOW_"))}
    env.update({"IRISOPS_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"})
    env.update(overrides)
    return env


def irisops(
    *args: str, env: Mapping[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "irisops", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self, since: int = 0) -> str:
        return self.log.read_bytes()[since:].decode(errors="replace")

    def mark(self) -> int:
        """Where the log ends now: `output(since=mark)` is then what the service wrote after."""
        return self.log.stat().st_size

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()


def wait_http(service: Service, path: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"service exited ({service.process.returncode}):\n{service.output()}"
            )
        with suppress(httpx.HTTPError):
            if httpx.get(service.url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{service.url}{path} not ready in {timeout} s:\n{service.output()}")


def spawn(
    argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ARGV in its own session, so `Service.stop` can signal it with all its children."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@contextmanager
def running(
    *args: str, env: Mapping[str, str], url: str, log: Path, ready_path: str | None = "/health"
) -> Iterator[Service]:
    """Start `irisops ARGS` in its own process group; stop the whole group afterwards."""
    service = Service(spawn([sys.executable, "-m", "irisops", *args], env, log), url, log)
    try:
        if ready_path is not None:
            wait_http(service, ready_path)
        yield service
    finally:
        service.stop()


def serving_version(service: Service, version: str) -> Callable[[], bool]:
    """A `wait_for` condition: the API answers /ready with this model version."""

    def check() -> bool:
        response = httpx.get(service.url + "/ready", timeout=10)
        return response.status_code == 200 and response.json()["model_version"] == version

    return check


def wait_for(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


def curl(*args: str) -> str:
    """The real curl binary, as the documented commands use it; fails on any HTTP error."""
    return subprocess.run(
        ["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True, check=True
    ).stdout


def unavailable(problem: str, skipped: str) -> NoReturn:
    """Skip for a missing tool, but fail under CI (CI=true), where it means a broken runner."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, but {problem}", pytrace=False)
    pytest.skip(f"{problem}: {skipped}", allow_module_level=True)
