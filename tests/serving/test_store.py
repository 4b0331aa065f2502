"""The model store: what a load leaves behind for the garbage collector."""

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
