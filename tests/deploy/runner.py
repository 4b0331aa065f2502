"""`docker compose` without an engine: compose.yaml's services as local processes.

Taken from compose.yaml as written (read by compose.py): each service's command (with
the entrypoint its Dockerfile stage declares), its interpolated environment, its
healthcheck command, its `depends_on` conditions and the start order they imply.

Translated, because the processes share this machine instead of a container network
(`Translation` does all of it):
- ports: every container port gets a free loopback port. `service:port` in an environment
  value, a command or a healthcheck becomes `127.0.0.1:<its port>`; `localhost`,
  `127.0.0.1` or `0.0.0.0` with one of the service's own ports (container or published)
  gets that port too; a bind address 0.0.0.0 becomes 127.0.0.1, a `*_PORT` setting equal
  to a container port becomes its loopback port. Note what this means for MLflow's
  allowed hosts: `mlflow:5000,localhost:5000,...` becomes `127.0.0.1:<p>,localhost:<p>,...`,
  the names by which the other processes and the tests then reach it.
- filesystems: each service gets a directory standing for its `/`; each named volume is a
  directory of its own, linked at the mount point; container paths in environment values
  (`/data/...`, `sqlite:////data/...`) point into the service's directory.
- the image: `irisops` and `python` resolve to this virtualenv, with imports limited to
  the distributions the service's image installs (images.py).
- images that cannot run here (PostgreSQL, MinIO, mc) are played by stand-ins.

Not emulated: network isolation, user ids, capabilities, read-only mounts, restart
policies, healthcheck intervals (checks run every half second until the deadline).
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from tests.deploy.compose import ComposeError, Condition, Project, Service, container_command
from tests.processes import Service as Process
from tests.processes import free_port, spawn

START_TIMEOUT = 180.0
LOOPBACK = ("localhost", "127.0.0.1", "0.0.0.0")
# The test's own settings and credentials must not reach a service: it gets only what
# compose.yaml gives it, on top of a plain environment.
INHERITED_NOT = ("IRISOPS_", "MLFLOW_", "AWS_", "PG", "COMPOSE_", "PYTHON", "VIRTUAL_ENV")
VENV_BIN = Path(sys.executable).parent
ADDRESS = re.compile(r"(?<![\w.-])(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d+)(?!\d)")


class Container(Protocol):
    def poll(self) -> int | None:
        """The exit code once the container has stopped, else None."""

    def stop(self) -> None: ...

    def healthcheck(self, command: Sequence[str], env: Mapping[str, str]) -> bool:
        """Run the service's healthcheck command (as `docker` would, inside the container)."""


class StandIn(Protocol):
    """Plays a service whose image cannot run here: a database, an object store, a CLI."""

    def start(
        self, service: Service, env: Mapping[str, str], ports: Mapping[int, int]
    ) -> Container: ...


def check(command: Sequence[str], env: Mapping[str, str], timeout: float = 10) -> bool:
    try:
        result = subprocess.run(
            list(command), env=dict(env), capture_output=True, timeout=timeout, check=False
        )
    except (subprocess.TimeoutExpired, OSError):
        return False
    return result.returncode == 0


@dataclass
class ProcessContainer:
    """A service of one of our images: its container command, run as a local process."""

    process: Process

    def poll(self) -> int | None:
        return self.process.process.poll()

    def stop(self) -> None:
        self.process.stop()

    def healthcheck(self, command: Sequence[str], env: Mapping[str, str]) -> bool:
        return check(command, env)


