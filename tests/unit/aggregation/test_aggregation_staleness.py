from __future__ import annotations

import math

import pytest
import torch

from fedscale_halor.aggregation.staleness import (
    StalePolicy,
    UpdateInfo,
    accepts_stale,
    refl_deviation,
    refl_scale,
    stale_weights,
)
from fedscale_halor.aggregation.weighted import weighted_average


def _fresh(*client_ids: int) -> list[UpdateInfo]:
    return [UpdateInfo(client_id=client_id) for client_id in client_ids]


@pytest.mark.parametrize(("staleness_rounds", "stale_update", "accepted"), [
    (1, 0, False),
    (7, 0, False),
    (1, -1, True),
    (100, -1, True),
    (1, 1, True),
    (2, 1, False),
    (5, 5, True),
    (6, 5, False),
])
def test_accepts_stale_table(staleness_rounds: int, stale_update: int, accepted: bool) -> None:
    # Prepare: 0 accepts nothing, -1 anything, n at most n rounds late

    # Execute
    result = accepts_stale(staleness_rounds, stale_update)

    # Assert
    assert result is accepted


@pytest.mark.parametrize(("staleness_rounds", "stale_update", "key"), [
    (0, 1, "staleness_rounds"),
    (-1, 1, "staleness_rounds"),
    (1, -2, "stale_update"),
])
def test_accepts_stale_rejects_bad_arguments_by_name(staleness_rounds: int, stale_update: int, key: str) -> None:
    # Prepare: a fresh update (staleness 0) is no stale update; -2 is no stale_update code

    # Execute / Assert
    with pytest.raises(ValueError, match=key):
        accepts_stale(staleness_rounds, stale_update)


def test_policy_defaults_are_refl_defaults() -> None:
    # Prepare: REFL's argument parser: stale_update 0, stale_factor 1.0, stale_beta 0.35, scale_coff 10

    # Execute
    policy = StalePolicy()

    # Assert
    assert (policy.stale_update, policy.stale_factor, policy.stale_beta, policy.scale_coff) == (0, 1.0, 0.35, 10.0)


