"""`irisops up`: the whole local stack as child processes of one supervisor.

Each child runs in its own session (process group), so stopping the stack can
signal a child together with everything it spawned (MLflow's uvicorn workers
included), and Ctrl-C in the terminal reaches only the supervisor, which then
stops the children in order.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from rich.console import Console

from irisops.bundle import current_target
from irisops.config import Settings
from irisops.logfiles import RotatingLog
from irisops.tracking import is_up, prepare_state

STOP_TIMEOUT = 10.0
# Each child's log is rotated past this size, keeping this many older files.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
START_TIMEOUT = 120.0


class StackError(Exception):
    """The stack cannot start or a child died; the message says which and what to do."""


class Stopped(Exception):
    """SIGTERM or SIGINT reached the supervisor."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(settings: Settings) -> None:
    for name, host, port, variable in (
        (
            "tracking server",
            settings.tracking_host,
            settings.tracking_port,
            "IRISOPS_TRACKING_PORT",
        ),
        ("API", settings.api_host, settings.api_port, "IRISOPS_API_PORT"),
    ):
        if port_in_use(host, port):
            raise StackError(
                f"port {port} is busy, so the {name} cannot start on {host}:{port}; "
                f"stop what uses it or set {variable} to another port"
            )


@dataclass
class Supervisor:
    settings: Settings
    console: Console
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[threading.Thread] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.settings.state_dir / "logs"

    def environment(self) -> dict[str, str]:
        """Children read the same settings, made absolute so their working directory is moot."""
        return {
            **os.environ,
            "IRISOPS_HOME": str(self.settings.state_dir),
            "IRISOPS_MODEL_DIR": str(self.settings.served_model_dir),
            "MLFLOW_TRACKING_URI": self.settings.tracking_uri,
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "irisops", *args]

    def start(self, name: str, *args: str, log_to_file: bool) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.command(*args),
            env=self.environment(),
            stdout=subprocess.PIPE if log_to_file else None,
            stderr=subprocess.STDOUT if log_to_file else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if log_to_file and process.stdout is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = RotatingLog(self.log_dir / f"{name}.log", LOG_MAX_BYTES, LOG_BACKUPS)
            self.logs.append(log.follow(process.stdout))
        self.children[name] = process
        return process

    def wait_until(self, name: str, check_url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.children[name].poll() is not None:
                raise StackError(f"{name} exited during start-up; see {self.log_dir / name}.log")
            if is_up(check_url, timeout=1.0):
                return
            time.sleep(0.25)
        raise StackError(f"{name} did not become ready within {START_TIMEOUT:.0f} s")

    def run_once(self, name: str, *args: str) -> None:
        process = self.start(name, *args, log_to_file=False)
        if process.wait() != 0:
            raise StackError(f"`irisops {' '.join(args)}` failed (exit {process.returncode})")
        del self.children[name]

    def stop(self) -> None:
        """SIGTERM every child's process group, newest first; SIGKILL what outlives the timeout."""
        for name, process in reversed(list(self.children.items())):
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.console.print(f"[yellow]{name} ignored SIGTERM; killing it[/]")
            # Kill stragglers in the group even when the leader exited cleanly.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.children.clear()
        for log in self.logs:  # each ends with its child's output
            log.join(timeout=5)


def _raise_stopped(signum: int, _: FrameType | None) -> None:
    # Once: a second signal (Ctrl-C twice, `timeout` forwarding) must not interrupt the stop.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signal.Signals(signum).name)


def champion_version(settings: Settings) -> str | None:
    from mlflow import MlflowClient

    from irisops.registry import CHAMPION, alias_version

    version = alias_version(
        MlflowClient(settings.tracking_uri), settings.registered_model, CHAMPION
    )
    return None if version is None else str(version.version)


def banner(settings: Settings) -> str:
    api = f"http://localhost:{settings.api_port}"
    return f"""[bold green]irisops is up[/]
  MLflow UI   http://localhost:{settings.tracking_port}
  API         {api}   (Swagger UI: {api}/docs)
  State       {settings.state_dir}

Try:
  curl {api}/health
  curl -X POST {api}/predict \\
    -H "Content-Type: application/json" \\
    -d '{{"features":[5.1,3.5,1.4,0.2]}}'

Ctrl-C stops everything."""


def up(settings: Settings, console: Console) -> None:
    check_ports(settings)
    prepare_state(settings)
    supervisor = Supervisor(settings, console)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with console.status("starting the MLflow tracking server"):
            supervisor.start("mlflow", "tracking", log_to_file=True)
            supervisor.wait_until("mlflow", settings.tracking_uri)
        version = champion_version(settings)
        if version is None:
            console.print("No champion model yet: training one.")
            supervisor.run_once("train", "train")
        elif current_target(settings.served_model_dir) is None:
            console.print(f"Publishing champion v{version} to {settings.served_model_dir}.")
            supervisor.run_once("promote", "promote", version)
        with console.status("starting the API"):
            supervisor.start("api", "serve", log_to_file=True)
            supervisor.wait_until("api", f"http://127.0.0.1:{settings.api_port}")
        if not is_ready(settings.api_port):
            console.print("[yellow]The API is up but has no model yet; see /ready.[/]")
        console.print(banner(settings))
        console.print(f"Logs: {supervisor.log_dir}")
        while True:
            for name, process in supervisor.children.items():
                if process.poll() is not None:
                    raise StackError(
                        f"{name} exited unexpectedly (code {process.returncode}); "
                        f"see {supervisor.log_dir / name}.log"
                    )
            time.sleep(0.5)
    except Stopped as stop:
        console.print(f"{stop}: stopping the stack.")
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def is_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
