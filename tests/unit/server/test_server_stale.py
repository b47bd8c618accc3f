import math

import pytest
import torch

from fedscale_halor.aggregation.staleness import StalePolicy
from fedscale_halor.server.stale import StaleUpdates
from fedscale_halor.types import TrainResult


def _result(client_id: int, value: float = 0.0) -> TrainResult:
    return TrainResult(client_id=client_id, round=1, model_version=0, weights={"w": torch.tensor([value])},
                       num_samples=10, num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)


def test_updates_are_due_in_the_round_they_reach_in_client_order_and_dropped_when_too_late() -> None:
    # Prepare: at most 2 rounds late
    stale = StaleUpdates(StalePolicy(stale_update=2))
    stale.hold(_result(7), trained_round=1, arrives_at_s=15.0)
    stale.hold(_result(3), trained_round=1, arrives_at_s=12.0)
    stale.hold(_result(5), trained_round=1, arrives_at_s=99.0)  # arrives after round 3 ends: too late by then

    # Execute: round 2 ends at 10 s, round 3 at 20 s, round 4 at 30 s
    round_2 = stale.due(2, 10.0)
    round_3 = stale.due(3, 20.0)
    round_4 = stale.due(4, 30.0)

    # Assert
    assert round_2 == []
    assert [pending.result.client_id for pending in round_3] == [3, 7]
    assert round_4 == []  # client 5 would be 3 rounds late: dropped


def test_an_update_never_counts_in_its_own_round() -> None:
    stale = StaleUpdates(StalePolicy(stale_update=-1))
    stale.hold(_result(1), trained_round=4, arrives_at_s=1.0)

    assert stale.due(4, 100.0) == []
    assert [pending.result.client_id for pending in stale.due(5, 100.0)] == [1]


@pytest.mark.parametrize(("factor", "expected"), [(1.0, (1.0, 1.0)), (4.0, (0.25, 0.25)), (-3.0, (0.5, 1 / 3))])
def test_due_updates_are_weighted_by_the_stale_factor(factor: float, expected: tuple[float, float]) -> None:
    stale = StaleUpdates(StalePolicy(stale_update=-1, stale_factor=factor))
    stale.hold(_result(1), trained_round=2, arrives_at_s=0.0)  # 1 round late in round 3
    stale.hold(_result(2), trained_round=1, arrives_at_s=0.0)  # 2 rounds late

    due = stale.due(3, 10.0)
    weights = stale.weights(3, due, fresh_client_ids=[5], fresh_mean={"w": torch.tensor([0.0])})

    assert weights == pytest.approx(expected)


def test_refl_scaling_measures_each_stale_update_against_the_fresh_mean() -> None:
    # deviations from the fresh mean 0: client 1 -> 4, client 2 -> 1 (squared distance); both 1 round late
    policy = StalePolicy(stale_update=-1, stale_factor=-4.0, stale_beta=0.5, scale_coff=1.0)
    stale = StaleUpdates(policy)
    stale.hold(_result(1, 2.0), trained_round=1, arrives_at_s=0.0)
    stale.hold(_result(2, 1.0), trained_round=1, arrives_at_s=0.0)

    weights = stale.weights(2, stale.due(2, 1.0), [9], {"w": torch.tensor([0.0])})

    # (1 - beta) / (s + 1) + beta * (1 - e^-(D / Dmax) / scale_coff)
    assert weights == pytest.approx((0.25 + 0.5 * (1 - math.exp(-1.0)), 0.25 + 0.5 * (1 - math.exp(-0.25))))
