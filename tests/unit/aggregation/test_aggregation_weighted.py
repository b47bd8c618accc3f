import itertools

import pytest
import torch

from fedscale_halor.aggregation import weighted_average


def test_weighted_mean_by_hand() -> None:
    # Prepare: (1 * [1, 2] + 3 * [3, 6]) / 4 = [2.5, 5.0]
    sets = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}]

    # Execute
    averaged = weighted_average(sets, [1.0, 3.0])

    # Assert
    assert torch.equal(averaged["w"], torch.tensor([2.5, 5.0]))


def test_coefficients_are_normalized() -> None:
    # Prepare: [2, 6] are [1, 3] scaled by 2, and [5, 5] the plain mean ([1, 2] + [3, 6]) / 2 = [2, 4]
    sets = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}]

    # Execute
    scaled = weighted_average(sets, [2.0, 6.0])
    equal = weighted_average(sets, [5.0, 5.0])

    # Assert
    assert torch.equal(scaled["w"], torch.tensor([2.5, 5.0]))
    assert torch.equal(equal["w"], torch.tensor([2.0, 4.0]))


def test_dtype_and_key_order_follow_the_first_set() -> None:
    # Prepare: (0.5 + 1.5) / 2 = 1.0 in half precision
    sets = [{"b": torch.tensor([0.5], dtype=torch.float16), "a": torch.tensor([1.0])},
            {"b": torch.tensor([1.5], dtype=torch.float16), "a": torch.tensor([3.0])}]

    # Execute
    averaged = weighted_average(sets, [1.0, 1.0])

    # Assert
    assert list(averaged) == ["b", "a"]
    assert averaged["b"].dtype == torch.float16
    assert torch.equal(averaged["b"], torch.tensor([1.0], dtype=torch.float16))
    assert torch.equal(averaged["a"], torch.tensor([2.0]))


def test_floating_tensors_are_accumulated_in_float64() -> None:
    # Prepare: the plain mean of [1, 2^-24, 2^-24, 2^-24] is 0.25 + 3 * 2^-26 = 0.25 + 1.5 ulp (float32's ulp at
    # 0.25 is 2^-25). Summed exactly, it rounds (to even) to 0.25 + 2^-24. A float32 accumulator would add 2^-26,
    # half an ulp, three times, rounding back to 0.25 each time.
    tiny = 2.0**-24
    sets = [{"w": torch.tensor([1.0])}] + [{"w": torch.tensor([tiny])} for _ in range(3)]

    # Execute
    averaged = weighted_average(sets, [1.0, 1.0, 1.0, 1.0])

    # Assert
    assert averaged["w"].dtype == torch.float32
    assert float(averaged["w"]) == 0.25 + tiny


def test_integer_buffers_take_the_maximum() -> None:
    # Prepare: BatchNorm's num_batches_tracked counts steps; a mean of counters has no meaning
    sets = [{"steps": torch.tensor(4)}, {"steps": torch.tensor(9)}, {"steps": torch.tensor(7)}]

    # Execute
    averaged = weighted_average(sets, [10.0, 1.0, 1.0])

    # Assert
    assert averaged["steps"].dtype == torch.int64
    assert int(averaged["steps"]) == 9


def test_the_result_does_not_alias_the_inputs() -> None:
    # Prepare
    only = {"w": torch.tensor([1.0]), "steps": torch.tensor(3)}

    # Execute
    averaged = weighted_average([only], [1.0])
    averaged["w"].add_(1.0)
    averaged["steps"].add_(1)

    # Assert
    assert float(only["w"]) == 1.0
    assert int(only["steps"]) == 3


def test_empty_input_is_an_error() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="empty"):
        weighted_average([], [])


def test_missing_key_is_named() -> None:
    # Prepare
    sets = [{"conv.weight": torch.zeros(1), "fc.bias": torch.zeros(1)}, {"conv.weight": torch.zeros(1)}]

    # Execute / Assert
    with pytest.raises(ValueError, match=r"fc\.bias"):
        weighted_average(sets, [1.0, 1.0])


def test_extra_key_is_named() -> None:
    # Prepare
    sets = [{"w": torch.zeros(1)}, {"w": torch.zeros(1), "surprise": torch.zeros(1)}]

    # Execute / Assert
    with pytest.raises(ValueError, match="surprise"):
        weighted_average(sets, [1.0, 1.0])


def test_shape_mismatch_is_named() -> None:
    # Prepare
    sets = [{"fc.weight": torch.zeros(2, 3)}, {"fc.weight": torch.zeros(3, 2)}]

    # Execute / Assert
    with pytest.raises(ValueError, match=r"fc\.weight"):
        weighted_average(sets, [1.0, 1.0])


def test_zero_total_weight_is_an_error() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="zero"):
        weighted_average([{"w": torch.zeros(1)}, {"w": torch.ones(1)}], [0.0, 0.0])


def test_coefficient_count_must_match() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="2 weight sets but 1 coefficients"):
        weighted_average([{"w": torch.zeros(1)}, {"w": torch.ones(1)}], [1.0])


def test_tensors_longer_than_an_accumulation_block_give_what_their_pieces_give() -> None:
    # Prepare: each element's mean depends on its own terms only, so cutting the tensor anywhere (here across the
    # 2^18-element accumulation blocks, off their boundaries) and averaging the pieces must give the same bits
    generator = torch.Generator().manual_seed(3)
    sets = [{"w": torch.randn(3, (1 << 18) + 5, generator=generator)} for _ in range(4)]
    shares = [0.1, 0.2, 0.3, 0.4]
    cuts = [0, 1000, (1 << 18) + 3, 3 * ((1 << 18) + 5)]
    pieces = [weighted_average([{"w": weights["w"].reshape(-1)[low:high]} for weights in sets], shares)["w"]
              for low, high in itertools.pairwise(cuts)]
    float64_loop = torch.zeros(3, (1 << 18) + 5, dtype=torch.float64)
    for weights, share in zip(sets, shares, strict=True):
        float64_loop.add_(weights["w"].double(), alpha=share)

    # Execute
    averaged = weighted_average(sets, shares)

    # Assert: the pieces' bits; and a plain float64 loop's numbers up to float32's last bit (the exact sum is
    # rounded once more carefully, so the two may differ there)
    assert averaged["w"].dtype == torch.float32 and averaged["w"].shape == (3, (1 << 18) + 5)
    assert torch.equal(averaged["w"].reshape(-1), torch.cat(pieces))
    torch.testing.assert_close(averaged["w"], float64_loop.float(), rtol=2.0**-23, atol=0.0)
