"""A champion chosen by hand stays champion until a person moves it again.

Automatic training (`irisops train` from a schedule, or the trainer job every
`docker compose up` runs) keeps registering challengers, but a rollback made with
`irisops promote` survives it. Each test that moves an alias has a registered model
of its own, so the tests hold alone and in any order.
"""

from pathlib import Path

import pytest

from irisops.registry import TAG_PINNED
from tests.conftest import Tracking
from tests.registries import Registry

# Small forests: every run of these tests scores the same, so the gate (>=) would promote.
FAST = ("--n-estimators", "10")


def roll_back(tracking: Tracking, model_dir: Path, name: str, *flags: str) -> Registry:
    """Two equal versions, v2 champion by the gate, then `irisops promote 1 [FLAGS]`."""
    registry = Registry(tracking, model_dir, name)
    registry.cli("train", *FAST)
    registry.cli("train", *FAST)
    assert registry.champion() == "2"
    registry.cli("promote", "1", *flags)
    assert registry.champion() == registry.served() == "1"
    return registry


@pytest.fixture(scope="module")
def pinned(tracking: Tracking, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Rolled back to v1 and pinned; the tests using it add versions, never move aliases."""
    return roll_back(tracking, tmp_path_factory.mktemp("pinned"), "pinned-rollback")


def test_training_after_a_rollback_registers_a_challenger_and_keeps_the_rollback(
    pinned: Registry,
) -> None:
    output = pinned.cli("train", *FAST)
    assert "not promoted (champion v1 was promoted by hand" in output
    assert pinned.champion() == pinned.served() == "1"
    assert "promoted by hand" in pinned.reason(pinned.alias("challenger"))


def test_models_shows_which_champion_is_pinned(pinned: Registry) -> None:
    assert "champion (pinned)" in pinned.cli("models")
    assert pinned.reason("1") == "promoted by hand, pinned"


def test_publishing_the_champion_again_keeps_its_pin(pinned: Registry) -> None:
    assert "v1 is champion, pinned" in pinned.cli("promote", "1")


def test_no_pin_hands_the_champion_back_to_the_gate(tracking: Tracking, tmp_path: Path) -> None:
    registry = roll_back(tracking, tmp_path, "pinned-no-pin", "--no-pin")
    assert TAG_PINNED not in registry.client.get_registered_model(registry.name).tags
    assert "v1 is champion, published" in registry.cli("promote", "1"), "still not pinned"
    registry.cli("train", *FAST)
    assert registry.champion() == registry.served() == "3"


def test_a_forced_promotion_ends_the_pin(tracking: Tracking, tmp_path: Path) -> None:
    registry = roll_back(tracking, tmp_path, "pinned-forced")
    registry.cli("train", *FAST, "--force-promote")
    assert registry.champion() == "3"
    registry.cli("train", *FAST)
    assert registry.champion() == registry.served() == "4", "the gate decides again"
