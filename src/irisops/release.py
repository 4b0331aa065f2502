"""Moving the `champion` alias and publishing that version to the API's model directory."""

import tempfile
from pathlib import Path

from mlflow import MlflowClient

from irisops import bundle, registry
from irisops.bundle import BundleMetadata
from irisops.config import Settings
from irisops.registry import Decision


def promote(
    client: MlflowClient,
    settings: Settings,
    version: str,
    onnx_bytes: bytes,
    metadata: BundleMetadata,
) -> Path:
    """Write the bundle first, then move the alias: a failed write leaves the champion as it was.

    The model directory's pointer switch comes last and cannot half-happen, so the API
    sees either the old champion or the new one.
    """
    staged = bundle.stage(settings.served_model_dir, onnx_bytes, metadata)
    client.set_registered_model_alias(settings.registered_model, registry.CHAMPION, version)
    bundle.activate(settings.served_model_dir, staged)
    return staged


def promote_existing(client: MlflowClient, settings: Settings, version: str) -> Path:
    """`irisops promote VERSION`: the rollback path, from what the registry holds."""
    with tempfile.TemporaryDirectory() as tmp:
        metadata, onnx_bytes = registry.fetch_bundle(
            client, settings.registered_model, version, Path(tmp)
        )
    published = promote(client, settings, version, onnx_bytes, metadata)
    registry.record_decision(
        client, settings.registered_model, version, Decision(True, "promoted by hand")
    )
    return published
