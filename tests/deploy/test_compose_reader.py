"""compose.py reads like Docker Compose, and runner.py translates only addresses and paths.

The interpolation cases marked "as Compose" were checked against Docker Compose v2.40.3's
`config`; test_static.py repeats that check on the real files wherever Compose exists.
"""

from pathlib import Path

import pytest

from tests.deploy.compose import (
    ENV_EXAMPLE,
    ComposeError,
    container_command,
    dotenv_for,
    interpolate,
    load,
    parse_env_file,
)
from tests.deploy.runner import Translation


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:+x}", {"A": "1"}, "x"),
        ("${A:+x}", {"A": ""}, ""),
        ("${A+x}", {"A": ""}, "x"),
        ("$A/b and ${A}", {"A": "x"}, "x/b and x"),
        ("$$A", {"A": "x"}, "$A"),
        ("${A:-${B:-c}}", {}, "c"),
        ("localhost:${P:-5000}", {"P": "5001"}, "localhost:5001"),
    ],
)
def test_interpolation(text: str, variables: dict[str, str], expected: str) -> None:
    assert interpolate(text, variables) == expected


def test_a_required_variable_names_itself() -> None:
    with pytest.raises(ComposeError, match="required variable A is missing a value: set A"):
        interpolate("${A:?set A}", {"A": ""})
    assert interpolate("${A?set A}", {"A": ""}) == ""


def test_nested_text_is_interpolated_even_when_unused_as_compose() -> None:
    with pytest.raises(ComposeError, match="required variable B"):
        interpolate("${A:-${B:?}}", {"A": "set"})


def test_env_file_values_see_earlier_keys_and_the_shell_wins_as_compose() -> None:
    text = "# comment\nX=file\nY=${X}-y  # inline comment\nZ='${X}'\nexport Q=\"q r\"\n"
    assert parse_env_file(text, {}) == {"X": "file", "Y": "file-y", "Z": "${X}", "Q": "q r"}
    assert parse_env_file(text, {"X": "shell"})["Y"] == "shell-y"
    assert parse_env_file(text, {"X": "shell"})["X"] == "shell"


def test_switching_a_profile_on_follows_env_example() -> None:
    text = dotenv_for(ENV_EXAMPLE.read_text(), "postgres", POSTGRES_PASSWORD="pw")
    lines = text.splitlines()
    assert "COMPOSE_PROFILES=postgres" in lines
    assert "POSTGRES_PASSWORD=pw" in lines
    assert any(line.startswith("MLFLOW_BACKEND_STORE_URI=postgresql") for line in lines)
    assert any(line.startswith("#MLFLOW_ARTIFACTS_DESTINATION=") for line in lines)
    with pytest.raises(ComposeError, match="does not document"):
        dotenv_for(ENV_EXAMPLE.read_text(), "postgres", NO_SUCH_SETTING="x")


def project_with(tmp_path: Path, profile: str | None = None, **values: str) -> Path:
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv_for(ENV_EXAMPLE.read_text(), profile, **values))
    return env_file


def test_start_order_follows_depends_on_and_profiles(tmp_path: Path) -> None:
    assert load(env_file=project_with(tmp_path)).start_order() == ["mlflow", "api", "trainer"]
    postgres = load(env_file=project_with(tmp_path, "postgres", POSTGRES_PASSWORD="pw"))
    assert postgres.start_order() == ["postgres", "mlflow", "api", "trainer"]
    s3 = load(env_file=project_with(tmp_path, "s3", MINIO_ROOT_PASSWORD="pw"))
    assert s3.start_order() == ["minio", "minio-init", "mlflow", "api", "trainer"]
    # `docker compose up -d api` starts the tracking server too, but never trains.
    assert s3.start_order("api") == ["minio", "minio-init", "mlflow", "api"]


def test_the_command_is_the_image_entrypoint_with_the_service_command(tmp_path: Path) -> None:
    services = load(env_file=project_with(tmp_path)).services
    assert container_command(services["mlflow"]) == ("irisops", "tracking")
    assert container_command(services["trainer"]) == ("irisops", "train")
    assert container_command(services["api"]) == ("irisops", "serve")


def test_translation_maps_service_addresses_bind_addresses_ports_and_volume_paths(
    tmp_path: Path,
) -> None:
    project = load(env_file=project_with(tmp_path, "postgres", POSTGRES_PASSWORD="pw"))
    ports = {"mlflow": {5000: 15000}, "api": {8000: 18000}, "postgres": {5432: 15432}}
    root = tmp_path / "containers" / "mlflow"
    mlflow = Translation(project.services["mlflow"], ports, root).environment()
    assert mlflow["IRISOPS_TRACKING_HOST"] == "127.0.0.1"
    assert mlflow["IRISOPS_TRACKING_PORT"] == "15000"
    # Other containers' name for it, and the browser's name for the published port.
    assert mlflow["IRISOPS_ALLOWED_HOSTS"] == "127.0.0.1:15000,localhost:15000,127.0.0.1:15000"
    assert mlflow["IRISOPS_BACKEND_STORE_URI"] == (
        "postgresql+psycopg2://mlflow:pw@127.0.0.1:15432/mlflow"
    )
    assert mlflow["IRISOPS_ARTIFACTS_DESTINATION"] == f"{root}/data/mlflow_artifacts"
    assert mlflow["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000", "no such service here"

    trainer = Translation(project.services["trainer"], ports, tmp_path / "t").environment()
    assert trainer["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:15000"
    assert trainer["IRISOPS_MODEL_DIR"] == f"{tmp_path}/t/data/model_data"

    api = Translation(project.services["api"], ports, tmp_path / "a")
    healthcheck = project.services["api"].healthcheck
    assert healthcheck is not None
    assert "'http://127.0.0.1:18000/ready'" in api.argv(healthcheck)[-1]
