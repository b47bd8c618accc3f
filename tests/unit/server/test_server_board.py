import threading
import time

import pytest
import torch

from fedscale_halor.server.board import LivenessPolicy, WorkBoard
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
        board.submit("a", ClientUpdate(_result(client_id)))
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_round_returns_results_and_failures_and_ignores_other_rounds() -> None:
    board = _board_with(["a"])
    thread, outcome = _run_round_in_background(board, [_task(7), _task(9)])
    _wait_until_published(board, "a")

    board.submit("a", ClientUpdate(_result(7, round_index=0)))  # a late update from an earlier round
    board.submit("a", ClientUpdate(_result(7)))
    board.submit("a", ClientFailure(round=1, client_id=9, error="boom"))
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
    board.submit("a", EvalOutcome(3, 0, shard_b.shard_index, EvalResult(10, 5.0, 7, 9)))
    board.submit("a", EvalOutcome(3, 0, shard_a.shard_index, EvalResult(30, 3.0, 20, 29)))
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


def _quick_liveness(reassign: bool = True) -> LivenessPolicy:
    return LivenessPolicy(executor_timeout_s=0.2, reassign_dead_clients=reassign, orphan_timeout_s=0.5)


def test_a_silent_executors_clients_are_reassigned_to_the_living() -> None:
    # Prepare: "a" takes clients 0 and 1 then goes silent; "b" keeps polling
    board = WorkBoard(long_poll_s=0.01, liveness=_quick_liveness())
    board.add_executor("a")
    board.add_executor("b")
    board.set_model(0, {"w": torch.zeros(1)})
    thread, outcome = _run_round_in_background(board, [_task(0), _task(1)])
    _wait_until_published(board, "a")
    taken = board.next_event("a")
    assert isinstance(taken, ClientTrain) and [t.client_id for t in taken.tasks] == [0]

    # Execute: "b" polls until a's client comes back to the queue
    reassigned: list[int] = []
    for _ in range(500):
        event = board.next_event("b")
        if isinstance(event, ClientTrain):
            reassigned += [t.client_id for t in event.tasks]
            for task in event.tasks:
                board.submit("b", ClientUpdate(_result(task.client_id)))
        if not thread.is_alive():
            break
    thread.join(timeout=5)

    # Assert
    assert sorted(reassigned) == [0, 1]
    assert sorted(r.client_id for r in outcome[0].results) == [0, 1]
    assert board.executor_count == 1


def test_with_the_drop_policy_a_dead_executors_clients_count_as_failures() -> None:
    board = WorkBoard(long_poll_s=0.01, liveness=_quick_liveness(reassign=False))
    board.add_executor("a")
    board.add_executor("b")
    board.set_model(0, {"w": torch.zeros(1)})
    thread, outcome = _run_round_in_background(board, [_task(0), _task(1)])
    _wait_until_published(board, "a")
    board.next_event("a")  # takes client 0, then dies
    board.next_event("b")  # the model
    event = board.next_event("b")
    board.submit("b", ClientUpdate(_result(event.tasks[0].client_id)))
    for _ in range(100):  # "b" stays alive while the round loop notices that "a" is gone
        board.next_event("b")
        if not thread.is_alive():
            break
    thread.join(timeout=5)

    assert [r.client_id for r in outcome[0].results] == [1]
    assert [(f.client_id, "executor a died" in f.error) for f in outcome[0].failures] == [(0, True)]


def test_a_declared_dead_executor_that_comes_back_gets_work_again() -> None:
    board = WorkBoard(long_poll_s=0.01, liveness=_quick_liveness())
    board.add_executor("a")
    board.add_executor("b")
    board.set_model(0, {"w": torch.zeros(1)})
    thread, outcome = _run_round_in_background(board, [_task(0)])
    _wait_until_published(board, "a")
    board.next_event("a")  # takes client 0 and stalls past the timeout
    for _ in range(100):
        board.next_event("b")
        if board.executor_count == 1:
            break

    back = board.next_event("a")
    board.submit("a", ClientUpdate(_result(0)))
    thread.join(timeout=5)

    assert board.executor_count >= 1
    assert isinstance(back, ClientTrain | Idle | UpdateModel)
    assert [r.client_id for r in outcome[0].results] == [0]


