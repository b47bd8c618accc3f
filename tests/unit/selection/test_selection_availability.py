"""REFL's availability priority: least available feasible clients first, seeded ties, feasibility, the registry."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.selection.availability_selector import AvailabilityPrioritySelector
from fedscale_halor.selection.base import ClientInfo
from fedscale_halor.selection.random_selector import RandomSelector
from fedscale_halor.selection.registry import SELECTOR_BUILDERS


def _selector(fractions: dict[int, float], seed: int = 233) -> AvailabilityPrioritySelector:
    selector = AvailabilityPrioritySelector(seed)
    selector.register({c: ClientInfo(num_samples=10, online_fraction=f) for c, f in fractions.items()})
    return selector


def test_the_least_available_feasible_clients_are_picked_first() -> None:
    fractions = {0: 0.9, 1: 0.1, 2: 0.5, 3: 0.05, 4: 0.7, 5: 0.3}
    selector = _selector(fractions)

    picked = selector.select(1, list(fractions), 3)

    assert picked == [1, 3, 5]


def test_offline_clients_are_never_picked_however_rarely_online() -> None:
    fractions = {0: 0.01, 1: 0.02, 2: 0.5, 3: 0.6, 4: 0.9}
    selector = _selector(fractions)

    picked = selector.select(1, [2, 3, 4], 2)

    assert picked == [2, 3]


def test_ties_are_broken_by_a_seeded_random_order_per_round() -> None:
    fractions = {c: (0.2 if c < 40 else 0.8) for c in range(60)}

    first = _selector(fractions, seed=4).select(7, list(range(60)), 10)
    again = _selector(fractions, seed=4).select(7, list(reversed(range(60))), 10)
    other_round = _selector(fractions, seed=4).select(8, list(range(60)), 10)
    other_seed = _selector(fractions, seed=5).select(7, list(range(60)), 10)

    assert first == again
    assert set(first) <= set(range(40))
    assert first != other_round
    assert first != other_seed


def test_never_more_than_count_and_everyone_when_fewer_are_feasible() -> None:
    selector = _selector({c: c / 10 for c in range(10)})

    assert len(selector.select(1, list(range(10)), 4)) == 4
    assert selector.select(1, [9, 2, 2, 5], 10) == [2, 5, 9]
    assert selector.select(1, list(range(10)), 0) == []
    with pytest.raises(ValueError, match="cannot select -1"):
        selector.select(1, list(range(10)), -1)


def test_without_availability_information_it_samples_uniformly_like_random() -> None:
    unregistered = AvailabilityPrioritySelector(233)
    all_online = _selector({c: 1.0 for c in range(30)})

    picked = unregistered.select(2, list(range(30)), 5)

    assert picked == all_online.select(2, list(range(30)), 5)
    assert len(set(picked)) == 5
    assert {c for r in range(1, 60) for c in unregistered.select(r, range(30), 5)} == set(range(30))
    assert unregistered.online_fraction(3) == 1.0


def test_the_registry_turns_refls_avail_priority_into_this_selector_for_random_sampling() -> None:
    refl_job = replace(JobConfig(), sample_mode="random", sample_seed=3, avail_priority=1)
    plain_job = replace(JobConfig(), sample_mode="random", sample_seed=3)

    assert isinstance(SELECTOR_BUILDERS["random"](refl_job), AvailabilityPrioritySelector)
    assert isinstance(SELECTOR_BUILDERS["random"](plain_job), RandomSelector)
    with pytest.raises(ValueError, match="avail_priority"):
        SELECTOR_BUILDERS["oort"](replace(JobConfig(), sample_seed=3, avail_priority=2))
    with pytest.raises(ValueError, match="avail_priority"):
        SELECTOR_BUILDERS["random"](replace(JobConfig(), sample_seed=3, avail_priority=5))
