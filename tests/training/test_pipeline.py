"""The training job against a real tracking server: what it logs, registers, gates and publishes.

Every test holds alone and in any order. Each uses a registered model of its own (never the
session champion's): `first` is shared by tests that only read, `gated` by tests whose
versions never replace its champion, and a test that moves the champion trains into a fresh
registered model.
"""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import pytest

from irisops import bundle
from irisops.bundle import sha256_of
from tests.conftest import Tracking
from tests.processes import free_port, irisops
from tests.registries import Registry

# Versions a test only needs to exist; all score the same on the default split.
FAST = ("--n-estimators", "10")
# A one-split stump: scores below any of them.
WORSE = ("--n-estimators", "1", "--max-depth", "1")
# What MLflow prints of its own: log records, the registry's notices, the run's links.
MLFLOW_LINES = (
    "INFO mlflow.",
    "Successfully registered model",
    "already exists. Creating a new version",
    "Created version",
    "View run",
    "View experiment",
)


@dataclass(frozen=True)
class FirstVersion:
    registry: Registry
    result: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.result.stdout


@pytest.fixture(scope="module")
def first(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> FirstVersion:
    """Version 1 of a fresh registered model: its tests only read, so aliases stay on v1."""
    registry = Registry(tracking, tmp_path_factory.mktemp("first"), "pipeline-first")
    result = registry.run("train", "--n-estimators", "50")
    assert result.returncode == 0, result.stdout + result.stderr
    return FirstVersion(registry, result)


@pytest.fixture(scope="module")
def gated(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A champion v1 that its tests' versions never replace (worse ones, or --no-promote)."""
    registry = Registry(tracking, tmp_path_factory.mktemp("gated"), "pipeline-gated")
    registry.cli("train", *FAST)
    return registry


@pytest.fixture
def fresh(tracking: Tracking, tmp_path: Path, request: pytest.FixtureRequest) -> Registry:
    """A registered model of this test alone, with v1 champion and served."""
    registry = Registry(tracking, tmp_path, f"pipeline-{request.node.name}")
    registry.cli("train", *FAST)
    assert registry.champion() == registry.served() == "1"
    return registry


def new_version(registry: Registry, *args: str) -> tuple[str, str]:
    """Train into REGISTRY; the new version and what the command printed."""
    output = registry.cli("train", *args)
    return registry.alias("challenger"), output


def mlflow_lines(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {line for line in MLFLOW_LINES if line in result.stdout + result.stderr}


def test_first_version_is_registered_promoted_and_published(first: FirstVersion) -> None:
    registry = first.registry
    assert "promoted (no champion yet)" in first.output
    assert registry.champion() == registry.alias("challenger") == registry.served() == "1"
    tags = registry.client.get_model_version(registry.name, "1").tags
    assert tags["irisops.promotion"] == "promoted"
    assert tags["irisops.promotion_reason"] == "no champion yet"


def test_summary_shows_metrics_run_url_version_and_decision(
    first: FirstVersion, tracking: Tracking
) -> None:
    for metric in ("test_accuracy", "test_f1_macro", "test_log_loss", "cv_accuracy_mean"):
        assert metric in first.output
    assert f"{tracking.uri}/#/experiments/" in first.output.replace("\n", "")
    assert f"{first.registry.name} v1" in first.output


def test_training_prints_our_progress_and_summary_but_no_mlflow_lines(
    first: FirstVersion, gated: Registry
) -> None:
    """A first version and a later one: MLflow words their registration differently."""
    later = gated.run("train", *FAST, "--no-promote")
    for result in (first.result, later):
        assert result.returncode == 0, result.stdout + result.stderr
        assert "• training a" in result.stdout and "Decision:" in result.stdout
        assert mlflow_lines(result) == set(), result.stdout + result.stderr


def test_debug_shows_mlflow_lines_as_well(gated: Registry) -> None:
    result = gated.run("train", *FAST, "--no-promote", "--debug")
    assert result.returncode == 0, result.stdout + result.stderr
    assert mlflow_lines(result) == set(MLFLOW_LINES) - {"Successfully registered model"}


def test_the_run_records_params_metrics_tags_and_dataset(first: FirstVersion) -> None:
    client = first.registry.client
    version = client.get_model_version(first.registry.name, "1")
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["n_estimators"] == "50"
    for name in (
        "max_depth",
        "min_samples_leaf",
        "max_features",
        "criterion",
        "seed",
        "test_size",
        "cv_folds",
    ):
        assert name in params
    metrics = run.data.metrics
    for name in (
        "test_accuracy",
        "test_f1_macro",
        "test_precision_macro",
        "test_recall_macro",
        "test_log_loss",
        "cv_accuracy_mean",
        "cv_accuracy_std",
    ):
        assert name in metrics
    assert metrics["parity_max_probability_diff"] <= 1e-5
    assert metrics["parity_forest_max_probability_diff"] <= 1e-5
    assert metrics["parity_onnx_max_probability_diff"] <= 1e-5
    assert run.data.tags["irisops.version"]
    assert run.inputs is not None
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert {"iris-train", "iris-test"} <= set(inputs)
    assert all(d.digest for d in inputs.values())


def test_the_run_has_evaluation_plots_and_the_model_with_signature(
    first: FirstVersion, tmp_path: Path
) -> None:
    client, name = first.registry.client, first.registry.name
    run_id = client.get_model_version(name, "1").run_id
    assert run_id is not None
    artifacts = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "plots")
    }
    assert "plots/feature_importances.png" in artifacts
    assert "plots/per_class_metrics.png" in artifacts
    assert any("confusion_matrix" in path for path in artifacts), artifacts
    source = client.get_model_version_download_uri(name, "1")
    from mlflow.artifacts import download_artifacts

    local = Path(
        download_artifacts(
            artifact_uri=source, dst_path=str(tmp_path), tracking_uri=client.tracking_uri
        )
    )
    mlmodel = (local / "MLmodel").read_text()
    assert "sepal_length" in mlmodel and "petal_width" in mlmodel  # named-feature signature
    assert (local / "input_example.json").exists()
    requirements = (local / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements


def test_the_registered_version_contains_exactly_what_is_served(
    first: FirstVersion, tmp_path: Path
) -> None:
    from irisops.registry import fetch_bundle

    registry = first.registry
    metadata, files = fetch_bundle(registry.client, registry.name, "1", tmp_path)
    _, served, served_files = bundle.read_current(registry.model_dir)
    assert sha256_of(files.onnx) == served.sha256 == sha256_of(served_files.onnx)
    assert files.forest is not None and served_files.forest is not None
    assert sha256_of(files.forest) == served.forest_sha256 == sha256_of(served_files.forest)
    assert metadata.run_id == served.run_id


def test_published_metadata_describes_the_model(first: FirstVersion) -> None:
    current = first.registry.model_dir / "current"
    metadata = json.loads((current / "metadata.json").read_text())
    assert metadata["version"] == "1"
    assert metadata["class_names"] == ["setosa", "versicolor", "virginica"]
    assert metadata["feature_names"] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert metadata["sha256"] == sha256_of((current / "model.onnx").read_bytes())
    for key in ("run_id", "metrics", "created_at", "published_at"):
        assert metadata[key]


def test_the_training_reference_rides_in_the_bundle_and_the_run(
    first: FirstVersion, tmp_path: Path
) -> None:
    """The profile of the training rows (the split's, not the whole data set's)."""
    _, metadata, _ = bundle.read_current(first.registry.model_dir)
    reference = metadata.reference
    assert reference is not None
    assert [f.name for f in reference.features] == metadata.feature_names
    assert reference.rows == 120, "the 80% training split of 150 rows"
    client = first.registry.client
    run_id = client.get_model_version(first.registry.name, "1").run_id
    assert run_id is not None
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{run_id}/reference_profile.json",
        dst_path=str(tmp_path),
        tracking_uri=client.tracking_uri,
    )
    assert json.loads(Path(path).read_text()) == reference.model_dump()


def test_a_worse_version_is_registered_as_challenger_but_not_served(gated: Registry) -> None:
    served_before = bundle.current_target(gated.model_dir)
    version, output = new_version(gated, *WORSE)
    assert "not promoted" in output
    assert gated.champion() == "1"
    assert bundle.current_target(gated.model_dir) == served_before
    tags = gated.client.get_model_version(gated.name, version).tags
    assert tags["irisops.promotion"] == "not promoted"
    assert "<" in tags["irisops.promotion_reason"]


def test_no_promote_registers_without_touching_the_champion(gated: Registry) -> None:
    version, _ = new_version(gated, *FAST, "--no-promote")
    assert version != "1"
    assert gated.champion() == gated.served() == "1"
    assert gated.reason(version) == "--no-promote given"


def test_force_promote_serves_even_a_worse_version(fresh: Registry) -> None:
    version, _ = new_version(fresh, *WORSE, "--force-promote")
    assert fresh.champion() == fresh.served() == version == "2"


def test_models_lists_versions_with_aliases(first: FirstVersion) -> None:
    output = first.registry.cli("models")
    assert "champion" in output and "challenger" in output
    assert "test_accuracy" in output


def test_promote_rolls_back_to_an_earlier_version(fresh: Registry) -> None:
    new_version(fresh, *WORSE, "--force-promote")
    assert fresh.champion() == "2"
    fresh.cli("promote", "1")
    assert fresh.champion() == fresh.served() == "1"
    assert fresh.reason("1") == "promoted by hand, pinned"


def test_promote_of_an_unknown_version_is_one_clear_line(first: FirstVersion) -> None:
    result = first.registry.run("promote", "999")
    assert result.returncode == 1
    assert "999" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_tracking_server_fails_clearly_and_publishes_nothing(
    tracking: Tracking, tmp_path: Path
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    env = tracking.env(
        tmp_path,
        MLFLOW_TRACKING_URI=uri,
        IRISOPS_TRACKING_RETRIES="2",
        IRISOPS_TRACKING_BACKOFF="0.1",
    )
    result = irisops("train", env=env, timeout=60)
    assert result.returncode == 1
    assert uri in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert list(tmp_path.iterdir()) == []


def test_contradictory_promotion_flags_are_refused(tracking: Tracking, tmp_path: Path) -> None:
    result = irisops("train", "--no-promote", "--force-promote", env=tracking.env(tmp_path))
    assert result.returncode == 1
    assert "contradict" in result.stderr
