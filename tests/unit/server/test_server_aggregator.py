"""The round loop against a hand-written fake executor: every number here is worked out by hand."""

import pickle
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from fedscale_halor.aggregation import FedAvg
from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.aggregation.fold import RoundFold
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.assembly import round_planner
from fedscale_halor.launch.jobfile import job_with
from fedscale_halor.launch.plugins import round_plugins
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.plugin.factory import ServerSide
from fedscale_halor.selection.base import ClientOutcome, ClientSelector
from fedscale_halor.server.aggregator import Aggregator, AggregatorParts
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.errors import NoExecutorsError
from fedscale_halor.transport.messages import (
    ClientTrain,
    ClientUpdate,
    EvalOutcome,
    ModelTest,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import EvalResult, RoundMetrics, TrainResult, Weights


class FirstClientsSelector(ClientSelector):
    def __init__(self) -> None:
        self.feedback_rounds: list[int] = []
        self.outcomes: list[list[tuple[int, int, float]]] = []

    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        return sorted(feasible)[:count]

    def feedback(self, round_index: int, outcomes: Sequence[ClientOutcome]) -> None:
        self.feedback_rounds.append(round_index)
        self.outcomes.append([(o.client_id, o.num_samples, o.duration_s) for o in outcomes])


class MeanFold(RoundFold):
    """The plain mean of the round's ``w`` in client-id order; takes no stale updates."""

    def __init__(self, global_weights: Weights) -> None:
        self._global = global_weights
        self._results: dict[int, TrainResult] = {}

    @property
    def base_weights(self) -> Weights:
        return self._global

    def add(self, result: TrainResult) -> None:
        self._results[result.client_id] = result

    def finish(self) -> dict[str, torch.Tensor]:
        ordered = [self._results[client] for client in sorted(self._results)]
        return {"w": torch.stack([r.weights["w"] for r in ordered]).mean(dim=0)}

    def fresh_mean(self) -> dict[str, torch.Tensor] | None:
        return None

    def add_stale(self, result: TrainResult, weight: float) -> None:
        raise AssertionError("these tests run no stale updates")


class MeanStrategy(Strategy):
    def start_round(self, global_weights: Weights, expected_client_ids: Sequence[int]) -> RoundFold:
        return MeanFold(global_weights)


class ListSink(MetricsSink):
    def __init__(self) -> None:
        self.rounds: list[RoundMetrics] = []
        self.closed = False

    def on_round(self, metrics: RoundMetrics) -> None:
        self.rounds.append(metrics)

    def close(self) -> None:
        self.closed = True


def fake_executor(board: WorkBoard, seen_lrs: list[float], seen_versions: list[int]) -> None:
    """Each client returns global + client_id; evaluation reports the model's value as 'correct' counts."""
    board.add_executor("fake")
    weights: Weights = {}
    while True:
        event = board.next_event("fake")
        if isinstance(event, UpdateModel):
            weights = event.weights
            seen_versions.append(event.version)
        elif isinstance(event, ClientTrain):
            for task in event.tasks:
                seen_lrs.append(task.learning_rate)
                trained = {"w": weights["w"] + task.client_id}
                board.submit("fake", ClientUpdate(TrainResult(task.client_id, task.round, task.model_version, trained,
                                                      num_samples=10, num_steps=task.local_steps,
                                                      loss_mean=float(task.client_id), loss_square_mean=1.0,
                                                      wall_time_s=0.5 * task.client_id)))
        elif isinstance(event, ModelTest):
            value = int(weights["w"].item())
            board.submit("fake", EvalOutcome(event.round, event.model_version, event.shard_index,
                                     EvalResult(num_samples=100, loss_sum=1.0, top1_correct=value, top5_correct=value)))
        elif isinstance(event, Shutdown):
            return


def test_round_loop_aggregates_decays_evaluates_and_logs() -> None:
    # Prepare: clients 1..4 exist, 2 per round -> clients 1 and 2 every round; w grows by mean(1, 2) = 1.5 per round
    job = JobConfig(rounds=4, num_participants=2, total_clients=4, eval_interval=2, learning_rate=0.1,
                    decay_factor=0.5, decay_round=2, min_learning_rate=0.0, save_checkpoint=False)
    board = WorkBoard(long_poll_s=0.01)
    selector, sink = FirstClientsSelector(), ListSink()
    lrs: list[float] = []
    versions: list[int] = []
    executor = threading.Thread(target=fake_executor, args=(board, lrs, versions), daemon=True)
    executor.start()
    aggregator = Aggregator(job, AggregatorParts(board, [1, 2, 3, 4], {"w": torch.tensor(0.0)}, selector,
                                                 MeanStrategy(), sink))

    # Execute
    history = aggregator.run(executor_count=1, register_timeout_s=5)
    executor.join(timeout=5)

    # Assert
    assert not executor.is_alive()
    assert float(aggregator.weights["w"]) == 6.0  # 4 rounds x 1.5
    assert [m.round for m in history] == [1, 2, 3, 4] and sink.rounds == history and sink.closed
    assert lrs == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]  # decay by half after 2 rounds
    assert versions == [0, 1, 2, 3, 4]  # each version sent once: 4 rounds + the evaluations reuse versions 2, 4
    assert [m.test is not None for m in history] == [False, True, False, True]
    assert history[1].test.top1_correct == 3 and history[3].test.top1_correct == 6
    assert history[0].train_loss == 1.5  # samples-weighted mean of losses 1 and 2
    assert [m.clock_s for m in history] == [1.0, 2.0, 3.0, 4.0]  # slowest client (id 2) takes 1 s per round
    assert selector.feedback_rounds == [1, 2, 3, 4]
    assert selector.outcomes[0] == [(1, 10, 0.5), (2, 10, 1.0)]  # samples and (wall) durations of clients 1, 2


