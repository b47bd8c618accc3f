"""The round loop hands every task its client's drift and folds the reported increments back, worked out by hand."""

import threading
from collections.abc import Sequence

import torch

from fedscale_halor.aggregation import FedDC
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.selection.base import ClientOutcome, ClientSelector
from fedscale_halor.server.aggregator import Aggregator, AggregatorParts
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import ClientTrain, ClientUpdate, EvalOutcome, ModelTest, Shutdown, UpdateModel
from fedscale_halor.types import EvalResult, RoundMetrics, TrainResult, Weights


class FirstTwo(ClientSelector):
    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        return sorted(feasible)[:count]

    def feedback(self, round_index: int, outcomes: Sequence[ClientOutcome]) -> None:
        pass


class NoSink(MetricsSink):
    def on_round(self, metrics: RoundMetrics) -> None:
        pass


def drifting_executor(board: WorkBoard, seen: list[tuple[int, int, float | None]]) -> None:
    """Client c trains to w + c and reports the increment c; records (round, client, drift handed out)."""
    board.add_executor("fake")
    weights: Weights = {}
    while True:
        event = board.next_event("fake")
        if isinstance(event, UpdateModel):
            weights = event.weights
        elif isinstance(event, ClientTrain):
            for task in event.tasks:
                drift = task.client_state.get("w")
                seen.append((task.round, task.client_id, None if drift is None else float(drift)))
                step = torch.tensor(float(task.client_id))
                board.submit("fake", ClientUpdate(TrainResult(
                    task.client_id, task.round, task.model_version, {"w": weights["w"] + step}, num_samples=10,
                    num_steps=1, loss_mean=1.0, loss_square_mean=1.0, wall_time_s=0.1, client_state={"w": step})))
        elif isinstance(event, ModelTest):  # the last round is always evaluated
            board.submit("fake", EvalOutcome(event.round, event.model_version, event.shard_index,
                                             EvalResult(num_samples=1, loss_sum=1.0)))
        elif isinstance(event, Shutdown):
            return


def test_tasks_carry_the_drift_and_the_model_is_drift_corrected() -> None:
    # Prepare: four clients, clients 1 and 2 train every round, plain means.
    # Round 1 from w0 = 0: theta = 1, 2 -> mean 1.5; h1 = 1, h2 = 2; mean over 4 clients 0.75; w1 = 2.25
    # Round 2 from w1 (tasks carry h1 = 1, h2 = 2): theta = 3.25, 4.25 -> mean 3.75; h1 = 2, h2 = 4; mean 1.5; w2 = 5.25
    job = JobConfig(rounds=2, num_participants=2, total_clients=4, eval_interval=10, save_checkpoint=False,
                    feddc=1, weighted_avg=False)
    board = WorkBoard(long_poll_s=0.01)
    seen: list[tuple[int, int, float | None]] = []
    executor = threading.Thread(target=drifting_executor, args=(board, seen), daemon=True)
    executor.start()
    strategy = FedDC(weighted=False)
    aggregator = Aggregator(job, AggregatorParts(board, [1, 2, 3, 4], {"w": torch.tensor(0.0)}, FirstTwo(), strategy,
                                                 NoSink(), client_sizes={1: 10, 2: 10, 3: 10, 4: 10}))

    # Execute
    aggregator.run(executor_count=1, register_timeout_s=5)
    executor.join(timeout=5)

    # Assert
    assert sorted(seen) == [(1, 1, None), (1, 2, None), (2, 1, 1.0), (2, 2, 2.0)]
    assert float(aggregator.weights["w"]) == 5.25
    assert float(strategy.task_state(2)["w"]) == 4.0 and strategy.task_state(3) == {}
