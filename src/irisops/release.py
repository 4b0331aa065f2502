"""Moving the `champion` alias and publishing that version to the API's model directory."""

import tempfile
from pathlib import Path

from mlflow import MlflowClient

from irisops import bundle, registry
from irisops.bundle import BundleMetadata, ModelFiles
from irisops.config import Settings
from irisops.registry import Decision


def promote(
    client: MlflowClient,
    settings: Settings,
    version: str,
    files: ModelFiles,
    metadata: BundleMetadata,
    *,
    pin: bool | None = False,
) -> Path:
    """Write the bundle first, then move the alias: a failed write leaves the champion as it was.

    `pin=None` leaves the pin as it is. It is written before the alias moves: until then
    it names a version that is not champion, which counts as no pin. The model
    directory's pointer switch comes last and cannot half-happen, so the API sees either
    the old champion or the new one.
    """
    staged = bundle.stage(settings.served_model_dir, files, metadata)
    if pin is not None:
        registry.pin(client, settings.registered_model, version if pin else None)
    client.set_registered_model_alias(settings.registered_model, registry.CHAMPION, version)
    bundle.activate(settings.served_model_dir, staged)
    return staged


def promote_existing(
    client: MlflowClient, settings: Settings, version: str, *, pin: bool | None = None
) -> Path:
    """`irisops promote VERSION`: the rollback path, from what the registry holds.

    By default a version that becomes champion is pinned, and the champion published
    again (as `irisops up` does into an empty model directory) keeps its pin as it was.
    """
    name = settings.registered_model
    with tempfile.TemporaryDirectory() as tmp:
        metadata, files = registry.fetch_bundle(client, name, version, Path(tmp))
    champion = registry.alias_version(client, name, registry.CHAMPION)
    if pin is None and (champion is None or str(champion.version) != version):
        pin = True
    published = promote(client, settings, version, files, metadata, pin=pin)
    if pin is not None:
        reason = "promoted by hand, pinned" if pin else "promoted by hand"
        registry.record_decision(client, name, version, Decision(True, reason))
    return published


def promote_through_gate(client: MlflowClient, settings: Settings, version: str) -> Decision:
    """Promote VERSION only if the gate passes it: CI's promotion, never a pin."""
    from irisops.training.comparison import gate  # the train extra: it re-reads the data

    name = settings.registered_model
    decision = gate(client, settings, registry.version_record(client, name, version))
    if decision.promote:
        promote_existing(client, settings, version, pin=False)
    registry.record_decision(client, name, version, decision)
    return decision
