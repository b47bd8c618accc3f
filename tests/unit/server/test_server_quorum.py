"""Quorum and round retries against a hand-written fake executor whose chosen clients always fail."""

import threading
from collections.abc import Sequence

import pytest
import torch

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.server.aggregator import Aggregator, AggregatorParts
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.quorum import QuorumPolicy, RoundFailedError
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    EvalOutcome,
    ModelTest,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import EvalResult, TrainResult, Weights
from tests.unit.server.test_server_aggregator import FirstClientsSelector, ListSink, MeanStrategy


def failing_executor(board: WorkBoard, failing: set[int], trained: list[tuple[int, int]]) -> None:
    """Client c returns global + c, except the ``failing`` ones, which report an error; ``trained`` gets (round,
    client) of every task handed over."""
    board.add_executor("fake")
    weights: Weights = {}
    while True:
        event = board.next_event("fake")
        if isinstance(event, UpdateModel):
            weights = event.weights
        elif isinstance(event, ClientTrain):
            for task in event.tasks:
                trained.append((task.round, task.client_id))
                if task.client_id in failing:
                    board.submit("fake", ClientFailure(task.round, task.client_id,
                                                       f"IndexError('Target {task.client_id + 10} is out of bounds.')"))
                    continue
                board.submit("fake", ClientUpdate(TrainResult(
                    task.client_id, task.round, task.model_version, {"w": weights["w"] + task.client_id},
                    num_samples=10, num_steps=task.local_steps, loss_mean=1.0, loss_square_mean=1.0, wall_time_s=0.1)))
        elif isinstance(event, ModelTest):
            board.submit("fake", EvalOutcome(event.round, event.model_version, event.shard_index,
                                             EvalResult(num_samples=1)))
        elif isinstance(event, Shutdown):
            return


def _run(job: JobConfig, clients: Sequence[int], failing: set[int]) -> tuple[Aggregator, ListSink,
                                                                               list[tuple[int, int]], list]:
    board = WorkBoard(long_poll_s=0.01)
    trained: list[tuple[int, int]] = []
    executor = threading.Thread(target=failing_executor, args=(board, failing, trained), daemon=True)
    executor.start()
    sink = ListSink()
    aggregator = Aggregator(job, AggregatorParts(board, list(clients), {"w": torch.tensor(0.0)},
                                                 FirstClientsSelector(), MeanStrategy(), sink))
    try:
        history = aggregator.run(executor_count=1, register_timeout_s=5)
    finally:
        executor.join(timeout=5)
    return aggregator, sink, trained, history


def test_a_round_at_its_quorum_is_committed_without_the_failed_client() -> None:
    # Prepare: clients 1 and 2 selected, 1 fails: 1 of 2 report, exactly the quorum of 0.5
    job = JobConfig(rounds=1, num_participants=2, total_clients=4, quorum=0.5, save_checkpoint=False)

    # Execute
    aggregator, _, trained, history = _run(job, [1, 2, 3, 4], failing={1})

    # Assert: the mean of client 2 alone (w = 0 + 2); one attempt
    assert float(aggregator.weights["w"]) == 2.0
    assert trained == [(1, 1), (1, 2)]
    assert history[0].attempts == 1 and history[0].completed == 1


def test_a_round_short_of_its_quorum_runs_again_with_fresh_participants() -> None:
    # Prepare: quorum 0.75: 1 of 2 is short; the retry leaves client 1 out and selects 2 and 3
    job = JobConfig(rounds=2, num_participants=2, total_clients=4, quorum=0.75, round_retries=2,
                    save_checkpoint=False)

    # Execute
    aggregator, _, trained, history = _run(job, [1, 2, 3, 4], failing={1})

    # Assert: round 1 commits mean(2, 3) = 2.5; round 2 starts afresh (client 1 selected again, retried likewise)
    assert trained[:4] == [(1, 1), (1, 2), (1, 2), (1, 3)]
    assert [m.attempts for m in history] == [2, 2]
    assert [m.participants for m in history] == [(2, 3), (2, 3)]
    assert float(aggregator.weights["w"]) == 5.0


def test_a_job_whose_every_client_fails_stops_in_its_first_round_naming_the_clients_and_the_first_error() -> None:
    # Prepare
    job = JobConfig(rounds=5, num_participants=2, total_clients=6, round_retries=2, save_checkpoint=False)

    # Execute
    with pytest.raises(RoundFailedError) as raised:
        _run(job, [0, 1, 2, 3, 4, 5], failing={0, 1, 2, 3, 4, 5})

    # Assert: three attempts of two fresh clients each, then the job stops; no round was committed
    assert str(raised.value) == (
        "round 1: 3 attempts (round_retries 2) stayed under the quorum of 0.5, the last with 0 of 2 selected clients "
        "reporting; failing clients: 0, 1, 2, 3, 4, 5; first error (client 0): "
        "IndexError('Target 10 is out of bounds.')")


def test_the_quorum_counts_failures_only() -> None:
    policy = QuorumPolicy(quorum=0.6, round_retries=0)
    failure = ClientFailure(1, 7, "boom")

    assert policy.met(5, [failure, failure])  # 3 of 5 reported: 0.6
    assert not policy.met(5, [failure, failure, failure])  # 2 of 5
    assert policy.met(0, [])  # nobody selected (nobody online): nothing failed
