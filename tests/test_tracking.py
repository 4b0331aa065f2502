"""The tracking server command, and how clients wait for a server that is not there."""

from pathlib import Path

import pytest

from irisops.config import Settings
from irisops.tracking import TrackingUnavailable, prepare_state, server_command, wait_for_server
from tests.processes import free_port


def test_server_proxies_artifacts_and_never_uses_a_local_default_artifact_root(
    tmp_path: Path,
) -> None:
    command = server_command(Settings(home=tmp_path))
    assert "--default-artifact-root" not in command
    assert command[command.index("--artifacts-destination") + 1] == str(
        tmp_path / "mlflow_artifacts"
    )
    assert "--serve-artifacts" in command
    assert command[command.index("--backend-store-uri") + 1].startswith("sqlite:////")


def test_server_binds_loopback_with_one_worker_by_default(tmp_path: Path) -> None:
    command = server_command(Settings(home=tmp_path))
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5000"
    assert command[command.index("--workers") + 1] == "1"
    assert "--allowed-hosts" not in command


def test_allowed_hosts_are_passed_through(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, allowed_hosts="mlflow:5000,localhost:5000")
    command = server_command(settings)
    assert command[command.index("--allowed-hosts") + 1] == "mlflow:5000,localhost:5000"


def test_unreachable_server_retries_with_backoff_then_names_the_uri() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    delays: list[float] = []
    with pytest.raises(TrackingUnavailable, match=uri):
        wait_for_server(uri, 3, 0.5, sleep=delays.append)
    assert delays == [0.5, 1.0, 2.0]


def test_a_local_store_has_nothing_to_wait_for() -> None:
    wait_for_server("sqlite:///tmp/x.db", 0, 0)


def test_a_single_attempt_is_said_in_the_singular_and_the_message_names_the_fix() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnavailable) as failure:
        wait_for_server(uri, 0, 0)
    message = str(failure.value)
    assert f"{uri} is unreachable after 1 attempt:" in message
    assert "`make run`" in message and "MLFLOW_TRACKING_URI" in message


@pytest.mark.parametrize("spelled_out", [False, True], ids=["default", "spelled-out"])
def test_a_sqlite_store_is_created_whole_before_the_server_starts(
    tmp_path: Path, spelled_out: bool
) -> None:
    """Also when the URI is given, as compose and the Kubernetes local overlay give it."""
    database = tmp_path / "mlflow_data" / "mlflow.db"
    uri = f"sqlite:///{database}" if spelled_out else None
    prepare_state(Settings(home=tmp_path, backend_store_uri=uri))
    assert database.stat().st_size > 0
    assert not database.with_name("mlflow.db.partial").exists()


def test_other_stores_are_left_to_mlflow(tmp_path: Path) -> None:
    prepare_state(Settings(home=tmp_path, backend_store_uri="postgresql://u:p@db/mlflow"))
    assert not (tmp_path / "mlflow_data").exists()