def test_no_executor_at_all_fails_the_job_with_a_clear_error() -> None:
    job = JobConfig(rounds=1, num_participants=1, total_clients=1, save_checkpoint=False)
    sink = ListSink()
    aggregator = Aggregator(job, AggregatorParts(WorkBoard(), [0], {"w": torch.tensor(0.0)}, FirstClientsSelector(),
                                                 MeanStrategy(), sink))

    with pytest.raises(NoExecutorsError, match=r"no executor registered within 0.05 s .*expected 2"):
        aggregator.run(executor_count=2, register_timeout_s=0.05)
    assert sink.closed and sink.rounds == []


def test_the_job_starts_with_the_executors_that_came_and_finishes_every_round() -> None:
    # Prepare: two executors expected, one comes; same arithmetic as above: w grows by 1.5 per round
    job = JobConfig(rounds=3, num_participants=2, total_clients=4, eval_interval=3, save_checkpoint=False)
    board = WorkBoard(long_poll_s=0.01)
    executor = threading.Thread(target=fake_executor, args=(board, [], []), daemon=True)
    executor.start()
    aggregator = Aggregator(job, AggregatorParts(board, [1, 2, 3, 4], {"w": torch.tensor(0.0)},
                                                 FirstClientsSelector(), MeanStrategy(), ListSink()))

    # Execute
    history = aggregator.run(executor_count=2, register_timeout_s=0.2)
    executor.join(timeout=5)

    # Assert
    assert [m.completed for m in history] == [2, 2, 2]
    assert float(aggregator.weights["w"]) == 4.5
    assert history[-1].test is not None and history[-1].test.top1_correct == 2 * 4  # two shards, w = 4 each


def _traced_job(tmp_path: Path) -> JobConfig:
    """Clients 0, 1, 2 take 2.3 s, 1.3 s and 4.3 s a round on the virtual clock (batch 10, 5 steps, a 1 MB model:
    0.3 s of compute at 2 ms per sample, then 2 x 8e6 bits over 8000, 16000 and 4000 kbps)."""
    capacity = {client: {"computation": 2.0, "communication": kbps}
                for client, kbps in enumerate([8000.0, 16000.0, 4000.0])}
    path = tmp_path / "client_device_capacity"
    path.write_bytes(pickle.dumps(capacity))
    return JobConfig(device_conf_file=str(path), num_participants=2, batch_size=10, local_steps=5, total_clients=3,
                     rounds=3, overcommitment=1.5, eval_interval=3, save_checkpoint=False)