@dataclass(frozen=True)
class Translation:
    """How one container's names for addresses and paths map onto this machine."""

    service: Service
    ports: Mapping[str, Mapping[int, int]]  # every service: container port -> loopback port
    root: Path  # stands for the container's `/`

    def own_port(self, port: int) -> int | None:
        own = self.ports[self.service.name]
        for mapping in self.service.ports:
            if port in (mapping.target, mapping.published):
                return own[mapping.target]
        return own.get(port)

    def address(self, text: str) -> str:
        def local(match: re.Match[str]) -> str:
            host, port = match["host"], int(match["port"])
            if port in self.ports.get(host, {}):
                return f"127.0.0.1:{self.ports[host][port]}"
            if host in LOOPBACK and (mapped := self.own_port(port)) is not None:
                return f"{'127.0.0.1' if host == '0.0.0.0' else host}:{mapped}"
            return match.group()

        return ADDRESS.sub(local, text)

    def path(self, text: str) -> str:
        tops = sorted({"/" + Path(m.target).parts[1] for m in self.service.volumes})
        if not tops:
            return text
        pattern = rf"(?<![\w.-])({'|'.join(map(re.escape, tops))})(?=/|$)"
        return re.sub(pattern, lambda match: str(self.root) + match[1], text)

    def value(self, key: str, value: str) -> str:
        value = self.path(self.address(value))
        if value == "0.0.0.0":
            return "127.0.0.1"
        if key.endswith("_PORT") and value.isdigit():
            return str(self.own_port(int(value)) or value)
        return value

    def environment(self) -> dict[str, str]:
        return {key: self.value(key, value) for key, value in self.service.environment.items()}

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [self.path(self.address(arg)) for arg in argv]


