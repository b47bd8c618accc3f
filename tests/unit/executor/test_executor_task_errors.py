"""An executor whose evaluation or training raises reports the error as a failure completion, says whether it is
fatal, and keeps serving until it is told to shut down."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
import torch
from torch import nn

from fedscale_halor.executor.executor import Executor, ExecutorParts
from fedscale_halor.executor.task_errors import describe, is_transient
from fedscale_halor.transport.base import Transport
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    Completion,
    EvalFailure,
    EvalOutcome,
    Event,
    ExecutorInfo,
    Heartbeat,
    Idle,
    ModelTest,
    RegisterReply,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import ClientData, TrainResult, TrainTask

CLASSES = 3


class ScriptedTransport(Transport):
    """Hands out the scripted events in order, then Shutdown; records every completion but heartbeats."""

    def __init__(self, events: list[Event]) -> None:
        self._events = list(events)
        self.completions: list[Completion] = []
        self.polls_after_script = 0
        self._lock = threading.Lock()

    def register(self, info: ExecutorInfo) -> RegisterReply:
        return RegisterReply(accepted=True)

    def next_event(self, executor_id: str) -> Event:
        with self._lock:
            if self._events:
                return self._events.pop(0)
            self.polls_after_script += 1
            return Shutdown("done")

    def submit(self, executor_id: str, completion: Completion) -> None:
        if not isinstance(completion, Heartbeat):
            with self._lock:
                self.completions.append(completion)


class FakeDataset:
    """Test shard 1's labels name class 12, which the 3-class model does not have; shard 0's are fine."""

    def test_shard(self, index: int, count: int, view: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        labels = [0, 12] if index == 1 else [0, 1]
        return torch.ones(len(labels), 2), torch.tensor(labels, dtype=torch.int64)

    def client_data(self, client_id: int, positions: object = None) -> ClientData:
        return ClientData(client_id, torch.ones(2, 2), torch.tensor([0, 1], dtype=torch.int64))


class RaisingTrainer:
    def __init__(self, error: BaseException | None) -> None:
        self._error = error

    def train(self, model: nn.Module, global_weights: Any, data: ClientData, task: TrainTask) -> TrainResult:
        if self._error is not None:
            raise self._error
        return TrainResult(task.client_id, task.round, task.model_version, dict(global_weights), num_samples=2,
                           num_steps=1, loss_mean=1.0, loss_square_mean=1.0, wall_time_s=0.0)


def _executor(events: list[Event], trainer_error: BaseException | None = None,
              model: nn.Module | None = None) -> tuple[Executor, ScriptedTransport]:
    transport = ScriptedTransport(events)
    model = model or nn.Linear(2, CLASSES)
    parts = ExecutorParts(model=model, dataset=cast(Any, FakeDataset()),
                          trainer=cast(Any, RaisingTrainer(trainer_error)), test_batch_size=8, heartbeat_s=60.0)
    return Executor("e1", transport, parts), transport


def _model_event(model: nn.Module | None = None) -> UpdateModel:
    weights = {name: tensor.detach().clone() for name, tensor in (model or nn.Linear(2, CLASSES)).state_dict().items()}
    return UpdateModel(version=0, weights=weights)


def _task(client_id: int) -> TrainTask:
    return TrainTask(round=2, client_id=client_id, model_version=0, learning_rate=0.1, local_steps=1, batch_size=2,
                     seed=client_id)


class BrokenModel(nn.Linear):
    """Evaluation runs out of memory, as a GPU too small for the test batch does."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_an_evaluation_with_labels_out_of_range_is_reported_as_a_fatal_failure_and_the_executor_carries_on() -> None:
    # Prepare: the bad shard, then a good one
    executor, transport = _executor([_model_event(), ModelTest(round=3, model_version=0, shard_index=1, shard_count=2),
                                     Idle(0.0), ModelTest(round=3, model_version=0, shard_index=0, shard_count=2)])

    # Execute
    executor.run()

    # Assert: a failure naming the round, the shard and the error; the executor served on until told to stop
    failure, outcome = transport.completions
    assert failure == EvalFailure(round=3, model_version=0, shard_index=1,
                                  error="IndexError: Target 12 is out of bounds.", fatal=True)
    assert isinstance(outcome, EvalOutcome) and outcome.shard_index == 0 and outcome.result.num_samples == 2
    assert transport.polls_after_script == 1


def test_an_evaluation_that_runs_out_of_memory_is_reported_as_transient() -> None:
    model = BrokenModel(2, CLASSES)
    executor, transport = _executor([_model_event(model), ModelTest(round=3, model_version=0, shard_index=0,
                                                                    shard_count=1)], model=model)

    executor.run()

    [failure] = transport.completions
    assert isinstance(failure, EvalFailure) and not failure.fatal
    assert failure.error == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.mark.parametrize(("error", "fatal"), [
    (ValueError("a batch of 0 samples"), True),
    (KeyError("conv1.weight"), True),
    (RuntimeError("size mismatch for fc.weight: copying a param with shape [10, 64]"), True),
    (MemoryError(), False),
], ids=["ValueError", "KeyError", "RuntimeError", "MemoryError"])
def test_a_training_error_is_reported_for_each_client_with_its_type_and_message(error: BaseException,
                                                                                 fatal: bool) -> None:
    executor, transport = _executor([_model_event(), ClientTrain(round=2, model_version=0,
                                                                 tasks=(_task(7), _task(8)))],
                                    trainer_error=error)

    executor.run()

    assert transport.completions == [ClientFailure(round=2, client_id=client, error=describe(error), fatal=fatal)
                                     for client in (7, 8)]
    assert transport.polls_after_script == 1


def test_an_error_is_described_by_its_type_and_message() -> None:
    assert describe(IndexError("Target 12 is out of bounds.")) == "IndexError: Target 12 is out of bounds."
    assert describe(MemoryError()) == "MemoryError"
    assert describe(KeyError("w")) == "KeyError: 'w'"
    assert is_transient(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_transient(RuntimeError("shape mismatch"))
