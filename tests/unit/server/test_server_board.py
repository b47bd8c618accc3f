import threading

import pytest
import torch

from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    EvalOutcome,
    Idle,
    ModelTest,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import EvalResult, TrainResult, TrainTask


def _task(client_id: int, round_index: int = 1) -> TrainTask:
    return TrainTask(round=round_index, client_id=client_id, model_version=0, learning_rate=0.1, local_steps=1,
                     batch_size=2, seed=client_id)


def _result(client_id: int, round_index: int = 1) -> TrainResult:
    return TrainResult(client_id=client_id, round=round_index, model_version=0, weights={"w": torch.zeros(1)},
                       num_samples=1, num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)


def _board_with(executors: list[str]) -> WorkBoard:
    board = WorkBoard(long_poll_s=0.01)
    for executor_id in executors:
        board.add_executor(executor_id)
    board.set_model(0, {"w": torch.zeros(1)})
    return board


def _run_round_in_background(board: WorkBoard, tasks: list[TrainTask]) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(board.run_round(1, tasks)), daemon=True)
    thread.start()
    return thread, outcome


def _wait_until_published(board: WorkBoard, executor_id: str):
    for _ in range(500):
        event = board.next_event(executor_id)
        if not isinstance(event, Idle):
            return event
    raise AssertionError("no work was published")


def test_model_is_sent_once_per_version_then_clients_are_shared_by_guided_scheduling() -> None:
    # Prepare: 5 clients, 2 executors
    board = _board_with(["a", "b"])
    thread, _ = _run_round_in_background(board, [_task(c) for c in range(5)])

    # Execute
    first = _wait_until_published(board, "a")
    a_work = board.next_event("a")
    b_model = board.next_event("b")
    b_work = board.next_event("b")
    a_rest = board.next_event("a")

    # Assert: ceil(5/2)=3 to a, then ceil(2/2)=1 to b, then the last one to whoever asks; weights only once each
    assert isinstance(first, UpdateModel) and first.version == 0
    assert isinstance(a_work, ClientTrain) and [t.client_id for t in a_work.tasks] == [0, 1, 2]
    assert isinstance(b_model, UpdateModel)
    assert isinstance(b_work, ClientTrain) and [t.client_id for t in b_work.tasks] == [3]
    assert isinstance(a_rest, ClientTrain) and [t.client_id for t in a_rest.tasks] == [4]
    for client_id in range(5):
        board.submit(ClientUpdate(_result(client_id)))
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_round_returns_results_and_failures_and_ignores_other_rounds() -> None:
    board = _board_with(["a"])
    thread, outcome = _run_round_in_background(board, [_task(7), _task(9)])
    _wait_until_published(board, "a")

    board.submit(ClientUpdate(_result(7, round_index=0)))  # a late update from an earlier round
    board.submit(ClientUpdate(_result(7)))
    board.submit(ClientFailure(round=1, client_id=9, error="boom"))
    thread.join(timeout=5)

    assert [r.client_id for r in outcome[0].results] == [7]
    assert outcome[0].results[0].round == 1
    assert [f.client_id for f in outcome[0].failures] == [9]


def test_idle_when_there_is_no_work_and_shutdown_ends_polling() -> None:
    board = _board_with(["a"])

    idle = board.next_event("a")
    board.shutdown("done")
    after = board.next_event("a")

    assert isinstance(idle, Idle)
    assert isinstance(after, Shutdown) and after.reason == "done"


def test_unregistered_executor_is_named() -> None:
    board = _board_with([])
    with pytest.raises(KeyError, match="ghost"):
        board.next_event("ghost")


def test_test_shards_are_summed_in_shard_order() -> None:
    board = _board_with(["a", "b"])
    totals: list[EvalResult] = []
    thread = threading.Thread(target=lambda: totals.append(board.run_test(3, shard_count=2)), daemon=True)
    thread.start()
    _wait_until_published(board, "a")  # the model
    shard_a = board.next_event("a")
    board.next_event("b")
    shard_b = board.next_event("b")

    assert isinstance(shard_a, ModelTest) and isinstance(shard_b, ModelTest)
    assert {shard_a.shard_index, shard_b.shard_index} == {0, 1}
    board.submit(EvalOutcome(3, 0, shard_b.shard_index, EvalResult(10, 5.0, 7, 9)))
    board.submit(EvalOutcome(3, 0, shard_a.shard_index, EvalResult(30, 3.0, 20, 29)))
    thread.join(timeout=5)

    assert totals == [EvalResult(40, 8.0, 27, 38)]
    assert totals[0].top1 == pytest.approx(27 / 40)


def test_failure_turns_a_wait_into_an_error() -> None:
    board = _board_with(["a"])
    errors: list[Exception] = []

    def wait() -> None:
        try:
            board.run_round(1, [_task(1)])
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    _wait_until_published(board, "a")
    board.fail("executor_0 crashed")
    thread.join(timeout=5)

    assert len(errors) == 1 and "executor_0 crashed" in str(errors[0])