@pytest.mark.parametrize(("settings", "key"), [
    ({"stale_update": -2}, "stale_update"),
    ({"stale_update": 1.5}, "stale_update"),
    ({"stale_update": True}, "stale_update"),
    ({"stale_factor": 0.5}, "stale_factor"),
    ({"stale_factor": -5.0}, "stale_factor"),
    ({"stale_factor": -1.5}, "stale_factor"),
    ({"stale_factor": math.nan}, "stale_factor"),
    ({"stale_factor": math.inf}, "stale_factor"),
    ({"stale_beta": 1.1}, "stale_beta"),
    ({"stale_beta": -0.1}, "stale_beta"),
    ({"stale_beta": math.nan}, "stale_beta"),
    ({"scale_coff": 0.5}, "scale_coff"),
    ({"scale_coff": 0.0}, "scale_coff"),
    ({"scale_coff": math.inf}, "scale_coff"),
])
def test_policy_errors_name_the_key(settings: dict[str, float], key: str) -> None:
    # Prepare: one bad value at a time

    # Execute / Assert
    with pytest.raises(ValueError, match=key):
        StalePolicy(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("stale_factor", [0.0, 1.0, 1.5, 4.0, -1.0, -2.0, -3.0, -4.0])
def test_policy_accepts_every_stale_factor_code(stale_factor: float) -> None:
    # Prepare / Execute
    policy = StalePolicy(stale_update=-1, stale_factor=stale_factor, stale_beta=0.0, scale_coff=1.0)

    # Assert
    assert policy.stale_factor == stale_factor


@pytest.mark.parametrize("stale_factor", [0.0, 1.0])
def test_equal_weight_gives_stale_updates_weight_one(stale_factor: float) -> None:
    # Prepare
    policy = StalePolicy(stale_update=-1, stale_factor=stale_factor)
    stale = [UpdateInfo(client_id=3, staleness_rounds=1), UpdateInfo(client_id=4, staleness_rounds=9)]

    # Execute
    weights = stale_weights(policy, _fresh(1, 2), stale)

    # Assert
    assert weights.fresh == (1.0, 1.0)
    assert weights.stale == (1.0, 1.0)


def test_factor_above_one_divides_stale_weights() -> None:
    # Prepare: 1 / 4 whatever the staleness
    policy = StalePolicy(stale_update=-1, stale_factor=4.0)
    stale = [UpdateInfo(client_id=3, staleness_rounds=1), UpdateInfo(client_id=4, staleness_rounds=3)]

    # Execute
    weights = stale_weights(policy, _fresh(1), stale)

    # Assert
    assert weights.fresh == (1.0,)
    assert weights.stale == (0.25, 0.25)


def test_average_staleness_damps_every_stale_update_alike() -> None:
    # Prepare: staleness 1 and 3: mean(1 + 1, 3 + 1) = 3, so each stale update weighs 1/3
    policy = StalePolicy(stale_update=-1, stale_factor=-1.0)
    stale = [UpdateInfo(client_id=3, staleness_rounds=1), UpdateInfo(client_id=4, staleness_rounds=3)]

    # Execute
    weights = stale_weights(policy, _fresh(1, 2), stale)

    # Assert
    assert weights.fresh == (1.0, 1.0)
    assert weights.stale == pytest.approx((1 / 3, 1 / 3), rel=1e-15)


def test_average_staleness_in_the_round_mean_by_hand() -> None:
    # Prepare: fresh [0] and [2] weigh 1, stale [6] (1 late) and [9] (3 late) weigh 1/3 each:
    # (0 + 2 + (6 + 9) / 3) / (2 + 2/3) = 7 / (8/3) = 2.625
    policy = StalePolicy(stale_update=-1, stale_factor=-1.0)
    stale = [UpdateInfo(client_id=3, staleness_rounds=1), UpdateInfo(client_id=4, staleness_rounds=3)]
    updates = [{"w": torch.tensor([value])} for value in (0.0, 2.0, 6.0, 9.0)]

    # Execute
    weights = stale_weights(policy, _fresh(1, 2), stale)
    averaged = weighted_average(updates, [*weights.fresh, *weights.stale])

    # Assert
    assert float(averaged["w"]) == pytest.approx(2.625, rel=1e-6)


@pytest.mark.parametrize(("staleness_rounds", "expected"), [(1, 0.5), (2, 1 / 3), (4, 0.2)])
def test_dynsgd_is_one_over_staleness_plus_one(staleness_rounds: int, expected: float) -> None:
    # Prepare: staleness 2 -> 1 / 3
    policy = StalePolicy(stale_update=-1, stale_factor=-3.0)

    # Execute
    weights = stale_weights(policy, _fresh(1), [UpdateInfo(client_id=2, staleness_rounds=staleness_rounds)])

    # Assert
    assert weights.fresh == (1.0,)
    assert weights.stale == pytest.approx((expected,), rel=1e-15)


@pytest.mark.parametrize(("staleness_rounds", "expected"), [(1, 0.1353352832366127), (2, 0.049787068367863944)])
def test_adasgd_is_exponential_in_staleness_plus_one(staleness_rounds: int, expected: float) -> None:
    # Prepare: staleness 1 -> e^-2, staleness 2 -> e^-3
    policy = StalePolicy(stale_update=-1, stale_factor=-2.0)

    # Execute
    weights = stale_weights(policy, _fresh(1), [UpdateInfo(client_id=2, staleness_rounds=staleness_rounds)])

    # Assert
    assert weights.stale == pytest.approx((expected,), rel=1e-12)


def test_refl_deviation_of_one_element_tensors() -> None:
    # Prepare: (3 - 1)^2 = 4
    stale_update = {"w": torch.tensor([3.0])}
    fresh_average = {"w": torch.tensor([1.0])}

    # Execute
    deviation = refl_deviation(stale_update, fresh_average)

    # Assert
    assert deviation == 4.0


def test_refl_deviation_sums_floating_tensors_and_skips_counters() -> None:
    # Prepare: (3 - 1)^2 + (1 - 1)^2 + (0.5 - 0)^2 = 4.25; the integer counter (7 vs 2) does not count
    stale_update = {"w": torch.tensor([3.0, 1.0]), "b": torch.tensor([0.5]), "n": torch.tensor(7)}
    fresh_average = {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([0.0]), "n": torch.tensor(2)}

    # Execute
    deviation = refl_deviation(stale_update, fresh_average)

    # Assert
    assert deviation == 4.25


def test_refl_deviation_names_a_missing_key() -> None:
    # Prepare
    stale_update = {"w": torch.tensor([3.0])}
    fresh_average = {"w": torch.tensor([1.0]), "b": torch.tensor([0.0])}

    # Execute / Assert
    with pytest.raises(ValueError, match="'b'"):
        refl_deviation(stale_update, fresh_average)


@pytest.mark.parametrize(("deviation", "largest", "staleness_rounds", "expected"), [
    # 0.65 * 1/2 + 0.35 * (1 - e^-1 / 10) = 0.325 + 0.35 * 0.9632120558828558
    (4.0, 4.0, 1, 0.6621242195589996),
    # 0.65 * 1/3 + 0.35 * (1 - e^-0.25 / 10) = 0.21666666666666667 + 0.35 * 0.9221199216928595
    (1.0, 4.0, 2, 0.5394086392591675),
    # every stale update on the fresh average: ratio 0, 0.325 + 0.35 * (1 - 1/10) = 0.64
    (0.0, 0.0, 1, 0.64),
])
def test_refl_scale_by_hand(deviation: float, largest: float, staleness_rounds: int, expected: float) -> None:
    # Prepare: REFL's defaults, stale_beta 0.35 and scale_coff 10

    # Execute
    scale = refl_scale(deviation, largest, staleness_rounds, stale_beta=0.35, scale_coff=10.0)

    # Assert
    assert scale == pytest.approx(expected, rel=1e-12)


def test_refl_scale_rejects_a_deviation_above_the_largest() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match="deviation"):
        refl_scale(5.0, 4.0, 1, stale_beta=0.35, scale_coff=10.0)


