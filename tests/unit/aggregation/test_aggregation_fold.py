from __future__ import annotations

import gc
import weakref

import pytest
import torch

from fedscale_halor.aggregation import FedAvg
from fedscale_halor.aggregation.base import fold_results
from fedscale_halor.aggregation.fold import InClientOrder, MeanFold
from fedscale_halor.types import TrainResult


def _result(client_id: int, value: float, samples: int = 1) -> TrainResult:
    return TrainResult(client_id=client_id, round=1, model_version=0, weights={"w": torch.tensor([value])},
                       num_samples=samples, num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)


def test_results_are_passed_on_in_ascending_client_id_whatever_the_arrival_order() -> None:
    passed: list[int] = []
    order = InClientOrder([7, 3, 5, 9], lambda result: passed.append(result.client_id))

    order.add(_result(5, 0.0))
    held_after_5 = order.held
    order.add(_result(3, 0.0))
    order.add(_result(9, 0.0))
    passed_before_7 = list(passed)
    order.add(_result(7, 0.0))

    assert held_after_5 == 1 and passed_before_7 == [3, 5]
    assert passed == [3, 5, 7, 9] and order.held == 0


def test_a_client_that_never_reports_holds_back_the_rest_until_drained() -> None:
    passed: list[int] = []
    order = InClientOrder([1, 2, 3], lambda result: passed.append(result.client_id))

    order.add(_result(3, 0.0))
    order.add(_result(2, 0.0))
    before_drain = list(passed)
    order.drain()

    assert before_drain == [] and passed == [2, 3]


@pytest.mark.parametrize("client_id", [4, 1], ids=["unexpected", "twice"])
def test_an_unexpected_or_repeated_client_is_refused(client_id: int) -> None:
    order = InClientOrder([1, 2], lambda result: None)
    order.add(_result(1, 0.0))

    with pytest.raises(ValueError, match=f"client {client_id} was not expected"):
        order.add(_result(client_id, 0.0))


def test_fedavg_folded_during_the_round_equals_fedavg_over_all_results_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(0)
    results = [TrainResult(client_id=client, round=1, model_version=0,
                           weights={"w": torch.randn(1000, generator=generator)}, num_samples=client + 1,
                           num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)
               for client in range(6)]
    global_weights = {"w": torch.zeros(1000)}
    strategy = FedAvg()

    fold = strategy.start_round(global_weights, [result.client_id for result in results])
    for result in [results[4], results[1], results[5], results[0], results[3], results[2]]:
        fold.add(result)
    folded = fold.finish()

    assert torch.equal(folded["w"], fold_results(strategy, global_weights, results)["w"])


def test_mean_fold_weights_by_samples_and_ignores_empty_clients() -> None:
    # (1 x 2.0 + 3 x 6.0) / 4 = 5.0; client 3 trained on nothing
    fold = MeanFold({"w": torch.tensor([0.0])}, [1, 2, 3], weighted=True)

    fold.add(_result(2, 6.0, samples=3))
    fold.add(_result(3, 100.0, samples=0))
    fold.add(_result(1, 2.0, samples=1))

    assert fold.finish()["w"].item() == 5.0


def test_a_round_without_usable_results_keeps_the_global_weights() -> None:
    global_weights = {"w": torch.tensor([1.5])}
    fold = MeanFold(global_weights, [1], weighted=True)

    kept = fold.finish()

    assert kept["w"].item() == 1.5 and kept["w"] is not global_weights["w"]


def test_the_mean_fold_keeps_no_result_once_added_whatever_the_arrival_order() -> None:
    # Prepare: client 2 arrives before client 1; nothing waits for it, so its update can go at once
    fold = MeanFold({"w": torch.zeros(1)}, [1, 2], weighted=True)
    early = _result(2, 4.0)
    freed = weakref.ref(early.weights["w"])

    # Execute
    fold.add(early)
    del early

    # Assert
    assert freed() is None
    fold.add(_result(1, 2.0))
    assert fold.finish()["w"].item() == 3.0


def test_a_fresh_result_after_the_stale_ones_began_is_refused() -> None:
    # Prepare: stale updates come after the round's own, and REFL measured them against the fresh mean so far
    fold = MeanFold({"w": torch.zeros(1)}, [1, 2], weighted=True)
    fold.add(_result(1, 2.0))
    fold.add_stale(_result(5, 8.0), 0.5)

    # Execute / Assert
    with pytest.raises(ValueError, match="client 2 was not expected in this round"):
        fold.add(_result(2, 4.0))


@pytest.mark.parametrize("client_id", [4, 1], ids=["unexpected", "twice"])
def test_the_mean_fold_refuses_an_unexpected_or_repeated_client(client_id: int) -> None:
    fold = MeanFold({"w": torch.zeros(1)}, [1, 2], weighted=True)
    fold.add(_result(1, 0.0))

    with pytest.raises(ValueError, match=f"client {client_id} was not expected"):
        fold.add(_result(client_id, 0.0))


def test_a_finished_fold_is_freed_at_once_without_the_cycle_collector() -> None:
    # Prepare: a fold holding its exact sums (client 1 never reports)
    gc.collect()
    gc.disable()
    try:
        fold = MeanFold({"w": torch.zeros(1)}, [1, 2], weighted=True)
        fold.add(_result(2, 4.0))
        fold.finish()
        freed = weakref.ref(fold)

        # Execute
        del fold

        # Assert: plain reference counting frees it; a reference cycle would keep the round's sums and updates alive
        # until the cyclic collector happened to run, a few hundred MB per round on a large model
        assert freed() is None
    finally:
        gc.enable()
