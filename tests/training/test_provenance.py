"""What a run records to be rebuilt: its code (commit and uncommitted changes), the versions
that shape the model, its data, and digests of the forest and of the served export."""

import re
import shutil
import subprocess
from pathlib import Path

import mlflow.artifacts
import pytest
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestClassifier

from irisops import bundle
from irisops.training import data, export, fit, provenance
from tests.conftest import Champion, Tracking
from tests.processes import irisops
from tests.training.conftest import (
    CHANGE,
    REPO,
    UNTRACKED,
    Checkout,
    champion_run,
    committed_copy,
    git,
)

SHA256 = re.compile(r"[0-9a-f]{64}")


def test_a_run_records_its_commit_versions_data_and_the_digests_of_what_it_made(
    tracking: Tracking, champion: Champion
) -> None:
    tags = MlflowClient(tracking.uri).get_run(champion_run(tracking, champion)).data.tags
    commit = git(REPO, "rev-parse", "HEAD")
    assert tags[provenance.TAG_COMMIT] == tags["mlflow.source.git.commit"] == commit
    assert tags[provenance.TAG_DIRTY] == str(bool(git(REPO, "status", "--porcelain"))).lower()
    for name, version in provenance.environment().items():
        assert tags[f"irisops.env.{name}"] == version
    assert set(provenance.PACKAGES) | {"python", "platform"} <= {
        key.removeprefix("irisops.env.") for key in tags
    }
    assert tags[provenance.TAG_DATA] == provenance.data_sha256(data.load())
    assert SHA256.fullmatch(tags[provenance.TAG_FOREST])
    _, served, _ = bundle.read_current(champion.model_dir)
    assert tags[provenance.TAG_ONNX] == served.sha256, "the digest of what the API serves"


def test_the_forest_digest_is_the_same_for_the_same_fit_and_differs_for_another(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    split = data.split(dataset, 0.2, 42)
    again = fit.fit(split, fit.TrainParams())
    other = fit.fit(split, fit.TrainParams(seed=43))
    assert provenance.forest_sha256(again) == provenance.forest_sha256(model)
    assert provenance.forest_sha256(other) != provenance.forest_sha256(model)


def test_the_onnx_export_of_the_same_forest_is_byte_identical(
    model: RandomForestClassifier, dataset: data.Dataset
) -> None:
    """So `irisops reproduce` compares the served file's sha256, not a canonical form."""
    again = fit.fit(data.split(dataset, 0.2, 42), fit.TrainParams())
    assert export.export(again, 4) == export.export(model, 4)


def test_a_run_from_a_dirty_tree_records_its_diff_and_untracked_files(
    tracking: Tracking, dirty_checkout: Checkout, dirty_run: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking.uri)
    tags = client.get_run(dirty_run).data.tags
    assert tags[provenance.TAG_COMMIT] == dirty_checkout.commit
    assert tags[provenance.TAG_DIRTY] == "true"
    assert SHA256.fullmatch(tags[provenance.TAG_CHANGES])
    directory = Path(
        mlflow.artifacts.download_artifacts(
            run_id=dirty_run,
            artifact_path="provenance",
            dst_path=str(tmp_path),
            tracking_uri=tracking.uri,
        )
    )
    diff = (directory / "git.diff").read_text()
    assert "+++ b/src/irisops/training/fit.py" in diff and f"+{CHANGE}" in diff
    assert (directory / "untracked.txt").read_text() == f"{UNTRACKED}\n"
    applied = subprocess.run(
        [
            "git",
            "-C",
            str(dirty_checkout.root),
            "apply",
            "--check",
            "--reverse",
            str(directory / "git.diff"),
        ],
        capture_output=True,
        text=True,
    )
    assert applied.returncode == 0, "the recorded diff is the checkout's change: " + applied.stderr


def test_require_clean_tree_refuses_a_dirty_tree_in_one_line_before_any_run(
    tracking: Tracking, dirty_checkout: Checkout, tmp_path: Path
) -> None:
    env = tracking.env(
        tmp_path, IRISOPS_REQUIRE_CLEAN_TREE="true", IRISOPS_EXPERIMENT="refused-dirty"
    )
    result = irisops("train", env=dirty_checkout.env(env))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "has uncommitted changes (1 changed, 1 untracked files)" in lines[0]
    assert "commit them, or stash them (git stash -u)" in lines[0]
    assert MlflowClient(tracking.uri).get_experiment_by_name("refused-dirty") is None


def test_a_clean_checkout_passes_require_clean_tree(tmp_path: Path) -> None:
    clean = committed_copy(tmp_path)
    code = provenance.source(clean.root / "src" / "irisops")
    assert code.commit == clean.commit and not code.dirty
    provenance.require_clean(code)


def test_outside_a_git_checkout_the_source_is_no_checkout(tmp_path: Path) -> None:
    installed = Path(shutil.copytree(REPO / "src" / "irisops", tmp_path / "irisops"))
    assert provenance.source(installed) == provenance.Source()
    assert provenance.input_tags(provenance.Source(), data.load())[provenance.TAG_COMMIT] == (
        "no git checkout"
    )
    with pytest.raises(provenance.DirtyTree, match="not a git checkout"):
        provenance.require_clean(provenance.Source())


def test_a_package_in_a_virtualenv_inside_a_checkout_is_not_that_checkout(tmp_path: Path) -> None:
    """An ignored .venv inside some project's checkout: its commit is not the package's."""
    project = committed_copy(tmp_path / "project")
    site = project.root / ".venv" / "lib" / "site-packages"
    installed = Path(shutil.copytree(REPO / "src" / "irisops", site / "irisops"))
    assert provenance.source(installed) == provenance.Source()
