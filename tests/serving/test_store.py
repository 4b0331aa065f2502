"""The model store: what a swap shows its readers, and what a load leaves for the collector."""

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from irisops.serving.sources import DirectorySource
from irisops.serving.store import ModelStore
from tests.serving.publishing import publish_small_forest


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_loaded_model_is_out_of_the_collectors_sight(unfrozen: None, tmp_path: Path) -> None:
    """Full collections then never walk the model or the framework (large batches stall less)."""
    publish_small_forest(tmp_path)
    store = ModelStore(DirectorySource(tmp_path))
    store.refresh()
    assert store.model is not None
    assert gc.get_freeze_count() > 0
    assert not any(tracked is store.model for tracked in gc.get_objects())


def test_a_swap_is_whole_before_the_heap_is_settled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Settling the heap takes a while; a reader seeing the new model sees its counters too."""
    publish_small_forest(tmp_path)
    store = ModelStore(DirectorySource(tmp_path))
    store.last_error = "an earlier bundle failed its checksum"
    seen: list[tuple[object, int, str | None, bool]] = []

    def settle() -> None:
        logged = any(getattr(r, "event", None) == "model_loaded" for r in caplog.records)
        seen.append((store.model, store.reloads, store.last_error, logged))

    monkeypatch.setattr("irisops.serving.store.settle_heap", settle)
    with caplog.at_level("INFO", logger="irisops.serving"):
        store.refresh()
    assert store.model is not None
    assert seen == [(store.model, 1, None, True)]
