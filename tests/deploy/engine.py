"""Real `docker compose` on a real Docker Engine, one throwaway project per deployment.

A `Deployment` is a temporary copy of the repository with its own Compose project name,
free host ports and a `.env` written from `.env.example`'s own instructions. Every
command is the `docker compose` CLI a person would type, run in that copy; `remove()`
takes its containers, volumes, networks and images away again.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processes import free_port, unavailable

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
MINIMUM_ENGINE = 25  # compose.yaml's healthcheck start_interval
# Test projects carry the pytest process id, so a later session can tell a project left
# behind by a killed run (its process is gone) from one another worker is using.
PREFIX = "irisops-test-"
# Not copied into a deployment: local state, caches, and what .dockerignore keeps out anyway.
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".irisops", ".env", "test-artifacts", "*_cache", "__pycache__",
    "*.egg-info", ".schemathesis", "node_modules",
)  # fmt: skip
# What the compose CLI inherits: enough to find the engine, nothing that would override
# the deployment's .env (Compose lets the shell's variables win over it).
INHERITED = ("PATH", "HOME", "LANG", "TMPDIR", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG")
ASSIGNMENT = re.compile(r"^#?(?P<key>[A-Z_][A-Z0-9_]*)=")


def compose_problem() -> str | None:
    """Why the Compose CLI cannot run here (it needs no engine for `config`), or None."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    if _docker("compose", "version", "--short").returncode != 0:
        return "the docker CLI has no compose plugin (`docker compose version` fails)"
    return None


def engine_problem() -> str | None:
    """Why compose cannot run for real here, in one line, or None when it can."""
    if problem := compose_problem():
        return problem
    server = _docker("version", "--format", "{{.Server.Version}}")
    if server.returncode != 0:
        return "no Docker Engine answers (`docker version` cannot reach the daemon)"
    major = int(server.stdout.split(".")[0])
    if major < MINIMUM_ENGINE:
        return f"Docker Engine {server.stdout.strip()} is older than {MINIMUM_ENGINE}"
    return None


def require(problem: str | None, what: str) -> None:
    """Skip with the reason, or fail under CI, where a missing engine is a broken runner."""
    if problem is not None:
        unavailable(problem, f"{what} skipped (they run on Docker Engine 25+ with Compose v2)")


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def compose_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in INHERITED if name in os.environ}


def dotenv_for(
    example: str, profiles: Sequence[str] = (), options: Sequence[str] = (), **values: str
) -> str:
    """`.env.example` after following its own instructions.

    That is: list `profiles` in COMPOSE_PROFILES and uncomment each `### profile NAME`
    block (a profile may have none) and each `### option NAME` block, then set `values`
    (a documented key that is commented out is uncommented to set it).
    """
    blocks = {f"### profile {name}:" for name in profiles} | {f"### option {o}:" for o in options}
    lines = example.splitlines()
    found, in_block = set(), False
    for index, line in enumerate(lines):
        if line.startswith("###"):
            title = line.split(":")[0] + ":"
            in_block = title in blocks
            found |= {title} & blocks
        elif not line.strip():
            in_block = False
        match = ASSIGNMENT.match(line)
        if match is None:
            continue
        key = match["key"]
        if key == "COMPOSE_PROFILES":
            lines[index] = f"COMPOSE_PROFILES={','.join(profiles)}" if profiles else line
        elif key in values:
            lines[index] = f"{key}={values[key]}"
        elif in_block:
            lines[index] = line.removeprefix("#")
    documented = {m["key"] for m in map(ASSIGNMENT.match, lines) if m}
    if missing := set(values) - documented:
        raise ValueError(f".env.example does not document {sorted(missing)}")
    if unknown := {b for b in blocks if b.startswith("### option")} - found:
        raise ValueError(f".env.example has no block {sorted(unknown)}")
    return "\n".join(lines) + "\n"


