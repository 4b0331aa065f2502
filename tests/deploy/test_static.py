"""compose.yaml, the Dockerfile and their companions, checked without running anything.

The Compose Specification schema and hadolint judge the files as written. Where a Docker
Compose v2 binary exists (it needs no engine for `config`), it reads compose.yaml with
each .env and must see what compose.py sees, which is what the deployment tests run.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from irisops.cli import app
from tests.deploy.compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    REPO,
    ComposeError,
    container_command,
    dotenv_for,
    image_setting,
    load,
    stages,
)
from tests.deploy.conftest import SETTINGS
from tests.deploy.images import IMAGE_EXTRAS

BIN = REPO / ".venv" / "bin"
OUR_SERVICES = {"mlflow", "trainer", "api"}
SEED_VOLUMES = {"model_data", "mlflow_data", "mlflow_artifacts"}


def raw_compose() -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def tool(name: str) -> str:
    """A tool from the project's virtualenv, or else from PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing; `make test` installs it (the dev extra)")
    return str(found)


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfiles() -> list[Path]:
    skip = {".venv", ".git", "node_modules"}
    return sorted(
        path
        for path in REPO.rglob("*Dockerfile*")
        if path.is_file() and not skip.intersection(path.relative_to(REPO).parts)
    )


def test_every_dockerfile_is_hadolint_clean() -> None:
    assert DOCKERFILE in dockerfiles()
    for dockerfile in dockerfiles():
        result = subprocess.run(
            [tool("hadolint"), "--no-color", str(dockerfile)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{dockerfile}:\n{result.stdout}{result.stderr}"


# --- what Docker Compose itself reads --------------------------------------------------


def compose_cli() -> list[str] | None:
    """`docker compose` (the v2 plugin) or a standalone v2 `docker-compose`, if present."""
    for program, *plugin in (["docker", "compose"], ["docker-compose"]):
        found = shutil.which(program)
        if found is None:
            continue
        command = [found, *plugin]
        version = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
        if version.returncode == 0 and "version v2" in version.stdout:
            return command
    return None


ENV_CASES: dict[str, str | None] = {
    "no .env": None,
    ".env.example as is": "",
    "profile postgres": "postgres",
    "profile s3": "s3",
}


def env_text(case: str) -> str | None:
    profile = ENV_CASES[case]
    if profile is None:
        return None
    example = ENV_EXAMPLE.read_text()
    return example if profile == "" else dotenv_for(example, profile, **SETTINGS[profile])


@pytest.mark.parametrize("case", ENV_CASES)
def test_docker_compose_reads_the_file_as_the_tests_do(case: str, tmp_path: Path) -> None:
    command = compose_cli()
    if command is None:
        pytest.skip(
            "no Docker Compose v2 here (`docker compose version` fails; the Docker CLI on "
            "this machine has no compose plugin): compose.py's reading is not cross-checked"
        )
    env_file = tmp_path / ".env"
    env_file.write_text(env_text(case) or "")
    result = subprocess.run(
        [
            *command,
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    theirs = json.loads(result.stdout)["services"]
    ours = load(env_file=env_file)
    assert set(theirs) == {name for name in ours.services if ours.enabled(name)}
    for name, service in theirs.items():
        assert service.get("environment", {}) == ours.services[name].environment, name


def test_the_default_stack_needs_no_env_file(tmp_path: Path) -> None:
    project = load(env_file=tmp_path / "absent.env")
    assert {name for name in project.services if project.enabled(name)} == OUR_SERVICES
    assert project.start_order() == ["mlflow", "api", "trainer"]


@pytest.mark.parametrize(
    ("profile", "secret"), [("postgres", "POSTGRES_PASSWORD"), ("s3", "MINIO_ROOT_PASSWORD")]
)
def test_a_profile_without_its_secret_stops_compose_with_its_name(
    profile: str, secret: str, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv_for(ENV_EXAMPLE.read_text(), profile))
    with pytest.raises(ComposeError, match=f"required variable {secret} is missing"):
        load(env_file=env_file)


def test_env_example_documents_every_variable_compose_reads() -> None:
    read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert read - documented == set()


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_env_files_stay_out_of_git_and_the_build_context() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".gitignore must list .env"
    assert dockerignore()[0] == "*", ".dockerignore is an allow-list"


# --- compose.yaml's promises ----------------------------------------------------------


def test_the_seeds_volumes_hold_what_the_seed_says() -> None:
    project = load(env_file=Path("/dev/null"))
    assert set(project.volumes) >= SEED_VOLUMES
    mounts = {
        name: {(m.volume, m.target, m.read_only) for m in service.volumes}
        for name, service in project.services.items()
    }
    assert mounts["mlflow"] == {
        ("mlflow_data", "/data/mlflow_data", False),
        ("mlflow_artifacts", "/data/mlflow_artifacts", False),
    }
    assert mounts["trainer"] == {("model_data", "/data/model_data", False)}
    assert mounts["api"] == {("model_data", "/data/model_data", True)}
    mlflow = project.services["mlflow"].environment
    assert mlflow["IRISOPS_BACKEND_STORE_URI"] == "sqlite:////data/mlflow_data/mlflow.db"
    assert mlflow["IRISOPS_ARTIFACTS_DESTINATION"] == "/data/mlflow_artifacts"


def test_long_running_services_have_healthchecks_and_jobs_never_restart() -> None:
    project = load(env_file=Path("/dev/null"))
    for name, service in project.services.items():
        if service.one_shot:
            assert service.healthcheck is None, name
        else:
            assert service.healthcheck is not None, f"{name} has no healthcheck"
            assert service.restart == "unless-stopped", name
    assert {name for name, s in project.services.items() if s.one_shot} == {"trainer", "minio-init"}
    for name in ("mlflow", "api"):
        healthcheck = project.services[name].healthcheck
        assert healthcheck is not None
        assert healthcheck[0] == "python", f"{name}: the image has no curl"


def test_start_up_order_is_depends_on_with_conditions() -> None:
    services = raw_compose()["services"]
    assert isinstance(services, dict)
    for name, spec in services.items():
        for dependency, rule in (spec.get("depends_on") or {}).items():
            assert isinstance(rule, dict) and "condition" in rule, f"{name} -> {dependency}"


def test_published_ports_listen_on_loopback_only() -> None:
    services = raw_compose()["services"]
    assert isinstance(services, dict)
    for name, spec in services.items():
        for port in spec.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_every_image_is_pinned() -> None:
    project = load(env_file=Path("/dev/null"))
    pulled = [s.image for s in project.services.values() if s.build_target is None]
    default_base = next(
        line.split("=", 1)[1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("ARG PYTHON_IMAGE=")
    )
    for image in [*pulled, default_base]:
        assert image is not None
        name, _, tag = image.rpartition(":")
        # A release, never a moving tag: 3.11.14-slim-bookworm, 15.18-bookworm, RELEASE.<date>
        assert name and re.search(r"\d+[.-]\d+", tag), f"{image} is not pinned to a release"


# --- the images ---------------------------------------------------------------------


def test_images_run_the_irisops_cli_as_a_fixed_non_root_user() -> None:
    for target in IMAGE_EXTRAS:
        assert image_setting(target, "ENTRYPOINT") == '["irisops"]', target
        user = image_setting(target, "USER")
        assert user is not None and user.split(":")[0].isdigit() and user[0] != "0", target


def test_services_run_the_commands_the_tests_run() -> None:
    project = load(env_file=Path("/dev/null"))
    commands = set(typer.main.get_group(app).commands)
    for name in OUR_SERVICES:
        entrypoint, subcommand, *_ = container_command(project.services[name])
        assert entrypoint == "irisops"
        assert subcommand in commands, f"{name} runs `irisops {subcommand}`"


def test_images_are_multi_stage_and_ship_only_their_virtualenv() -> None:
    by_name = stages()
    for target, extras in IMAGE_EXTRAS.items():
        copies = [args for name, args in by_name[target].instructions if name == "COPY"]
        assert copies == [f"--from=venv-{target} /opt/venv /opt/venv"], target
        install = next(a for n, a in by_name[f"venv-{target}"].instructions if "pip" in a)
        wanted = f"[{','.join(extras)}]" if extras else ".whl "
        assert "--constraint" in install and wanted in install + " ", target


def test_the_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    copied = {
        source.rstrip("/")
        for stage in stages().values()
        for name, args in stage.instructions
        if name == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    allowed = {rule[1:].rstrip("/") for rule in dockerignore() if rule.startswith("!")}
    assert copied == allowed
