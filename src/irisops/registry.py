"""The MLflow Model Registry: versions, the `champion`/`challenger` aliases, the promotion gate."""

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from irisops.bundle import BundleMetadata, ModelFiles, read_bundle

CHAMPION = "champion"
CHALLENGER = "challenger"
# Where the serving bundle sits inside a registered model version (MLflow's `extra_files`).
BUNDLE_SUBDIR = "extra_files"
TAG_DECISION = "irisops.promotion"
TAG_REASON = "irisops.promotion_reason"
# On the registered model: the version a person made champion with `irisops promote`.
TAG_PINNED = "irisops.pinned_champion"


class PromotionMode(StrEnum):
    GATE = "gate"
    NEVER = "never"
    FORCE = "force"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    @property
    def label(self) -> str:
        return "promoted" if self.promote else "not promoted"


@dataclass(frozen=True)
class Champion:
    version: str
    score: float | None
    # Chosen by hand: a rollback must outlive the next scheduled or `docker compose up` run.
    pinned: bool = False
    # The data `score` was measured on, when not the champion's own test split.
    basis: str = ""


def decide(mode: PromotionMode, metric: str, score: float, champion: Champion | None) -> Decision:
    """The gate: a new version must score at least as well as an unpinned champion."""
    if mode is PromotionMode.NEVER:
        return Decision(False, "--no-promote given")
    if mode is PromotionMode.FORCE:
        return Decision(True, "--force-promote given")
    if champion is None:
        return Decision(True, "no champion yet")
    version, best = champion.version, champion.score
    if champion.pinned:
        return Decision(
            False, f"champion v{version} was promoted by hand; only `irisops promote` replaces it"
        )
    if best is None:
        return Decision(True, f"champion v{version} has no {metric} to compare")
    basis = f" {champion.basis}" if champion.basis else ""
    if score >= best:
        return Decision(True, f"{metric} {score:.4f} >= champion v{version}'s {best:.4f}{basis}")
    return Decision(False, f"{metric} {score:.4f} < champion v{version}'s {best:.4f}{basis}")


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def champion(client: MlflowClient, name: str, metric: str) -> Champion | None:
    version = alias_version(client, name, CHAMPION)
    if version is None:
        return None
    number = str(version.version)
    pinned = pinned_version(client, name) == number
    return Champion(number, version_metric(client, version, metric), pinned)


def pinned_version(client: MlflowClient, name: str) -> str | None:
    """The pin holds only while `champion` still points at it; any other move ends it."""
    pinned: str | None = client.get_registered_model(name).tags.get(TAG_PINNED)
    return pinned


def pin(client: MlflowClient, name: str, version: str | None) -> None:
    if version is not None:
        client.set_registered_model_tag(name, TAG_PINNED, version)
    elif pinned_version(client, name) is not None:
        client.delete_registered_model_tag(name, TAG_PINNED)


@dataclass(frozen=True)
class VersionRecord:
    """A registered version with its run's metrics and parameters: what a comparison needs."""

    version: str
    run_id: str | None
    experiment_id: str | None
    metrics: dict[str, float]
    params: dict[str, str]


def version_record(client: MlflowClient, name: str, version: str) -> VersionRecord:
    run_id = client.get_model_version(name, version).run_id
    if run_id is None:
        return VersionRecord(version, None, None, {}, {})
    run = client.get_run(run_id)
    metrics = {key: float(value) for key, value in run.data.metrics.items()}
    return VersionRecord(version, run_id, run.info.experiment_id, metrics, dict(run.data.params))


def version_metric(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    if version.run_id is None:
        return None
    value = client.get_run(version.run_id).data.metrics.get(metric)
    return None if value is None else float(value)


def record_decision(client: MlflowClient, name: str, version: str, decision: Decision) -> None:
    client.set_model_version_tag(name, version, TAG_DECISION, decision.label)
    client.set_model_version_tag(name, version, TAG_REASON, decision.reason)


def download_bundle(client: MlflowClient, name: str, version: str, destination: Path) -> Path:
    """Fetch only the serving bundle of a registered version (not the pickled model).

    The whole bundle directory comes down (model.onnx, forest.npz when the version has
    one, metadata.json); `read_bundle` then verifies each file against its checksum.
    """
    source = client.get_model_version_download_uri(name, version)
    local = download_artifacts(
        artifact_uri=f"{source.rstrip('/')}/{BUNDLE_SUBDIR}",
        dst_path=str(destination),
        tracking_uri=client.tracking_uri,
    )
    return Path(local)


def fetch_bundle(
    client: MlflowClient, name: str, version: str, destination: Path
) -> tuple[BundleMetadata, ModelFiles]:
    metadata, files = read_bundle(download_bundle(client, name, version, destination))
    return metadata.model_copy(update={"version": version}), files
