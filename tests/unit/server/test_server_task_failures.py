"""The work board and a task that an executor reports as failed: a fatal error stops the round loop's wait at once
with an ExecutorTaskError naming the executor, the task and the error; a transient one is retried, a few times."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import torch

from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.errors import ExecutorTaskError, JobFailedError
from fedscale_halor.server.task_failures import EVAL_TRIES
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    EvalFailure,
    EvalOutcome,
    ModelTest,
)
from fedscale_halor.types import EvalResult, TrainResult, TrainTask

OUT_OF_BOUNDS = "IndexError: Target 12 is out of bounds."


def _board(executors: tuple[str, ...] = ("e1",)) -> WorkBoard:
    board = WorkBoard(long_poll_s=0.01)
    for executor_id in executors:
        board.add_executor(executor_id)
    board.set_model(0, {"w": torch.zeros(1)})
    return board


def _task(client_id: int) -> TrainTask:
    return TrainTask(round=1, client_id=client_id, model_version=0, learning_rate=0.1, local_steps=1, batch_size=2,
                     seed=client_id)


def _in_background(wait: Callable[[], object]) -> tuple[threading.Thread, list[object], list[BaseException]]:
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(wait())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results, errors


def _next_work(board: WorkBoard, executor_id: str, kind: type) -> object:
    """The next event of ``kind`` the executor gets, past the model and idle polls."""
    for _ in range(500):
        event = board.next_event(executor_id)
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__} was handed out")


def test_a_fatal_training_failure_stops_the_round_at_once_with_its_message() -> None:
    # Prepare
    board = _board()
    thread, _, errors = _in_background(lambda: board.run_round(1, [_task(7), _task(8)]))
    _next_work(board, "e1", ClientTrain)

    # Execute: client 7 fails fatally; client 8 never reports
    started = time.monotonic()
    board.submit("e1", ClientFailure(round=1, client_id=7, error=OUT_OF_BOUNDS, fatal=True))
    thread.join(timeout=5)

    # Assert
    assert time.monotonic() - started < 2.0
    [error] = errors
    assert isinstance(error, ExecutorTaskError) and isinstance(error, JobFailedError)
    assert str(error) == f"executor e1 failed training client 7 in round 1: {OUT_OF_BOUNDS}"


def test_a_transient_training_failure_only_drops_the_client() -> None:
    board = _board()
    thread, outcomes, errors = _in_background(lambda: board.run_round(1, [_task(7), _task(8)]))
    _next_work(board, "e1", ClientTrain)

    board.submit("e1", ClientFailure(round=1, client_id=7, error="MemoryError", fatal=False))
    board.submit("e1", ClientUpdate(TrainResult(8, 1, 0, {"w": torch.ones(1)}, num_samples=1, num_steps=1,
                                                loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)))
    thread.join(timeout=5)

    assert not errors
    [outcome] = outcomes
    assert [failure.client_id for failure in outcome.failures] == [7]  # type: ignore[attr-defined]


def test_a_fatal_evaluation_failure_stops_the_test_at_once_with_its_message() -> None:
    # Prepare: two executors, two shards; e1's shard fails, e2's never comes back
    board = _board(("e1", "e2"))
    thread, _, errors = _in_background(lambda: board.run_test(3, shard_count=2))
    shard = _next_work(board, "e1", ModelTest)
    assert isinstance(shard, ModelTest)

    # Execute
    board.submit("e1", EvalFailure(round=3, model_version=0, shard_index=shard.shard_index, error=OUT_OF_BOUNDS,
                                   fatal=True))
    thread.join(timeout=5)

    # Assert
    [error] = errors
    assert isinstance(error, ExecutorTaskError)
    assert str(error) == f"executor e1 failed evaluating round 3: {OUT_OF_BOUNDS}"


def test_a_transiently_failed_shard_is_handed_out_again_and_then_counts() -> None:
    board = _board()
    thread, totals, errors = _in_background(lambda: board.run_test(3, shard_count=1))
    shard = _next_work(board, "e1", ModelTest)
    assert isinstance(shard, ModelTest)

    board.submit("e1", EvalFailure(3, 0, shard.shard_index, "OutOfMemoryError: CUDA out of memory", fatal=False))
    again = _next_work(board, "e1", ModelTest)
    board.submit("e1", EvalOutcome(3, 0, shard.shard_index, EvalResult(10, 5.0, 7, 9)))
    thread.join(timeout=5)

    assert isinstance(again, ModelTest) and again.shard_index == shard.shard_index
    assert not errors and totals == [EvalResult(10, 5.0, 7, 9)]


def test_a_shard_that_keeps_failing_transiently_stops_the_job_after_its_last_try() -> None:
    # Prepare
    board = _board()
    thread, _, errors = _in_background(lambda: board.run_test(3, shard_count=1))

    # Execute: every try runs out of memory
    for _ in range(EVAL_TRIES):
        shard = _next_work(board, "e1", ModelTest)
        assert isinstance(shard, ModelTest)
        board.submit("e1", EvalFailure(3, 0, shard.shard_index, "OutOfMemoryError: CUDA out of memory", fatal=False))
    thread.join(timeout=5)

    # Assert: no endless loop; the job stops naming the error and the tries
    [error] = errors
    assert isinstance(error, ExecutorTaskError)
    assert "executor e1 failed evaluating round 3: OutOfMemoryError: CUDA out of memory" in str(error)
    assert f"{EVAL_TRIES} tries" in str(error)


def test_the_first_fatal_error_is_the_jobs_even_when_the_executor_crashes_after_it() -> None:
    board = _board()
    board.submit("e1", ClientFailure(round=1, client_id=7, error=OUT_OF_BOUNDS, fatal=True))
    board.submit("e1", ClientFailure(round=1, client_id=8, error="ValueError: later", fatal=True))
    board.fail("executor_0 crashed")

    with pytest.raises(ExecutorTaskError, match="client 7 in round 1: IndexError"):
        board.run_round(1, [_task(7)])