class LocalCompose:
    """A compose project whose services run as processes on this machine.

    `up`, `run`, `down` behave like `docker compose up -d`, `docker compose run --rm` and
    `docker compose down` (volumes kept); `events` records what happened, in order.
    """

    def __init__(
        self,
        project: Project,
        workdir: Path,
        image_sites: Mapping[str, Path],
        stand_ins: Mapping[str, StandIn] | None = None,
    ) -> None:
        self.project = project
        self.workdir = workdir
        self.image_sites = image_sites
        self.stand_ins = dict(stand_ins or {})
        # Like published ports, these stay the same across down and up.
        self.ports = {
            name: {port: free_port() for port in service.container_ports}
            for name, service in project.services.items()
        }
        self.containers: dict[str, Container] = {}
        self.started: list[str] = []
        self.events: list[tuple[str, str]] = []
        self._seen: set[tuple[str, str]] = set()  # events already recorded since each start

    def _record(self, name: str, event: str) -> None:
        if (name, event) not in self._seen:
            self._seen.add((name, event))
            self.events.append((name, event))

    # --- addresses, paths and environments ---

    def port(self, name: str, container_port: int) -> int:
        return self.ports[name][container_port]

    def url(self, name: str, container_port: int) -> str:
        return f"http://127.0.0.1:{self.port(name, container_port)}"

    def volume(self, name: str) -> Path:
        if name not in self.project.volumes:
            raise ComposeError(f"no volume {name!r} in compose.yaml")
        path = self.workdir / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def translation(self, name: str) -> Translation:
        root = self.workdir / "containers" / name
        return Translation(self.project.services[name], self.ports, root)

    def environment(self, name: str) -> dict[str, str]:
        """The service's compose environment, translated: what its process gets on top."""
        return self.translation(name).environment()

    def process_environment(self, name: str) -> dict[str, str]:
        target = self.project.services[name].build_target
        if target is None or target not in self.image_sites:
            raise ComposeError(f"{name}: not built from our Dockerfile and no stand-in given")
        plain = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_NOT)}
        return {
            **plain,
            "PATH": f"{VENV_BIN}{os.pathsep}{plain.get('PATH', '')}",
            "HOME": str(self.translation(name).root / "home"),
            "PYTHONPATH": str(self.image_sites[target]),
            **self.environment(name),
        }

    def _prepare(self, name: str) -> Translation:
        """The container's filesystem: a home directory, and each volume at its mount point."""
        translation = self.translation(name)
        (translation.root / "home").mkdir(parents=True, exist_ok=True)
        for mount in translation.service.volumes:
            point = translation.root / mount.target.lstrip("/")
            point.parent.mkdir(parents=True, exist_ok=True)
            if not point.is_symlink():
                point.symlink_to(self.volume(mount.volume), target_is_directory=True)
        return translation

    def log(self, name: str) -> Path:
        path = self.workdir / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # --- lifecycle ---

    def running(self, name: str) -> bool:
        container = self.containers.get(name)
        return container is not None and container.poll() is None

    def up(self, *names: str, timeout: float = START_TIMEOUT) -> None:
        """Start `names` (every enabled service if none) after what they depend on."""
        for name in self.project.start_order(*names):
            if not self.running(name):
                self._wait_for_dependencies(name, timeout)
                self._start(name)

    def run(
        self, name: str, *command: str, timeout: float = 300
    ) -> "subprocess.CompletedProcess[str]":
        """A one-off container of `name` (its command, or `command`), run to completion."""
        dependencies = [d.service for d in self.project.dependencies(name)]
        if dependencies:
            self.up(*dependencies)
        self._wait_for_dependencies(name, START_TIMEOUT)
        translation = self._prepare(name)
        service = translation.service
        argv = container_command(replace(service, command=command or service.command))
        self.events.append((name, "run " + " ".join(argv)))
        result = subprocess.run(
            translation.argv(argv),
            env=self.process_environment(name),
            cwd=translation.root / "home",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.events.append((name, f"exited {result.returncode}"))
        return result

    def _start(self, name: str) -> None:
        translation = self._prepare(name)
        service = translation.service
        container: Container
        if name in self.stand_ins:
            ports = self.ports[name]
            container = self.stand_ins[name].start(service, translation.environment(), ports)
        else:
            argv = translation.argv(container_command(service))
            env = self.process_environment(name)
            process = spawn(argv, env, self.log(name), cwd=translation.root / "home")
            urls = [self.url(name, port) for port in service.container_ports]
            container = ProcessContainer(Process(process, next(iter(urls), ""), self.log(name)))
        self.containers[name] = container
        if name not in self.started:
            self.started.append(name)
        self._seen = {seen for seen in self._seen if seen[0] != name}
        self._record(name, "started")

    def _wait_for_dependencies(self, name: str, timeout: float) -> None:
        for dependency in self.project.dependencies(name):
            if dependency.condition is Condition.HEALTHY:
                self.wait_healthy(dependency.service, timeout)
            elif dependency.condition is Condition.COMPLETED:
                code = self.wait_exit(dependency.service, timeout)
                if code != 0:
                    raise ComposeError(
                        f"{name}: dependency {dependency.service} exited {code}\n"
                        + self.output(dependency.service)
                    )

    def healthy(self, name: str) -> bool:
        """One run of the service's own healthcheck command, translated."""
        service = self.project.services[name]
        if service.healthcheck is None:
            raise ComposeError(f"{name} has no healthcheck, so nothing can wait for it healthy")
        command = self.translation(name).argv(service.healthcheck)
        env = self.environment(name) if name in self.stand_ins else self.process_environment(name)
        return self.containers[name].healthcheck(command, env)

    def wait_healthy(self, name: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.containers[name].poll()
            if code is not None:
                raise ComposeError(f"{name} exited ({code}) before healthy\n{self.output(name)}")
            if self.healthy(name):
                self._record(name, "healthy")
                return
            time.sleep(0.5)
        raise ComposeError(f"{name} not healthy within {timeout:.0f} s\n{self.output(name)}")

    def wait_exit(self, name: str, timeout: float = START_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.containers[name].poll()) is None:
            if time.monotonic() > deadline:
                raise ComposeError(f"{name} still running after {timeout:.0f} s")
            time.sleep(0.2)
        self._record(name, f"exited {code}")
        return code

    def output(self, name: str) -> str:
        path = self.log(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def down(self) -> None:
        """Stop every container, dependants first; volumes stay."""
        for name in reversed(self.started):
            container = self.containers.pop(name, None)
            if container is not None:
                container.stop()
                self._record(name, "stopped")
        self.started.clear()

    def pid(self, name: str) -> int:
        container = self.containers[name]
        if not isinstance(container, ProcessContainer):
            raise ComposeError(f"{name} is played by a stand-in, not a process of ours")
        return container.process.process.pid
