"""The MLflow tracking server: how we start it, and how clients wait for it."""

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from irisops.config import Settings

# Environment the server runs with: no background job consumers (they outlive the
# server as orphans) and no telemetry (nothing leaves the machine).
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
# MLflow's client retries each request 7 times with exponential backoff by default:
# minutes of silence when the server is gone. Our own start-up wait handles slow starts.
CLIENT_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingUnavailable(Exception):
    """The tracking server did not answer within the configured retries."""


def server_command(settings: Settings) -> list[str]:
    """`mlflow server` with proxied artifacts: clients never write to the store themselves."""
    command = [
        "mlflow",
        "server",
        "--backend-store-uri",
        settings.backend_uri,
        "--artifacts-destination",
        settings.artifacts_root,
        "--serve-artifacts",
        "--host",
        settings.tracking_host,
        "--port",
        str(settings.tracking_port),
        "--workers",
        "1",
    ]
    if settings.allowed_hosts:
        command += ["--allowed-hosts", settings.allowed_hosts]
    return command


def server_environment() -> dict[str, str]:
    return {**os.environ, **SERVER_ENV}


def prepare_state(settings: Settings) -> None:
    if settings.backend_store_uri is None:
        settings.mlflow_data_dir.mkdir(parents=True, exist_ok=True)
    if settings.artifacts_destination is None:
        settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)


def configure_client() -> None:
    for name, value in CLIENT_ENV.items():
        os.environ.setdefault(name, value)


def is_up(uri: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_server(
    uri: str,
    retries: int,
    backoff: float,
    on_retry: Callable[[int, float], None] = lambda attempt, delay: None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll `/health` with exponential backoff (capped at 10 s) so start-up order is not fragile."""
    if not uri.startswith(("http://", "https://")):
        return  # a local store (file:, sqlite:) has no server to wait for
    for attempt in range(retries + 1):
        if is_up(uri):
            return
        if attempt < retries:
            delay = min(backoff * 2**attempt, 10.0)
            on_retry(attempt + 1, delay)
            sleep(delay)
    raise TrackingUnavailable(
        f"MLflow tracking server at {uri} is unreachable after {retries + 1} attempts "
        "(set MLFLOW_TRACKING_URI, or start it with `irisops tracking`)"
    )
