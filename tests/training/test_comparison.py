"""The gate compares like with like: the champion is scored on the challenger's test split.

The champion's recorded score is made deliberately low here (as a champion's own, harder
split could make it); a weaker challenger must still not replace it.
"""

import re

import pytest
from mlflow import MlflowClient

from irisops.training.comparison import TAG_CHAMPION_SCORE, TAG_DATA
from tests.conftest import Tracking
from tests.processes import irisops

MODEL = "comparison-model"
WEAK = ("--n-estimators", "1", "--max-depth", "1", "--seed", "7", "--test-size", "0.3")


@pytest.fixture(scope="module")
def env(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = tracking.env(tmp_path_factory.mktemp("comparison"), IRISOPS_REGISTERED_MODEL=MODEL)
    assert irisops("train", env=env).returncode == 0
    client = MlflowClient(tracking.uri)
    run_id = client.get_model_version(MODEL, "1").run_id
    assert run_id is not None
    client.log_metric(run_id, "test_accuracy", 0.5)  # what v1 "scored" on its own split
    return env


def test_a_weaker_challenger_on_another_split_cannot_replace_the_champion(
    env: dict[str, str], tracking: Tracking
) -> None:
    result = irisops("train", *WEAK, env=env)
    assert result.returncode == 0, result.stderr
    version = re.search(r"Version:\s+\S+ v(\d+)", result.stdout)
    assert version is not None
    client = MlflowClient(tracking.uri)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    tags = client.get_model_version(MODEL, version[1]).tags
    assert "< champion v1's" in tags["irisops.promotion_reason"]
    assert "on the same test split (sha256 " in tags["irisops.promotion_reason"]
    assert float(tags[TAG_CHAMPION_SCORE]) > 0.9, "v1 rescored, not its recorded 0.5"
    assert re.fullmatch(r"[0-9a-f]{64}", tags[TAG_DATA])


def test_the_report_and_promote_gate_judge_on_the_same_split(env: dict[str, str]) -> None:
    result = irisops("train", *WEAK, "--no-promote", env=env)
    version = re.search(r"Version:\s+\S+ v(\d+)", result.stdout)
    assert version is not None, result.stdout + result.stderr
    report = irisops("report", version[1], env=env).stdout
    assert "does not pass" in report and "on the same test split" in report
    promoted = irisops("promote", version[1], "--gate", env=env)
    assert f"v{version[1]}: not promoted" in promoted.stdout, promoted.stdout + promoted.stderr
