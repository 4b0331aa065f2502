"""The `irisops` command's errors: one line that says what to do, exit 2 for usage errors."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import Tracking
from tests.processes import environment, free_port, irisops

USAGE = 2


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "╭" not in stderr, stderr
    return lines[0]


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str]:
    """Settings whose tracking server does not exist: anything that connects fails."""
    return environment(tmp_path, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("train", "--seed", "-1"), "Invalid value for '--seed'"),
        (("train", "--n-estimators", "0"), "Invalid value for '--n-estimators'"),
        (("train", "--cv-folds", "200"), "--cv-folds 200 is more than the 40 training samples"),
        (("train", "--test-size", "0.5", "--cv-folds", "26"), "use 2 to 25"),
        (("train", "--bogus"), "No such option: --bogus"),
        (("promote",), "Missing argument 'version'; see `irisops promote --help`"),
        (("promote", "latest"), "VERSION is a number such as 3 (or v3)"),
        (("promote", "3", "--gate", "--pin"), "--gate never pins"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_come_before_any_connection(
    nowhere: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    result = irisops(*args, env=nowhere, timeout=60)
    assert result.returncode == USAGE, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert line.startswith("error: ") and expected in line
    assert "unreachable" not in line


def test_debug_is_accepted_after_the_command_as_the_hint_says(nowhere: dict[str, str]) -> None:
    result = irisops("models", "--debug", env=nowhere, timeout=60)
    assert "No such option" not in result.stderr
    assert result.returncode == 1


def test_an_unreachable_server_names_the_commands_that_start_it(nowhere: dict[str, str]) -> None:
    line = one_line(irisops("models", env=nowhere, timeout=60).stderr)
    assert "unreachable after 1 attempt:" in line and "`make run`" in line


def test_promote_shows_its_retries_while_the_server_is_down(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        IRISOPS_TRACKING_RETRIES="2",
        IRISOPS_TRACKING_BACKOFF="0.1",
    )
    result = irisops("promote", "1", env=env, timeout=60)
    assert result.returncode == 1
    assert "retry 1/2 in 0.1 s" in result.stderr and "retry 2/2 in 0.2 s" in result.stderr


def test_train_help_has_plain_flags_and_explains_every_option(nowhere: dict[str, str]) -> None:
    text = irisops("train", "--help", env={**nowhere, "COLUMNS": "200"}).stdout
    assert "--no-no-promote" not in text and "<bool>" not in text
    words = " ".join(text.split())
    for option, help_text in [
        ("--min-samples-split <int range>", "Samples a node needs before it may split."),
        ("--min-samples-leaf <int range>", "Samples each leaf keeps."),
        ("--criterion <gini|entropy|log_loss>", "Split quality measure."),
        ("--test-size <float range>", "Share of the data held out for testing."),
        ("--cv-folds <int range>", "Cross-validation folds over the training split."),
        ("--max-depth <int range>", "Tree depth limit; omit it for unlimited depth."),
    ]:
        assert f"{option} {help_text}" in words, option


def test_promote_accepts_v2_and_names_the_versions_that_exist(
    tracking: Tracking, tmp_path: Path
) -> None:
    env = tracking.env(tmp_path, IRISOPS_REGISTERED_MODEL="cli-model")
    assert irisops("train", "--n-estimators", "5", env=env).returncode == 0
    accepted = irisops("promote", "v1", "--no-pin", env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert "cli-model v1 is champion" in accepted.stdout
    unknown = irisops("promote", "99", env=env)
    assert unknown.returncode == 1
    assert one_line(unknown.stderr) == "error: cli-model has no version 99; its versions: 1"


class Failing(BaseHTTPRequestHandler):
    """A tracking server that fails every request with 503 and MLflow's JSON error."""

    message = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": self.message})
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "(raised as a result of Query-invoked autoflush)\n"
            "(sqlite3.OperationalError) database or disk is full\n[SQL: INSERT INTO experiments]",
            "could not write to its database: database or disk is full "
            "(HTTP 503 on every try of experiments/create); free space where its backend",
        ),
        ("the store is locked\nmore", "failed experiments/create (HTTP 503 on every try): the "),
    ],
)
def test_what_the_server_said_when_it_failed_every_try_is_the_line(
    monkeypatch: pytest.MonkeyPatch, message: str, expected: str
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from irisops.cli import explain
    from irisops.tracking import configure_client

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    configure_client()
    handler = type("Answer", (Failing,), {"message": message})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        with pytest.raises(MlflowException) as failed:
            MlflowClient(uri).create_experiment("any")
        server.shutdown()
    line = explain(failed.value)
    assert line.startswith(f"the tracking server at {uri} ") and expected in line, line
    assert "\n" not in line