def test_work_with_no_executor_left_fails_after_the_orphan_timeout() -> None:
    board = WorkBoard(long_poll_s=0.01, liveness=_quick_liveness())
    board.add_executor("a")
    board.set_model(0, {"w": torch.zeros(1)})

    with pytest.raises(RuntimeError, match="no executor has been alive"):
        board.run_round(1, [_task(0)])


def test_an_executor_that_registers_mid_round_gets_the_model_and_a_share_of_the_clients_still_pending() -> None:
    # Prepare: "a" has fetched the model but no clients yet when "b" registers; 4 clients are pending
    board = _board_with(["a"])
    thread, outcome = _run_round_in_background(board, [_task(c) for c in range(4)])
    assert isinstance(_wait_until_published(board, "a"), UpdateModel)

    # Execute
    board.add_executor("b")
    b_model = board.next_event("b")
    b_first = board.next_event("b")
    a_first = board.next_event("a")
    b_second = board.next_event("b")
    handed = {"b": [*b_first.tasks, *b_second.tasks], "a": [*a_first.tasks]}
    for executor_id, tasks in handed.items():
        for task in tasks:
            board.submit(executor_id, ClientUpdate(_result(task.client_id)))
    thread.join(timeout=5)

    # Assert: b gets version 0, then ceil(4 pending / 2 live) = 2 clients; then ceil(2 / 2) = 1 each
    assert isinstance(b_model, UpdateModel) and b_model.version == 0
    assert [t.client_id for t in handed["b"]] == [0, 1, 3]
    assert [t.client_id for t in handed["a"]] == [2]
    assert sorted(r.client_id for r in outcome[0].results) == [0, 1, 2, 3]


def test_results_are_handed_to_the_round_loop_as_they_arrive_and_the_outcome_keeps_no_weights() -> None:
    # Prepare
    board = _board_with(["a"])
    handed: list[tuple[int, int]] = []  # (client, results still awaited by the board when it was handed over)
    outcome: list = []

    def on_result(result) -> None:
        handed.append((result.client_id, len(board._awaited_clients)))

    thread = threading.Thread(target=lambda: outcome.append(
        board.run_round(1, [_task(0), _task(1)], on_result=on_result)), daemon=True)
    thread.start()
    _wait_until_published(board, "a")
    work = board.next_event("a")

    # Execute: the first result is handed over before the second is even submitted
    board.submit("a", ClientUpdate(_result(work.tasks[0].client_id)))
    for _ in range(500):
        if handed:
            break
        threading.Event().wait(0.01)
    board.submit("a", ClientUpdate(_result(work.tasks[1].client_id)))
    thread.join(timeout=5)

    # Assert
    assert handed == [(0, 1), (1, 0)]
    assert sorted(r.client_id for r in outcome[0].results) == [0, 1]
    assert all(r.weights == {} for r in outcome[0].results)


def test_smaller_hand_outs_keep_the_clients_of_a_round_close_to_their_order() -> None:
    # 20 clients, 2 executors, 4 chunks each: a takes ceil(20/8) = 3, b ceil(17/8) = 3, a ceil(14/8) = 2
    board = WorkBoard(long_poll_s=0.01, chunks_per_executor=4)
    for executor_id in ("a", "b"):
        board.add_executor(executor_id)
    board.set_model(0, {"w": torch.zeros(1)})
    thread, _ = _run_round_in_background(board, [_task(c) for c in range(20)])
    _wait_until_published(board, "a")
    board.next_event("b")  # b's model

    shares = [[t.client_id for t in board.next_event(executor).tasks] for executor in ("a", "b", "a")]
    for client_id in range(20):
        board.submit("a", ClientUpdate(_result(client_id)))
    thread.join(timeout=5)

    assert shares == [[0, 1, 2], [3, 4, 5], [6, 7]]
    with pytest.raises(ValueError, match="chunks_per_executor"):
        WorkBoard(chunks_per_executor=0)


