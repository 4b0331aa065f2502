"""The promotion gate: a new version replaces the champion only if it scores at least as well,
and never replaces a champion a person pinned."""

from irisops.registry import Champion, PromotionMode, decide

METRIC = "test_accuracy"


def test_first_version_becomes_champion() -> None:
    decision = decide(PromotionMode.GATE, METRIC, 0.5, None)
    assert decision.promote
    assert decision.reason == "no champion yet"


def test_equal_score_is_promoted() -> None:
    assert decide(PromotionMode.GATE, METRIC, 0.9, Champion("3", 0.9)).promote


def test_better_score_is_promoted_and_the_reason_names_both_scores() -> None:
    decision = decide(PromotionMode.GATE, METRIC, 0.95, Champion("3", 0.9))
    assert decision.promote
    assert "0.9500" in decision.reason
    assert "champion v3's 0.9000" in decision.reason


def test_worse_score_is_not_promoted() -> None:
    decision = decide(PromotionMode.GATE, METRIC, 0.8, Champion("3", 0.9))
    assert not decision.promote
    assert decision.label == "not promoted"
    assert "<" in decision.reason


def test_champion_without_the_metric_is_replaced() -> None:
    assert decide(PromotionMode.GATE, METRIC, 0.1, Champion("3", None)).promote


def test_no_promote_wins_even_over_an_empty_registry() -> None:
    assert not decide(PromotionMode.NEVER, METRIC, 1.0, None).promote


def test_force_promote_wins_over_a_better_champion() -> None:
    decision = decide(PromotionMode.FORCE, METRIC, 0.1, Champion("3", 1.0))
    assert decision.promote
    assert "--force-promote" in decision.reason


def test_a_pinned_champion_is_kept_even_against_a_better_score() -> None:
    decision = decide(PromotionMode.GATE, METRIC, 1.0, Champion("3", 0.5, pinned=True))
    assert not decision.promote
    assert "v3 was promoted by hand" in decision.reason
    assert "irisops promote" in decision.reason


def test_force_promote_replaces_a_pinned_champion() -> None:
    assert decide(PromotionMode.FORCE, METRIC, 0.1, Champion("3", 1.0, pinned=True)).promote
