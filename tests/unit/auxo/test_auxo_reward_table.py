from __future__ import annotations

import json

import numpy as np
import pytest

from fedscale_halor.auxo.reward_table import RewardTable
from fedscale_halor.auxo.settings import AuxoSettings
from fedscale_halor.auxo.shares import cohort_participants
from fedscale_halor.auxo.signals import centered, normalized

NUM_CLIENTS = 40
PARTICIPANTS = 20
DIM = 16


class PlantedGroups:
    """40 clients in two groups whose signals are a shared update, plus their group's direction, plus noise."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.group = rng.permutation(np.repeat([0, 1], NUM_CLIENTS // 2))
        direction = rng.normal(size=DIM)
        self.centres = np.stack([3 * direction, -3 * direction])
        self.shared = rng.normal(size=DIM)
        self.rng = rng

    def signals(self, client_ids: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(scale=0.3, size=(len(client_ids), DIM))
        return (self.shared + self.centres[self.group[client_ids]] + noise).astype(np.float16)

    def round(self, table: RewardTable, forced: tuple[int, ...] = ()) -> None:
        """Every cohort trains its share of participants (always including ``forced`` clients among its members)
        and is observed."""
        for cohort in range(table.cohort_count):
            members = table.members(cohort)
            count = min(cohort_participants(PARTICIPANTS, table.cohort_count), len(members))
            must = [c for c in forced if c in members]
            others = np.setdiff1d(members, must)
            chosen = np.sort(np.concatenate([must, self.rng.choice(others, count - len(must), replace=False)]))
            chosen = chosen.astype(np.int64)
            table.observe(cohort, chosen.tolist(), self.signals(chosen))


def _table(split_round: tuple[int, ...] = (3,), seed: int = 7) -> RewardTable:
    return RewardTable(NUM_CLIENTS, AuxoSettings(split_round=split_round), train_ratio=PARTICIPANTS / NUM_CLIENTS,
                       seed=seed)


def _purity(assignment: np.ndarray, group: np.ndarray) -> float:
    majority = sum(np.bincount(group[assignment == c], minlength=2).max() for c in np.unique(assignment))
    return majority / len(group)


def test_two_planted_groups_end_in_two_pure_cohorts() -> None:
    # Prepare
    world, table = PlantedGroups(seed=1), _table()
    # Execute: three clustering rounds of the single cohort, the split, then rounds of both cohorts
    for _ in range(10):
        world.round(table)
    # Assert
    assignment = table.assignment()
    assert table.cohort_count == 2
    assert _purity(assignment, world.group) >= 0.9
    for group in (0, 1):
        assert np.bincount(assignment[world.group == group], minlength=2).max() >= 0.9 * (NUM_CLIENTS // 2)
    assert set(np.unique(assignment[world.group == 0])) != set(np.unique(assignment[world.group == 1]))


def test_the_split_happens_at_the_split_epoch_and_reports_it() -> None:
    # Prepare
    world, table = PlantedGroups(seed=2), _table(split_round=(2,))
    ids = np.arange(PARTICIPANTS)
    # Execute / Assert: the first step does not split, the second (epoch 2) does
    assert table.observe(0, ids.tolist(), world.signals(ids)) is False
    assert table.cohort_count == 1
    assert table.observe(0, ids.tolist(), world.signals(ids)) is True
    assert table.cohort_count == 2
    assert len(table.members(0)) + len(table.members(1)) == NUM_CLIENTS


def test_a_client_whose_updates_turn_to_the_other_group_moves_cohort() -> None:
    # Prepare: client `drifter` belongs to group 0 and trains every round until the split
    world, table = PlantedGroups(seed=3), _table()
    drifter = int(np.flatnonzero(world.group == 0)[0])
    for _ in range(3):
        world.round(table, forced=(drifter,))
    assignment = table.assignment()
    home = np.bincount(assignment[world.group == 0]).argmax()
    other = np.bincount(assignment[world.group == 1]).argmax()
    assert home != other and assignment[drifter] == home
    # Execute: its updates now look like group 1's, and it keeps training in whichever cohort it is in
    world.group[drifter] = 1
    for _ in range(3):
        world.round(table, forced=(drifter,))
    # Assert
    assert table.assignment()[drifter] == other
    assert table.rewards()[drifter, other] > table.rewards()[drifter, home]


def test_fewer_than_min_clients_change_nothing() -> None:
    # Prepare
    world, table = PlantedGroups(seed=4), _table()
    before = table.state_dict()
    ids = np.arange(4)
    # Execute
    split = table.observe(0, ids.tolist(), world.signals(ids))
    # Assert
    assert split is False
    assert table.state_dict() == before


def test_each_policy_pick_decays_epsilon() -> None:
    # Prepare
    world, table = PlantedGroups(seed=5), _table()
    ids = np.arange(PARTICIPANTS)
    expected = 0.01
    for _ in range(NUM_CLIENTS):
        expected *= 0.99
    # Execute: one step picks a cohort for each of the 40 clients
    table.observe(0, ids.tolist(), world.signals(ids))
    # Assert
    assert table.epsilon == expected


@pytest.mark.parametrize("steps_before_save", [2, 5])
def test_a_saved_table_continues_exactly_as_the_original(steps_before_save: int) -> None:
    # Prepare: run, save through JSON, load into a table built with another seed
    original = _table(seed=11)
    world = PlantedGroups(seed=6)
    for _ in range(steps_before_save):
        world.round(original)
    saved = json.loads(json.dumps(original.state_dict()))
    resumed = _table(seed=999)
    resumed.load_state_dict(saved)
    # Execute: both see the same participants and signals from here on
    world_a, world_b = PlantedGroups(seed=8), PlantedGroups(seed=8)
    for _ in range(6):
        world_a.round(original)
        world_b.round(resumed)
    # Assert
    np.testing.assert_array_equal(original.assignment(), resumed.assignment())
    np.testing.assert_array_equal(original.rewards(), resumed.rewards())
    assert original.epsilon == resumed.epsilon
    assert original.state_dict() == resumed.state_dict()


def test_same_seed_same_assignment_and_the_seed_drives_the_random_picks() -> None:
    # Prepare: split at the first step, so the 30 clients it did not see get random cohorts
    ids = np.arange(10)
    signals = PlantedGroups(seed=9).signals(ids)
    tables = [_table(split_round=(1,), seed=seed) for seed in (1, 1, 2)]
    # Execute
    for table in tables:
        table.observe(0, ids.tolist(), signals)
    # Assert
    first, again, other = (table.assignment() for table in tables)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[10:], other[10:])
    np.testing.assert_array_equal(first[:10], other[:10])  # the seen clients follow their rewards, not the seed


def test_bad_inputs_are_refused() -> None:
    table = _table()
    with pytest.raises(ValueError, match="cohort"):
        table.observe(1, [0, 1, 2, 3, 4], np.zeros((5, 2)))
    with pytest.raises(ValueError, match="one row per client"):
        table.observe(0, [0, 1, 2, 3, 4], np.zeros((4, 2)))
    with pytest.raises(ValueError, match="distinct"):
        table.observe(0, [0, 0, 2, 3, 4], np.zeros((5, 2)))
    with pytest.raises(ValueError, match="distinct"):
        table.observe(0, [0, 1, 2, 3, 40], np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        table.observe(0, [0, 1, 2, 3, 4], np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="shape"):
        RewardTable(3, AuxoSettings(), train_ratio=1.0, seed=0).load_state_dict(table.state_dict())


def test_after_a_split_the_first_clustering_leans_the_known_clients_themselves() -> None:
    # Prepare: split at epoch 2 with the last 20 clients training, then pick cohort 0's known members among them
    world, table = PlantedGroups(seed=10), _table(split_round=(2,))
    ids = np.arange(20, 40)
    table.observe(0, ids.tolist(), world.signals(ids))
    table.observe(0, ids.tolist(), world.signals(ids))
    members = table.members(0)
    before = np.array(table.state_dict()["entries"]["halves"])[:, 0]
    rounds = np.array(table.state_dict()["entries"]["rounds"])[:, 0]
    rewards = table.rewards()[:, 0]
    known = members[(rounds[members] > 0) & (rewards[members] > 1)]
    assert len(known) >= 2 and known.min() >= 20
    # Execute: only the intra-cohort half of a step (observe's inter-cohort rewards move every participant's halves)
    table._lean_to_halves(0, members, normalized(centered(world.signals(members))))
    # Assert: exactly the known clients leaned, each by one unit; the clients numbered by their positions did not
    after = np.array(table.state_dict()["entries"]["halves"])[:, 0]
    changed = np.flatnonzero(np.any(after != before, axis=1))
    np.testing.assert_array_equal(changed, known)
    np.testing.assert_array_equal(np.abs(after - before)[known], np.ones((len(known), 2)))
