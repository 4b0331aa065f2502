"""`docker compose up -d` from nothing, then a rollback that the next `up` must not undo.

Every `up` runs the one-shot trainer again. Its new version becomes challenger, and the
gate would promote it over an equal champion; a champion chosen with `promote` is pinned,
so the rollback holds until a person promotes again.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.deploy.conftest import deployed
from tests.deploy.engine import Deployment, build_lock
from tests.deploy.registry import registry, served_version
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(900)


@dataclass
class Stack:
    deployment: Deployment
    seconds_to_healthy: dict[str, float]


@pytest.fixture(scope="module")
def stack(
    engine: None, tmp_path_factory: pytest.TempPathFactory, figures: dict[str, object]
) -> Iterator[Stack]:
    with deployed(tmp_path_factory, "lifecycle") as deployment:
        with build_lock():
            started = time.monotonic()
            deployment.compose("up", "-d")
        healthy = {}
        for service in ("mlflow", "api"):  # the API is healthy once it serves the first model
            deployment.wait_healthy(service)
            healthy[service] = round(time.monotonic() - started, 1)
        figures["compose_up_d_seconds_to_healthy"] = healthy
        yield Stack(deployment, healthy)


def test_up_d_from_nothing_ends_with_the_api_serving_version_1(stack: Stack) -> None:
    assert stack.deployment.wait_exited("trainer") == 0
    assert served_version(stack.deployment.api) == "1"
    assert stack.seconds_to_healthy["mlflow"] <= stack.seconds_to_healthy["api"]


def test_a_rollback_survives_the_next_up(stack: Stack) -> None:
    deployment = stack.deployment
    deployment.wait_exited("trainer")
    retrain = deployment.compose("run", "--rm", "trainer")
    assert "Decision: promoted" in retrain.stdout
    latest = registry(deployment.mlflow)["versions"][-1]
    wait_for(lambda: served_version(deployment.api) == latest, timeout=30, interval=0.5)

    deployment.compose("run", "--rm", "trainer", "promote", "1")
    wait_for(lambda: served_version(deployment.api) == "1", timeout=30, interval=0.5)

    last_run = deployment.inspect("trainer")["State"]["StartedAt"]
    deployment.compose("up", "-d")
    assert deployment.wait_exited("trainer", not_started_at=last_run) == 0
    assert "not promoted (champion v1 was promoted by hand" in deployment.logs("trainer")
    after = registry(deployment.mlflow)
    assert after["aliases"]["champion"] == "1"
    assert after["aliases"]["challenger"] == after["versions"][-1] != latest
    assert served_version(deployment.api) == "1"
