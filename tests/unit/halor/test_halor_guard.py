"""Halor's guard on its own: which clients it admits from the resampled sizes it knows."""

import pytest

from fedscale_halor.halor.guard import ResampledSizeGuard


def test_clients_below_the_floor_are_left_out_and_unknown_ones_stay() -> None:
    # Prepare: floor 5; client 1 resamples to 4, client 2 to exactly 5, client 3 to 9; client 4 is not known yet
    guard = ResampledSizeGuard(5, {1: 4, 2: 5})
    guard.record(3, 9)

    # Execute
    admitted = guard.admitted([4, 3, 2, 1])

    # Assert: the order of the candidates is kept
    assert admitted == [4, 3, 2]
    assert guard.sizes() == {1: 4, 2: 5, 3: 9}


def test_a_later_size_replaces_the_earlier_one() -> None:
    guard = ResampledSizeGuard(3, {7: 2})

    guard.record(7, 3)

    assert guard.admits(7)


def test_a_floor_of_zero_admits_everyone() -> None:
    guard = ResampledSizeGuard(0, {1: 0})

    assert not guard.active
    assert guard.admitted([1, 2]) == [1, 2]


@pytest.mark.parametrize("size", [-1, 2.5, True])
def test_a_size_that_is_not_a_count_is_refused(size: object) -> None:
    with pytest.raises(ValueError, match="client 3: a resampled size is a count of samples"):
        ResampledSizeGuard(1).record(3, size)  # type: ignore[arg-type]
