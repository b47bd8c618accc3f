"""plan_round against hand-computed rounds.

Settings used throughout: batch 10, 5 local steps, a 1 MB model (8,000,000 bits). A client at 2 ms per sample
computes 3 x 10 x 5 x 2 / 1000 = 0.3 s; at 8000 kbps it moves 2 x 8e6 / 8e6 = 2 s of model: 2.3 s in all.
"""

from __future__ import annotations

import math

import pytest

from fedscale_halor.simulation.plan import (
    DEADLINE,
    DEADLINE_AND_TARGET,
    ClientTiming,
    RoundTiming,
    client_round_seconds,
    plan_round,
)

MB = 1_000_000


def _settings(**changes: object) -> RoundTiming:
    values: dict[str, object] = {"num_participants": 2, "batch_size": 10, "local_steps": 5, "model_bytes": MB}
    values.update(changes)
    return RoundTiming(**values)  # type: ignore[arg-type]


# client -> (ms per sample, kbps): round seconds 2.3, 1.3, 4.6, 0.7
TIMINGS = {
    1: ClientTiming(2.0, 8000.0),   # 0.3 + 2.0 = 2.3
    2: ClientTiming(2.0, 16000.0),  # 0.3 + 1.0 = 1.3
    3: ClientTiming(4.0, 4000.0),   # 0.6 + 4.0 = 4.6
    4: ClientTiming(2.0, 40000.0),  # 0.3 + 0.4 = 0.7
}


def test_a_clients_round_is_compute_plus_two_model_transfers() -> None:
    assert client_round_seconds(TIMINGS[1], _settings()) == pytest.approx(2.3)
    assert client_round_seconds(TIMINGS[1], _settings(model_cost_scale=2.0)) == pytest.approx(2.6)


def test_first_k_completes_the_k_fastest_and_lasts_until_the_kth() -> None:
    plan = plan_round([1, 2, 3, 4], TIMINGS, _settings(num_participants=2))

    assert plan.completed == (4, 2)
    assert [client for client, _ in plan.stragglers] == [1, 3]
    assert plan.stragglers[0][1] == pytest.approx(2.3)
    assert plan.dropped == ()
    assert plan.duration_s == pytest.approx(1.3)


def test_a_fixed_deadline_keeps_who_finishes_in_time_and_lasts_the_deadline() -> None:
    plan = plan_round([1, 2, 3, 4], TIMINGS, _settings(exp_type=DEADLINE, deadline_s=2.5))

    assert plan.completed == (4, 2, 1)
    assert [client for client, _ in plan.stragglers] == [3]
    assert plan.duration_s == 2.5


def test_a_deadline_round_ends_early_when_everyone_reported() -> None:
    plan = plan_round([2, 4], TIMINGS, _settings(exp_type=DEADLINE, deadline_s=10.0))

    assert plan.completed == (4, 2) and plan.duration_s == pytest.approx(1.3)


def test_a_deadline_of_zero_is_the_moving_average_of_previous_rounds() -> None:
    # previous rounds lasted 1.0 and 3.0 s: the deadline is 2.0 s, so client 1 (2.3 s) is late
    plan = plan_round([1, 2, 4], TIMINGS, _settings(exp_type=DEADLINE, deadline_s=0.0),
                      previous_durations=[1.0, 3.0])
    first_round = plan_round([1, 2, 4], TIMINGS, _settings(exp_type=DEADLINE, deadline_s=0.0))

    assert plan.completed == (4, 2) and plan.duration_s == 2.0
    assert first_round.completed == (4, 2, 1) and first_round.duration_s == pytest.approx(2.3)


def test_deadline_and_target_ratio_ends_when_that_share_has_finished() -> None:
    # ceil(0.5 x 4) = 2 of 4 selected have finished at 1.3 s, before the 10 s deadline; with 0.6: ceil(2.4) = 3
    half = plan_round([1, 2, 3, 4], TIMINGS, _settings(exp_type=DEADLINE_AND_TARGET, deadline_s=10.0,
                                                       target_ratio=0.5))
    more = plan_round([1, 2, 3, 4], TIMINGS, _settings(exp_type=DEADLINE_AND_TARGET, deadline_s=10.0,
                                                       target_ratio=0.6))

    assert half.completed == (4, 2) and half.duration_s == pytest.approx(1.3)
    assert more.completed == (4, 2, 1) and more.duration_s == pytest.approx(2.3)


def test_deadline_and_target_ratio_ends_at_the_deadline_when_that_comes_first() -> None:
    # 3 of 4 wanted (2.3 s), but the deadline is 2.0 s: clients 4 and 2 complete
    plan = plan_round([1, 2, 3, 4], TIMINGS, _settings(exp_type=DEADLINE_AND_TARGET, deadline_s=2.0,
                                                       target_ratio=0.75))

    assert plan.completed == (4, 2) and plan.duration_s == 2.0


def test_a_client_that_goes_offline_before_it_finishes_drops_out() -> None:
    # client 2 needs 1.3 s but is online for 1.0 s; client 4 needs 0.7 s and stays 1.0 s
    timings = {**TIMINGS, 2: ClientTiming(2.0, 16000.0, online_for_s=1.0), 4: ClientTiming(2.0, 40000.0, 1.0)}

    plan = plan_round([1, 2, 3, 4], timings, _settings(num_participants=2))

    assert plan.dropped == (2,)
    assert plan.completed == (4, 1) and plan.duration_s == pytest.approx(2.3)


def test_dropout_is_seeded_and_drops_about_the_given_share() -> None:
    clients = list(range(1000))
    timings = {client: ClientTiming(1.0, 10000.0) for client in clients}
    settings = _settings(num_participants=1000, dropout_ratio=0.3)

    first = plan_round(clients, timings, settings, dropout_seed=7)
    again = plan_round(clients, timings, settings, dropout_seed=7)
    other = plan_round(clients, timings, settings, dropout_seed=8)

    assert first == again and first.dropped != other.dropped
    assert 250 <= len(first.dropped) <= 350
    assert len(first.completed) + len(first.dropped) == 1000


def test_a_round_nobody_finishes_lasts_no_time() -> None:
    timings = {1: ClientTiming(2.0, 8000.0, online_for_s=0.5)}

    plan = plan_round([1], timings, _settings(num_participants=1))

    assert plan.completed == () and plan.dropped == (1,) and plan.duration_s == 0.0


def test_ties_keep_the_selection_order() -> None:
    timings = {5: ClientTiming(1.0, 8000.0), 3: ClientTiming(1.0, 8000.0)}

    assert plan_round([5, 3], timings, _settings(num_participants=1)).completed == (5,)


def test_a_selected_client_without_a_profile_is_named() -> None:
    with pytest.raises(KeyError, match="client 9"):
        plan_round([1, 9], TIMINGS, _settings())


@pytest.mark.parametrize(("changes", "message"), [
    ({"exp_type": 3}, "exp_type must be 0"),
    ({"target_ratio": 0.0}, "target_ratio"),
    ({"dropout_ratio": 1.0}, "dropout_ratio"),
    ({"model_cost_scale": 0.0}, "model_cost_scale"),
])
def test_bad_settings_are_refused_by_name(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(**changes)


def test_always_online_is_infinite() -> None:
    assert ClientTiming(1.0, 1.0).online_for_s == math.inf
