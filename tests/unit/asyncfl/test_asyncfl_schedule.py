"""FedBuff's schedule and weights on hand-worked examples (the rules are in fedscale_halor/asyncfl/schedule.py)."""

import itertools

import pytest

from fedscale_halor.asyncfl.schedule import AsyncSchedule, AsyncTask, staleness_weights

# clients start in id order; their round times in seconds
DURATIONS = {0: 10.0, 1: 4.0, 2: 3.0, 3: 5.0, 4: 2.0, 5: 1.0, 6: 5.0, 7: 5.0}


def _schedule(max_staleness: int) -> AsyncSchedule:
    clients = itertools.count()
    return AsyncSchedule(lambda time_s: next(clients), DURATIONS.__getitem__, max_concurrency=2, buffer_size=2,
                         max_staleness=max_staleness)


def test_two_at_a_time_buffers_of_two_worked_by_hand() -> None:
    # Prepare
    schedule = _schedule(max_staleness=1)

    # Execute
    first, started_first = schedule.next_step(0)
    second, started_second = schedule.next_step(1)
    third, started_third = schedule.next_step(2)

    # Assert. Version 0: clients 0 and 1 start at 0; 1 ends at 4 and 2 starts; 2 ends at 7 and 3 starts.
    assert started_first == (AsyncTask(0, 0, 0.0, 10.0), AsyncTask(1, 0, 0.0, 4.0), AsyncTask(2, 0, 4.0, 7.0),
                             AsyncTask(3, 0, 7.0, 12.0))
    assert [task.client_id for task in first.collected] == [1, 2] and first.time_s == 7.0
    # version 1: 0 ends at 10 (one version old) and 4 starts on version 1; 3 ends at 12 and 5 starts
    assert [(task.client_id, second.staleness(task)) for task in second.collected] == [(0, 1), (3, 1)]
    assert started_second == (AsyncTask(4, 1, 10.0, 12.0), AsyncTask(5, 1, 12.0, 13.0))
    assert second.time_s == 12.0 and second.dropped == ()
    # version 2: 4 ends at 12 and 6 starts; 5 ends at 13 and 7 starts
    assert [(task.client_id, third.staleness(task)) for task in third.collected] == [(4, 1), (5, 1)]
    assert [(task.client_id, task.version, task.start_s) for task in started_third] == [(6, 2, 12.0), (7, 2, 13.0)]
    assert third.time_s == schedule.now_s == 13.0


def test_updates_staler_than_max_staleness_are_dropped_and_do_not_fill_the_buffer() -> None:
    schedule = _schedule(max_staleness=0)
    schedule.next_step(0)

    step, started = schedule.next_step(1)

    # 0 (from version 0, ending at 10) and 3 (version 0, at 12) are one version old: dropped; 4 and 5 fill it
    assert [task.client_id for task in step.dropped] == [0, 3]
    assert [task.client_id for task in step.collected] == [4, 5]
    assert step.time_s == 13.0
    assert [task.client_id for task in started] == [4, 5, 6, 7]


def test_three_updates_of_staleness_0_1_and_2_weigh_6_3_and_2_elevenths() -> None:
    weights = staleness_weights([0, 1, 2])
    models = [1.0, 4.0, 7.0]

    assert weights == pytest.approx((6 / 11, 3 / 11, 2 / 11))
    # 1 x 6/11 + 4 x 3/11 + 7 x 2/11 = 32/11
    assert sum(weight * model for weight, model in zip(weights, models, strict=True)) == pytest.approx(32 / 11)
    assert sum(weights) == pytest.approx(1.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_concurrency and buffer_size must be at least 1"):
        AsyncSchedule(lambda time_s: 0, lambda client: 1.0, max_concurrency=0, buffer_size=1, max_staleness=0)
    with pytest.raises(ValueError, match="staleness must not be negative"):
        staleness_weights([1, -1])
