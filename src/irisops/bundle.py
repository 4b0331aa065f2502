"""The served-model bundle: the model's files plus the metadata that describes them.

The files are data, never code: `model.onnx` (the ONNX export, for onnxruntime) and
`forest.npz` (the forest's node arrays, for the compiled walker; see `irisops.forest`).
Each is checked against the sha256 recorded in `metadata.json` before anything parses
it. Bundles made before `forest.npz` existed have no `forest_sha256` and no such file;
they stay valid and are served by onnxruntime.

A bundle is what the trainer hands to the API. It lives in two places: inside the
registered model version (so the registry holds exactly what is served) and in the
model directory, where publishing is atomic: a complete versioned directory is
written first, then the `current` symlink is swapped with one `rename`, so a reader
sees either the old bundle or the new one, never half of either.

This module must stay importable without scikit-learn, pandas or MLflow.
"""

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from irisops.profile import ReferenceProfile

MODEL_FILE = "model.onnx"
FOREST_FILE = "forest.npz"
METADATA_FILE = "metadata.json"
CURRENT = "current"
VERSIONS = "versions"


class BundleError(Exception):
    """A bundle is missing, incomplete or does not match its checksum."""


class BundleMetadata(BaseModel):
    registered_model: str
    version: str | None = Field(None, description="Registry version; set when published.")
    run_id: str
    model_id: str | None = None
    class_names: list[str]
    feature_names: list[str]
    metrics: dict[str, float]
    sha256: str = Field(description="Checksum of the ONNX file.")
    forest_sha256: str | None = Field(
        None, description="Checksum of forest.npz; absent in older bundles (served by ONNX)."
    )
    created_at: datetime
    published_at: datetime | None = None
    example_input: list[list[float]] = Field(description="Rows the loader re-predicts as a check.")
    example_probabilities: list[list[float]]
    reference: ReferenceProfile | None = Field(
        None, description="The training data's profile, for drift; absent in older bundles."
    )


@dataclass(frozen=True)
class ModelFiles:
    """The model's files as bytes: `forest` is None in bundles made before it existed."""

    onnx: bytes
    forest: bytes | None = None

    def names(self) -> list[str]:
        return [MODEL_FILE] if self.forest is None else [MODEL_FILE, FOREST_FILE]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(directory: Path, files: ModelFiles, metadata: BundleMetadata) -> None:
    if (files.forest is None) != (metadata.forest_sha256 is None):
        raise BundleError(f"{FOREST_FILE} and its checksum in the metadata go together")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(files.onnx)
    if files.forest is not None:
        (directory / FOREST_FILE).write_bytes(files.forest)
    (directory / METADATA_FILE).write_text(metadata.model_dump_json(indent=2))


def read_bundle(directory: Path) -> tuple[BundleMetadata, ModelFiles]:
    """Read and verify a bundle; every failure is a `BundleError` with the reason.

    A `forest.npz` that the metadata does not list (no checksum) is never read.
    """
    try:
        metadata = BundleMetadata.model_validate_json((directory / METADATA_FILE).read_bytes())
        onnx_bytes = (directory / MODEL_FILE).read_bytes()
        forest_bytes = None
        if metadata.forest_sha256 is not None:
            forest_bytes = (directory / FOREST_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise BundleError(f"incomplete bundle in {directory}: {exc.filename} is missing") from exc
    except ValidationError as exc:
        raise BundleError(f"invalid {METADATA_FILE} in {directory}: {exc}") from exc
    if sha256_of(onnx_bytes) != metadata.sha256:
        raise BundleError(f"{MODEL_FILE} in {directory} does not match its sha256 checksum")
    if forest_bytes is not None and sha256_of(forest_bytes) != metadata.forest_sha256:
        raise BundleError(f"{FOREST_FILE} in {directory} does not match its sha256 checksum")
    return metadata, ModelFiles(onnx_bytes, forest_bytes)


def current_target(model_dir: Path) -> str | None:
    """The name the `current` pointer resolves to: cheap enough to poll every second."""
    try:
        return str((model_dir / CURRENT).readlink())
    except (FileNotFoundError, NotADirectoryError):
        return None


def stage(model_dir: Path, files: ModelFiles, metadata: BundleMetadata) -> Path:
    """Write and re-read a complete bundle under `versions/`; nothing points at it yet."""
    versions = model_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC)
    published = metadata.model_copy(update={"published_at": stamp})
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=versions))
    try:
        write_bundle(staging, files, published)
        read_bundle(staging)  # what we wrote is what a reader will get
        final = versions / f"v{metadata.version}-{stamp:%Y%m%dT%H%M%S%f}"
        staging.rename(final)
    except OSError as exc:  # a full or read-only disk: say where, and that nothing changed
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(
            f"cannot write model version {metadata.version} to {model_dir}: {exc.strerror}; "
            "the served model is unchanged"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def activate(model_dir: Path, staged: Path) -> None:
    """Point `current` at a staged bundle with one atomic rename."""
    link = model_dir / f".{CURRENT}.{os.getpid()}"
    link.unlink(missing_ok=True)
    # Relative target: the directory keeps working when mounted elsewhere (a volume).
    link.symlink_to(staged.relative_to(model_dir))
    link.replace(model_dir / CURRENT)


def read_current(model_dir: Path) -> tuple[str, BundleMetadata, ModelFiles]:
    target = current_target(model_dir)
    if target is None:
        raise BundleError(f"no model published in {model_dir} yet")
    metadata, files = read_bundle(model_dir / target)
    return target, metadata, files
