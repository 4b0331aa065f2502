"""Profile `postgres`: MLflow's backend store on PostgreSQL 15, set up from .env.example."""

import secrets
from collections.abc import Iterator

import pytest

from tests.deploy.conftest import deployed, started
from tests.deploy.engine import ComposeFailed, Deployment
from tests.deploy.registry import MODEL, registry, served_version

pytestmark = pytest.mark.timeout(900)
LIST_DATA = "import os; print(sorted(os.listdir('/data/mlflow_data')))"


@pytest.fixture(scope="module")
def deployment(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    password = secrets.token_hex(16)
    with started(
        tmp_path_factory, "postgres", profiles=("postgres",), POSTGRES_PASSWORD=password
    ) as deployment:
        yield deployment


def sql(deployment: Deployment, query: str) -> list[list[str]]:
    """psql in the postgres container, as the user and database .env.example names."""
    result = deployment.exec(
        "postgres", "psql", "--username", "mlflow", "--dbname", "mlflow", "-tAc", query
    )
    assert result.returncode == 0, result.stderr
    return [line.split("|") for line in result.stdout.splitlines() if line]


def test_the_registry_lives_in_postgresql_not_in_sqlite(deployment: Deployment) -> None:
    versions = sql(deployment, f"SELECT version FROM model_versions WHERE name = '{MODEL}'")
    aliases = sql(deployment, "SELECT alias, version FROM registered_model_aliases")
    assert [row[0] for row in versions] == registry(deployment.mlflow)["versions"]
    assert ["champion", "1"] in aliases
    assert "mlflow.db" not in deployment.python("mlflow", LIST_DATA)


def test_the_registry_survives_down_and_up(deployment: Deployment) -> None:
    before = registry(deployment.mlflow)
    served = served_version(deployment.api)
    deployment.compose("down")
    deployment.compose("up", "-d", "api")
    deployment.wait_healthy("api")
    assert registry(deployment.mlflow) == before
    assert served_version(deployment.api) == served


def test_an_empty_password_stops_up_before_anything_starts(
    engine: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with deployed(
        tmp_path_factory, "postgres-empty", profiles=("postgres",), POSTGRES_PASSWORD=""
    ) as deployment:
        with pytest.raises(ComposeFailed) as failure:
            deployment.compose("up", "-d")
        message = "required variable POSTGRES_PASSWORD is missing a value"
        assert message in failure.value.result.stderr
        assert deployment.volumes() == set()
