"""The asynchronous schedule on hand-worked examples (the rules are in fedscale_halor/asyncfl/schedule.py)."""

import math

import pytest

from fedscale_halor.asyncfl.schedule import (
    IDLE_STEP_S,
    AsyncRules,
    AsyncSchedule,
    AsyncTask,
    staleness_importance,
)

# each client's round time in seconds
DURATIONS = {0: 10.0, 1: 3.0, 2: 4.0, 3: 1.0, 4: 2.0, 5: 6.0}


def _always_online(client: int, time_s: float) -> bool:
    return True


def _schedule(max_staleness: int) -> AsyncSchedule:
    return AsyncSchedule(AsyncRules(arrival_interval_s=2.0, buffer_size=2, max_concurrency=2,
                                    max_staleness=max_staleness))


def _round(schedule: AsyncSchedule, clients: list[int]) -> tuple:
    check_in = schedule.check_in(clients, DURATIONS.__getitem__, _always_online)
    step = schedule.next_step()
    trained = schedule.trained_in(step)
    schedule.publish(step)
    return check_in, step, trained


def test_two_rounds_worked_by_hand() -> None:
    # Prepare
    schedule = _schedule(max_staleness=1)

    # Execute: version 0 checks in 0, 1, 2, 3; version 1 checks in 2 and 4
    first_in, first, first_trained = _round(schedule, [0, 1, 2, 3])
    second_in, second, second_trained = _round(schedule, [2, 4])

    # Assert. Check-ins every 2 s from 0: client 0 at 2 (ends 12), 1 at 4 (ends 7); at 6 both still run, so 2 is
    # skipped; 3 at 8 (ends 9), when 1 has ended
    assert first_in.started == (AsyncTask(0, 2.0, 12.0), AsyncTask(1, 4.0, 7.0), AsyncTask(3, 8.0, 9.0))
    assert first_in.skipped_busy == (2,)
    # the first two ends (7 and 9) make version 1 at 9; every task started before 9 trains on version 0
    assert [task.client_id for task in first.collected] == [1, 3] and first.staleness == (0, 0)
    assert first.time_s == 9.0 and first.dropped == ()
    assert sorted(task.client_id for task in first_trained) == [0, 1, 3]
    # version 1 at 9: check-ins continue at 11 (client 2, ends 15) and 13 (client 4, ends 15); client 0 ends at
    # 12, one version old, and is collected with client 2 (first by id among the ends at 15): version 2 at 15
    assert second_in.started == (AsyncTask(2, 11.0, 15.0), AsyncTask(4, 13.0, 15.0))
    assert [task.client_id for task in second.collected] == [0, 2] and second.staleness == (1, 0)
    assert second.time_s == 15.0
    assert sorted(task.client_id for task in second_trained) == [2, 4]
    assert schedule.pending == [AsyncTask(4, 13.0, 15.0)]
    assert schedule.published_s == [0.0, 9.0, 15.0] and schedule.version == 2


def test_an_update_staler_than_max_staleness_is_dropped_and_the_next_end_collected_instead() -> None:
    # Prepare
    schedule = _schedule(max_staleness=0)
    _round(schedule, [0, 1, 2, 3])

    # Execute
    _, step, _ = _round(schedule, [2, 4])

    # Assert: client 0 (trained on version 0, ending after version 1) is dropped; 2 and 4 make version 2
    assert step.dropped == (AsyncTask(0, 2.0, 12.0),)
    assert [task.client_id for task in step.collected] == [2, 4] and step.staleness == (0, 0)
    assert schedule.pending == []


def test_a_client_offline_when_it_would_report_is_skipped() -> None:
    # Prepare
    schedule = _schedule(max_staleness=1)

    # Execute: client 1 is offline from 5 s on
    check_in = schedule.check_in([0, 1], DURATIONS.__getitem__, lambda client, time_s: client != 1 or time_s < 5)

    # Assert: client 1 would report at 7
    assert check_in.started == (AsyncTask(0, 2.0, 12.0),) and check_in.skipped_offline == (1,)


def test_a_step_with_nothing_pending_moves_the_clock_by_an_idle_step() -> None:
    # Prepare
    schedule = _schedule(max_staleness=1)

    # Execute
    _, step, trained = _round(schedule, [])

    # Assert
    assert step.collected == () and trained == ()
    assert schedule.now_s == IDLE_STEP_S and schedule.version == 1


def test_refill_follows_fedscale_five_buffers_pending_ten_buffers_selected() -> None:
    # Prepare
    schedule = _schedule(max_staleness=1)

    # Execute
    empty = schedule.refill_size(overcommitment=1.3)
    schedule.pending = [AsyncTask(client, 0.0, 1.0) for client in range(10)]
    full = schedule.refill_size(overcommitment=1.3)

    # Assert: ceil(10 * 2 * 1.3) = 26 while fewer than 5 * 2 = 10 tasks are pending
    assert (empty, full) == (26, 0)


def test_the_version_of_a_start_is_the_newest_published_at_or_before_it() -> None:
    # Prepare
    schedule = AsyncSchedule(AsyncRules(1.0, 1, 1, 0), published_s=[0.0, 9.0, 15.0])

    # Execute
    versions = [schedule.version_at(time) for time in (0.0, 8.9, 9.0, 14.0, 15.0, 99.0)]

    # Assert
    assert versions == [0, 0, 1, 1, 2, 2]


def test_importance_is_one_over_the_square_root_of_one_plus_staleness() -> None:
    # Execute
    importance = [staleness_importance(staleness) for staleness in (0, 3, 8)]

    # Assert
    assert importance == [1.0, 0.5, pytest.approx(1 / 3)]
    assert staleness_importance(1) == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(ValueError, match="negative"):
        staleness_importance(-1)


@pytest.mark.parametrize("rules", [(1.0, 0, 1, 0), (1.0, 1, 0, 0), (1.0, 1, 1, -1), (-1.0, 1, 1, 0)])
def test_rules_out_of_range_are_refused(rules: tuple) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="async_buffer"):
        AsyncRules(*rules)