def test_refl_weights_of_a_round_from_one_element_tensors() -> None:
    # Prepare: fresh [0] and [2] average to [1]; stale [3] (1 late) lies 4 away, stale [0] (2 late) lies 1 away;
    # the largest deviation is 4, so the weights are those of test_refl_scale_by_hand
    fresh_average = weighted_average([{"w": torch.tensor([0.0])}, {"w": torch.tensor([2.0])}], [1.0, 1.0])
    stale_updates = [{"w": torch.tensor([3.0])}, {"w": torch.tensor([0.0])}]
    stale = [UpdateInfo(client_id=client_id, staleness_rounds=staleness,
                        deviation=refl_deviation(update, fresh_average))
             for client_id, staleness, update in zip((3, 4), (1, 2), stale_updates, strict=True)]
    policy = StalePolicy(stale_update=2, stale_factor=-4.0)

    # Execute
    weights = stale_weights(policy, _fresh(1, 2), stale)

    # Assert
    assert weights.fresh == (1.0, 1.0)
    assert weights.stale == pytest.approx((0.6621242195589996, 0.5394086392591675), rel=1e-12)


def test_refl_weights_without_fresh_updates_ignore_deviations() -> None:
    # Prepare: no fresh average, so the ratio is 0: 0.65 / 2 + 0.35 * (1 - 1/10) = 0.64
    policy = StalePolicy(stale_update=-1, stale_factor=-4.0)

    # Execute
    weights = stale_weights(policy, [], [UpdateInfo(client_id=5, staleness_rounds=1)])

    # Assert
    assert weights.fresh == ()
    assert weights.stale == pytest.approx((0.64,), rel=1e-12)


def test_refl_weights_need_the_deviation_of_each_stale_update() -> None:
    # Prepare
    policy = StalePolicy(stale_update=-1, stale_factor=-4.0)

    # Execute / Assert
    with pytest.raises(ValueError, match="client 7"):
        stale_weights(policy, _fresh(1), [UpdateInfo(client_id=7, staleness_rounds=1)])


def test_stale_weights_refuse_an_update_the_policy_does_not_accept() -> None:
    # Prepare: 3 rounds late, at most 2 accepted
    policy = StalePolicy(stale_update=2, stale_factor=-3.0)

    # Execute / Assert
    with pytest.raises(ValueError, match=r"client 9.*stale_update=2"):
        stale_weights(policy, _fresh(1), [UpdateInfo(client_id=9, staleness_rounds=3)])


def test_stale_weights_refuse_a_late_update_among_the_fresh_ones() -> None:
    # Prepare
    policy = StalePolicy(stale_update=-1)

    # Execute / Assert
    with pytest.raises(ValueError, match="client 1"):
        stale_weights(policy, [UpdateInfo(client_id=1, staleness_rounds=1)], [])


@pytest.mark.parametrize("stale_factor", [1.0, 3.0, -1.0, -2.0, -3.0, -4.0])
def test_a_round_without_stale_updates_weighs_every_fresh_one_alike(stale_factor: float) -> None:
    # Prepare
    policy = StalePolicy(stale_update=-1, stale_factor=stale_factor)

    # Execute
    weights = stale_weights(policy, _fresh(1, 2, 3), [])

    # Assert
    assert weights.fresh == (1.0, 1.0, 1.0)
    assert weights.stale == ()
