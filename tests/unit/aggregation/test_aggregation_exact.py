"""The exact fold sum (aggregation/exact.py through RunningWeightedMean): checked against rational arithmetic."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch
from safetensors.torch import load, save

from fedscale_halor.aggregation.exact import GRID_BITS, LOW_BITS
from fedscale_halor.aggregation.weighted import RunningWeightedMean


def _float32(value: Fraction) -> float:
    """``value`` rounded once, to nearest float32 (ties to even)."""
    guess = np.float32(float(value))  # within one float32 step of the answer
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    return float(min(candidates, key=lambda c: (abs(Fraction(float(c)) - value), int(c.view(np.int32)) & 1)))


def _grid_integers(terms: list[tuple[float, torch.Tensor]]) -> list[int]:
    """Per element, the sum over terms of round_half_even(fl64(coefficient x w) x 2^63): what the limbs must hold."""
    count = terms[0][1].numel()
    sums = [0] * count
    for coefficient, tensor in terms:
        for index, w in enumerate(tensor.reshape(-1).tolist()):
            sums[index] += round(Fraction(coefficient * w) * 2**GRID_BITS)  # Python float x: fl64; round: half even
    return sums


def _limbs(running: RunningWeightedMean, key: str = "w") -> list[int]:
    state = running.state_dict()
    return [high * 2**LOW_BITS + low for high, low in zip(state[f"high.{key}"].tolist(), state[f"low.{key}"].tolist(),
                                                          strict=True)]


def _assert_same_state(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for key, tensor in left.items():
        assert tensor.dtype == right[key].dtype and tensor.shape == right[key].shape, key
        assert tensor.numpy().tobytes() == right[key].numpy().tobytes(), key  # bits: NaN != NaN


def _mixed_float32(generator: torch.Generator, count: int) -> torch.Tensor:
    """Ordinary, tiny (negative too), subnormal, huge values and both zeros."""
    ordinary = torch.randn(count, generator=generator)
    scale = torch.pow(2.0, torch.randint(-140, 20, (count,), generator=generator).float())
    values = ordinary * scale
    values[:6] = torch.tensor([0.0, -0.0, -1e-40, 1e-45, -3e-30, 2.0**19 * 1.5])
    return values


def test_a_sample_weighted_mean_equals_rational_arithmetic_rounded_once() -> None:
    # Prepare: (0.1f32 x 3 + 0.2f32 x 5) / 8, every product exact in float64 and the sum exact on the grid
    tenth, fifth = float(np.float32(0.1)), float(np.float32(0.2))
    running = RunningWeightedMean({"w": torch.zeros(1)})

    # Execute
    running.add({"w": torch.tensor([tenth])}, 3, "client 1")
    running.add({"w": torch.tensor([fifth])}, 5, "client 2")
    mean = running.mean()

    # Assert
    assert mean is not None
    assert float(mean["w"]) == _float32((Fraction(tenth) * 3 + Fraction(fifth) * 5) / 8)
    assert running.total == 8.0


def test_a_staleness_weighted_total_is_the_exact_sum_of_the_coefficients_rounded_once() -> None:
    # Prepare: 0.1 + 0.2 + 0.3 is 0.6000000000000001 summed left to right in float64, 0.6 exactly rounded
    running = RunningWeightedMean({"w": torch.zeros(1)})

    # Execute
    for coefficient in (0.1, 0.2, 0.3, 4.0):
        running.add({"w": torch.ones(1)}, coefficient)

    # Assert
    assert running.total == float(Fraction(0.1) + Fraction(0.2) + Fraction(0.3) + 4)
    assert float(running.mean()["w"]) == 1.0  # type: ignore[index]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_limbs_hold_the_exact_sum_of_the_quantised_terms(seed: int) -> None:
    # Prepare: float32 tensors of every magnitude, integral and fractional coefficients
    generator = torch.Generator().manual_seed(seed)
    terms = [(coefficient, _mixed_float32(generator, 64)) for coefficient in (1.0, 37.0, 0.3, 1e-3, 4096.0)]
    running = RunningWeightedMean({"w": torch.zeros(64)})

    # Execute
    for coefficient, tensor in terms:
        running.add({"w": tensor}, coefficient)

    # Assert
    assert _limbs(running) == _grid_integers(terms)


def test_more_adds_than_a_carry_interval_and_terms_beyond_the_float_limb_stay_exact() -> None:
    # Prepare: 1500 adds (LOW is carried every 1024) of values near 2^31 (HIGH moves to its int64 reservoir) and
    # tiny ones
    generator = torch.Generator().manual_seed(5)
    terms = [(1.99, torch.tensor([2.0**31, -(2.0**31)])) for _ in range(3)]
    terms += [(float(index % 7 + 1), torch.randn(2, generator=generator) * 1e-12) for index in range(1500)]
    running = RunningWeightedMean({"w": torch.zeros(2)})

    halves = [RunningWeightedMean({"w": torch.zeros(2)}) for _ in range(2)]

    # Execute: all in one, and split in two partial sums (each with a large term) merged
    for index, (coefficient, tensor) in enumerate(terms):
        running.add({"w": tensor}, coefficient)
        halves[index % 2].add({"w": tensor}, coefficient)
    halves[1].merge(halves[0])

    # Assert
    assert _limbs(running) == _grid_integers(terms)
    _assert_same_state(running.state_dict(), halves[1].state_dict())


def test_every_permutation_gives_the_same_bits() -> None:
    # Prepare
    generator = torch.Generator().manual_seed(11)
    updates = [({"w": _mixed_float32(generator, 300)}, float(samples)) for samples in (1, 7, 30, 2, 5)]
    reference = {"w": torch.zeros(300)}

    def fold(order: tuple[int, ...]) -> RunningWeightedMean:
        running = RunningWeightedMean(reference)
        for index in order:
            running.add(*updates[index])
        return running

    # Execute
    folds = [fold(order) for order in itertools.permutations(range(len(updates)))]

    # Assert
    first = folds[0].state_dict()
    for other in folds[1:]:
        _assert_same_state(first, other.state_dict())
    assert len({folded.mean()["w"].numpy().tobytes() for folded in folds}) == 1  # type: ignore[index]


@pytest.mark.parametrize("seed", range(6))
def test_every_grouping_merged_in_any_order_gives_the_same_bits(seed: int) -> None:
    # Prepare: updates with staleness-like fractional coefficients, cut into random groups (partial sums)
    shuffle = random.Random(seed)
    generator = torch.Generator().manual_seed(100 + seed)
    reference = {"w": torch.zeros(4, 50), "steps": torch.tensor(0)}
    updates = [({"w": _mixed_float32(generator, 200).reshape(4, 50), "steps": torch.tensor(index)},
                float(shuffle.randint(1, 600)) * shuffle.choice([1.0, 0.5, 0.37]))
               for index in range(9)]
    whole = RunningWeightedMean(reference)
    for update in updates:
        whole.add(*update)
    order = list(range(len(updates)))
    shuffle.shuffle(order)
    cuts = sorted(shuffle.sample(range(1, len(updates)), 3))
    groups = [order[low:high] for low, high in zip([0, *cuts], [*cuts, len(updates)], strict=True)]
    partials = []
    for group in groups:
        partial = RunningWeightedMean(reference)
        for index in group:
            partial.add(*updates[index])
        partials.append(partial)
    shuffle.shuffle(partials)

    # Execute
    merged = RunningWeightedMean(reference)
    for partial in partials:
        merged.merge(partial)

    # Assert
    _assert_same_state(whole.state_dict(), merged.state_dict())
    assert torch.equal(whole.mean()["w"], merged.mean()["w"])  # type: ignore[index]
    assert int(merged.mean()["steps"]) == 8  # type: ignore[index]


def test_an_update_beyond_the_range_is_refused_by_name_and_leaves_the_sum_as_it_was() -> None:
    # Prepare
    running = RunningWeightedMean({"b": torch.zeros(1), "w": torch.zeros(2)})
    running.add({"b": torch.ones(1), "w": torch.ones(2)}, 3.0)
    before = running.state_dict()

    # Execute / Assert: 2^10 samples x 2^23 = 2^33
    with pytest.raises(ValueError, match=r"^the update of client 7, tensor 'w': \|coefficient x weight\| reaches "
                                         r"2\^33, beyond the exact fold's range"):
        running.add({"b": torch.ones(1), "w": torch.tensor([1.0, 2.0**23])}, 1024.0, "the update of client 7")
    _assert_same_state(before, running.state_dict())


def test_a_running_sum_beyond_the_range_is_refused_by_name() -> None:
    # Prepare: each update 2^10 x 2^21 = 2^31, within the per-update range; 2^11 of them reach 2^42
    running = RunningWeightedMean({"w": torch.zeros(1)})
    big = {"w": torch.tensor([2.0**21])}

    # Execute / Assert
    with pytest.raises(ValueError, match=r"^the update of client \d+, tensor 'w': the sum of \|coefficient x "
                                         r"weight\| over the updates folded reaches 2\^42, beyond the exact fold's "
                                         r"range"):
        for client in range(1 << 11):
            running.add(big, 1024.0, f"the update of client {client}")


def test_merging_partial_sums_beyond_the_range_is_refused() -> None:
    # Prepare: two partial sums of 2^41 each
    halves = [RunningWeightedMean({"w": torch.zeros(1)}) for _ in range(2)]
    for half in halves:
        for _ in range(1 << 10):
            half.add({"w": torch.tensor([2.0**21])}, 1024.0)

    # Execute / Assert
    with pytest.raises(ValueError, match=r"^executor 2's partial sum, tensor 'w': .* reaches 2\^42"):
        halves[0].merge(halves[1], "executor 2's partial sum")


def test_an_accumulator_survives_safetensors_and_goes_on_as_if_it_had_not_travelled() -> None:
    # Prepare: float, half, complex and integer tensors, a NaN and an infinity, a fractional coefficient
    generator = torch.Generator().manual_seed(9)
    reference = {"w": torch.zeros(3, 4), "h": torch.zeros(5, dtype=torch.float16),
                 "z": torch.zeros(2, dtype=torch.complex64), "steps": torch.tensor(0)}

    def update(index: int) -> dict[str, torch.Tensor]:
        w = _mixed_float32(generator, 12).reshape(3, 4)
        if index == 1:
            w[0, 0], w[1, 1] = math.nan, math.inf
        return {"w": w, "h": torch.randn(5, generator=generator).half(),
                "z": torch.randn(2, dtype=torch.complex64, generator=generator), "steps": torch.tensor(index * 3)}

    updates = [(update(index), coefficient) for index, coefficient in enumerate((4.0, 2.5, 1.0))]
    stayed = RunningWeightedMean(reference)
    stayed.add(*updates[0])
    stayed.add(*updates[1])

    # Execute
    travelled = RunningWeightedMean.from_state_dict(reference, load(save(stayed.state_dict())))
    for running in (stayed, travelled):
        running.add(*updates[2])

    # Assert
    _assert_same_state(stayed.state_dict(), travelled.state_dict())
    left, right = stayed.mean(), travelled.mean()
    assert left is not None and right is not None
    for key in reference:  # bits, not values: NaN != NaN
        assert left[key].dtype == reference[key].dtype
        assert left[key].numpy().tobytes() == right[key].numpy().tobytes(), key
    assert math.isnan(float(left["w"][0, 0])) and float(left["w"][1, 1]) == math.inf
    assert int(left["steps"]) == 6


def test_a_damaged_state_is_refused() -> None:
    running = RunningWeightedMean({"w": torch.zeros(2)})
    running.add({"w": torch.ones(2)}, 1.0)
    state = running.state_dict()

    out_of_range = {**state, "low.w": torch.tensor([0, 1 << LOW_BITS])}
    with pytest.raises(ValueError, match=r"low limb is not in"):
        RunningWeightedMean.from_state_dict({"w": torch.zeros(2)}, out_of_range)
    with pytest.raises(ValueError, match=r"unexpected entry 'high\.v'"):
        RunningWeightedMean.from_state_dict({"w": torch.zeros(2)}, {**state, "high.v": state["high.w"]})
    with pytest.raises(ValueError, match=r"exceeds its bound"):
        RunningWeightedMean.from_state_dict({"w": torch.zeros(2)}, {**state, "bound.w": torch.tensor(0)})


def test_integer_tensors_take_the_maximum_in_adds_and_merges() -> None:
    # Prepare
    reference = {"steps": torch.tensor([0, 0]), "w": torch.zeros(1)}
    left, right = RunningWeightedMean(reference), RunningWeightedMean(reference)
    left.add({"steps": torch.tensor([4, 9]), "w": torch.ones(1)}, 2.0)
    right.add({"steps": torch.tensor([7, 1]), "w": torch.ones(1)}, 1.0)
    right.add({"steps": torch.tensor([5, 3]), "w": torch.ones(1)}, 1.0)

    # Execute
    left.merge(right)

    # Assert
    mean = left.mean()
    assert mean is not None and mean["steps"].tolist() == [7, 9] and mean["steps"].dtype == torch.int64


def test_non_finite_terms_give_the_same_values_in_any_order() -> None:
    # Prepare: +inf and -inf meet in element 0 (NaN), +inf alone in element 1, NaN in element 2
    updates = [torch.tensor([math.inf, math.inf, 1.0]), torch.tensor([-math.inf, 2.0, math.nan]),
               torch.tensor([3.0, 4.0, 5.0])]
    means = []
    for order in itertools.permutations(range(3)):
        running = RunningWeightedMean({"w": torch.zeros(3)})
        for index in order:
            running.add({"w": updates[index]}, 1.0)
        means.append(running.mean()["w"].numpy().tobytes())  # type: ignore[index]

    # Assert
    assert len(set(means)) == 1
    values = np.frombuffer(means[0], dtype=np.float32)
    assert math.isnan(values[0]) and values[1] == math.inf and math.isnan(values[2])


def test_complex_tensors_are_summed_exactly_part_by_part() -> None:
    # Prepare: ((1 + 2j) x 3 + (0.5 - 1j) x 1) / 4 = (3.5 + 5j) / 4
    running = RunningWeightedMean({"z": torch.zeros(1, dtype=torch.complex64)})

    # Execute
    running.add({"z": torch.tensor([1 + 2j], dtype=torch.complex64)}, 3.0)
    running.add({"z": torch.tensor([0.5 - 1j], dtype=torch.complex64)}, 1.0)

    # Assert
    mean = running.mean()
    assert mean is not None and mean["z"].dtype == torch.complex64
    assert complex(mean["z"][0]) == complex(0.875, 1.25)