def config(env_text: str | None, directory: Path) -> dict[str, Any]:
    """`docker compose config` of the repository's compose.yaml with that `.env` (or none)."""
    env_file = directory / ".env"
    env_file.write_text(env_text or "")
    files = ["-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
    result = subprocess.run(
        ["docker", "compose", *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=compose_environment(),
        check=False,
    )
    if result.returncode != 0:
        raise ComposeFailed(result)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


class ComposeFailed(AssertionError):
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        command = " ".join(result.args)
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        super().__init__(f"`{command}` exited {result.returncode}:\n{tail}")
        self.result = result


@contextmanager
def build_lock() -> Iterator[None]:
    """One image build at a time across test workers: the first fills the layer cache."""
    with Path("/tmp/irisops-test-image-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass
class Deployment:
    directory: Path
    name: str
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        root: Path,
        label: str,
        ports: Sequence[str],
        profiles: Sequence[str] = (),
        options: Sequence[str] = (),
        overrides: Sequence[str] = (),
        **values: str,
    ) -> "Deployment":
        """Copy the repository; its .env is .env.example set up as its comments say.

        `overrides` are compose files merged over compose.yaml (through COMPOSE_FILE).
        """
        directory = root / "project"
        shutil.copytree(REPO, directory, ignore=NOT_COPIED)
        deployment = cls(directory, f"{PREFIX}{os.getpid()}-{label}")
        deployment.ports = {variable: free_port() for variable in ports}
        published = {variable: str(port) for variable, port in deployment.ports.items()}
        env_text = dotenv_for(ENV_EXAMPLE.read_text(), profiles, options, **published, **values)
        if overrides:
            env_text += f"COMPOSE_FILE={':'.join(['compose.yaml', *overrides])}\n"
        (directory / ".env").write_text(env_text)
        return deployment

    @property
    def api(self) -> str:
        """The API as the README's curl commands reach it: localhost, the published port."""
        return f"http://localhost:{self.ports['API_PORT']}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.ports['MLFLOW_PORT']}"

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", "compose", "--project-name", self.name, *args],
            cwd=self.directory,
            capture_output=True,
            text=True,
            env=compose_environment(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ComposeFailed(result)
        return result

    def shell(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A command line as documented, in the project; COMPOSE_PROJECT_NAME names it."""
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.directory,
            capture_output=True,
            text=True,
            env={**compose_environment(), "COMPOSE_PROJECT_NAME": self.name},
            timeout=timeout,
            check=False,
        )

    def container(self, service: str) -> str:
        ids = self.compose("ps", "--all", "--quiet", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        result = _docker("inspect", self.container(service))
        assert result.returncode == 0, result.stderr
        state: dict[str, Any] = json.loads(result.stdout)[0]
        return state

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state["Health"]["Status"] if "Health" in state else state["Status"])

    def wait_healthy(self, service: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.health(service)) != "healthy":
            if status in {"exited", "dead"} or time.monotonic() > deadline:
                logs = self.compose("logs", "--no-color", "--tail", "60", service).stdout
                raise AssertionError(f"{service} is {status}, not healthy:\n{logs}")
            time.sleep(0.5)

    def wait_exited(self, service: str, timeout: float = 300, not_started_at: str = "") -> int:
        """The exit code of the service's job; `not_started_at` skips an earlier run's."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.inspect(service)["State"]
            if state["Status"] == "exited" and state["StartedAt"] != not_started_at:
                return int(state["ExitCode"])
            assert time.monotonic() < deadline, f"{service} still {state['Status']}"
            time.sleep(0.5)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", "--no-log-prefix", service).stdout

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", service, *command, check=False)

    def python(self, service: str, code: str) -> str:
        """Run Python in the service's running container (the images have no shell tools)."""
        result = self.exec(service, "python", "-c", code)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def volumes(self) -> set[str]:
        label = f"label=com.docker.compose.project={self.name}"
        listing = _docker("volume", "ls", "--quiet", "--filter", label)
        return set(listing.stdout.split())

    def images(self) -> set[str]:
        """The images this project built: Compose labels them with the project's name."""
        return _labelled("image", self.name)

    def remove(self) -> None:
        """Everything the deployment made, also after a failed test."""
        remove_project(self.name)


LABEL = "com.docker.compose.project"


def _labelled(kind: str, project: str) -> set[str]:
    listing = _docker(kind, "ls", "--quiet", "--filter", f"label={LABEL}={project}")
    return set(listing.stdout.split())


def remove_project(name: str) -> None:
    down = ("down", "--volumes", "--remove-orphans", "--timeout", "5")
    subprocess.run(
        ["docker", "compose", "--project-name", name, *down],
        capture_output=True,
        env=compose_environment(),
        check=False,
    )
    if images := _labelled("image", name):
        _docker("image", "rm", "--force", *images)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# How to list each kind of object with its project label (docker's commands differ).
LISTINGS = {
    "container": (("--all",), ".Config.Labels"),
    "image": (("--all",), ".Config.Labels"),
    "volume": ((), ".Labels"),
}


def remove_abandoned_projects() -> None:
    """Take away test projects whose pytest process is gone (a run that was killed)."""
    projects = set()
    for kind, (flags, labels) in LISTINGS.items():
        listing = _docker(kind, "ls", *flags, "--quiet", "--filter", f"label={LABEL}")
        if ids := sorted(set(listing.stdout.split())):
            names = _docker(kind, "inspect", "--format", f'{{{{index {labels} "{LABEL}"}}}}', *ids)
            projects |= set(names.stdout.split())
    for name in projects:
        match = re.fullmatch(rf"{PREFIX}(\d+)-.+", name)
        if match is not None and not alive(int(match[1])):
            remove_project(name)
