"""Oort's training selector over columns: bulk registration, numpy feasible ids, any hashable id, the sorted
durations it keeps, and the exact ranking of unexplored clients."""

from __future__ import annotations

import math

import numpy as np
import oort
import pytest
from oort import _ranking
from oort._client_table import SortedDurations


def _selector(**knobs: object) -> oort.TrainingSelector:
    return oort.create_training_selector(knobs)


def _records(selector: oort.TrainingSelector) -> dict[object, dict[str, object]]:
    return selector.get_all_metrics()


def test_bulk_registration_registers_what_one_by_one_registration_does() -> None:
    one_by_one, bulk = _selector(), _selector()
    ids, rewards, durations = [5, 3, 9, 3, 7], [10.0, 0.0, 4.0, 99.0, 4.0], [1.0, 2.5, 0.0, 7.0, 2.5]
    for client, reward, duration in zip(ids, rewards, durations, strict=True):
        one_by_one.register_client(client, {"reward": reward, "duration": duration})
    bulk.register_clients(np.asarray(ids), rewards, durations)

    assert _records(bulk) == _records(one_by_one)
    assert list(_records(bulk)) == [5, 3, 9, 7]  # the repeat of 3 is ignored, registration order kept
    assert bulk.get_client_reward(3)["reward"] == 0.0


def test_bulk_registration_with_repeats_after_earlier_clients_registers_each_new_client_once() -> None:
    selector = _selector()
    selector.register_clients(np.arange(4), np.ones(4))

    selector.register_clients(np.array([9, 2, 9, 5, 2, 6]), np.arange(6.0), np.full(6, 2.0))

    assert list(selector.get_all_metrics()) == [0, 1, 2, 3, 9, 5, 6]
    assert [selector.get_client_reward(c)["reward"] for c in (9, 5, 6, 2)] == [0.0, 3.0, 5.0, 1.0]


def test_bulk_registration_ignores_registered_clients_and_defaults_durations_to_one_second() -> None:
    selector = _selector()
    selector.register_client(2, {"reward": 8.0, "duration": 3.0})

    selector.register_clients([1, 2, 4], [1.0, math.nan, 2.0])  # 2 is registered already: its value is not read

    assert selector.get_client_reward(2) == {"reward": 8.0, "duration": 3.0, "time_stamp": 0, "count": 0,
                                             "status": True}
    assert (selector.get_client_reward(1)["duration"], selector.get_client_reward(4)["duration"]) == (1.0, 1.0)


@pytest.mark.parametrize(("rewards", "durations", "message"), [
    ([1.0, math.nan, 2.0], [1.0, 1.0, 1.0], "client 11 reported a non-finite reward"),
    ([1.0, 2.0, 3.0], [1.0, 1.0, math.inf], "client 12 reported a non-finite duration"),
])
def test_bulk_registration_names_the_first_invalid_client_and_registers_none(
        rewards: list[float], durations: list[float], message: str) -> None:
    selector = _selector()

    with pytest.raises(ValueError, match=message):
        selector.register_clients(np.asarray([10, 11, 12]), rewards, durations)
    with pytest.raises(ValueError, match="client 'b' reported a non-finite reward"):
        selector.register_clients(["a", "b"], [1.0, -math.inf])
    with pytest.raises(ValueError, match="as many"):
        selector.register_clients([1, 2], [1.0])
    assert selector.get_all_metrics() == {}


def _scenario(register_bulk: bool, feasible_as: type) -> list[list[int]]:
    selector = _selector(pacer_step=2, sample_seed=3)
    ids = list(range(0, 600, 3))
    rng = np.random.default_rng(0)
    rewards = rng.integers(0, 5, size=len(ids)).astype(float).tolist()
    durations = (rng.integers(1, 6, size=len(ids)) / 2).tolist()
    if register_bulk:
        selector.register_clients(ids, rewards, durations)
    else:
        for client, reward, duration in zip(ids, rewards, durations, strict=True):
            selector.register_client(client, {"reward": reward, "duration": duration})
    rounds = []
    for round_index in range(1, 8):
        feasible = [c for c in rng.permutation([*ids, 1, 2, 601]).tolist() if rng.random() < 0.8]
        feasible += feasible[:5]  # repeats
        picked = selector.select_participant(10, feasible_clients=feasible_as(feasible))
        for client in picked:
            selector.update_client_util(client, {"reward": float(rng.integers(0, 9)), "duration": 1.5,
                                                 "time_stamp": round_index})
        rounds.append(picked)
    return rounds


@pytest.mark.parametrize("feasible_as", [np.asarray, lambda ids: np.asarray(ids, dtype=np.int32),
                                         lambda ids: np.asarray(ids, dtype=np.uint64), set, tuple])
def test_feasible_ids_as_numpy_arrays_choose_as_lists_do(feasible_as: type) -> None:
    expected = _scenario(register_bulk=False, feasible_as=list)

    assert _scenario(register_bulk=True, feasible_as=feasible_as) == expected
    assert all(type(client) is int for picked in expected for client in picked)


