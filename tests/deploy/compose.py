"""Reading compose.yaml, .env and the Dockerfile the way Docker Compose and Docker do.

No Docker engine runs here, so the deployment tests run each service as a local process
(runner.py). For that to prove anything about the real file, it must be read by Compose's
rules: `.env` parsing and `${VAR}` interpolation (checked against the real `docker compose
config` in test_static.py wherever a Compose binary exists), profiles, `depends_on` with
its conditions, and the entrypoint each service's image gets from its Dockerfile stage.
This is the subset compose.yaml uses; anything outside it raises `ComposeError` rather
than being read some other way.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"


class ComposeError(Exception):
    """The file says something Compose would refuse, or that this reader does not support."""


# --- interpolation -------------------------------------------------------------------------

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, lookup: Mapping[str, str]) -> str:
    """Compose's `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
    `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}` and `$$`.

    Like Compose, the text after an operator is interpolated first, whether or not it is
    used: `${A:-${B:?}}` fails when B is unset even if A is set.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            out.append(_substitute(text[i + 2 : end], lookup))
            i = end + 1
        elif match := NAME.match(text, i + 1):
            out.append(lookup.get(match.group(), ""))
            i = match.end()
        else:
            raise ComposeError(f"invalid interpolation format in {text!r}")
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ComposeError(f"unclosed ${{ in {text!r}")


def _substitute(expression: str, lookup: Mapping[str, str]) -> str:
    match = NAME.match(expression)
    if match is None:
        raise ComposeError(f"invalid interpolation ${{{expression}}}")
    name, rest = match.group(), expression[match.end() :]
    if not rest:
        return lookup.get(name, "")
    operator = next((op for op in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(op)), None)
    if operator is None:
        raise ComposeError(f"unsupported interpolation ${{{expression}}}")
    argument = interpolate(rest[len(operator) :], lookup)
    value = lookup.get(name)
    present = value is not None and (value != "" or ":" not in operator)
    if operator.endswith("-"):
        return value if present and value is not None else argument
    if operator.endswith("?"):
        if not present or value is None:
            raise ComposeError(f"required variable {name} is missing a value: {argument}")
        return value
    return argument if present else ""


