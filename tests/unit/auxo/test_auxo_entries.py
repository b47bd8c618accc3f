from __future__ import annotations

import math

import numpy as np
import pytest

from fedscale_halor.auxo.entries import UNDECIDED, RewardEntries
from fedscale_halor.auxo.reward_table import confident_vote, distance_rewards


def test_a_fresh_entry_starts_at_one_with_equal_halves_and_is_undecided() -> None:
    entries = RewardEntries(2)
    assert entries.reward.tolist() == [[1.0], [1.0]]
    assert entries.halves.tolist() == [[[0.5, 0.5]], [[0.5, 0.5]]]
    assert entries.rounds.tolist() == [[0], [0]]
    assert entries.half_of(0, 0) == UNDECIDED


def test_rewards_and_leanings_by_hand() -> None:
    # Prepare
    entries = RewardEntries(1)
    # Execute: +3 -> R 4, halves [0.5+1.5, 0.5+1.5]
    entries.add_reward(0, 0, 3.0)
    # Assert
    assert (entries.reward[0, 0], entries.halves[0, 0].tolist(), entries.rounds[0, 0]) == (4.0, [2.0, 2.0], 1)
    # Execute: leaning to half 1 moves one unit: [1, 3]
    entries.lean_to(0, 0, 1)
    # Assert
    assert (entries.halves[0, 0].tolist(), entries.rounds[0, 0]) == ([1.0, 3.0], 2)
    assert entries.half_of(0, 0) == 1


def test_a_negative_reward_forgets_the_halves_and_the_rounds() -> None:
    # Prepare: R 1, halves [1.5, -0.5] after one leaning to half 0
    entries = RewardEntries(1)
    entries.lean_to(0, 0, 0)
    assert entries.half_of(0, 0) == 0
    # Execute: -5 -> R -4; halves restart at [-2, -2]; the rounds restart, then this one counts
    entries.add_reward(0, 0, -5.0)
    # Assert
    assert (entries.reward[0, 0], entries.halves[0, 0].tolist(), entries.rounds[0, 0]) == (-4.0, [-2.0, -2.0], 1)
    # Execute: a leaning does not decide a client with R < 0
    entries.lean_to(0, 0, 0)
    # Assert
    assert entries.halves[0, 0].tolist() == [-1.0, -3.0]
    assert entries.half_of(0, 0) == UNDECIDED


def test_grow_splits_each_entry_by_the_half_it_leaned_to() -> None:
    # Prepare: client 0 leans to half 0 once (halves [1.5, -0.5]); client 1 leans to half 1 twice and earns +2
    # (R 3, halves [-0.5, 3.5], 3 rounds); client 2 is untouched
    entries = RewardEntries(3)
    entries.lean_to(0, 0, 0)
    entries.lean_to(1, 0, 1)
    entries.lean_to(1, 0, 1)
    entries.add_reward(1, 0, 2.0)
    # Execute
    new = entries.grow(0)
    # Assert: the preferred side gets R + 1 and keeps the rounds; the other restarts at R with none
    assert new == 1 and entries.cohort_count == 2
    assert entries.reward.tolist() == [[2.0, 1.0], [3.0, 4.0], [1.0, 1.0]]
    assert entries.halves.tolist() == [[[1.0, 1.0], [0.5, 0.5]], [[1.5, 1.5], [2.0, 2.0]], [[0.5, 0.5], [0.5, 0.5]]]
    assert entries.rounds.tolist() == [[1, 0], [0, 3], [0, 0]]


def test_known_clients_were_taught_and_have_r_above_one() -> None:
    # Prepare: after the grow above, client 0 is known in cohort 0 and client 1 in cohort 1; client 2 in neither
    entries = RewardEntries(3)
    entries.lean_to(0, 0, 0)
    entries.lean_to(1, 0, 1)
    entries.grow(0)
    # Execute / Assert: positions in the given list, not client ids
    assert entries.known([2, 1, 0], 0).tolist() == [2]
    assert entries.known([2, 1, 0], 1).tolist() == [1]


def test_distance_rewards_by_hand() -> None:
    # Prepare: distances 1, 2, 3 have mean 2 and std sqrt(2/3); a third of the clients known
    distances = np.array([1.0, 2.0, 3.0])
    slope = 5.0 / (2.0 + math.sqrt(2.0 / 3.0))
    # Execute
    rewards = distance_rewards(distances, known_ratio=1 / 3, base_reward=5.0)
    # Assert: 5 - slope·d, a third of it; the farthest is beyond mean + std, so it is punished
    np.testing.assert_allclose(rewards, [(5 - slope) / 3, (5 - 2 * slope) / 3, (5 - 3 * slope) / 3])
    assert rewards[0] == pytest.approx(1.0749, abs=1e-4)  # slope 1.7753
    assert rewards[2] < 0 < rewards[1]


def test_equal_zero_distances_get_the_full_base_reward() -> None:
    np.testing.assert_array_equal(distance_rewards(np.zeros(3), 0.5, 5.0), [2.5, 2.5, 2.5])


def test_a_neighbour_vote_must_be_clear() -> None:
    assert confident_vote(1.0, 0.0) and confident_vote(0.0, 1.0)
    assert confident_vote(0.7, 0.3) and confident_vote(0.4, 0.6)  # 2.33 and 0.667
    assert not confident_vote(0.6, 0.4)  # exactly 1.5
    assert not confident_vote(0.5, 0.5)
