"""Fixtures for the deployment tests: a real engine, and throwaway compose projects."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from tests.deploy.engine import (
    Deployment,
    build_lock,
    engine_problem,
    remove_abandoned_projects,
    require,
)

PORTS = ("MLFLOW_PORT", "API_PORT")


@pytest.fixture(scope="session")
def engine() -> None:
    require(engine_problem(), "the compose tests on a real engine")
    remove_abandoned_projects()


@contextmanager
def deployed(
    factory: pytest.TempPathFactory,
    label: str,
    ports: Sequence[str] = PORTS,
    profiles: Sequence[str] = (),
    options: Sequence[str] = (),
    overrides: Sequence[str] = (),
    **values: str,
) -> Iterator[Deployment]:
    """A project copy with its own name, ports and .env; removed afterwards, also on failure."""
    root = factory.mktemp(label)
    deployment = Deployment.create(root, label, ports, profiles, options, overrides, **values)
    try:
        yield deployment
    finally:
        deployment.remove()


@contextmanager
def started(
    factory: pytest.TempPathFactory,
    label: str,
    ports: Sequence[str] = PORTS,
    before_up: Callable[[Deployment], object] = lambda deployment: None,
    **settings: Any,
) -> Iterator[Deployment]:
    """`docker compose up -d`, then the trainer's first run done and the API serving it."""
    with deployed(factory, label, ports, **settings) as deployment:
        before_up(deployment)
        with build_lock():
            deployment.compose("up", "-d")
        assert deployment.wait_exited("trainer") == 0, deployment.logs("trainer")
        deployment.wait_healthy("api")
        yield deployment
