"""`irisops reproduce RUN`: a run trained again from its record is identical, bit for bit, or
the command says what differs and why, exit 1; it records each attempt on the run.

Tests that edit a run's record train a run of their own first; the session champion's and
the dirty checkout's runs are only read (and tagged with the attempts)."""

import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from irisops.training import provenance
from irisops.training.reproduce import (
    FOREST,
    ONNX,
    TAG_AT,
    TAG_ENVIRONMENT,
    TAG_VERDICT,
    Difference,
    Kind,
    judge,
)
from tests.conftest import Champion, Tracking
from tests.processes import environment, free_port, irisops
from tests.training.conftest import UNTRACKED, Checkout, champion_run, git, trained

USAGE = 2


def reproduce(env: dict[str, str], run: str) -> subprocess.CompletedProcess[str]:
    return irisops("reproduce", run, env={**env, "COLUMNS": "200"})


def verdict(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of the output is the verdict."""
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def fresh_run(tracking: Tracking, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A run of this test alone, in a registered model of its own: the test may edit it."""
    env = tracking.env(tmp_path, IRISOPS_REGISTERED_MODEL=f"reproduce-{request.node.name}")
    return trained(env, "--n-estimators", "10")


@pytest.mark.parametrize("name", ["run id", "version"])
def test_a_run_of_the_suite_is_identical_and_the_run_records_the_attempt(
    tracking: Tracking, champion: Champion, name: str
) -> None:
    client = MlflowClient(tracking.uri)
    run_id = champion_run(tracking, champion)
    experiment = client.get_run(run_id).info.experiment_id
    runs, versions = (
        len(client.search_runs([experiment])),
        len(client.search_model_versions("name = 'iris-classifier'")),
    )
    result = reproduce(tracking.env(), run_id if name == "run id" else f"v{champion.version}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdict(result) == "identical"
    assert "• training again: a 100-tree forest, seed 42" in result.stdout
    tags = client.get_run(run_id).data.tags
    assert tags[TAG_VERDICT] == "identical"
    assert datetime.fromisoformat(tags[TAG_AT]).tzinfo is not None
    assert f"scikit-learn {tags['irisops.env.scikit-learn']}" in tags[TAG_ENVIRONMENT]
    assert len(client.search_runs([experiment])) == runs, "no run is created"
    assert len(client.search_model_versions("name = 'iris-classifier'")) == versions


def test_a_run_whose_recorded_data_differs_is_not_trained_again(
    tracking: Tracking, fresh_run: str
) -> None:
    client = MlflowClient(tracking.uri)
    client.set_tag(fresh_run, provenance.TAG_DATA, "0" * 64)
    result = reproduce(tracking.env(), fresh_run)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "data: Iris sha256 000000000000 recorded, " in result.stdout
    assert "training again" not in result.stdout
    assert verdict(result).startswith("not identical: the data differs, so nothing was trained")
    assert client.get_run(fresh_run).data.tags[TAG_VERDICT] == verdict(result)


def test_parameters_that_did_not_make_the_recorded_forest_change_the_verdict(
    tracking: Tracking, champion: Champion, fresh_run: str
) -> None:
    """The record claims the champion's 100-tree forest, but its parameters make 10 trees."""
    client = MlflowClient(tracking.uri)
    claimed = client.get_run(champion_run(tracking, champion)).data.tags
    for tag in (provenance.TAG_FOREST, provenance.TAG_ONNX):
        client.set_tag(fresh_run, tag, claimed[tag])
    result = reproduce(tracking.env(), fresh_run)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"forest: sha256 {claimed[provenance.TAG_FOREST][:12]} recorded, " in result.stdout
    assert f"ONNX export: sha256 {claimed[provenance.TAG_ONNX][:12]} recorded, " in result.stdout
    assert "metric" not in result.stdout, "the metrics were recorded by the 10-tree run"
    assert verdict(result).startswith(
        "not identical: forest and ONNX export differ; most likely a parameter: the recorded "
        "parameters do not rebuild the recorded forest"
    )


def test_a_dirty_run_is_identical_from_its_own_tree_and_elsewhere_names_the_code(
    tracking: Tracking, dirty_checkout: Checkout, dirty_run: str
) -> None:
    same = reproduce(dirty_checkout.env(tracking.env()), dirty_run)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "code:" not in same.stdout
    elsewhere = reproduce(tracking.env(), dirty_run)
    assert elsewhere.returncode == 0, "a comment changes no result"
    commit = dirty_checkout.commit[:12]
    assert (
        f"code: the run was trained at {commit} with uncommitted changes, this checkout is at "
    ) in elsewhere.stdout
    assert f"commit {commit} is not in this repository: git fetch it" in elsewhere.stdout


def test_from_its_commit_without_the_changes_the_recorded_diff_is_said_to_apply(
    tracking: Tracking, dirty_checkout: Checkout, dirty_run: str, tmp_path: Path
) -> None:
    later = dirty_checkout.copy(tmp_path / "later")
    later.root.joinpath(UNTRACKED).unlink()
    git(later.root, "stash", "--quiet")
    result = reproduce(later.env(tracking.env()), dirty_run)
    assert result.returncode == 0, result.stdout + result.stderr
    commit = dirty_checkout.commit[:12]
    assert (
        f"this checkout is at the same commit with no uncommitted changes; the run's "
        f"provenance/git.diff applies to {commit}: `git checkout {commit}` then `git apply`"
    ) in result.stdout


def test_the_verdict_blames_what_shapes_the_result_that_differs() -> None:
    before = [
        Difference(Kind.CODE, "code", "code: ..."),
        Difference(Kind.PACKAGE, "onnxruntime", "onnxruntime: 1.0 recorded, 1.1 here"),
        Difference(Kind.PACKAGE, "skl2onnx", "skl2onnx: 1.19 recorded, 1.20 here"),
    ]
    forest = judge(before, {FOREST: ["forest: ..."]})
    assert forest.text == "not identical: forest differs; most likely the code (code: ...)"
    onnx = judge(before, {ONNX: ["ONNX export: ..."]})
    assert onnx.text.endswith("most likely a package version (skl2onnx: 1.19 recorded, 1.20 here)")
    assert judge(before, {}).identical


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ("0" * 32, "run '00000000000000000000000000000000' is not on the tracking server"),
        ("v999", "iris-classifier v999 is not on the tracking server"),
        ("unrecorded", "has no irisops.data_sha256, irisops.forest_sha256, irisops.onnx_sha256"),
    ],
)
def test_a_run_that_cannot_be_tried_is_a_usage_error_in_one_line(
    tracking: Tracking, run: str, expected: str
) -> None:
    if run == "unrecorded":  # a run that recorded nothing, as runs before these records did
        client = MlflowClient(tracking.uri)
        run = client.create_run("0").info.run_id
    result = reproduce(tracking.env(), run)
    assert result.returncode == USAGE, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_an_unreachable_server_is_a_usage_error_that_says_how_to_start_one(
    tmp_path: Path,
) -> None:
    env = environment(
        tmp_path,
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        IRISOPS_TRACKING_RETRIES="0",
    )
    result = irisops("reproduce", "0" * 32, env=env, timeout=60)
    assert result.returncode == USAGE
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unreachable after 1 attempt" in result.stderr and "`irisops up`" in result.stderr
