"""Oort's training selector: exploitation, exploration, pacer, blacklist, straggler penalty, clipping, determinism."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import oort
import pytest


def _selector(**knobs: object) -> oort.TrainingSelector:
    return oort.create_training_selector(SimpleNamespace(**knobs))


def _register(selector: oort.TrainingSelector, rewards: list[float], durations: list[float] | None = None) -> None:
    for client_id, reward in enumerate(rewards):
        duration = 1.0 if durations is None else durations[client_id]
        selector.register_client(client_id, {"reward": reward, "duration": duration})


def _report(selector: oort.TrainingSelector, client_id: int, reward: float, time_stamp: int = 1) -> None:
    duration = selector.get_client_reward(client_id)["duration"]
    feedback = {"reward": reward, "duration": duration, "time_stamp": time_stamp, "status": True}
    selector.update_client_util(client_id, feedback)


GREEDY_EXPLOITATION = {"exploration_factor": 0.0, "exploration_min": 0.0, "cut_off_util": 1.0, "round_threshold": 100}


def test_knobs_default_to_fedscale_values_and_can_be_overridden() -> None:
    defaults = oort.create_training_selector(argparse.Namespace()).config
    overridden = oort.create_training_selector({"pacer_step": 5, "clip_bound": 0.5}).config

    assert (defaults.exploration_factor, defaults.exploration_decay, defaults.exploration_min) == (0.9, 0.98, 0.3)
    assert (defaults.round_threshold, defaults.round_penalty, defaults.clip_bound) == (30.0, 2.0, 0.9)
    assert (defaults.pacer_step, defaults.pacer_delta, defaults.cut_off_util) == (20, 5.0, 0.05)
    assert (defaults.blacklist_rounds, defaults.blacklist_max_len, defaults.sample_window) == (-1, 0.3, 5.0)
    assert (defaults.exploration_alpha, defaults.sample_seed) == (0.3, 233)
    assert (overridden.pacer_step, overridden.clip_bound, overridden.round_penalty) == (5, 0.5, 2.0)


def test_invalid_knobs_and_calls_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="clip_bound"):
        _selector(clip_bound=1.5)
    selector = _selector()
    with pytest.raises(KeyError, match="never registered"):
        selector.update_client_util(7, {"reward": 1.0, "duration": 1.0, "time_stamp": 1, "status": True})
    with pytest.raises(KeyError, match="never registered"):
        selector.get_client_reward(7)
    with pytest.raises(ValueError, match="cannot select"):
        selector.select_participant(-1)


def test_exploitation_without_exploration_takes_the_highest_utility_clients() -> None:
    selector = _selector(**GREEDY_EXPLOITATION)
    _register(selector, [1.0] * 10)
    for client_id in range(10):
        _report(selector, client_id, reward=client_id + 1.0)

    assert sorted(selector.select_participant(3)) == [7, 8, 9]


def test_exploitation_with_the_default_cut_off_draws_high_utility_clients_more_often() -> None:
    drawn: Counter[int] = Counter()
    for seed in range(40):
        selector = _selector(exploration_factor=0.0, exploration_min=0.0, round_threshold=100, sample_seed=seed)
        _register(selector, [1.0] * 10)
        for client_id in range(10):
            _report(selector, client_id, reward=client_id + 1.0)
        drawn.update(selector.select_participant(3))

    assert drawn[9] + drawn[8] + drawn[7] > 2 * (drawn[0] + drawn[1] + drawn[2])


def test_exploration_picks_clients_that_never_trained() -> None:
    selector = _selector(exploration_factor=1.0, exploration_min=1.0, exploration_decay=1.0)
    _register(selector, [10.0] * 20)
    for client_id in range(10):
        _report(selector, client_id, reward=100.0)

    picked = selector.select_participant(5)

    assert len(picked) == 5 and all(client_id >= 10 for client_id in picked)


def test_exploration_prefers_clients_faster_than_the_preferred_duration() -> None:
    selector = _selector(round_threshold=20, sample_window=1.0)
    _register(selector, [10.0] * 10, durations=[float(d) for d in range(1, 11)])

    picked = selector.select_participant(3)

    # The 20th percentile of durations 1..10 is sorted_durations[int(10 * 0.2)] = 3.
    assert selector.preferred_duration == 3.0
    assert sorted(picked) == [0, 1, 2]


def test_straggler_penalty_scales_a_slow_clients_score_by_the_formula() -> None:
    selector = _selector(round_threshold=50, round_penalty=2.0)
    _register(selector, [10.0] * 4, durations=[1.0, 2.0, 3.0, 40.0])
    for client_id in range(4):
        _report(selector, client_id, reward=10.0)

    selector.select_participant(1)
    scores = selector.last_scores

    assert selector.preferred_duration == 3.0  # sorted_durations[int(4 * 0.5)]
    assert scores[0] == scores[1] == scores[2]
    assert scores[3] == pytest.approx(scores[0] * (3.0 / 40.0) ** 2)


@pytest.mark.parametrize(("clip_bound", "outlier_is_clipped"), [(0.8, True), (1.0, False)])
def test_rewards_above_the_clip_bound_quantile_are_clipped(clip_bound: float, outlier_is_clipped: bool) -> None:
    selector = _selector(round_threshold=100, clip_bound=clip_bound)
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1000.0]
    _register(selector, [1.0] * 10)
    for client_id, reward in enumerate(rewards):
        _report(selector, client_id, reward)

    selector.select_participant(2)
    scores = selector.last_scores

    # clip_bound 0.8 of ten rewards clips at sorted_rewards[8] = 9: the outlier scores like the client with 9.
    assert (scores[9] == pytest.approx(scores[8])) is outlier_is_clipped
    assert scores[8] > scores[0]


def _run_rounds(selector: oort.TrainingSelector, rounds: int, reward_of_round: Callable[[int], float]) -> list[float]:
    thresholds = []
    for round_index in range(1, rounds + 1):
        for client_id in selector.select_participant(3):
            _report(selector, client_id, reward_of_round(round_index), time_stamp=round_index)
        thresholds.append(selector.round_threshold)
    return thresholds


def test_pacer_relaxes_the_threshold_when_utility_plateaus_and_tightens_it_after_a_jump() -> None:
    selector = _selector(pacer_step=2, pacer_delta=5, exploration_factor=0.0, exploration_min=0.0)
    _register(selector, [10.0] * 6, durations=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    thresholds = _run_rounds(selector, 10, lambda r: 10.0 if r < 8 else 1000.0)

    # Round r records the exploited utility of round r-1 (nothing is exploited in round 1). Every 2nd round from
    # round 4 compares the last two 2-round windows: round 4 (0 -> 20) jumps, rounds 6 and 8 (20 -> 20) plateau,
    # round 10 (20 -> 2000) jumps again.
    assert thresholds == [30, 30, 30, 25, 25, 30, 30, 35, 35, 30]
    assert selector.preferred_duration == 2.0  # sorted_durations[int(6 * 0.30)]


def test_pacer_leaves_the_threshold_alone_under_moderate_change() -> None:
    selector = _selector(pacer_step=2, pacer_delta=5, exploration_factor=0.0, exploration_min=0.0)
    _register(selector, [10.0] * 6)

    thresholds = _run_rounds(selector, 10, lambda r: 10.0 if r < 8 else 15.0)

    assert thresholds[-1] == 35  # round 10 compares 20 with 30: neither a plateau nor a jump


def test_clients_selected_more_than_blacklist_rounds_times_are_left_out() -> None:
    selector = _selector(blacklist_rounds=2, blacklist_max_len=0.5)
    _register(selector, [10.0] * 6)
    for _ in range(3):
        _report(selector, 0, 10.0)
    _report(selector, 1, 10.0)

    picked = selector.select_participant(5)

    assert selector.blacklist == {0}
    assert sorted(picked) == [1, 2, 3, 4, 5]


def test_the_blacklist_is_bounded_by_blacklist_max_len() -> None:
    selector = _selector(blacklist_rounds=2, blacklist_max_len=0.5)
    _register(selector, [10.0] * 6)
    for client_id in range(4):
        for _ in range(3 + client_id):
            _report(selector, client_id, 10.0)

    selector.select_participant(2)

    assert selector.blacklist == {1, 2, 3}  # int(0.5 * 6) = 3 places, taken by the most used clients


def test_feasible_clients_and_status_restrict_the_choice() -> None:
    selector = _selector()
    _register(selector, [10.0] * 10)
    selector.update_client_util(9, {"reward": 5.0, "duration": 1.0, "time_stamp": 0, "status": False})

    assert set(selector.select_participant(3, feasible_clients={2, 4, 6, 8})) <= {2, 4, 6, 8}
    assert selector.select_participant(5, feasible_clients=[1, 3]) == [1, 3]
    assert 9 not in selector.select_participant(9)


def _trace(seed: int) -> list[list[int]]:
    selector = _selector(sample_seed=seed)
    clients = range(100)
    _register(selector, [float(10 + c % 7) for c in clients], [1.0 + c % 5 for c in clients])
    rounds = []
    for round_index in range(1, 6):
        picked = selector.select_participant(10)
        for client_id in picked:
            _report(selector, client_id, reward=float(client_id % 13), time_stamp=round_index)
        rounds.append(picked)
    return rounds


def test_selection_is_deterministic_given_the_seed() -> None:
    assert _trace(233) == _trace(233)
    assert _trace(233) != _trace(234)


def test_median_reward_ignores_blacklisted_clients() -> None:
    selector = _selector(blacklist_rounds=0, blacklist_max_len=0.25)
    _register(selector, [1.0, 2.0, 3.0, 100.0])
    _report(selector, 3, 100.0)

    assert selector.get_median_reward() == 2.5
    selector.select_participant(1)
    assert selector.get_median_reward() == 2.0
