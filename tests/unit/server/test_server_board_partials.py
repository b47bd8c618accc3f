"""The work board and executors' partial sums: the clients of a partial count as reported when it arrives."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from fedscale_halor.aggregation.partial import PartialSum, PartialSummer, SumRule
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import ClientTrain, ClientUpdate, Idle, PartialUpdate
from fedscale_halor.types import TrainResult, TrainTask

MODEL = {"w": torch.zeros(2)}
RULE = SumRule(weighted=True)


def _task(client_id: int, summed: bool = True) -> TrainTask:
    return TrainTask(round=1, client_id=client_id, model_version=0, learning_rate=0.1, local_steps=1, batch_size=2,
                     seed=client_id, summed=summed)


def _result(client_id: int, value: float = 1.0, samples: int = 1) -> TrainResult:
    return TrainResult(client_id=client_id, round=1, model_version=0, weights={"w": torch.full((2,), value)},
                       num_samples=samples, num_steps=1, loss_mean=0.5, loss_square_mean=0.25, wall_time_s=0.0)


def _partial_update(*results: TrainResult, round_index: int = 1, version: int = 0) -> PartialUpdate:
    summer = PartialSummer(MODEL, RULE)
    for result in results:
        summer.add(result)
    return PartialUpdate(round_index, version, summer.results, summer.state_dict())


class RoundInBackground:
    """A round on its own thread, recording what the board hands to the round loop."""

    def __init__(self, board: WorkBoard, tasks: list[TrainTask]) -> None:
        self.singles: list[int] = []
        self.partials: list[PartialSum] = []
        self.outcome: list = []
        self._thread = threading.Thread(target=lambda: self.outcome.append(board.run_round(
            1, tasks, on_result=lambda result: self.singles.append(result.client_id), sum_rule=RULE,
            on_partial=self.partials.append)), daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the round did not end"


def _board(*executors: str) -> WorkBoard:
    board = WorkBoard(long_poll_s=0.01)
    for executor in executors:
        board.add_executor(executor)
    board.set_model(0, MODEL)
    return board


def _work(board: WorkBoard, executor: str) -> ClientTrain:
    for _ in range(500):
        event = board.next_event(executor)
        if isinstance(event, ClientTrain):
            return event
        assert isinstance(event, Idle) or event.version == 0
    raise AssertionError("no work was handed out")


def test_a_partial_settles_its_clients_and_the_round_loop_gets_the_sum_beside_single_updates() -> None:
    # Prepare: three clients, two of them summed
    board = _board("a")
    round_ = RoundInBackground(board, [_task(1), _task(2, summed=False), _task(3)])
    event = _work(board, "a")

    # Execute
    board.submit("a", _partial_update(_result(3, 4.0, 3), _result(1, 2.0, 1)))
    board.submit("a", ClientUpdate(_result(2)))
    round_.join()

    # Assert: the event carried the rule; the sum reached the loop as one partial, its clients in the outcome
    assert event.sum_rule == RULE and [task.summed for task in event.tasks] == [True, False, True]
    assert round_.singles == [2]
    [partial] = round_.partials
    assert partial.client_ids == (3, 1)
    assert partial.sums.mean()["w"].tolist() == [3.5, 3.5]  # (4*3 + 2*1) / 4
    outcome = round_.outcome[0]
    assert sorted(result.client_id for result in outcome.results) == [1, 2, 3]
    assert outcome.failures == () and sorted(outcome.client_round_trip_s) == [1, 2, 3]


def test_an_event_without_summed_tasks_carries_no_rule() -> None:
    board = _board("a")
    round_ = RoundInBackground(board, [_task(1, summed=False)])
    assert _work(board, "a").sum_rule is None
    board.submit("a", ClientUpdate(_result(1)))
    round_.join()


def test_a_partial_on_another_model_version_or_that_does_not_fit_counts_its_clients_as_failed() -> None:
    board = _board("a")
    round_ = RoundInBackground(board, [_task(1), _task(2), _task(3)])
    _work(board, "a")
    board.submit("a", _partial_update(_result(1), version=7))
    misfit = _partial_update(_result(2))
    board.submit("a", replace(misfit, sums={**misfit.sums, "high.extra": torch.zeros(1, dtype=torch.int64)}))
    board.submit("a", _partial_update(_result(3)))
    round_.join()

    failures = {failure.client_id: failure.error for failure in round_.outcome[0].failures}
    assert sorted(failures) == [1, 2]
    assert "from a cannot be folded: trained on model version 7, but the round's model is version 0" in failures[1]
    assert "unexpected entry 'high.extra'" in failures[2]
    assert [partial.client_ids for partial in round_.partials] == [(3,)]


def test_a_partial_holding_a_client_that_already_reported_is_discarded_and_its_others_train_again() -> None:
    # Prepare: a takes client 5 and b client 6; b reports 6
    board = _board("a", "b")
    round_ = RoundInBackground(board, [_task(5), _task(6)])
    a_work = _work(board, "a")
    b_work = _work(board, "b")
    board.submit("b", _partial_update(_result(6)))

    # Execute: a's partial claims 6 as well (an executor wrongly declared dead reports what was reassigned)
    board.submit("a", _partial_update(_result(5), _result(6)))

    # Assert: a's partial is dropped, its own client 5 is handed out again, and its retrained update counts
    assert [task.client_id for task in a_work.tasks] == [5] and [task.client_id for task in b_work.tasks] == [6]
    again = _work(board, "a")
    assert [task.client_id for task in again.tasks] == [5]
    board.submit("a", _partial_update(_result(5)))
    round_.join()
    assert [partial.client_ids for partial in round_.partials] == [(6,), (5,)]
    assert round_.outcome[0].failures == ()


def test_a_partial_of_an_earlier_round_is_ignored() -> None:
    board = _board("a")
    round_ = RoundInBackground(board, [_task(1)])
    _work(board, "a")
    board.submit("a", _partial_update(replace(_result(1), round=0), round_index=0))
    board.submit("a", _partial_update(_result(1)))
    round_.join()
    assert [partial.client_ids for partial in round_.partials] == [(1,)]


def test_summed_tasks_need_a_rule_and_a_taker_of_partials() -> None:
    with pytest.raises(ValueError, match="summed tasks need a sum rule"):
        _board("a").run_round(1, [_task(1)], on_result=lambda result: None)
