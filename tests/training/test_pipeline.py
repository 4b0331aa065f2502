"""The training job against a real tracking server: what it logs, registers, gates and publishes.

These tests share one registered model of their own (not the session champion's), and
run in file order: first version, a worse one, the overrides, then rollback.
"""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from irisops import bundle
from irisops.bundle import sha256_of
from tests.conftest import Tracking
from tests.processes import free_port, irisops

MODEL = "iris-pipeline-test"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline_models")


@pytest.fixture(scope="module")
def env(tracking: Tracking, model_dir: Path) -> dict[str, str]:
    return tracking.env(model_dir, IRISOPS_REGISTERED_MODEL=MODEL)


@pytest.fixture(scope="module")
def client(tracking: Tracking) -> MlflowClient:
    return MlflowClient(tracking.uri)


@pytest.fixture(scope="module")
def first_run(env: dict[str, str]) -> str:
    result = irisops("train", "--n-estimators", "50", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def version_of(client: MlflowClient, alias: str) -> str:
    return str(client.get_model_version_by_alias(MODEL, alias).version)


def served_version(model_dir: Path) -> str | None:
    return bundle.read_current(model_dir)[1].version


def test_first_version_is_registered_promoted_and_published(
    first_run: str, client: MlflowClient, model_dir: Path
) -> None:
    assert "promoted (no champion yet)" in first_run
    assert version_of(client, "champion") == "1"
    assert version_of(client, "challenger") == "1"
    assert served_version(model_dir) == "1"
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["irisops.promotion"] == "promoted"
    assert tags["irisops.promotion_reason"] == "no champion yet"


def test_summary_shows_metrics_run_url_version_and_decision(
    first_run: str, tracking: Tracking
) -> None:
    for metric in ("test_accuracy", "test_f1_macro", "test_log_loss", "cv_accuracy_mean"):
        assert metric in first_run
    assert f"{tracking.uri}/#/experiments/" in first_run.replace("\n", "")
    assert f"{MODEL} v1" in first_run


def test_the_run_records_params_metrics_tags_and_dataset(
    first_run: str, client: MlflowClient
) -> None:
    version = client.get_model_version(MODEL, "1")
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
    assert run.data.tags["irisops.version"]
    assert run.inputs is not None
    inputs = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert {"iris-train", "iris-test"} <= set(inputs)
    assert all(d.digest for d in inputs.values())


def test_the_run_has_evaluation_plots_and_the_model_with_signature(
    first_run: str, client: MlflowClient, tmp_path: Path
) -> None:
    run_id = client.get_model_version(MODEL, "1").run_id
    assert run_id is not None
    artifacts = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "plots")
    }
    assert "plots/feature_importances.png" in artifacts
    assert "plots/per_class_metrics.png" in artifacts
    assert any("confusion_matrix" in path for path in artifacts), artifacts
    source = client.get_model_version_download_uri(MODEL, "1")
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
    first_run: str, client: MlflowClient, model_dir: Path, tmp_path: Path
) -> None:
    from irisops.registry import fetch_bundle

    metadata, onnx_bytes = fetch_bundle(client, MODEL, "1", tmp_path)
    _, served, served_bytes = bundle.read_current(model_dir)
    assert sha256_of(onnx_bytes) == served.sha256 == sha256_of(served_bytes)
    assert metadata.run_id == served.run_id


def test_published_metadata_describes_the_model(first_run: str, model_dir: Path) -> None:
    metadata = json.loads((model_dir / "current" / "metadata.json").read_text())
    assert metadata["version"] == "1"
    assert metadata["class_names"] == ["setosa", "versicolor", "virginica"]
    assert metadata["feature_names"] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert metadata["sha256"] == sha256_of((model_dir / "current" / "model.onnx").read_bytes())
    for key in ("run_id", "metrics", "created_at", "published_at"):
        assert metadata[key]


def test_a_worse_version_is_registered_as_challenger_but_not_served(
    first_run: str, env: dict[str, str], client: MlflowClient, model_dir: Path
) -> None:
    served_before = bundle.current_target(model_dir)
    result = irisops("train", "--n-estimators", "1", "--max-depth", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert "not promoted" in result.stdout
    assert version_of(client, "challenger") == "2"
    assert version_of(client, "champion") == "1"
    assert bundle.current_target(model_dir) == served_before
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["irisops.promotion"] == "not promoted"
    assert "<" in tags["irisops.promotion_reason"]


def test_no_promote_registers_without_touching_the_champion(
    first_run: str, env: dict[str, str], client: MlflowClient, model_dir: Path
) -> None:
    result = irisops("train", "--n-estimators", "50", "--no-promote", env=env)
    assert result.returncode == 0, result.stderr
    assert version_of(client, "champion") == "1"
    assert served_version(model_dir) == "1"


def test_force_promote_serves_even_a_worse_version(
    first_run: str, env: dict[str, str], client: MlflowClient, model_dir: Path
) -> None:
    result = irisops("train", "--n-estimators", "1", "--max-depth", "1", "--force-promote", env=env)
    assert result.returncode == 0, result.stderr
    forced = version_of(client, "champion")
    assert forced != "1"
    assert served_version(model_dir) == forced


def test_models_lists_versions_with_aliases(first_run: str, env: dict[str, str]) -> None:
    result = irisops("models", env={**env, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "champion" in result.stdout and "challenger" in result.stdout
    assert "test_accuracy" in result.stdout


def test_promote_rolls_back_to_an_earlier_version(
    first_run: str, env: dict[str, str], client: MlflowClient, model_dir: Path
) -> None:
    result = irisops("promote", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert version_of(client, "champion") == "1"
    assert served_version(model_dir) == "1"
    assert (
        client.get_model_version(MODEL, "1").tags["irisops.promotion_reason"]
        == "promoted by hand, pinned"
    )


def test_promote_of_an_unknown_version_is_one_clear_line(
    first_run: str, env: dict[str, str]
) -> None:
    result = irisops("promote", "999", env=env)
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


def test_contradictory_promotion_flags_are_refused(env: dict[str, str]) -> None:
    result = irisops("train", "--no-promote", "--force-promote", env=env)
    assert result.returncode == 1
    assert "contradict" in result.stderr
