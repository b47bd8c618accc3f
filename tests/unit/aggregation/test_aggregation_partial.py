import itertools

import pytest
import torch

from fedscale_halor.aggregation.feddc import FedDC
from fedscale_halor.aggregation.fold import MeanFold
from fedscale_halor.aggregation.partial import PartialSummer, SumRule, partial_sum
from fedscale_halor.types import TrainResult

GLOBAL = {"w": torch.tensor([0.0, 0.0]), "steps": torch.tensor(0)}


def _result(client_id: int, w: list[float], samples: int, steps: int = 1) -> TrainResult:
    return TrainResult(client_id=client_id, round=1, model_version=0,
                       weights={"w": torch.tensor(w), "steps": torch.tensor(steps)}, num_samples=samples, num_steps=1,
                       loss_mean=0.5, loss_square_mean=0.25, wall_time_s=0.01)


def _partial(results: list[TrainResult], rule: SumRule):
    summer = PartialSummer(GLOBAL, rule)
    for result in results:
        summer.add(result)
    return partial_sum(GLOBAL, summer.results, summer.state_dict(), "a test partial")


def test_the_rule_counts_samples_or_clients_and_leaves_out_clients_without_samples() -> None:
    assert SumRule(weighted=True).coefficient(5) == 5.0
    assert SumRule(weighted=False).coefficient(5) == 1.0
    assert SumRule(weighted=True).coefficient(4, weight=0.5) == 2.0
    assert SumRule(weighted=True).coefficient(0) is None
    assert SumRule(weighted=False).coefficient(3, weight=0.0) is None


def test_partials_give_the_hand_computed_mean_and_the_bits_of_single_adds_in_every_grouping() -> None:
    # Prepare: three clients; by samples the mean is ((1*1 + 3*3 + 0.1*4) / 8, (2*1 + 5*3 + 0.7*4) / 8)
    results = [_result(4, [1.0, 2.0], 1, steps=3), _result(7, [3.0, 5.0], 3, steps=9), _result(9, [0.1, 0.7], 4)]
    rule = SumRule(weighted=True)
    single = MeanFold(GLOBAL, [4, 7, 9], weighted=True)
    for result in results:
        single.add(result)
    expected = single.finish()

    # Execute: every split of the clients into partials and single updates, in every order
    for order in itertools.permutations(results):
        for cut in range(len(order) + 1):
            fold = MeanFold(GLOBAL, [4, 7, 9], weighted=True)
            fold.add_partial(_partial(list(order[:cut]), rule))
            for result in order[cut:]:
                fold.add(result)
            mean = fold.finish()

            # Assert
            assert torch.equal(mean["w"], expected["w"])
            assert mean["steps"].item() == 9  # integer tensors take the maximum
    assert expected["w"].tolist() == pytest.approx([(1 + 9 + 0.4) / 8, (2 + 15 + 2.8) / 8])


def test_a_partial_without_samples_counts_its_clients_but_adds_nothing() -> None:
    fold = MeanFold(GLOBAL, [1, 2], weighted=False)
    fold.add_partial(_partial([_result(1, [8.0, 8.0], 0)], SumRule(weighted=False)))
    fold.add(_result(2, [2.0, 4.0], 5))
    assert fold.finish()["w"].tolist() == [2.0, 4.0]


def test_a_partial_with_a_client_not_expected_or_named_twice_is_refused_and_changes_nothing() -> None:
    rule = SumRule(weighted=True)
    fold = MeanFold(GLOBAL, [1, 2], weighted=True)
    with pytest.raises(ValueError, match="client 3 was not expected"):
        fold.add_partial(_partial([_result(1, [1.0, 1.0], 1), _result(3, [9.0, 9.0], 1)], rule))
    with pytest.raises(ValueError, match="names a client twice"):
        fold.add_partial(_partial([_result(1, [1.0, 1.0], 1), _result(1, [9.0, 9.0], 1)], rule))
    fold.add_partial(_partial([_result(1, [1.0, 1.0], 1), _result(2, [3.0, 3.0], 1)], rule))
    assert fold.finish()["w"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="after the round's own updates were closed"):
        fold.add_partial(_partial([_result(2, [3.0, 3.0], 1)], rule))


def test_a_partial_that_carries_weights_or_another_layout_is_refused_with_its_name() -> None:
    summer = PartialSummer(GLOBAL, SumRule(weighted=True))
    summer.add(_result(1, [1.0, 1.0], 2))
    with pytest.raises(ValueError, match="a test partial: client 1 carries its weights"):
        partial_sum(GLOBAL, (_result(1, [1.0, 1.0], 2),), summer.state_dict(), "a test partial")
    other = {"w": torch.zeros(3), "steps": torch.tensor(0)}
    with pytest.raises(ValueError, match="from executor x"):
        partial_sum(other, summer.results, summer.state_dict(), "the partial sum from executor x")


def test_the_summer_keeps_statistics_without_weights_and_refuses_an_update_out_of_range_unchanged() -> None:
    summer = PartialSummer(GLOBAL, SumRule(weighted=True))
    summer.add(_result(1, [1.0, 3.0], 2))
    with pytest.raises(ValueError, match="client 2"):
        summer.add(_result(2, [2.0**40, 0.0], 1))
    assert [(result.client_id, result.weights, result.num_samples) for result in summer.results] == [(1, {}, 2)]
    fold = MeanFold(GLOBAL, [1], weighted=True)
    fold.add_partial(partial_sum(GLOBAL, summer.results, summer.state_dict(), "p"))
    assert fold.finish()["w"].tolist() == [1.0, 3.0]


def test_a_fold_that_needs_each_update_has_no_sum_rule_and_refuses_partials() -> None:
    fold = FedDC().start_round(GLOBAL, [1])
    assert fold.sum_rule() is None and fold.in_client_order
    with pytest.raises(TypeError, match="takes each update on its own"):
        fold.add_partial(_partial([], SumRule(weighted=True)))
    mean = MeanFold(GLOBAL, [1], weighted=False)
    assert mean.sum_rule() == SumRule(weighted=False) and not mean.in_client_order
