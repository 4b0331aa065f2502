"""What the CI workflows run, against a real tracking server: `make train-ci`, `make
promote-ci`, and the markdown comparison they post (`irisops report`)."""

import re
import socket
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import Tracking
from tests.processes import environment, irisops

REPO = Path(__file__).resolve().parent.parent
MARKER = "<!-- irisops report -->"


def make(target: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def github_files(tmp_path: Path) -> dict[str, str]:
    """The files GitHub Actions gives a step for its summary and its outputs."""
    files = {"GITHUB_STEP_SUMMARY": tmp_path / "summary.md", "GITHUB_OUTPUT": tmp_path / "out"}
    for path in files.values():
        path.touch()
    return {name: str(path) for name, path in files.items()}


def champion(env: dict[str, str]) -> str:
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    return str(
        client.get_model_version_by_alias(env["IRISOPS_REGISTERED_MODEL"], "champion").version
    )


def registered(env: dict[str, str], *args: str) -> str:
    """Train without promoting; the new version's number."""
    result = irisops("train", *args, "--no-promote", env=env)
    assert result.returncode == 0, result.stderr
    version = re.search(r"Version:\s+\S+ v(\d+)", result.stdout)
    assert version is not None, result.stdout
    return version[1]


@pytest.fixture(scope="module")
def registry_env(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A registered model of this module's own, with a champion (v1 until a test promotes)."""
    env = tracking.env(tmp_path_factory.mktemp("ci_models"), IRISOPS_REGISTERED_MODEL="ci-model")
    result = irisops("train", "--n-estimators", "10", env=env)
    assert result.returncode == 0, result.stderr
    return env


def test_train_ci_compares_the_new_version_with_the_champion_and_moves_nothing(
    registry_env: dict[str, str], tmp_path: Path
) -> None:
    before = champion(registry_env)  # v1, or a later one if the promote-ci test ran first
    github = github_files(tmp_path)
    env = {**registry_env, **github, "SUMMARY": str(tmp_path / "report.md")}
    result = make("train-ci", env, "TRAIN_ARGS=--n-estimators 10 --max-depth 1")
    assert result.returncode == 0, result.stdout + result.stderr
    report = (tmp_path / "report.md").read_text()
    version = re.search(rf"^### ci-model v(\d+) against champion v{before}$", report, re.M)
    assert version is not None, report
    assert report.startswith(MARKER)
    assert "| test_accuracy |" in report and "/#/experiments/" in report
    assert "**Gate** (`test_accuracy`, higher is better): does not pass" in report
    assert Path(github["GITHUB_STEP_SUMMARY"]).read_text() == report
    assert Path(github["GITHUB_OUTPUT"]).read_text() == f"version={version[1]}\n"
    assert champion(registry_env) == before, "train-ci never moves champion"


def test_promote_ci_promotes_only_what_the_gate_passes(registry_env: dict[str, str]) -> None:
    worse_v = registered(registry_env, "--n-estimators", "1", "--max-depth", "1")
    better_v = registered(registry_env, "--n-estimators", "10")
    refused = make("promote-ci", registry_env, f"VERSION={worse_v}")
    assert refused.returncode == 0, refused.stderr
    assert f"v{worse_v}: not promoted" in refused.stdout
    passed = make("promote-ci", registry_env, f"VERSION={better_v}")
    assert f"v{better_v}: promoted" in passed.stdout, passed.stdout + passed.stderr
    assert champion(registry_env) == better_v
    report = irisops("report", better_v, env=registry_env).stdout
    assert f"v{better_v} is the champion already" in report


def test_promote_ci_without_a_version_is_a_usage_error(registry_env: dict[str, str]) -> None:
    result = make("promote-ci", registry_env)
    assert result.returncode == 2
    assert "usage: make promote-ci VERSION=" in result.stdout


def test_train_ci_without_a_tracking_server_runs_a_throwaway_one(tmp_path: Path) -> None:
    env = environment(tmp_path / "home", SUMMARY=str(tmp_path / "report.md"))
    result = make("train-ci", env, "TRAIN_ARGS=--n-estimators 5")
    assert result.returncode == 0, result.stdout + result.stderr
    server = re.search(r"throwaway tracking server on http://127\.0\.0\.1:(\d+)", result.stdout)
    assert server is not None, result.stdout
    assert "against no champion yet" in (tmp_path / "report.md").read_text()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(server[1]))) != 0, "the server is gone"
