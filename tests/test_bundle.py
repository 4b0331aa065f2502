"""The served-model bundle: verified on read, published atomically."""

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from irisops import bundle
from irisops.bundle import BundleError, BundleMetadata, ModelFiles

ONNX = b"not really onnx, but bytes with a checksum"
FOREST = b"not really node arrays, but bytes with a checksum too"
FILES = ModelFiles(ONNX, FOREST)


# Enough switches for a reader to land between an unlink and a symlink, were there one.
SWITCHES = 5_000


def metadata(
    version: str = "1", payload: bytes = ONNX, forest: bytes | None = FOREST
) -> BundleMetadata:
    return BundleMetadata(
        registered_model="iris-classifier",
        version=version,
        run_id="run",
        class_names=["setosa", "versicolor", "virginica"],
        feature_names=["a", "b", "c", "d"],
        metrics={"test_accuracy": 1.0},
        sha256=bundle.sha256_of(payload),
        forest_sha256=None if forest is None else bundle.sha256_of(forest),
        created_at=datetime.now(UTC),
        example_input=[[5.1, 3.5, 1.4, 0.2]],
        example_probabilities=[[1.0, 0.0, 0.0]],
    )


def publish(model_dir: Path, version: str) -> Path:
    staged = bundle.stage(model_dir, FILES, metadata(version))
    bundle.activate(model_dir, staged)
    return staged


def test_a_published_bundle_reads_back_with_its_publication_time(tmp_path: Path) -> None:
    publish(tmp_path, "1")
    key, meta, data = bundle.read_current(tmp_path)
    assert data == FILES
    assert meta.version == "1"
    assert meta.published_at is not None
    assert key.startswith("versions/v1-")


def test_nothing_published_is_a_clear_error(tmp_path: Path) -> None:
    assert bundle.current_target(tmp_path) is None
    with pytest.raises(BundleError, match="no model published"):
        bundle.read_current(tmp_path)


def test_current_is_a_relative_symlink_so_the_volume_can_move(tmp_path: Path) -> None:
    publish(tmp_path, "1")
    link = tmp_path / bundle.CURRENT
    assert link.is_symlink()
    assert not link.readlink().is_absolute()


def test_publishing_switches_the_pointer_and_keeps_older_versions(tmp_path: Path) -> None:
    first = publish(tmp_path, "1")
    second = publish(tmp_path, "2")
    assert bundle.read_current(tmp_path)[1].version == "2"
    assert first.exists()
    assert second.exists()
    assert not list(tmp_path.glob(".current.*")), "the temporary link was renamed away"


def test_staging_does_not_change_what_is_served(tmp_path: Path) -> None:
    publish(tmp_path, "1")
    bundle.stage(tmp_path, FILES, metadata("2"))
    assert bundle.read_current(tmp_path)[1].version == "1"


def test_a_truncated_model_file_fails_its_checksum(tmp_path: Path) -> None:
    staged = publish(tmp_path, "1")
    (staged / bundle.MODEL_FILE).write_bytes(ONNX[:10])
    with pytest.raises(BundleError, match="checksum"):
        bundle.read_current(tmp_path)


def test_a_changed_forest_file_fails_its_checksum(tmp_path: Path) -> None:
    staged = publish(tmp_path, "1")
    (staged / bundle.FOREST_FILE).write_bytes(FOREST[:-1] + b"!")
    with pytest.raises(BundleError, match=r"forest\.npz .* does not match its sha256 checksum"):
        bundle.read_current(tmp_path)


def test_a_missing_forest_file_is_reported_as_incomplete(tmp_path: Path) -> None:
    staged = publish(tmp_path, "1")
    (staged / bundle.FOREST_FILE).unlink()
    with pytest.raises(BundleError, match=r"incomplete .*forest\.npz is missing"):
        bundle.read_current(tmp_path)


def test_a_bundle_from_before_the_forest_file_still_reads(tmp_path: Path) -> None:
    """No forest_sha256 in its metadata: the ONNX file alone, as bundles used to be."""
    staged = bundle.stage(tmp_path, ModelFiles(ONNX), metadata(forest=None))
    bundle.activate(tmp_path, staged)
    assert not (staged / bundle.FOREST_FILE).exists()
    assert bundle.read_current(tmp_path)[2] == ModelFiles(ONNX, None)


def test_a_forest_file_the_metadata_does_not_list_is_never_read(tmp_path: Path) -> None:
    staged = bundle.stage(tmp_path, ModelFiles(ONNX), metadata(forest=None))
    (staged / bundle.FOREST_FILE).write_bytes(b"dropped in later, checked by nobody")
    _, files = bundle.read_bundle(staged)
    assert files.forest is None


def test_a_forest_file_without_its_checksum_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="go together"):
        bundle.write_bundle(tmp_path, FILES, metadata(forest=None))
    with pytest.raises(BundleError, match="go together"):
        bundle.write_bundle(tmp_path, ModelFiles(ONNX), metadata())


def test_missing_metadata_is_reported_as_incomplete(tmp_path: Path) -> None:
    staged = publish(tmp_path, "1")
    (staged / bundle.METADATA_FILE).unlink()
    with pytest.raises(BundleError, match="incomplete"):
        bundle.read_current(tmp_path)


def test_garbage_metadata_is_reported_as_invalid(tmp_path: Path) -> None:
    staged = publish(tmp_path, "1")
    (staged / bundle.METADATA_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="invalid"):
        bundle.read_current(tmp_path)


def test_a_bundle_that_fails_verification_is_never_staged(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        bundle.stage(tmp_path, FILES, metadata(payload=b"other bytes"))
    assert list((tmp_path / bundle.VERSIONS).iterdir()) == []


def test_a_reader_never_finds_current_missing_while_it_is_switched(tmp_path: Path) -> None:
    """`current` is replaced by one rename: readers see the old target or the new, never none."""
    staged = [publish(tmp_path, version) for version in ("1", "2")]
    misses: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                (tmp_path / bundle.CURRENT / bundle.MODEL_FILE).open("rb").close()
            except OSError as exc:
                misses.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for flip in range(SWITCHES):
            bundle.activate(tmp_path, staged[flip % 2])
    finally:
        stop.set()
        reader.join()
    assert misses == []