def test_a_round_whose_fold_takes_any_order_hands_out_by_plain_guided_self_scheduling() -> None:
    # 20 clients, 2 executors: a takes ceil(20/2) = 10, b ceil(10/2) = 5, a ceil(5/2) = 3, whatever the chunks
    board = WorkBoard(long_poll_s=0.01, chunks_per_executor=4)
    for executor_id in ("a", "b"):
        board.add_executor(executor_id)
    board.set_model(0, {"w": torch.zeros(1)})
    thread = threading.Thread(target=lambda: board.run_round(1, [_task(c) for c in range(20)],
                                                             in_client_order=False), daemon=True)
    thread.start()
    _wait_until_published(board, "a")
    board.next_event("b")  # b's model

    shares = [len(board.next_event(executor).tasks) for executor in ("a", "b", "a")]
    for client_id in range(20):
        board.submit("a", ClientUpdate(_result(client_id)))
    thread.join(timeout=5)

    assert shares == [10, 5, 3]


def test_an_exception_while_results_are_handed_over_leaves_the_board_unlocked() -> None:
    # a stop signal turns into SystemExit wherever the round loop happens to be, here in the hand-over
    board = _board_with(["a"])

    def interrupted(result) -> None:
        raise SystemExit(143)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            board.run_round(1, [_task(0), _task(1)], on_result=interrupted)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _wait_until_published(board, "a")
    work = board.next_event("a")
    board.submit("a", ClientUpdate(_result(work.tasks[0].client_id)))
    thread.join(timeout=5)

    other = threading.Thread(target=lambda: board.submit("a", ClientUpdate(_result(1))), daemon=True)
    other.start()
    other.join(timeout=5)

    assert len(errors) == 1 and isinstance(errors[0], SystemExit)
    assert not other.is_alive()  # the lock was released, not left held


def _hang_up_board(grace_s: float) -> WorkBoard:
    # an executor timeout far beyond the test's length: only the hang-up can get an executor declared dead
    board = WorkBoard(long_poll_s=0.01, liveness=LivenessPolicy(executor_timeout_s=600.0, hang_up_grace_s=grace_s))
    board.add_executor("a")
    board.add_executor("b")
    board.set_model(0, {"w": torch.zeros(1)})
    return board


def _serve_as_b_until_done(board: WorkBoard, thread: threading.Thread, timeout_s: float) -> list[int]:
    trained: list[int] = []
    deadline = time.monotonic() + timeout_s
    while thread.is_alive() and time.monotonic() < deadline:
        event = board.next_event("b")
        if isinstance(event, ClientTrain):
            for task in event.tasks:
                trained.append(task.client_id)
                board.submit("b", ClientUpdate(_result(task.client_id)))
    thread.join(timeout=5)
    return trained


def test_an_executor_that_hung_up_and_stays_away_is_declared_dead_after_the_grace(
        caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: "a" takes client 0, then its held connection breaks
    board = _hang_up_board(grace_s=0.3)
    thread, outcome = _run_round_in_background(board, [_task(0), _task(1)])
    _wait_until_published(board, "a")
    taken = board.next_event("a")
    assert isinstance(taken, ClientTrain) and [t.client_id for t in taken.tasks] == [0]
    board.executor_hung_up("a")

    # Execute: "b" serves until the round ends (it would wait ten minutes for the executor timeout)
    with caplog.at_level("WARNING", logger="fedscale_halor.aggregator"):
        trained = _serve_as_b_until_done(board, thread, timeout_s=30.0)

    # Assert: a's client went to b, the round has both, and the log says why a was dropped
    assert not thread.is_alive()
    assert sorted(trained) == [0, 1]
    assert sorted(r.client_id for r in outcome[0].results) == [0, 1]
    assert board.executor_count == 1
    assert any("executor a hung up" in r.message and "declared dead" in r.message for r in caplog.records)


def test_an_executor_that_hung_up_but_calls_again_within_the_grace_keeps_its_clients() -> None:
    board = _hang_up_board(grace_s=0.3)
    thread, outcome = _run_round_in_background(board, [_task(0), _task(1)])
    _wait_until_published(board, "a")
    taken = board.next_event("a")
    assert isinstance(taken, ClientTrain)
    board.executor_hung_up("a")
    board.attend("a")  # its connection is open again: a passing network fault, not a death

    time.sleep(1.5)  # long past the grace, while the round loop keeps checking its executors
    board.submit("a", ClientUpdate(_result(0)))
    trained = _serve_as_b_until_done(board, thread, timeout_s=30.0)

    assert trained == [1]
    assert sorted(r.client_id for r in outcome[0].results) == [0, 1]
    assert board.executor_count == 2

