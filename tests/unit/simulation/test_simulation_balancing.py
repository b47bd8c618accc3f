"""Straggler balancing, with every time worked out by hand: batch 10, 10 local steps, no model to send, so a step
takes 3 x 10 x ms_per_sample / 1000 s: 0.03, 0.06 and 0.12 s for clients at 1, 2 and 4 ms per sample."""

import pytest

from fedscale_halor.simulation.balancing import balanced_local_steps, balancing_deadline_s
from fedscale_halor.simulation.plan import ClientTiming, RoundTiming, plan_round

TIMINGS = {0: ClientTiming(1.0, 1e6), 1: ClientTiming(2.0, 1e6), 2: ClientTiming(4.0, 1e6)}


def _settings(**overrides: object) -> RoundTiming:
    fields = {"num_participants": 2, "batch_size": 10, "local_steps": 10, "model_bytes": 0, **overrides}
    return RoundTiming(**fields)  # type: ignore[arg-type]


def test_without_a_deadline_the_slow_client_is_shortened_to_the_first_k_cut() -> None:
    # full steps: 0.3, 0.6 and 1.2 s; the second fastest (K = 2) sets 0.6 s; client 2 fits 5 steps of 0.12 s
    settings = _settings()

    assert balancing_deadline_s([0, 1, 2], TIMINGS, settings) == pytest.approx(0.6)
    assert balanced_local_steps([0, 1, 2], TIMINGS, settings, min_local_steps=1) == {2: 5}


def test_a_set_deadline_shortens_every_client_that_would_miss_it_but_not_below_the_minimum() -> None:
    # deadline 0.5 s: client 1 fits floor(0.5 / 0.06) = 8 steps, client 2 floor(0.5 / 0.12) = 4, raised to 6
    settings = _settings(exp_type=1, deadline_s=0.5)

    assert balanced_local_steps([0, 1, 2], TIMINGS, settings, min_local_steps=1) == {1: 8, 2: 4}
    assert balanced_local_steps([0, 1, 2], TIMINGS, settings, min_local_steps=6) == {1: 8, 2: 6}


def test_balancing_makes_a_deadline_round_end_before_its_deadline() -> None:
    # Prepare: without balancing clients 1 and 2 miss 0.5 s and the round lasts the whole deadline
    settings = _settings(exp_type=1, deadline_s=0.5)
    plain = plan_round([0, 1, 2], TIMINGS, settings)

    # Execute
    steps = balanced_local_steps([0, 1, 2], TIMINGS, settings, min_local_steps=1)
    balanced = plan_round([0, 1, 2], TIMINGS, settings, local_steps=steps)

    # Assert: everyone reports in time; the round ends with the last of them, at 8 x 0.06 = 4 x 0.12 = 0.48 s
    assert plain.completed == (0,) and plain.duration_s == 0.5
    assert set(balanced.completed) == {0, 1, 2} and balanced.stragglers == ()
    assert balanced.duration_s == pytest.approx(0.48)