def test_the_round_loop_trains_only_the_clients_that_complete_and_reports_simulated_time(tmp_path: Path) -> None:
    # Prepare: 3 clients, 2 per round, overcommitment 1.5 -> all 3 selected; client 2 (4.3 s) is always cut
    job = _traced_job(tmp_path)
    board = WorkBoard(long_poll_s=0.01)
    trained: list[float] = []
    executor = threading.Thread(target=fake_executor, args=(board, trained, []), daemon=True)
    executor.start()
    selector = FirstClientsSelector()
    aggregator = Aggregator(job, AggregatorParts(
        board, [0, 1, 2], {"w": torch.tensor(0.0)}, selector, MeanStrategy(), ListSink(),
        client_sizes=SIZES, planner=round_planner(job, [0, 1, 2], 1_000_000),
        plugins=round_plugins(job, ServerSide(board, [0, 1, 2], SIZES, num_classes=10))))

    # Execute
    history = aggregator.run(executor_count=1, register_timeout_s=5)
    executor.join(timeout=5)

    # Assert: clients 0 and 1 each round; w grows by mean(0, 1) = 0.5; 2.3 s of simulated time per round
    assert [m.participants for m in history] == [(0, 1)] * 3
    assert float(aggregator.weights["w"]) == 1.5
    assert [m.clock_s for m in history] == pytest.approx([2.3, 4.6, 6.9])
    assert selector.outcomes[0] == [(0, 10, pytest.approx(2.3)), (1, 10, pytest.approx(1.3))]


SIZES = {0: 10, 1: 10, 2: 10}


def _run_traced(job: JobConfig) -> tuple[Aggregator, list[RoundMetrics]]:
    """Run a traced job (clients 0, 1, 2 of 10 samples each) with FedAvg against the fake executor."""
    board = WorkBoard(long_poll_s=0.01)
    executor = threading.Thread(target=fake_executor, args=(board, [], []), daemon=True)
    executor.start()
    aggregator = Aggregator(job, AggregatorParts(
        board, [0, 1, 2], {"w": torch.tensor(0.0)}, FirstClientsSelector(), FedAvg(), ListSink(),
        client_sizes=SIZES, planner=round_planner(job, [0, 1, 2], 1_000_000),
        plugins=round_plugins(job, ServerSide(board, [0, 1, 2], SIZES, num_classes=10))))
    history = aggregator.run(executor_count=1, register_timeout_s=5)
    executor.join(timeout=5)
    return aggregator, history


@pytest.mark.parametrize(("stale_factor", "final_w"), [(1.0, 37 / 18), (-3.0, 1.86)], ids=["equal", "dynsgd"])
def test_a_stragglers_update_is_folded_into_the_round_it_reaches(tmp_path: Path, stale_factor: float,
                                                                 final_w: float) -> None:
    # Prepare: client 2 (4.3 s a round) always misses the cut of the two fastest (2.3 s), but trains anyway
    # (stale_update 1); each update it sends is global w + 2, one round late. Rounds end at 2.3, 4.6, 6.9 s.
    # Round 1: mean(0, 1) = 0.5; client 2's 2.0 arrives at 4.3 s, within round 2.
    # Round 2: fresh 0.5 and 1.5, stale 2.0: equal weight 4/3; DynSGD weight 1/2: (5 + 15 + 10) / 25 = 1.2.
    # Round 3: client 2's round-2 update (0.5 + 2 = 2.5) arrives at 2.3 + 4.3 = 6.6 s, within round 3:
    # equal weight: (4/3 + 7/3 + 2.5) / 3 = 37/18; DynSGD: (12 + 22 + 12.5) / 25 = 1.86.
    job = job_with(_traced_job(tmp_path), stale_update=1, stale_factor=stale_factor)

    # Execute
    aggregator, history = _run_traced(job)

    # Assert
    assert [m.participants for m in history] == [(0, 1, 2)] * 3
    assert [m.completed for m in history] == [2, 2, 2]
    assert float(aggregator.weights["w"]) == pytest.approx(final_w, rel=1e-6)


def test_adaptive_selection_selects_fewer_new_clients_when_stale_updates_are_due(tmp_path: Path) -> None:
    # Prepare: 3 selected per round (2 x 1.5). Before round 2 (at 2.3 s, a typical round 2.3 s), client 2's round-1
    # update is due at 4.3 s, within the window: the soft rule without a cap selects 3 - 1 = 2. Before round 3 it has
    # arrived (folded in round 2) and client 2 was not selected in round 2: nothing is pending, 3 are selected.
    job = job_with(_traced_job(tmp_path), stale_update=1, adapt_selection=1, adapt_selection_cap=0.0)

    _, history = _run_traced(job)

    assert [m.participants for m in history] == [(0, 1, 2), (0, 1), (0, 1, 2)]