def parse_env_file(text: str, shell: Mapping[str, str]) -> dict[str, str]:
    """A `.env` file as Compose reads it: each value may use the shell's variables and the
    keys above it; the shell wins over the file, in values and in the result alike."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not NAME.fullmatch(key):
            raise ComposeError(f".env line {number} is not KEY=VALUE: {raw!r}")
        value = value.strip()
        if value.startswith("'") and value.endswith("'") and len(value) > 1:
            values[key] = value[1:-1]  # single quotes: literal
            continue
        if value.startswith('"') and value.endswith('"') and len(value) > 1:
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        values[key] = interpolate(value, {**values, **shell})
    return {**values, **shell}


# --- the model -----------------------------------------------------------------------------


class Condition(StrEnum):
    STARTED = "service_started"
    HEALTHY = "service_healthy"
    COMPLETED = "service_completed_successfully"


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: Condition
    required: bool


@dataclass(frozen=True)
class Port:
    target: int
    published: int | None


@dataclass(frozen=True)
class Mount:
    volume: str
    target: str
    read_only: bool


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None
    build_target: str | None
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    environment: dict[str, str]
    ports: tuple[Port, ...]
    expose: tuple[int, ...]
    volumes: tuple[Mount, ...]
    healthcheck: tuple[str, ...] | None
    depends_on: tuple[Dependency, ...]
    profiles: tuple[str, ...]
    restart: str

    @property
    def one_shot(self) -> bool:
        """A job, not a server: Compose would never restart it."""
        return self.restart == "no"

    @property
    def container_ports(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys([*(p.target for p in self.ports), *self.expose]))


@dataclass(frozen=True)
class Project:
    name: str
    services: dict[str, Service]
    volumes: tuple[str, ...]
    profiles: frozenset[str]
    variables: dict[str, str]

    def enabled(self, name: str) -> bool:
        profiles = self.services[name].profiles
        return not profiles or bool(self.profiles.intersection(profiles))

    def dependencies(self, name: str) -> list[Dependency]:
        """What `name` waits for; an optional dependency whose profile is off is skipped."""
        found = []
        for dependency in self.services[name].depends_on:
            if self.enabled(dependency.service):
                found.append(dependency)
            elif dependency.required:
                raise ComposeError(f"{name} requires {dependency.service}, whose profile is off")
        return found

    def start_order(self, *names: str) -> list[str]:
        """`names` (all enabled services if none) and what they depend on, dependencies first."""
        wanted = names or tuple(name for name in self.services if self.enabled(name))
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                raise ComposeError(f"dependency cycle through {name}")
            visiting.add(name)
            for dependency in self.dependencies(name):
                visit(dependency.service)
            visiting.discard(name)
            order.append(name)

        for name in wanted:
            visit(name)
        return order


def load(
    compose_file: Path = COMPOSE_FILE,
    env_file: Path | None = None,
    shell: Mapping[str, str] | None = None,
    profiles: Iterable[str] = (),
) -> Project:
    """`docker compose [--env-file FILE] [--profile P]... config`, as a `Project`.

    `shell` stands for the environment `docker compose` runs in (empty by default, so the
    caller's own variables never leak in); `env_file` defaults to `.env` beside the file.
    """
    shell = dict(shell or {})
    env_file = env_file or compose_file.parent / ".env"
    variables = parse_env_file(env_file.read_text(), shell) if env_file.exists() else shell
    raw = yaml.safe_load(compose_file.read_text())
    document = _interpolated(raw, variables)
    active = {p for p in variables.get("COMPOSE_PROFILES", "").split(",") if p} | set(profiles)
    services = {
        name: _service(name, spec, variables) for name, spec in document["services"].items()
    }
    return Project(
        name=document.get("name", compose_file.parent.name),
        services=services,
        volumes=tuple(document.get("volumes") or ()),
        profiles=frozenset(active),
        variables=variables,
    )


def _interpolated(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolated(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, variables) for key, value in node.items()}
    return node


def _strings(value: Any, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    raise ComposeError(f"{field}: use the exec (list) form, not {value!r}")


def _environment(value: Any, variables: Mapping[str, str]) -> dict[str, str]:
    """Both forms; a bare `KEY` (or `KEY: null`) takes the value from Compose's variables."""
    pairs: list[tuple[str, str | None]]
    if isinstance(value, list):
        pairs = [(k, v if sep else None) for k, sep, v in (str(e).partition("=") for e in value)]
    else:
        pairs = [(k, None if v is None else _scalar(v)) for k, v in (value or {}).items()]
    environment = {}
    for key, item in pairs:
        if item is None:
            if key in variables:
                environment[key] = variables[key]
        else:
            environment[key] = item
    return environment


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _port(entry: Any) -> Port:
    if isinstance(entry, dict):
        published = entry.get("published")
        return Port(int(entry["target"]), None if published is None else int(published))
    parts = str(entry).split("/")[0].rsplit(":", 2)
    if len(parts) == 1:
        return Port(int(parts[0]), None)
    return Port(int(parts[-1]), int(parts[-2]))


def _mount(entry: Any, service: str) -> Mount:
    if isinstance(entry, dict):
        if entry.get("type", "volume") != "volume":
            raise ComposeError(f"{service}: only named volumes are supported")
        return Mount(entry["source"], entry["target"], bool(entry.get("read_only", False)))
    source, _, rest = str(entry).partition(":")
    target, _, mode = rest.partition(":")
    if not target or source.startswith((".", "/", "~")):
        raise ComposeError(f"{service}: only named volumes are supported, not {entry!r}")
    return Mount(source, target, "ro" in mode.split(","))


def _healthcheck(spec: Any) -> tuple[str, ...] | None:
    if not spec or spec.get("disable"):
        return None
    test = spec["test"]
    if isinstance(test, str):
        return ("/bin/sh", "-c", test)
    kind, *argv = (str(item) for item in test)
    if kind == "NONE":
        return None
    if kind == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(argv))
    if kind != "CMD":
        raise ComposeError(f"healthcheck test must start with CMD, CMD-SHELL or NONE: {test!r}")
    return tuple(argv)


def _dependencies(value: Any) -> tuple[Dependency, ...]:
    if isinstance(value, list):
        return tuple(Dependency(name, Condition.STARTED, True) for name in value)
    return tuple(
        Dependency(
            name,
            Condition(spec.get("condition", Condition.STARTED)),
            bool(spec.get("required", True)),
        )
        for name, spec in (value or {}).items()
    )


