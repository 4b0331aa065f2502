"""Publishing bundles into a test's own model directory, as the trainer does."""

from pathlib import Path

from irisops import bundle
from irisops.bundle import METADATA_FILE, MODEL_FILE, BundleMetadata
from tests.conftest import Champion

RELOAD_TIMEOUT = 15.0


def publish(model_dir: Path, onnx_bytes: bytes, metadata: BundleMetadata) -> Path:
    """Publish as the trainer does: stage a complete bundle, then swap `current` to it."""
    staged = bundle.stage(model_dir, onnx_bytes, metadata)
    bundle.activate(model_dir, staged)
    return staged


def champion_bundle(champion: Champion) -> tuple[bytes, BundleMetadata]:
    """The champion's bundle, read from the shared directory (which is never written to)."""
    _, metadata, onnx_bytes = bundle.read_current(champion.model_dir)
    return onnx_bytes, metadata


def as_version(metadata: BundleMetadata, version: str) -> BundleMetadata:
    return metadata.model_copy(update={"version": version})


def truncated_onnx(directory: Path, metadata: BundleMetadata, onnx_bytes: bytes) -> None:
    (directory / METADATA_FILE).write_text(metadata.model_dump_json())
    (directory / MODEL_FILE).write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
