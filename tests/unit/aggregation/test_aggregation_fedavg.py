import random

import pytest
import torch

from fedscale_halor.aggregation import FedAvg, FedProx
from fedscale_halor.aggregation.base import fold_results
from fedscale_halor.types import TrainResult


def result(client_id: int, values: list[float], num_samples: int, steps: int = 0) -> TrainResult:
    weights = {"w": torch.tensor(values), "steps": torch.tensor(steps)}
    return TrainResult(client_id=client_id, round=1, model_version=0, weights=weights, num_samples=num_samples,
                       num_steps=5, loss_mean=1.0, loss_square_mean=1.0, wall_time_s=0.1)


GLOBAL = {"w": torch.tensor([0.0, 0.0]), "steps": torch.tensor(0)}


def test_fedavg_weights_clients_by_their_sample_counts() -> None:
    # Prepare: (1 * [1, 2] + 3 * [3, 6]) / 4 = [2.5, 5.0]
    results = [result(1, [1.0, 2.0], num_samples=1), result(2, [3.0, 6.0], num_samples=3)]

    # Execute
    new_global = fold_results(FedAvg(), GLOBAL, results)

    # Assert
    assert torch.equal(new_global["w"], torch.tensor([2.5, 5.0]))


def test_unweighted_fedavg_is_the_plain_mean() -> None:
    # Prepare: ([1, 2] + [3, 6]) / 2 = [2, 4]
    results = [result(1, [1.0, 2.0], num_samples=1), result(2, [3.0, 6.0], num_samples=3)]

    # Execute
    new_global = fold_results(FedAvg(weighted=False), GLOBAL, results)

    # Assert
    assert torch.equal(new_global["w"], torch.tensor([2.0, 4.0]))


def test_clients_without_samples_are_ignored_even_in_the_plain_mean() -> None:
    # Prepare
    results = [result(1, [1.0, 2.0], num_samples=2), result(2, [100.0, 100.0], num_samples=0)]

    # Execute
    weighted = fold_results(FedAvg(), GLOBAL, results)
    unweighted = fold_results(FedAvg(weighted=False), GLOBAL, results)

    # Assert
    assert torch.equal(weighted["w"], torch.tensor([1.0, 2.0]))
    assert torch.equal(unweighted["w"], torch.tensor([1.0, 2.0]))


def test_no_usable_result_keeps_a_copy_of_the_global_weights() -> None:
    # Prepare
    global_weights = {"w": torch.tensor([7.0, 8.0]), "steps": torch.tensor(3)}

    # Execute
    from_nothing = fold_results(FedAvg(), global_weights, [])
    from_empty_clients = fold_results(FedAvg(), global_weights, [result(4, [1.0, 1.0], num_samples=0)])
    from_nothing["w"].add_(1.0)

    # Assert
    assert torch.equal(from_empty_clients["w"], torch.tensor([7.0, 8.0]))
    assert torch.equal(global_weights["w"], torch.tensor([7.0, 8.0]))


def test_integer_buffers_of_the_clients_take_the_maximum() -> None:
    # Prepare
    results = [result(1, [1.0, 1.0], num_samples=1, steps=20), result(2, [1.0, 1.0], num_samples=5, steps=12)]

    # Execute
    new_global = fold_results(FedAvg(), GLOBAL, results)

    # Assert
    assert int(new_global["steps"]) == 20


def test_an_update_that_does_not_fit_the_global_model_names_the_client() -> None:
    # Prepare
    bad = TrainResult(client_id=42, round=1, model_version=0, weights={"w": torch.zeros(3), "steps": torch.tensor(0)},
                      num_samples=1, num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)

    # Execute / Assert
    with pytest.raises(ValueError, match="client 42"):
        fold_results(FedAvg(), GLOBAL, [bad])


def test_fedavg_is_bitwise_identical_for_any_arrival_order() -> None:
    # Prepare
    generator = torch.Generator().manual_seed(3)
    results = [result(client_id, torch.randn(2, generator=generator).tolist(), num_samples=client_id % 7 + 1)
               for client_id in range(40)]
    shuffled = list(results)
    random.Random(1).shuffle(shuffled)

    # Execute
    in_order = fold_results(FedAvg(), GLOBAL, results)
    out_of_order = fold_results(FedAvg(), GLOBAL, shuffled)

    # Assert
    assert torch.equal(in_order["w"], out_of_order["w"])


def test_fedprox_aggregates_as_fedavg_and_keeps_no_state() -> None:
    # Prepare
    results = [result(1, [1.0, 2.0], num_samples=1), result(2, [3.0, 6.0], num_samples=3)]
    strategy = FedProx()

    # Execute
    new_global = fold_results(strategy, GLOBAL, results)

    # Assert
    assert torch.equal(new_global["w"], torch.tensor([2.5, 5.0]))
    assert strategy.state_dict() == {}
    with pytest.raises(ValueError, match=r"first_moment\.w"):
        strategy.load_state_dict({"first_moment.w": torch.zeros(2)})
