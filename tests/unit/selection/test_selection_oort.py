"""The Oort adapter: FedScale's registration, feedback and straggler credit; feasibility; determinism; the registry."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.selection.base import ClientInfo, ClientOutcome
from fedscale_halor.selection.oort_selector import OortSelector, OortSettings
from fedscale_halor.selection.random_selector import RandomSelector
from fedscale_halor.selection.registry import SELECTOR_BUILDERS, oort_settings

GREEDY = {"exploration_factor": 0.0, "exploration_min": 0.0, "cut_off_util": 1.0}


def _clients(count: int, durations: list[float] | None = None) -> dict[int, ClientInfo]:
    return {
        client_id: ClientInfo(num_samples=100, expected_duration_s=0.0 if durations is None else durations[client_id])
        for client_id in range(count)
    }


def _outcome(client_id: int, utility: float, duration_s: float = 1.0, completed: bool = True) -> ClientOutcome:
    # 100 samples and a mean squared loss of (utility / 100)^2 give exactly this statistical utility.
    return ClientOutcome(client_id, num_samples=100, loss_square_mean=(utility / 100) ** 2, duration_s=duration_s,
                         completed=completed)


def _drive(selector: OortSelector, rounds: int, clients: int = 30, count: int = 5) -> list[list[int]]:
    selector.register(_clients(clients))
    picks = []
    for round_index in range(1, rounds + 1):
        picked = selector.select(round_index, list(range(clients)), count)
        selector.feedback(round_index, [_outcome(c, utility=10.0 * (c + 1)) for c in picked])
        picks.append(picked)
    return picks


def test_clients_register_with_their_samples_capped_by_one_rounds_work_and_their_duration() -> None:
    selector = OortSelector(OortSettings(local_steps=2, batch_size=10))

    selector.register({1: ClientInfo(num_samples=5, expected_duration_s=3.0),
                       2: ClientInfo(num_samples=500, expected_duration_s=7.5)})

    assert selector.client_record(1)["reward"] == 5
    assert selector.client_record(2)["reward"] == 20
    assert (selector.client_record(1)["duration"], selector.client_record(2)["duration"]) == (3.0, 7.5)


def test_the_first_round_is_uniform_at_random_as_fedscale_samples_it() -> None:
    selector = OortSelector(OortSettings(seed=11))
    selector.register(_clients(40))

    first = selector.select(3, list(range(40)), 6)

    assert first == RandomSelector(11).select(3, list(range(40)), 6)


def test_exploitation_prefers_the_clients_with_the_highest_reported_utility() -> None:
    selector = OortSelector(OortSettings(**GREEDY))
    selector.register(_clients(10))
    everyone = selector.select(1, list(range(10)), 10)
    # Without traces the clients that have not trained yet still expect 0 s while the others report wall times;
    # those must not become a straggler penalty that zeroes every trained client's score.
    reporting = everyone[:6]
    selector.feedback(1, [_outcome(c, utility=10.0 * (c + 1), duration_s=1.0 + c) for c in reporting])

    picked = selector.select(2, list(range(10)), 3)

    assert everyone == list(range(10))
    assert picked == [3, 4, 5]


def test_known_durations_feed_oorts_straggler_penalty() -> None:
    durations = [1.0] * 9 + [100.0]
    selector = OortSelector(OortSettings(**GREEDY))
    selector.register(_clients(10, durations))
    selector.select(1, list(range(10)), 10)
    selector.feedback(1, [_outcome(c, utility=10.0 * (c + 1), duration_s=durations[c]) for c in range(10)])

    picked = selector.select(2, list(range(10)), 3)

    assert picked == [6, 7, 8]
    assert selector.client_record(9)["duration"] == 100.0


def test_a_straggler_is_credited_with_the_mean_utility_of_the_rounds_completed_clients() -> None:
    selector = OortSelector(OortSettings())
    selector.register(_clients(4, [1.0, 1.0, 1.0, 1.0]))

    selector.feedback(3, [_outcome(0, 100.0), _outcome(1, 300.0), _outcome(2, 1000.0, duration_s=9.0, completed=False)])

    straggler = selector.client_record(2)
    assert straggler["reward"] == pytest.approx(200.0)
    assert (straggler["duration"], straggler["time_stamp"], straggler["count"]) == (9.0, 3, 1)
    assert straggler["status"] is False
    assert selector.client_record(1)["reward"] == pytest.approx(300.0)
    assert selector.client_record(3)["count"] == 0


def test_a_round_with_stragglers_only_credits_them_nothing() -> None:
    selector = OortSelector(OortSettings())
    selector.register(_clients(2))

    selector.feedback(1, [_outcome(0, 500.0, completed=False)])

    assert selector.client_record(0)["reward"] == 0.0
    assert selector.client_record(0)["count"] == 1


def test_the_same_seed_gives_the_same_picks_and_another_seed_other_picks() -> None:
    first = _drive(OortSelector(OortSettings(seed=5)), rounds=6)
    again = _drive(OortSelector(OortSettings(seed=5)), rounds=6)
    other = _drive(OortSelector(OortSettings(seed=6)), rounds=6)

    assert first == again
    assert first != other


def test_only_distinct_feasible_clients_are_returned_and_never_more_than_asked() -> None:
    selector = OortSelector(OortSettings())
    selector.register(_clients(50))

    for round_index in range(1, 9):
        feasible = [c for c in range(50) if (c + round_index) % 3 != 0]
        picked = selector.select(round_index, list(reversed(feasible)), 7)
        selector.feedback(round_index, [_outcome(c, utility=float(c + 1)) for c in picked])

        assert len(picked) == len(set(picked)) == 7
        assert set(picked) <= set(feasible)
        assert picked == sorted(picked)
    assert selector.select(9, [4, 2], 7) == [2, 4]


def test_selecting_before_registration_or_among_unknown_clients_fails_clearly() -> None:
    selector = OortSelector(OortSettings())

    with pytest.raises(RuntimeError, match="register"):
        selector.select(1, [0, 1], 1)
    selector.register(_clients(3))
    with pytest.raises(ValueError, match="never registered"):
        selector.select(1, [0, 1, 2, 99], 2)
    with pytest.raises(ValueError, match="local_steps"):
        OortSettings(local_steps=0)


def test_the_registry_builds_oort_from_the_jobs_knobs_under_oorts_names() -> None:
    job = replace(JobConfig(), sample_mode="oort", sample_seed=17, local_steps=3, batch_size=4,
                  exploration_factor=0.5, pacer_step=7, round_threshold=50.0)

    settings = oort_settings(job)
    selector = SELECTOR_BUILDERS["oort"](job)

    assert (settings.seed, settings.local_steps, settings.batch_size) == (17, 3, 4)
    assert (settings.exploration_factor, settings.pacer_step, settings.round_threshold) == (0.5, 7, 50.0)
    assert (settings.exploration_decay, settings.clip_bound, settings.blacklist_rounds) == (0.98, 0.9, -1)
    assert isinstance(selector, OortSelector)