def _service(name: str, spec: dict[str, Any], variables: Mapping[str, str]) -> Service:
    build = spec.get("build")
    return Service(
        name=name,
        image=spec.get("image"),
        build_target=build.get("target") if isinstance(build, dict) else None,
        entrypoint=_strings(spec.get("entrypoint"), f"{name}.entrypoint"),
        command=_strings(spec.get("command"), f"{name}.command"),
        environment=_environment(spec.get("environment"), variables),
        ports=tuple(_port(entry) for entry in spec.get("ports") or ()),
        expose=tuple(int(str(entry).split("/")[0]) for entry in spec.get("expose") or ()),
        volumes=tuple(_mount(entry, name) for entry in spec.get("volumes") or ()),
        healthcheck=_healthcheck(spec.get("healthcheck")),
        depends_on=_dependencies(spec.get("depends_on")),
        profiles=tuple(spec.get("profiles") or ()),
        restart=str(spec.get("restart", "no")),
    )


# --- the Dockerfile ------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), in order


def stages(dockerfile: Path = DOCKERFILE) -> dict[str, Stage]:
    """The build stages by name, each with its instructions (continuations joined)."""
    logical: list[str] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            named = len(words) == 3 and words[1].upper() == "AS"
            current = Stage(words[2] if named else str(len(found)), words[0], [])
            found[current.name] = current
        elif current is not None:
            current.instructions.append((instruction.upper(), arguments.strip()))
    return found


def _exec_form(arguments: str) -> tuple[str, ...]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        raise ComposeError(f"use the exec (JSON) form, not {arguments!r}") from None
    return tuple(str(item) for item in value)


def image_setting(target: str, instruction: str, dockerfile: Path = DOCKERFILE) -> str | None:
    """The last INSTRUCTION of stage `target` or of the stages it is built FROM."""
    by_name = stages(dockerfile)
    stage: Stage | None = by_name[target]
    while stage is not None:
        for name, arguments in reversed(stage.instructions):
            if name == instruction:
                return arguments
        stage = by_name.get(stage.base)
    return None


def container_command(service: Service, dockerfile: Path = DOCKERFILE) -> tuple[str, ...]:
    """What the container runs: Compose's entrypoint/command over the image's ENTRYPOINT/CMD."""
    if service.entrypoint is not None:
        return (*service.entrypoint, *(service.command or ()))
    if service.build_target is None:
        raise ComposeError(f"{service.name}: the image's entrypoint is unknown here")
    entrypoint = image_setting(service.build_target, "ENTRYPOINT", dockerfile)
    cmd = image_setting(service.build_target, "CMD", dockerfile)
    return (
        *(_exec_form(entrypoint) if entrypoint else ()),
        *(service.command if service.command is not None else _exec_form(cmd) if cmd else ()),
    )


# --- .env.example ---------------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^#?(?P<key>[A-Z_][A-Z0-9_]*)=")


def dotenv_for(example: str, profile: str | None = None, **values: str) -> str:
    """`.env.example` after following its own instructions for `profile`.

    That is: uncomment COMPOSE_PROFILES and the `### profile NAME` block, then set
    `values` (a documented key that is commented out is uncommented to set it).
    """
    lines = example.splitlines()
    in_block = False
    for index, line in enumerate(lines):
        if line.startswith("###"):
            in_block = profile is not None and line.startswith(f"### profile {profile}:")
        elif not line.strip():
            in_block = False
        match = ASSIGNMENT.match(line)
        if match is None:
            continue
        key = match["key"]
        if key == "COMPOSE_PROFILES":
            lines[index] = f"COMPOSE_PROFILES={profile}" if profile else line
        elif key in values:
            lines[index] = f"{key}={values[key]}"
        elif in_block:
            lines[index] = line.removeprefix("#")
    missing = set(values) - {m["key"] for m in map(ASSIGNMENT.match, lines) if m}
    if missing:
        raise ComposeError(f".env.example does not document {sorted(missing)}")
    if profile is not None and f"COMPOSE_PROFILES={profile}" not in lines:
        raise ComposeError(f".env.example has no way to switch on the {profile} profile")
    return "\n".join(lines) + "\n"
