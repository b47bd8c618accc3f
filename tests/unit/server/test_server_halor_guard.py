"""Halor's guard in the round loop: sizes learnt from training results, and the candidates selection sees."""

import threading
from collections.abc import Sequence

import torch

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.fold import RoundFold
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.halor.server_plugin import HalorCoordinator, HalorSettings
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.selection.base import ClientSelector
from fedscale_halor.server.aggregator import Aggregator, AggregatorParts
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import ClientTrain, ClientUpdate, EvalOutcome, ModelTest, Shutdown, UpdateModel
from fedscale_halor.types import EvalResult, RoundMetrics, TrainResult, Weights


def _result(client_id: int, num_samples: int) -> TrainResult:
    return TrainResult(client_id, 1, 0, {}, num_samples=num_samples, num_steps=1, loss_mean=0.0,
                       loss_square_mean=0.0, wall_time_s=0.0)


def test_with_the_window_the_guard_goes_by_the_sizes_clients_trained_on() -> None:
    # Prepare: floor 3; client 4 trained on 2 samples, client 5 on 3; client 3 has not trained yet
    coordinator = HalorCoordinator(WorkBoard(), HalorSettings(num_classes=2, history=5, mask_bits=16, timeout_s=0.1,
                                                              resample="under", guard_floor=3))
    coordinator.before_run([3, 4, 5])

    # Execute
    coordinator.after_round(1, [_result(4, 2), _result(5, 3)])

    # Assert
    assert coordinator.eligible(2, [3, 4, 5], 2) == [3, 5]
    assert coordinator.resampled_sizes() == {4: 2, 5: 3}


class LowestIds(ClientSelector):
    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        return sorted(feasible)[:count]


class KeepGlobalFold(RoundFold):
    def __init__(self, global_weights: Weights) -> None:
        self._global = global_weights

    @property
    def base_weights(self) -> Weights:
        return self._global

    def add(self, result: TrainResult) -> None:
        return None

    def finish(self) -> dict[str, torch.Tensor]:
        return dict(self._global)

    def fresh_mean(self) -> dict[str, torch.Tensor] | None:
        return None

    def add_stale(self, result: TrainResult, weight: float) -> None:
        return None


class KeepGlobal(Strategy):
    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        return KeepGlobalFold(global_weights)


class NoSink(MetricsSink):
    def on_round(self, metrics: RoundMetrics) -> None:
        return None


def trains_on_ten_samples(board: WorkBoard) -> None:
    """An executor whose every client trains on 10 samples and returns the global weights; tests score nothing."""
    board.add_executor("fake")
    weights: Weights = {}
    while not isinstance(event := board.next_event("fake"), Shutdown):
        if isinstance(event, UpdateModel):
            weights = event.weights
        elif isinstance(event, ClientTrain):
            for task in event.tasks:
                board.submit("fake", ClientUpdate(TrainResult(task.client_id, task.round, task.model_version, weights,
                                                              num_samples=10, num_steps=1, loss_mean=1.0,
                                                              loss_square_mean=1.0, wall_time_s=0.1)))
        elif isinstance(event, ModelTest):
            board.submit("fake", EvalOutcome(event.round, event.model_version, event.shard_index, EvalResult()))


class GuardOnly(RoundPlugin):
    """The Halor step reduced to its guard: client 1 is known to resample below the floor; no histogram step."""

    def __init__(self) -> None:
        self.candidates: list[list[int]] = []
        self.trained: list[tuple[int, int]] = []

    def before_run(self, client_ids: Sequence[int]) -> None:
        self.population = list(client_ids)

    def after_round(self, round_index: int, results: Sequence[TrainResult]) -> None:
        self.trained += [(result.client_id, result.num_samples) for result in results]

    def eligible(self, round_index: int, candidates: Sequence[int], needed: int) -> list[int]:
        self.candidates.append(list(candidates))
        return [client for client in candidates if client != 1]

    def distribution(self) -> None:
        return None


def test_the_round_loop_selects_among_the_clients_the_guard_admits() -> None:
    # Prepare: clients 1..4, two per round; the selector takes the lowest ids it is offered
    job = JobConfig(rounds=2, num_participants=2, total_clients=4, eval_interval=10, save_checkpoint=False)
    board, guard = WorkBoard(long_poll_s=0.05), GuardOnly()
    executor = threading.Thread(target=trains_on_ten_samples, args=(board,), daemon=True)
    executor.start()
    aggregator = Aggregator(job, AggregatorParts(
        board=board, client_ids=[1, 2, 3, 4], initial_weights={"w": torch.zeros(1)}, selector=LowestIds(),
        strategy=KeepGlobal(), sink=NoSink(), plugins=(guard,)))

    # Execute
    history = aggregator.run(executor_count=1, register_timeout_s=5)
    executor.join(timeout=5)

    # Assert: client 1 is never offered to the selector, so 2 and 3 train; their sizes go back to the guard
    assert guard.population == [1, 2, 3, 4]
    assert guard.candidates == [[1, 2, 3, 4], [1, 2, 3, 4]]
    assert [metrics.participants for metrics in history] == [(2, 3), (2, 3)]
    assert guard.trained == [(2, 10), (3, 10), (2, 10), (3, 10)]
