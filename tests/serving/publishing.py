"""Publishing bundles into a test's own model directory, as the trainer does."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from irisops import bundle
from irisops.bundle import FOREST_FILE, METADATA_FILE, MODEL_FILE, BundleMetadata, ModelFiles
from irisops.config import Settings
from irisops.serving.app import create_app
from irisops.training import data, export, fit
from irisops.training.pipeline import bundle_metadata, training_reference
from tests.conftest import Champion

RELOAD_TIMEOUT = 15.0


def publish_small_forest(model_dir: Path) -> None:
    """A 10-tree forest trained here and published as version 1: no tracking server needed."""
    dataset = data.load()
    split = data.split(dataset, 0.2, 0)
    model = fit.fit(split, fit.TrainParams(n_estimators=10))
    files = export.export_files(model, len(dataset.feature_names))
    reference = training_reference(dataset, split)
    metadata = bundle_metadata(
        model, files, dataset, {}, "in-process", Settings(), reference
    ).model_copy(update={"version": "1"})
    bundle.activate(model_dir, bundle.stage(model_dir, files, metadata))


@contextmanager
def in_process_app(home: Path, **settings: Any) -> Iterator[TestClient]:
    """The API in this process (Starlette's TestClient) serving a small forest from HOME."""
    publish_small_forest(home / "model_data")
    with TestClient(create_app(Settings(home=home, inference_log=False, **settings))) as app:
        yield app


def publish(model_dir: Path, files: ModelFiles, metadata: BundleMetadata) -> Path:
    """Publish as the trainer does: stage a complete bundle, then swap `current` to it."""
    staged = bundle.stage(model_dir, files, metadata)
    bundle.activate(model_dir, staged)
    return staged


def champion_bundle(champion: Champion) -> tuple[ModelFiles, BundleMetadata]:
    """The champion's bundle, read from the shared directory (which is never written to)."""
    _, metadata, files = bundle.read_current(champion.model_dir)
    return files, metadata


def as_version(metadata: BundleMetadata, version: str) -> BundleMetadata:
    return metadata.model_copy(update={"version": version})


def write_forest(directory: Path, files: ModelFiles) -> None:
    """The forest file as the trainer wrote it, beside a model file a test breaks."""
    assert files.forest is not None, "the champion was trained with its forest file"
    (directory / FOREST_FILE).write_bytes(files.forest)


def truncated_onnx(directory: Path, metadata: BundleMetadata, files: ModelFiles) -> None:
    (directory / METADATA_FILE).write_text(metadata.model_dump_json())
    (directory / MODEL_FILE).write_bytes(files.onnx[: len(files.onnx) // 2])
    write_forest(directory, files)
