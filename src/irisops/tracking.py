"""The MLflow tracking server: how we start it, and how clients wait for it."""

import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from irisops.config import Settings

if TYPE_CHECKING:
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

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


ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_PASSWORD"
SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"


class TrackingUnavailable(Exception):
    """The tracking server did not answer within the configured retries."""


class TrackingMisconfigured(Exception):
    """The server's settings cannot work; the message says which to change."""


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
    if settings.tracking_auth:
        command += ["--app-name", "basic-auth"]
    return command


def server_environment(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **SERVER_ENV}
    if settings.tracking_auth:
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(settings))
        env.setdefault(SECRET_KEY, csrf_secret(settings))
    return env


def csrf_secret(settings: Settings) -> str:
    """The auth app's CSRF key: generated once and kept in mlflow_data, readable by us only."""
    path = settings.mlflow_data_dir / "flask_secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def write_auth_config(settings: Settings) -> Path:
    """MLflow's basic-auth settings, with the user store persisted beside the backend store.

    MLflow's shipped config keeps users in `basic_auth.db` relative to the working
    directory, which a container loses. There is no default admin password: MLflow
    creates the admin on first start from MLFLOW_AUTH_ADMIN_PASSWORD, and we refuse to
    start without it rather than let MLflow fail later with a less direct message.
    """
    users = settings.mlflow_data_dir / "basic_auth.db"
    if not users.exists() and not os.environ.get(ADMIN_PASSWORD):
        raise TrackingMisconfigured(
            f"IRISOPS_TRACKING_AUTH is on but {ADMIN_PASSWORD} is not set: the first start "
            "creates the admin user with it (there is no default password)"
        )
    settings.mlflow_data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.mlflow_data_dir / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{users}\n"
        f"admin_username = {settings.auth_admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


def prepare_state(settings: Settings) -> None:
    database = sqlite_file(settings.backend_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        initialize_store(database)
    if settings.artifacts_destination is None:
        settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)


def sqlite_file(uri: str) -> Path | None:
    """The file of a `sqlite:////absolute/path` store, however the URI was given.

    The default store and one spelled out (compose and the Kubernetes local overlay name
    theirs) get the same whole-or-nothing creation; any other store is MLflow's to create.
    """
    path = uri.removeprefix("sqlite:///")
    return Path(path) if path != uri and path.startswith("/") else None


def initialize_store(database: Path) -> None:
    """Create the SQLite backend store whole, or not at all.

    `mlflow server` creates its tables on first start; stopped half-way (a `docker compose
    down` during the first `up`), it leaves a database that no later start can open
    ("table webhooks already exists"). So the tables are created under another name and
    the file is renamed into place once complete; a leftover from a killed attempt is
    started again from scratch.
    """
    if database.exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    partial = database.with_name(f"{database.name}.partial")
    partial.unlink(missing_ok=True)
    # The default experiment's artifact root, as `mlflow server --serve-artifacts` sets it.
    store = SqlAlchemyStore(f"sqlite:///{partial}", "mlflow-artifacts:/")  # type: ignore[no-untyped-call]
    store.engine.dispose()
    partial.replace(database)


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page in the MLflow UI."""
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def configure_client() -> None:
    for name, value in CLIENT_ENV.items():
        os.environ.setdefault(name, value)
    keep_error_answers()


class ErrorAnswer(Exception):
    """The tracking server's last answer to a request it failed every time (500, 503, ...).

    MLflow's client retries these and, once out of retries, raises urllib3's "too many 503
    error responses": the answer's body, where the server says what went wrong (SQLite's
    "database or disk is full"), is dropped. This keeps it, as the cause of that error.
    """

    def __init__(self, status: int, url: str, body: str) -> None:
        super().__init__(f"HTTP {status} for {url}: {body}")
        self.status, self.url, self.body = status, url, body

    @property
    def message(self) -> str:
        """What the server said: the `message` of MLflow's JSON errors, else the body."""
        import json

        try:
            said = json.loads(self.body)
        except ValueError:
            said = None
        text = said.get("message") if isinstance(said, dict) else None
        return str(text if text is not None else self.body)


def keep_error_answers() -> None:
    """Make MLflow's client keep the server's answer when it runs out of retries.

    MLflow builds its sessions' retry policy from the `Retry` its request module imports;
    sessions made from then on use this one.
    """
    import mlflow.utils.request_utils as request_utils
    from urllib3.exceptions import MaxRetryError, ResponseError
    from urllib3.util import Retry

    if getattr(request_utils.Retry, "keeps_error_answers", False):  # type: ignore[attr-defined]
        return

    class AnswerKeepingRetry(Retry):
        keeps_error_answers = True

        def increment(
            self,
            method: str | None = None,
            url: str | None = None,
            response: "BaseHTTPResponse | None" = None,
            error: Exception | None = None,
            _pool: "ConnectionPool | None" = None,
            _stacktrace: TracebackType | None = None,
        ) -> Self:
            try:
                return super().increment(method, url, response, error, _pool, _stacktrace)
            except MaxRetryError as exc:
                if (
                    response is None
                    or error is not None
                    or not isinstance(exc.reason, ResponseError)
                ):
                    raise
                try:
                    body = response.read(64 * 1024, decode_content=True).decode(errors="replace")
                except Exception:  # the answer itself broke off: keep what urllib3 said
                    raise exc from None
                answer = ErrorAnswer(response.status, exc.url or url or "", body)
                raise MaxRetryError(exc.pool, exc.url, exc.reason) from answer

    request_utils.Retry = AnswerKeepingRetry  # type: ignore[attr-defined,misc]


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
    attempts = f"{retries + 1} attempt{'s' if retries else ''}"
    raise TrackingUnavailable(
        f"MLflow tracking server at {uri} is unreachable after {attempts}: start it with "
        "`make run` or `irisops up` (the tracking server alone: `irisops tracking`), or set "
        "MLFLOW_TRACKING_URI (or IRISOPS_TRACKING_PORT) to where it listens"
    )
