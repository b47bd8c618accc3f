"""Training lanes: several clients at once, each lane with its own model, and waits that keep training apart from
everything else an executor does."""

import threading
import time

import pytest
from torch import nn

from fedscale_halor.executor.lanes import TrainingLanes
from fedscale_halor.launch.assembly import training_lanes
from fedscale_halor.types import TrainTask


def _task(client_id: int) -> TrainTask:
    return TrainTask(round=1, client_id=client_id, model_version=0, learning_rate=0.1, local_steps=1, batch_size=2,
                     seed=client_id)


class RecordingTrainer:
    """Trains nothing: records which lane's model took which client, and how many ran at the same time."""

    def __init__(self, hold_s: float = 0.05) -> None:
        self.seen: list[tuple[int, int]] = []
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()
        self._hold_s = hold_s

    def __call__(self, model: nn.Module, task: TrainTask, resample: object) -> None:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
            self.seen.append((id(model), task.client_id))
        time.sleep(self._hold_s)
        with self._lock:
            self._running -= 1


def test_every_client_is_trained_once_with_the_lanes_side_by_side() -> None:
    # Prepare
    models = [nn.Linear(1, 1) for _ in range(3)]
    trainer = RecordingTrainer()
    lanes = TrainingLanes(models, trainer, "test")

    # Execute
    lanes.submit([(_task(client), None) for client in range(7)])
    lanes.drain()
    lanes.close()

    # Assert
    assert sorted(client for _, client in trainer.seen) == list(range(7))
    assert trainer.most_at_once == 3
    assert {model for model, _ in trainer.seen} == {id(model) for model in models}


def test_room_opens_once_fewer_clients_wait_than_there_are_lanes() -> None:
    # Prepare: 2 lanes, 4 clients: 2 start at once, 2 wait
    lanes = TrainingLanes([nn.Linear(1, 1), nn.Linear(1, 1)], RecordingTrainer(hold_s=0.2), "test")
    lanes.submit([(_task(client), None) for client in range(4)])

    # Execute
    started = time.perf_counter()
    lanes.wait_for_room()
    waited = time.perf_counter() - started
    lanes.drain()
    lanes.close()

    # Assert: room came when the first two finished (one client then waits), not before
    assert waited >= 0.15


def test_a_lane_that_raises_stops_the_executor_at_its_next_wait() -> None:
    def broken(model: nn.Module, task: TrainTask, resample: object) -> None:
        raise ConnectionError("aggregator gone")

    lanes = TrainingLanes([nn.Linear(1, 1)], broken, "test")
    lanes.submit([(_task(1), None)])

    with pytest.raises(ConnectionError, match="aggregator gone"):
        lanes.drain()
    lanes.close()


def test_lanes_only_on_a_cpu_and_for_models_without_random_draws() -> None:
    plain = nn.Sequential(nn.Linear(2, 2))

    assert training_lanes(3, "cpu", plain) == 3
    assert training_lanes(1, "cpu", plain) == 1
    assert training_lanes(3, "cuda:0", plain) == 1
    assert training_lanes(3, "cpu", nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))) == 1
    assert training_lanes(3, "cpu", nn.LSTM(2, 2, num_layers=2, dropout=0.2)) == 1
