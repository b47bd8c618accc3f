from __future__ import annotations

import threading

import pytest
import torch

from fedscale_halor.aggregation.fold import MeanFold
from fedscale_halor.aggregation.partial import SumRule, partial_sum
from fedscale_halor.executor.outbox import completion_bytes
from fedscale_halor.executor.partials import PartialSums, clients_worth_summing
from fedscale_halor.transport.messages import ClientFailure, ClientTrain, Completion, PartialUpdate
from fedscale_halor.types import TrainResult, TrainTask

MODEL = {"w": torch.tensor([0.0, 0.0])}


def _task(client_id: int, summed: bool = True) -> TrainTask:
    return TrainTask(round=3, client_id=client_id, model_version=5, learning_rate=0.1, local_steps=1, batch_size=2,
                     seed=client_id, summed=summed)


def _result(client_id: int, w: list[float], samples: int, version: int = 5) -> TrainResult:
    return TrainResult(client_id=client_id, round=3, model_version=version, weights={"w": torch.tensor(w)},
                       num_samples=samples, num_steps=1, loss_mean=0.5, loss_square_mean=0.25, wall_time_s=0.01)


def _event(*tasks: TrainTask, weighted: bool = True) -> ClientTrain:
    return ClientTrain(round=3, model_version=5, tasks=tasks, sum_rule=SumRule(weighted))


class Sent:
    """The completions the partial sums hand to the outbox."""

    def __init__(self) -> None:
        self.completions: list[Completion] = []

    def __call__(self, completion: Completion) -> None:
        self.completions.append(completion)


def test_one_partial_goes_once_every_summed_client_of_the_event_has_trained() -> None:
    # Prepare: an event of three clients, two of them summed
    sent = Sent()
    sums = PartialSums("executor_1", sent, fewest_clients=lambda model: 1)
    sums.start(_event(_task(1), _task(2, summed=False), _task(4)), MODEL)

    # Execute
    sums.add(_task(4), _result(4, [3.0, 5.0], 3))
    nothing_yet = list(sent.completions)
    sums.add(_task(1), _result(1, [1.0, 2.0], 1))

    # Assert: one partial of both, weightless results in the order trained; its mean is (1*1 + 3*3)/4, (2 + 15)/4
    assert nothing_yet == []
    [partial] = sent.completions
    assert isinstance(partial, PartialUpdate) and (partial.round, partial.model_version) == (3, 5)
    assert [(result.client_id, result.weights, result.num_samples) for result in partial.results] == \
        [(4, {}, 3), (1, {}, 1)]
    fold = MeanFold(MODEL, [1, 4], weighted=True)
    fold.add_partial(partial_sum(MODEL, partial.results, partial.sums, "p"))
    assert fold.finish()["w"].tolist() == [2.5, 4.25]
    assert completion_bytes(partial) == sum(t.numel() * t.element_size() for t in partial.sums.values()) > 0


def test_a_failed_or_unfit_client_stays_out_of_the_sum_and_an_event_without_any_sends_nothing() -> None:
    sent = Sent()
    sums = PartialSums("executor_1", sent, fewest_clients=lambda model: 1)
    sums.start(_event(_task(1), _task(2), _task(3)), MODEL)
    sums.failed(_task(2))
    sums.add(_task(3), _result(3, [1.0, 1.0], 2, version=4))  # trained on an older model
    sums.add(_task(1), _result(1, [7.0, 9.0], 2))

    failure, partial = sent.completions
    assert isinstance(failure, ClientFailure) and failure.client_id == 3
    assert "from executor_1 does not fit the global model: trained on model version 4" in failure.error
    assert isinstance(partial, PartialUpdate) and [result.client_id for result in partial.results] == [1]

    sent.completions.clear()
    sums.start(_event(_task(5), _task(6)), MODEL)
    sums.failed(_task(5))
    sums.add(_task(6), _result(6, [float("nan")] * 3, 1))  # a layout the model does not have
    [failure] = sent.completions
    assert isinstance(failure, ClientFailure) and failure.client_id == 6 and "shape (3,)" in failure.error


def test_an_update_out_of_the_exact_range_fails_its_client_and_names_it() -> None:
    sent = Sent()
    sums = PartialSums("executor_1", sent, fewest_clients=lambda model: 1)
    sums.start(_event(_task(1), _task(2)), MODEL)
    sums.add(_task(1), _result(1, [2.0**40, 0.0], 1))
    sums.add(_task(2), _result(2, [1.0, 1.0], 1))
    failure, partial = sent.completions
    assert isinstance(failure, ClientFailure) and failure.client_id == 1 and "client 1" in failure.error
    assert isinstance(partial, PartialUpdate) and [result.client_id for result in partial.results] == [2]


def test_an_event_that_sums_without_a_rule_is_refused() -> None:
    sums = PartialSums("executor_1", Sent(), fewest_clients=lambda model: 1)
    sums.start(ClientTrain(round=3, model_version=5, tasks=(_task(1, summed=False),)), MODEL)  # nothing summed: fine
    with pytest.raises(ValueError, match="sums clients \\[1\\] but its event carries no sum rule"):
        sums.start(ClientTrain(round=3, model_version=5, tasks=(_task(1),)), MODEL)


def test_lanes_adding_at_once_send_one_partial_with_every_client() -> None:
    sent = Sent()
    sums = PartialSums("executor_1", sent, fewest_clients=lambda model: 1)
    tasks = [_task(client) for client in range(64)]
    sums.start(_event(*tasks, weighted=False), MODEL)
    barrier = threading.Barrier(4)

    def lane(offset: int) -> None:
        barrier.wait()
        for task in tasks[offset::4]:
            sums.add(task, _result(task.client_id, [float(task.client_id), 1.0], 1))

    threads = [threading.Thread(target=lane, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [partial] = sent.completions
    assert isinstance(partial, PartialUpdate)
    assert sorted(result.client_id for result in partial.results) == list(range(64))
    fold = MeanFold(MODEL, range(64), weighted=False)
    fold.add_partial(partial_sum(MODEL, partial.results, partial.sums, "p"))
    assert fold.finish()["w"].tolist() == [31.5, 1.0]


def test_an_event_of_fewer_clients_than_make_a_partial_worth_its_size_sends_each_update() -> None:
    # float32: an update is 4 bytes per element, a partial 16, so it takes 5 clients; float16: 2 and 16, so 9
    assert clients_worth_summing({"w": torch.zeros(10)}) == 5
    assert clients_worth_summing({"w": torch.zeros(10, dtype=torch.float16)}) == 9
    assert clients_worth_summing({"w": torch.zeros(3), "n": torch.tensor(0)}) == 3  # (48 + 8) // (12 + 8) + 1
    assert clients_worth_summing({"w": torch.zeros(2**20)}) == 5  # 4 MiB: still summed
    assert clients_worth_summing({"w": torch.zeros(2**20 + 1)}) is None  # larger: sent one by one
    sums = PartialSums("executor_1", Sent())
    sums.start(_event(*(_task(client) for client in range(4))), MODEL)
    assert not any(sums.takes(_task(client)) for client in range(4))
    sums.start(_event(*(_task(client) for client in range(10, 15))), MODEL)
    assert all(sums.takes(_task(client)) for client in range(10, 15))
    assert not sums.takes(_task(10, summed=False))
