"""compose.yaml, the Dockerfile and their companions, checked without starting anything.

The Compose Specification schema and hadolint judge the files as written. Everything
about what the files mean (interpolation, profiles, `.env`) is read by Docker Compose
itself, `docker compose config`, which needs the CLI but no engine.
"""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.engine import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    REPO,
    ComposeFailed,
    compose_problem,
    config,
    dotenv_for,
    require,
)

BIN = REPO / ".venv" / "bin"
OURS = {"mlflow", "trainer", "api"}
ORIGINAL_VOLUMES = {"model_data", "mlflow_data", "mlflow_artifacts"}
# Secrets for the blocks that need one, URL-safe as .env.example asks.
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "MINIO_ROOT_PASSWORD": "minio-secret",
    "MLFLOW_ADMIN_PASSWORD": "admin-secret",
}
# Each way of filling .env that .env.example documents: (profiles, options).
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ".env.example as is": ((), ()),
    "profile postgres": (("postgres",), ()),
    "profile s3": (("s3",), ()),
    "profile monitoring": (("monitoring",), ()),
    "option auth": ((), ("auth",)),
}


def tool(name: str) -> str:
    """A tool from the project's virtualenv, or else from PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing; `make test` installs it (the dev extra)")
    return str(found)


@pytest.fixture(scope="module")
def compose_cli() -> None:
    require(compose_problem(), "the checks of what Docker Compose reads")


@pytest.fixture
def read(compose_cli: None, tmp_path: Path) -> Iterator[Any]:
    """`docker compose config` for one documented case of .env, services by name."""

    def services(case: str | None, **values: str) -> dict[str, Any]:
        if case is None:
            return dict(config(None, tmp_path)["services"])
        profiles, options = CASES[case]
        text = dotenv_for(ENV_EXAMPLE.read_text(), profiles, options, **(SECRETS | values))
        return dict(config(text, tmp_path)["services"])

    yield services


def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


# --- the files as written ------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification() -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [*command, str(COMPOSE_FILE)], capture_output=True, text=True, check=False
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


def test_the_dockerfile_needs_no_frontend_image() -> None:
    """A `# syntax=` line makes BuildKit pull a frontend: offline builds would fail."""
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE.read_text(), re.M | re.I)


def test_env_example_documents_every_variable_compose_reads() -> None:
    read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert read - documented == {"COMPOSE_PROJECT_NAME"}, "Compose itself sets that one"


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_env_files_stay_out_of_git_and_the_build_context() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".gitignore must list .env"
    assert dockerignore()[0] == "*", ".dockerignore is an allow-list"


def test_the_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    copies = re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text(), re.M)
    copied = {source.rstrip("/") for line in copies for source in line.split()[:-1]}
    allowed = {rule[1:].rstrip("/") for rule in dockerignore() if rule.startswith("!")}
    assert copied == allowed


def test_start_up_order_is_depends_on_with_conditions() -> None:
    for name, spec in raw_compose()["services"].items():
        for dependency, rule in (spec.get("depends_on") or {}).items():
            assert isinstance(rule, dict) and "condition" in rule, f"{name} -> {dependency}"


# --- what Docker Compose reads from them -------------------------------------------------


def test_the_default_stack_needs_no_env_file(read: Any) -> None:
    assert set(read(None)) == OURS


@pytest.mark.parametrize("case", CASES)
def test_published_ports_listen_on_loopback_only(read: Any, case: str) -> None:
    for name, service in read(case).items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)


@pytest.mark.parametrize("case", CASES)
def test_every_pulled_image_is_pinned_to_a_release(read: Any, case: str) -> None:
    services = read(case).values()
    built = {s["image"] for s in services if "build" in s}
    pulled = {s["image"] for s in services} - built
    base = re.search(r"^ARG PYTHON_IMAGE=(.+)$", DOCKERFILE.read_text(), re.M)
    assert base is not None
    for image in [*pulled, base[1]]:
        name, _, tag = image.rpartition(":")
        # A release, never a moving tag: 3.11.14-slim-bookworm, 15.18-bookworm, RELEASE.<date>
        assert name and re.search(r"\d+[.-]\d+", tag), f"{image} is not pinned to a release"


def test_one_service_builds_each_image_and_none_is_pulled(read: Any) -> None:
    services = read(None)
    builders = {name: s["build"]["target"] for name, s in services.items() if "build" in s}
    assert builders == {"mlflow": "trainer", "api": "api"}
    assert services["trainer"]["image"] == services["mlflow"]["image"] == "irisops-trainer"
    assert services["api"]["image"] == "irisops-api"
    for name in OURS:
        assert services[name]["pull_policy"] == "never", name


def test_the_original_volumes_hold_what_the_original_description_says(read: Any) -> None:
    mounts = {
        name: {(m["source"], m["target"], m.get("read_only", False)) for m in s["volumes"]}
        for name, s in read(None).items()
    }
    assert mounts == {
        "mlflow": {
            ("mlflow_data", "/data/mlflow_data", False),
            ("mlflow_artifacts", "/data/mlflow_artifacts", False),
        },
        "trainer": {("model_data", "/data/model_data", False)},
        "api": {
            ("model_data", "/data/model_data", True),
            ("inference_log", "/data/inference_log", False),
        },
    }
    assert {v for m in mounts.values() for v, *_ in m} == ORIGINAL_VOLUMES | {"inference_log"}


def test_long_running_services_have_python_healthchecks_and_jobs_never_restart(
    read: Any,
) -> None:
    for name, service in read("profile monitoring").items():
        if service["restart"] == "no":
            assert "healthcheck" not in service, name
            continue
        assert service["restart"] == "unless-stopped", name
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", name
    for name in ("mlflow", "api"):
        assert read(None)[name]["healthcheck"]["test"][1] == "python", f"{name} has no curl"


def test_profile_postgres_points_mlflow_at_postgresql(read: Any) -> None:
    services = read("profile postgres")
    assert "postgres" in services
    uri = services["mlflow"]["environment"]["IRISOPS_BACKEND_STORE_URI"]
    assert uri == "postgresql+psycopg2://mlflow:pg-secret@postgres:5432/mlflow"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_profile_s3_gives_storage_credentials_to_mlflow_alone(read: Any) -> None:
    services = read("profile s3")
    mlflow = services["mlflow"]["environment"]
    assert mlflow["IRISOPS_ARTIFACTS_DESTINATION"] == "s3://mlflow-artifacts/"
    assert mlflow["AWS_SECRET_ACCESS_KEY"] == "minio-secret"
    for name in ("trainer", "api"):
        assert not any(key.startswith("AWS_") for key in services[name]["environment"]), name


def test_option_auth_gives_every_client_the_credentials(read: Any) -> None:
    services = read("option auth")
    assert services["mlflow"]["environment"]["IRISOPS_TRACKING_AUTH"] == "true"
    assert services["mlflow"]["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-secret"
    for name in ("trainer", "api"):
        environment = services[name]["environment"]
        assert environment["MLFLOW_TRACKING_USERNAME"] == "admin", name
        assert environment["MLFLOW_TRACKING_PASSWORD"] == "admin-secret", name


@pytest.mark.parametrize(
    ("case", "secret"),
    [
        ("profile postgres", "POSTGRES_PASSWORD"),
        ("profile s3", "MINIO_ROOT_PASSWORD"),
        ("option auth", "MLFLOW_ADMIN_PASSWORD"),
    ],
)
def test_a_block_without_its_secret_stops_compose_with_the_secrets_name(
    read: Any, case: str, secret: str
) -> None:
    with pytest.raises(ComposeFailed) as failure:
        read(case, **{secret: ""})
    assert f"required variable {secret} is missing a value" in failure.value.result.stderr