def test_any_hashable_id_still_works_and_ids_keep_dict_equality() -> None:
    selector = _selector(exploration_factor=0.0, exploration_min=0.0, cut_off_util=1.0, round_threshold=100)
    selector.register_clients([0, 1, 2], [1.0, 1.0, 1.0])
    selector.register_client("alice", {"reward": 1.0})  # the table leaves integer mode
    selector.register_clients([("bob", 1), 3.0, 1.0, True], [1.0, 1.0, 1.0, 1.0])  # 1.0 and True are client 1

    assert list(selector.get_all_metrics()) == [0, 1, 2, "alice", ("bob", 1), 3.0]
    for client, reward in [("alice", 9.0), (("bob", 1), 8.0), (1, 7.0), (3, 1.0)]:
        selector.update_client_util(client, {"reward": reward, "duration": 1.0, "time_stamp": 1})

    assert selector.select_participant(3, feasible_clients=np.asarray(["alice", "x"], dtype=object)) \
        == ["alice"]
    assert set(selector.select_participant(3)) == {"alice", ("bob", 1), 1}
    assert selector.get_client_reward(True)["reward"] == 7.0


def test_tuples_of_integers_are_one_id_each() -> None:
    selector = _selector()
    selector.register_clients([(1, 2), (3, 4)], [1.0, 2.0])
    selector.register_client((5, 6), {"reward": 3.0})

    assert list(selector.get_all_metrics()) == [(1, 2), (3, 4), (5, 6)]
    assert selector.select_participant(1, feasible_clients=[(3, 4), (7, 8)]) == [(3, 4)]


def test_sorted_durations_follow_updates_like_a_sort_does() -> None:
    rng = np.random.default_rng(1)
    column = np.round(rng.random(500) * 8) / 2
    column[:3] = [0.0, -0.0, 0.0]
    durations = SortedDurations()
    for step in range(60):
        index = int(rng.integers(0, len(column)))
        assert durations.value_at(column, index) == sorted(column.tolist())[index]
        for row in rng.integers(0, len(column), size=int(rng.integers(0, 12))).tolist():
            new = float(np.round(rng.random() * 8) / 2) if step % 7 else -0.0
            durations.replace(float(column[row]), new)
            column[row] = new
    zero_at = sorted(column.tolist()).index(0.0)
    assert math.copysign(1.0, durations.value_at(column, zero_at)) == math.copysign(1.0, sorted(column.tolist())[
        zero_at])


def _reference_window(rewards: np.ndarray, durations: np.ndarray, eligible: np.ndarray, preferred: float,
                      exponent: float, window: int) -> tuple[list[int], list[float]]:
    def prior(row: int) -> float:
        duration = float(durations[row])
        penalty = 1.0 if duration <= preferred else (preferred / max(_ranking.MIN_DURATION, duration)) ** exponent
        return float(rewards[row]) * penalty

    priors = {row: prior(row) for row in np.flatnonzero(eligible).tolist()}
    ranked = sorted(priors, key=priors.__getitem__, reverse=True)[:window]
    return ranked, [priors[row] for row in ranked]


@pytest.mark.parametrize("exponent", [1.7, 2.0, 3.0])
@pytest.mark.parametrize("layout", ["random", "strided"])
def test_the_window_of_unexplored_clients_is_ranked_exactly_as_python_ranks_it(exponent: float, layout: str) -> None:
    rng = np.random.default_rng(int(exponent * 10))
    size, window = 4000, 150
    rewards = (rng.integers(0, 20, size=size) * 5).astype(float)
    durations = np.round(rng.lognormal(1.0, 0.9, size=size) * 4) / 4
    if layout == "strided":
        # A few of the clients the edge is estimated on are the best by far: the estimate overshoots and leaves
        # fewer clients than the window above it, so all are ranked exactly.
        rewards[: 16 * 40 : 16] = 1e6
        durations[: 16 * 40 : 16] = 0.5
    eligible = rng.random(size) < 0.9

    rows, priors = _ranking.top_window(rewards, durations, eligible, 2.0, exponent, window)

    expected_rows, expected_priors = _reference_window(rewards, durations, eligible, 2.0, exponent, window)
    assert rows.tolist() == expected_rows
    assert priors.tolist() == expected_priors


def test_the_check_refuses_a_field_that_a_client_outside_could_reach() -> None:
    approx = np.array([10.0, 9.0, 8.0, 5.0])
    rewards = np.ones(4)

    assert _ranking._nothing_outside_reaches(approx, threshold=8.0, field_size=3, last=8.0, rewards=rewards)
    # The fourth client's approximate 5.0 is below the field, but within the error of the window's last exact value.
    assert not _ranking._nothing_outside_reaches(approx, threshold=8.0, field_size=3, last=5.0 * (1 + 1e-15),
                                                 rewards=rewards)
