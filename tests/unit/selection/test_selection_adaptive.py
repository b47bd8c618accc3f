"""REFL's adaptive participant target: fewer new participants when stale updates will arrive in the round."""

from __future__ import annotations

import pytest

from fedscale_halor.selection.availability_selector import AdaptiveParticipantTarget


def test_off_or_without_arriving_stale_updates_the_target_stays() -> None:
    assert AdaptiveParticipantTarget(mode=0).target(13, arriving_stale_updates=5) == 13
    assert AdaptiveParticipantTarget(mode=1).target(13, arriving_stale_updates=0) == 13
    assert AdaptiveParticipantTarget(mode=2).target(13, arriving_stale_updates=0) == 13


def test_soft_mode_subtracts_the_arriving_updates_down_to_the_capped_share() -> None:
    soft = AdaptiveParticipantTarget(mode=1, cap=0.5)

    assert soft.target(20, arriving_stale_updates=3) == 17
    assert soft.target(20, arriving_stale_updates=15) == 10
    assert soft.target(13, arriving_stale_updates=12) == 7


def test_soft_mode_without_a_cap_keeps_at_least_one_participant() -> None:
    uncapped = AdaptiveParticipantTarget(mode=1, cap=0.0)

    assert uncapped.target(10, arriving_stale_updates=4) == 6
    assert uncapped.target(10, arriving_stale_updates=30) == 1


def test_hard_mode_selects_no_new_participants_when_stale_updates_arrive() -> None:
    assert AdaptiveParticipantTarget(mode=2).target(10, arriving_stale_updates=1) == 0


def test_invalid_settings_and_counts_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="adapt_selection must"):
        AdaptiveParticipantTarget(mode=3)
    with pytest.raises(ValueError, match="adapt_selection_cap"):
        AdaptiveParticipantTarget(mode=1, cap=1.5)
    with pytest.raises(ValueError, match="negative"):
        AdaptiveParticipantTarget(mode=1).target(10, arriving_stale_updates=-1)
